package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

// labelOptions are the flags of `corral label`.
type labelOptions struct {
	g             *globals
	overwrite     bool
	selector      string
	all           bool
	allNamespaces bool
}

// labelChange is a parsed set of label edits: key=value adds, key- removes.
type labelChange struct {
	set    map[string]string
	remove []string
}

// newLabelCommand returns `corral label`.
func newLabelCommand(g *globals) *cobra.Command {
	o := &labelOptions{g: g}
	cmd := &cobra.Command{
		Use:   "label [--overwrite] (TYPE NAME | TYPE/NAME | TYPE -l SELECTOR) KEY_1=VAL_1 ... KEY_N=VAL_N [KEY-]",
		Short: "Update the labels on a resource",
		Long: `Update the labels on a resource. A label key and value must begin with a letter or number,
and may contain letters, numbers, hyphens, dots, and underscores, up to 63 characters each.
If --overwrite is true, then existing labels can be overwritten, otherwise attempting to
overwrite a label will result in an error. KEY- removes the label KEY.`,
		Example: `  corral label nodes node1 disktype=ssd
  corral label nodes node1 disktype=hdd --overwrite
  corral label nodes node1 disktype-`,
	}
	cmd.RunE = g.dryRunE(cmd, func(ctx context.Context, args []string, mode string) error {
		return o.run(ctx, args, mode)
	})
	fs := cmd.Flags()
	fs.BoolVar(&o.overwrite, "overwrite", false, "If true, allow labels to be overwritten, otherwise reject label updates that overwrite existing labels")
	fs.StringVarP(&o.selector, "selector", "l", "", "Selector (label query) to filter on")
	fs.BoolVar(&o.all, "all", false, "Select all resources, in the namespace of the specified resource types")
	fs.BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "If true, check the specified action in all namespaces")
	addDryRunFlag(cmd)
	return cmd
}

// run executes `corral label`.
func (o *labelOptions) run(ctx context.Context, args []string, mode string) error {
	resArgs, pairs, err := splitResourcesAndPairs(args, "label")
	if err != nil {
		return err
	}
	change, err := parseLabelChanges(pairs)
	if err != nil {
		return err
	}
	targets, err := o.g.selectTargets(ctx, resArgs, o.selector, o.all, o.allNamespaces)
	if err != nil {
		return err
	}
	return o.g.eachTarget(targets, func(t target) error { return o.labelOne(ctx, t, change, mode) })
}

// labelOne applies the change to one object and prints the outcome.
func (o *labelOptions) labelOne(ctx context.Context, t target, change labelChange, mode string) error {
	var msg string
	var missing []string
	_, _, err := o.g.mutate(ctx, t.kind, t.namespace, t.name, mode == dryRunServer, func(obj *corralpb.Object) (bool, error) {
		md := api.Meta(obj)
		next, m, miss, err := applyLabelChange(md.GetLabels(), change, o.overwrite)
		if err != nil {
			return false, err
		}
		msg, missing = m, miss
		if mode == dryRunClient {
			return false, nil
		}
		md.Labels = next
		return m != "not labeled", nil
	})
	if err != nil {
		return err
	}
	for _, k := range missing {
		o.g.warnf("label %q not found.\n", k)
	}
	o.g.printf("%s %s%s\n", objectRef(t.kind, t.name), msg, dryRunSuffix(mode))
	return nil
}

// splitResourcesAndPairs splits arguments into resource arguments and
// KEY=VALUE / KEY- pairs, which must come last (kubectl's rule).
func splitResourcesAndPairs(args []string, what string) (resources, pairs []string, err error) {
	inPairs := false
	for i, a := range args {
		switch {
		case isPairArg(i, a):
			inPairs = true
			pairs = append(pairs, a)
		case inPairs:
			return nil, nil, fmt.Errorf("all resources must be specified before %s changes: %s", what, a)
		default:
			resources = append(resources, a)
		}
	}
	if len(pairs) == 0 {
		return nil, nil, fmt.Errorf("at least one %s update is required", what)
	}
	return resources, pairs, nil
}

// isPairArg reports whether a, the i-th argument, is a KEY=VALUE or KEY-
// change rather than a resource argument. The first is always a resource.
func isPairArg(i int, a string) bool {
	return i > 0 && (strings.Contains(a, "=") || strings.HasSuffix(a, "-"))
}

// parseLabelChanges parses KEY=VALUE and KEY- arguments with kubectl's
// checks and messages.
func parseLabelChanges(specs []string) (labelChange, error) {
	c := labelChange{set: map[string]string{}}
	for _, spec := range specs {
		switch {
		case strings.Contains(spec, "="):
			parts := strings.Split(spec, "=")
			if len(parts) != 2 {
				return labelChange{}, fmt.Errorf("invalid label spec: %v", spec)
			}
			if errs := validation.IsQualifiedName(parts[0]); len(errs) != 0 {
				return labelChange{}, fmt.Errorf("invalid label spec: %v: %s", spec, strings.Join(errs, ";"))
			}
			if errs := validation.IsValidLabelValue(parts[1]); len(errs) != 0 {
				return labelChange{}, fmt.Errorf("invalid label value: %q: %s", spec, strings.Join(errs, ";"))
			}
			c.set[parts[0]] = parts[1]
		case strings.HasSuffix(spec, "-"):
			c.remove = append(c.remove, strings.TrimSuffix(spec, "-"))
		default:
			return labelChange{}, fmt.Errorf("unknown label spec: %v", spec)
		}
	}
	for _, k := range c.remove {
		if _, ok := c.set[k]; ok {
			return labelChange{}, errors.New("can not both modify and remove a label in the same command")
		}
	}
	return c, nil
}

// applyLabelChange computes the new labels, kubectl's message ("labeled",
// "unlabeled", "not labeled") and the keys asked to be removed that were not
// there. Changing an existing value needs overwrite.
func applyLabelChange(cur map[string]string, c labelChange, overwrite bool) (map[string]string, string, []string, error) {
	var conflicts []string
	for _, k := range sortedKeys(c.set) {
		if v, ok := cur[k]; ok && v != c.set[k] && !overwrite {
			conflicts = append(conflicts, fmt.Sprintf("'%s' already has a value (%s), and --overwrite is false", k, v))
		}
	}
	if len(conflicts) == 1 {
		return nil, "", nil, errors.New(conflicts[0])
	}
	if len(conflicts) > 1 {
		return nil, "", nil, fmt.Errorf("[%s]", strings.Join(conflicts, ", "))
	}
	next := make(map[string]string, len(cur)+len(c.set))
	for k, v := range cur {
		next[k] = v
	}
	added := false
	for k, v := range c.set {
		if old, ok := next[k]; !ok || old != v {
			added = true
		}
		next[k] = v
	}
	removed := false
	var missing []string
	for _, k := range c.remove {
		if _, ok := next[k]; !ok {
			missing = append(missing, k)
			continue
		}
		delete(next, k)
		removed = true
	}
	switch {
	case added:
		return next, "labeled", missing, nil
	case removed:
		return next, "unlabeled", missing, nil
	}
	return next, "not labeled", missing, nil
}
