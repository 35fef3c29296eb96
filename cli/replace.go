package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

// replaceOptions are the flags of `corral replace`.
type replaceOptions struct {
	g         *globals
	files     []string
	recursive bool
	force     bool
	timeout   time.Duration
	out       outputFlags
}

// newReplaceCommand returns `corral replace`.
func newReplaceCommand(g *globals) *cobra.Command {
	o := &replaceOptions{g: g}
	cmd := &cobra.Command{
		Use:   "replace -f FILENAME",
		Short: "Replace a resource by file name or stdin",
		Long: `Replace a resource by file name or stdin.

The object must exist, and is replaced whole by the file's: labels, annotations and spec (its
status is the server's). If the file gives a resourceVersion, the replace succeeds only if it is
still current. With --force the object is deleted, and created again once it is gone.`,
		Example: `  # Replace a DaemonSet with the edited manifest
  corral replace -f daemonset-basic.yml

  # Replace the DaemonSet saved with get -o yaml, only if nobody changed it since
  corral get ds nginx-daemonset -o yaml > ds.yaml && vi ds.yaml && corral replace -f ds.yaml

  # Delete and create again (its pods are replaced too)
  corral replace --force -f daemonset-basic.yml`,
	}
	cmd.RunE = g.dryRunE(cmd, func(ctx context.Context, args []string, mode string) error {
		if len(args) > 0 {
			return fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath())
		}
		return o.run(ctx, mode)
	})
	fs := cmd.Flags()
	fs.StringSliceVarP(&o.files, "filename", "f", nil, "The files that contain the configurations to replace (files, directories, or - for stdin)")
	fs.BoolVarP(&o.recursive, "recursive", "R", false, "Process the directory used in -f, --filename recursively")
	fs.BoolVar(&o.force, "force", false, "If true, immediately remove resources from API and bypass graceful deletion. Note that immediate deletion of some resources may result in inconsistency or data loss and requires confirmation.")
	fs.DurationVar(&o.timeout, "timeout", 0, "The length of time to wait before giving up on a delete (with --force), zero means wait a week")
	addDryRunFlag(cmd)
	o.out.addFlags(fs, false)
	return cmd
}

// run replaces every object of the files, one after the other, going on
// past one that fails, as kubectl does.
func (o *replaceOptions) run(ctx context.Context, mode string) error {
	if len(o.files) == 0 {
		return errors.New("must specify --filename to replace")
	}
	if o.force && mode != dryRunNone {
		return errors.New("--dry-run can not be used with --force")
	}
	p, err := o.out.newPrinter()
	if err != nil {
		return err
	}
	objs, err := o.g.readManifests(o.files, o.recursive, "replace")
	if err != nil {
		return err
	}
	failed := false
	for _, obj := range objs {
		stored, err := o.replaceOne(ctx, obj, mode)
		if err != nil {
			o.g.printErr(err)
			failed = true
			continue
		}
		if p.format != formatTable {
			if err := p.printObjects(o.g.out, []*corralpb.Object{stored}, true); err != nil {
				return err
			}
			continue
		}
		o.g.printf("%s replaced%s\n", api.Ref(stored), dryRunSuffix(mode))
	}
	if failed {
		return errReported
	}
	return nil
}

// replaceOne replaces one object and returns it as stored.
func (o *replaceOptions) replaceOne(ctx context.Context, obj *corralpb.Object, mode string) (*corralpb.Object, error) {
	md := api.Meta(obj)
	k, _ := api.KindByName(api.KindOf(obj))
	if o.force {
		return o.forceReplace(ctx, k, obj)
	}
	cur, err := o.g.getObject(ctx, k.Kind, md.GetNamespace(), md.GetName())
	if err != nil {
		return nil, err
	}
	if err := api.ValidateUpdate(obj, cur); err != nil {
		return nil, err
	}
	if mode == dryRunClient {
		return obj, nil
	}
	stored, err := o.g.updateObject(ctx, obj, mode == dryRunServer)
	if err != nil {
		return nil, err
	}
	if stored == nil {
		stored = obj
	}
	return stored, nil
}

// forceReplace deletes the object, waits until it is gone, and creates
// the file's.
func (o *replaceOptions) forceReplace(ctx context.Context, k api.Kind, obj *corralpb.Object) (*corralpb.Object, error) {
	md := api.Meta(obj)
	err := o.g.do(ctx, func(ctx context.Context, c corralpb.ClusterClient) error {
		_, err := c.Delete(ctx, &corralpb.DeleteRequest{Kind: k.Kind, Namespace: md.GetNamespace(), Name: md.GetName()})
		return err
	})
	if err != nil {
		return nil, err
	}
	o.g.printf("%s %q deleted\n", kindString(k), md.GetName())
	timeout := o.timeout
	if timeout <= 0 {
		timeout = 7 * 24 * time.Hour
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	w := &waitOptions{g: o.g}
	switch outcome, err := w.waitOne(wctx, target{kind: k, namespace: md.GetNamespace(), name: md.GetName()}, waitCondition{kind: "delete"}, true); {
	case err != nil:
		return nil, err
	case outcome == waitTimedOut:
		return nil, fmt.Errorf("timed out waiting for %s %q to be deleted", k.GroupResource(), md.GetName())
	}
	md.ResourceVersion, md.Uid = "", ""
	stored, err := o.g.createObject(ctx, obj, false)
	if err != nil {
		return nil, err
	}
	if stored == nil {
		stored = obj
	}
	return stored, nil
}
