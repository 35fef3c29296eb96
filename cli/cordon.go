package cli

import (
	"context"
	"errors"

	"github.com/spf13/cobra"

	corralpb "github.com/corral-dev/corral/proto"
)

// cordonOptions are the flags of `corral cordon` and `corral uncordon`.
type cordonOptions struct {
	g        *globals
	cordon   bool // true: cordon, false: uncordon
	selector string
}

// newCordonCommand returns `corral cordon` (cordon true) or
// `corral uncordon` (cordon false).
func newCordonCommand(g *globals, cordon bool) *cobra.Command {
	o := &cordonOptions{g: g, cordon: cordon}
	cmd := &cobra.Command{
		Use:     "cordon NODE",
		Short:   "Mark node as unschedulable",
		Example: "  corral cordon node1",
	}
	if !cordon {
		cmd.Use, cmd.Short, cmd.Example = "uncordon NODE", "Mark node as schedulable", "  corral uncordon node1"
	}
	cmd.RunE = g.dryRunE(cmd, func(ctx context.Context, args []string, mode string) error {
		return o.run(ctx, args, mode)
	})
	cmd.Flags().StringVarP(&o.selector, "selector", "l", "", "Selector (label query) to filter on")
	addDryRunFlag(cmd)
	return cmd
}

// verb is kubectl's past tense for the outcome.
func (o *cordonOptions) verb() string {
	if o.cordon {
		return "cordoned"
	}
	return "uncordoned"
}

// run executes cordon or uncordon.
func (o *cordonOptions) run(ctx context.Context, args []string, mode string) error {
	if len(args) == 0 && o.selector == "" {
		return errors.New("USAGE: " + map[bool]string{true: "cordon", false: "uncordon"}[o.cordon] + " NODE [flags]")
	}
	nodeKind, err := lookupKind("Node")
	if err != nil {
		return err
	}
	sels := []selection{{kind: nodeKind, names: args}}
	targets, err := o.g.targetObjects(ctx, sels, o.selector, false, false)
	if err != nil {
		return err
	}
	return o.g.eachTarget(targets, func(t target) error { return o.one(ctx, t, mode) })
}

// one cordons or uncordons one node; a node already in the wanted state
// prints "already cordoned" and is not written.
func (o *cordonOptions) one(ctx context.Context, t target, mode string) error {
	already := false
	_, _, err := o.g.mutate(ctx, t.kind, "", t.name, mode == dryRunServer, func(obj *corralpb.Object) (bool, error) {
		node := obj.GetNode()
		already = node.GetSpec().GetUnschedulable() == o.cordon
		if already || mode == dryRunClient {
			return false, nil
		}
		if node.Spec == nil {
			node.Spec = &corralpb.NodeSpec{}
		}
		node.Spec.Unschedulable = o.cordon
		return true, nil
	})
	if err != nil {
		return err
	}
	ref := objectRef(t.kind, t.name)
	if already {
		o.g.printf("%s already %s\n", ref, o.verb())
		return nil
	}
	o.g.printf("%s %s%s\n", ref, o.verb(), dryRunSuffix(mode))
	return nil
}
