package cli

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

// changeCauseAnnotation records why a template changed (kubectl's).
const changeCauseAnnotation = "kubernetes.io/change-cause"

// restartedAtAnnotation is what `rollout restart` sets on the template.
const restartedAtAnnotation = "kubectl.kubernetes.io/restartedAt"

// revisionsOf returns the DaemonSet's ControllerRevisions, oldest first.
func (g *globals) revisionsOf(ctx context.Context, ds *corralpb.DaemonSet) ([]*corralpb.ControllerRevision, error) {
	resp, err := g.listObjects(ctx, &corralpb.ListRequest{Kind: "ControllerRevision", Namespace: ds.GetMetadata().GetNamespace()})
	if err != nil {
		return nil, err
	}
	var out []*corralpb.ControllerRevision
	for _, o := range resp.GetItems() {
		r := o.GetControllerRevision()
		for _, ref := range r.GetMetadata().GetOwnerReferences() {
			if ref.GetController() && ref.GetUid() == ds.GetMetadata().GetUid() {
				out = append(out, r)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetRevision() < out[j].GetRevision() })
	return out, nil
}

func newRolloutHistoryCommand(g *globals) *cobra.Command {
	var revision int64
	cmd := &cobra.Command{
		Use:     "history (TYPE NAME | TYPE/NAME) [flags]",
		Short:   "View rollout history",
		Example: "  # View the rollout history of a daemon set\n  corral rollout history ds/nginx-daemonset\n\n  # View the details of revision 3\n  corral rollout history ds/nginx-daemonset --revision=3",
		RunE: g.runE(func(ctx context.Context, args []string) error {
			name, err := daemonSetArg(args)
			if err != nil {
				return err
			}
			obj, err := g.getObject(ctx, "DaemonSet", g.ns(), name)
			if err != nil {
				return err
			}
			revs, err := g.revisionsOf(ctx, obj.GetDaemonSet())
			if err != nil {
				return err
			}
			if revision > 0 {
				return g.printRevision(name, revs, revision)
			}
			g.printf("daemonset.apps/%s \n", name)
			tw := tabwriter.NewWriter(g.out, 0, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "REVISION\tCHANGE-CAUSE")
			for _, r := range revs {
				cause := r.GetMetadata().GetAnnotations()[changeCauseAnnotation]
				if cause == "" {
					cause = "<none>"
				}
				fmt.Fprintf(tw, "%d\t%s\n", r.GetRevision(), cause)
			}
			tw.Flush()
			g.printf("\n")
			return nil
		}),
	}
	cmd.Flags().Int64Var(&revision, "revision", 0, "See the details, including podTemplate of the revision specified")
	return cmd
}

func (g *globals) printRevision(name string, revs []*corralpb.ControllerRevision, revision int64) error {
	for _, r := range revs {
		if r.GetRevision() != revision {
			continue
		}
		tpl, err := api.TemplateFromRevision(r)
		if err != nil {
			return err
		}
		w := newDescribeWriter()
		describePodTemplate(w, tpl)
		g.printf("daemonset.apps/%s with revision #%d\n%s", name, revision, w.String())
		return nil
	}
	return fmt.Errorf("unable to find the specified revision")
}

func newRolloutUndoCommand(g *globals) *cobra.Command {
	var to int64
	cmd := &cobra.Command{
		Use:     "undo (TYPE NAME | TYPE/NAME) [flags]",
		Short:   "Undo a previous rollout",
		Example: "  # Roll back to the previous daemon set template\n  corral rollout undo ds/nginx-daemonset\n\n  # Roll back to revision 3\n  corral rollout undo ds/nginx-daemonset --to-revision=3",
		RunE: g.runE(func(ctx context.Context, args []string) error {
			name, err := daemonSetArg(args)
			if err != nil {
				return err
			}
			return g.undo(ctx, name, to)
		}),
	}
	cmd.Flags().Int64Var(&to, "to-revision", 0, "The revision to rollback to. Default to 0 (last revision).")
	return cmd
}

func (g *globals) undo(ctx context.Context, name string, to int64) error {
	obj, err := g.getObject(ctx, "DaemonSet", g.ns(), name)
	if err != nil {
		return err
	}
	ds := obj.GetDaemonSet()
	revs, err := g.revisionsOf(ctx, ds)
	if err != nil {
		return err
	}
	var target *corralpb.ControllerRevision
	switch {
	case to > 0:
		for _, r := range revs {
			if r.GetRevision() == to {
				target = r
			}
		}
		if target == nil {
			return fmt.Errorf("unable to find specified revision %d in history", to)
		}
	case len(revs) < 2:
		return fmt.Errorf("no rollout history found for daemonset %q", name)
	default:
		target = revs[len(revs)-2]
	}
	tpl, err := api.TemplateFromRevision(target)
	if err != nil {
		return err
	}
	if proto.Equal(tpl, ds.GetSpec().GetTemplate()) {
		g.printf("daemonset.apps/%s skipped rollback (current template already matches revision %d)\n", name, target.GetRevision())
		return nil
	}
	upd := proto.Clone(ds).(*corralpb.DaemonSet)
	upd.Spec.Template = tpl
	if _, err := g.updateObject(ctx, api.Wrap(upd), false); err != nil {
		return err
	}
	g.printf("daemonset.apps/%s rolled back\n", name)
	return nil
}

func newRolloutRestartCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "restart (TYPE NAME | TYPE/NAME)",
		Short:   "Restart a resource",
		Long:    "Restart a resource.\n\nThe pods of the daemon set are replaced by a rolling update.",
		Example: "  # Restart a daemon set\n  corral rollout restart ds/nginx-daemonset",
		RunE: g.runE(func(ctx context.Context, args []string) error {
			name, err := daemonSetArg(args)
			if err != nil {
				return err
			}
			obj, err := g.getObject(ctx, "DaemonSet", g.ns(), name)
			if err != nil {
				return err
			}
			upd := proto.Clone(obj.GetDaemonSet()).(*corralpb.DaemonSet)
			tm := upd.GetSpec().GetTemplate().GetMetadata()
			if tm == nil {
				tm = &corralpb.ObjectMeta{}
				upd.Spec.Template.Metadata = tm
			}
			if tm.Annotations == nil {
				tm.Annotations = map[string]string{}
			}
			tm.Annotations[restartedAtAnnotation] = time.Now().Format(time.RFC3339)
			if _, err := g.updateObject(ctx, api.Wrap(upd), false); err != nil {
				return err
			}
			g.printf("daemonset.apps/%s restarted\n", strings.TrimSpace(name))
			return nil
		}),
	}
}
