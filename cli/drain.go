package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

// drainOptions are the flags of `corral drain`.
type drainOptions struct {
	g                *globals
	selector         string
	podSelector      string
	ignoreDaemonSets bool
	force            bool
	deleteEmptyDir   bool
	timeout          time.Duration
}

// newDrainCommand returns `corral drain`.
func newDrainCommand(g *globals) *cobra.Command {
	o := &drainOptions{g: g}
	cmd := &cobra.Command{
		Use:   "drain NODE",
		Short: "Drain node in preparation for maintenance",
		Long: `Drain node in preparation for maintenance.

The node is cordoned first, then the pods running on it are deleted. A DaemonSet's pods
are not deleted: they tolerate the cordon, and their DaemonSet would put them back at
once; drain refuses to go on while there are any, unless --ignore-daemonsets is given.
Pods that no controller manages are refused unless --force is given (they are gone for
good), and so are pods with emptyDir volumes unless --delete-emptydir-data is given
(their data is deleted with them). Pods that already finished are deleted regardless.

When maintenance is done, 'corral uncordon NODE' makes the node schedulable again.`,
		Example: `  # Drain node1: cordon it and delete its pods, leaving DaemonSets' pods running
  corral drain node1 --ignore-daemonsets

  # Drain every node labelled zone=b, bare pods too
  corral drain -l zone=b --ignore-daemonsets --force`,
	}
	cmd.RunE = g.dryRunE(cmd, func(ctx context.Context, args []string, mode string) error {
		return o.run(ctx, args, mode)
	})
	fs := cmd.Flags()
	fs.StringVarP(&o.selector, "selector", "l", "", "Selector (label query) to filter on")
	fs.StringVar(&o.podSelector, "pod-selector", "", "Label selector to filter pods on the node")
	fs.BoolVar(&o.ignoreDaemonSets, "ignore-daemonsets", false, "Ignore DaemonSet-managed pods.")
	fs.BoolVar(&o.force, "force", false, "Continue even if there are pods that do not declare a controller.")
	fs.BoolVar(&o.deleteEmptyDir, "delete-emptydir-data", false, "Continue even if there are pods using emptyDir (local data that will be deleted when the node is drained).")
	fs.DurationVar(&o.timeout, "timeout", 0, "The length of time to wait before giving up, zero means infinite")
	addDryRunFlag(cmd)
	return cmd
}

// run executes `corral drain`: each node is cordoned and drained in turn;
// a node that cannot be drained is reported and the others go on.
func (o *drainOptions) run(ctx context.Context, args []string, mode string) error {
	if len(args) == 0 && o.selector == "" {
		return errors.New("USAGE: drain NODE [flags]")
	}
	if o.podSelector != "" {
		if _, err := api.ParseSelector(o.podSelector); err != nil {
			return fmt.Errorf("invalid --pod-selector %q: %w", o.podSelector, err)
		}
	}
	if o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}
	nodeKind, err := lookupKind("Node")
	if err != nil {
		return err
	}
	targets, err := o.g.targetObjects(ctx, []selection{{kind: nodeKind, names: args}}, o.selector, false, false)
	if err != nil {
		return err
	}
	cordon := &cordonOptions{g: o.g, cordon: true}
	var pending, failures []string
	failed := false
	for _, t := range targets {
		err := cordon.one(ctx, t, mode)
		if isCode(err, codes.NotFound) {
			// A node that is not there is an error of its own, as
			// kubectl reports it, not a node left to drain.
			o.g.printErr(err)
			failed = true
			continue
		}
		if err == nil {
			err = o.drainOne(ctx, t.name, mode)
		}
		if err != nil {
			msg := strings.TrimPrefix(formatError(err), "error: ")
			o.g.warnf("error: unable to drain node %q due to error: %s, continuing command...\n", t.name, msg)
			pending = append(pending, t.name)
			failures = append(failures, msg)
		}
	}
	if len(pending) > 0 {
		o.g.warnf("There are pending nodes to be drained:\n")
		for _, n := range pending {
			o.g.warnf(" %s\n", n)
		}
		for _, msg := range failures {
			o.g.warnf("%s\n", msg)
		}
	}
	if failed || len(pending) > 0 {
		return errReported
	}
	return nil
}

// drainOne deletes the pods on node that drain may delete, after
// checking that none of them is refused: a node with a refused pod is left
// cordoned with all its pods.
func (o *drainOptions) drainOne(ctx context.Context, node, mode string) error {
	resp, err := o.g.listObjects(ctx, &corralpb.ListRequest{Kind: "Pod", LabelSelector: o.podSelector,
		FieldSelector: "spec.nodeName=" + node})
	if err != nil {
		return err
	}
	var daemon, unmanaged, local []string
	var remove []*corralpb.Pod
	for _, obj := range resp.GetItems() {
		p := obj.GetPod()
		md := p.GetMetadata()
		name := md.GetNamespace() + "/" + md.GetName()
		finished := p.GetStatus().GetPhase() == "Succeeded" || p.GetStatus().GetPhase() == "Failed"
		switch ctl := controllerOf(md); {
		case md.GetDeletionTimestamp() != nil:
			continue // on its way out already
		case ctl.GetKind() == "DaemonSet" && !finished:
			daemon = append(daemon, name)
			continue // never deleted: its DaemonSet would put it back
		case ctl == nil && !finished:
			unmanaged = append(unmanaged, name)
		}
		if !finished && usesEmptyDir(p) {
			local = append(local, name)
		}
		remove = append(remove, p)
	}
	var refusals, warnings []string
	if len(daemon) > 0 {
		if o.ignoreDaemonSets {
			warnings = append(warnings, "ignoring DaemonSet-managed Pods: "+strings.Join(daemon, ", "))
		} else {
			refusals = append(refusals, "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): "+strings.Join(daemon, ", "))
		}
	}
	if len(unmanaged) > 0 {
		if o.force {
			warnings = append(warnings, "deleting Pods that declare no controller: "+strings.Join(unmanaged, ", "))
		} else {
			refusals = append(refusals, "cannot delete Pods declare no controller (use --force to override): "+strings.Join(unmanaged, ", "))
		}
	}
	if len(local) > 0 {
		if o.deleteEmptyDir {
			warnings = append(warnings, "deleting Pods with local storage: "+strings.Join(local, ", "))
		} else {
			refusals = append(refusals, "cannot delete Pods with local storage (use --delete-emptydir-data to override): "+strings.Join(local, ", "))
		}
	}
	switch len(refusals) {
	case 0:
	case 1:
		return errors.New(refusals[0])
	default:
		return fmt.Errorf("[%s]", strings.Join(refusals, ", "))
	}
	if len(warnings) > 0 {
		o.g.warnf("Warning: %s\n", strings.Join(warnings, "; "))
	}
	for _, p := range remove {
		md := p.GetMetadata()
		o.g.printf("evicting pod %s/%s\n", md.GetNamespace(), md.GetName())
		if mode != dryRunClient {
			err := o.g.do(ctx, func(ctx context.Context, c corralpb.ClusterClient) error {
				_, err := c.Delete(ctx, &corralpb.DeleteRequest{Kind: "Pod", Namespace: md.GetNamespace(), Name: md.GetName(),
					Uid: md.GetUid(), DryRun: mode == dryRunServer})
				return err
			})
			if err != nil && !isCode(err, codes.NotFound) {
				return fmt.Errorf("delete pod %s/%s: %w", md.GetNamespace(), md.GetName(), err)
			}
		}
		o.g.printf("pod/%s evicted%s\n", md.GetName(), dryRunSuffix(mode))
	}
	o.g.printf("node/%s drained%s\n", node, dryRunSuffix(mode))
	return nil
}

// usesEmptyDir reports whether the pod has an emptyDir volume, whose data
// goes with the pod.
func usesEmptyDir(p *corralpb.Pod) bool {
	for _, v := range p.GetSpec().GetVolumes() {
		if v.GetEmptyDir() != nil {
			return true
		}
	}
	return false
}
