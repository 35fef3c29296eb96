package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/validation"

	corralpb "github.com/corral-dev/corral/proto"
)

// Taint effects.
const (
	effectNoSchedule       = "NoSchedule"
	effectPreferNoSchedule = "PreferNoSchedule"
	effectNoExecute        = "NoExecute"
)

// kubectl's taint outcomes.
const (
	msgTainted   = "tainted"
	msgUntainted = "untainted"
	msgModified  = "modified"
)

// taintOptions are the flags of `corral taint`.
type taintOptions struct {
	g         *globals
	overwrite bool
	selector  string
	all       bool
}

// newTaintCommand returns `corral taint`.
func newTaintCommand(g *globals) *cobra.Command {
	o := &taintOptions{g: g}
	cmd := &cobra.Command{
		Use:   "taint NODE NAME KEY_1=VAL_1:TAINT_EFFECT_1 ... KEY_N=VAL_N:TAINT_EFFECT_N",
		Short: "Update the taints on one or more nodes",
		Long: `Update the taints on one or more nodes. A taint is KEY[=VALUE]:EFFECT with effect
NoSchedule, PreferNoSchedule or NoExecute. KEY:EFFECT- removes one taint, KEY- every
taint with that key.`,
		Example: `  corral taint nodes node1 dedicated=special-user:NoSchedule
  corral taint nodes node1 dedicated:NoSchedule-
  corral taint nodes node1 dedicated-`,
	}
	cmd.RunE = g.dryRunE(cmd, func(ctx context.Context, args []string, mode string) error {
		return o.run(ctx, args, mode)
	})
	fs := cmd.Flags()
	fs.BoolVar(&o.overwrite, "overwrite", false, "If true, allow taints to be overwritten, otherwise reject taint updates that overwrite existing taints")
	fs.StringVarP(&o.selector, "selector", "l", "", "Selector (label query) to filter on")
	fs.BoolVar(&o.all, "all", false, "Select all nodes in the cluster")
	addDryRunFlag(cmd)
	return cmd
}

// run executes `corral taint`.
func (o *taintOptions) run(ctx context.Context, args []string, mode string) error {
	resArgs, pairs, err := splitResourcesAndPairs(args, "taint")
	if err != nil {
		return err
	}
	add, remove, err := parseTaints(pairs)
	if err != nil {
		return err
	}
	sels, err := parseResourceArgs(resArgs)
	if err != nil {
		return err
	}
	for _, s := range sels {
		if s.kind.Kind != "Node" {
			return fmt.Errorf("invalid resource type %s, only node types are supported", s.kind.Resource)
		}
	}
	if len(sels) == 0 {
		return errors.New("at least one resource name must be specified since 'all' parameter is not set")
	}
	targets, err := o.g.targetObjects(ctx, sels, o.selector, o.all, false)
	if err != nil {
		return err
	}
	return o.g.eachTarget(targets, func(t target) error { return o.taintOne(ctx, t, add, remove, mode) })
}

// taintOne applies the taint changes to one node.
func (o *taintOptions) taintOne(ctx context.Context, t target, add, remove []*corralpb.Taint, mode string) error {
	var msg string
	_, _, err := o.g.mutate(ctx, t.kind, "", t.name, mode == dryRunServer, func(obj *corralpb.Object) (bool, error) {
		node := obj.GetNode()
		if node == nil {
			return false, fmt.Errorf("%s is not a node", t.name)
		}
		if node.Spec == nil {
			node.Spec = &corralpb.NodeSpec{}
		}
		if !o.overwrite {
			if exists := existingTaintKeys(node.Spec.GetTaints(), add); exists != "" {
				return false, fmt.Errorf("node %s already has %v taint(s) with same effect(s) and --overwrite is false", t.name, exists)
			}
		}
		m, taints, err := reorganizeTaints(node.Spec.GetTaints(), o.overwrite, add, remove)
		if err != nil {
			return false, err
		}
		msg = m
		if mode == dryRunClient {
			return false, nil
		}
		node.Spec.Taints = taints
		return true, nil
	})
	if err != nil {
		return err
	}
	o.g.printf("%s %s%s\n", objectRef(t.kind, t.name), msg, dryRunSuffix(mode))
	return nil
}

// parseTaints splits taint arguments into taints to add and to remove,
// with kubectl's checks and messages.
func parseTaints(specs []string) (add, remove []*corralpb.Taint, err error) {
	seen := map[string]bool{}
	for _, spec := range specs {
		if strings.HasSuffix(spec, "-") {
			t, err := parseTaint(strings.TrimSuffix(spec, "-"))
			if err != nil {
				return nil, nil, err
			}
			remove = append(remove, &corralpb.Taint{Key: t.Key, Effect: t.Effect})
			continue
		}
		t, err := parseTaint(spec)
		if err != nil {
			return nil, nil, err
		}
		if t.Effect == "" {
			return nil, nil, fmt.Errorf("invalid taint spec: %v", spec)
		}
		if seen[t.Effect+"\x00"+t.Key] {
			return nil, nil, fmt.Errorf("duplicated taints with the same key and effect: %v", taintString(t))
		}
		seen[t.Effect+"\x00"+t.Key] = true
		add = append(add, t)
	}
	return add, remove, nil
}

// parseTaint parses KEY=VALUE:EFFECT, KEY:EFFECT or KEY.
func parseTaint(spec string) (*corralpb.Taint, error) {
	var key, value, effect string
	parts := strings.Split(spec, ":")
	switch len(parts) {
	case 1:
		key = parts[0]
	case 2:
		effect = parts[1]
		if effect != effectNoSchedule && effect != effectPreferNoSchedule && effect != effectNoExecute {
			return nil, fmt.Errorf("invalid taint effect: %v, unsupported taint effect", effect)
		}
		kv := strings.Split(parts[0], "=")
		if len(kv) > 2 {
			return nil, fmt.Errorf("invalid taint spec: %v", spec)
		}
		key = kv[0]
		if len(kv) == 2 {
			value = kv[1]
			if errs := validation.IsValidLabelValue(value); len(errs) > 0 {
				return nil, fmt.Errorf("invalid taint spec: %v, %s", spec, strings.Join(errs, "; "))
			}
		}
	default:
		return nil, fmt.Errorf("invalid taint spec: %v", spec)
	}
	if errs := validation.IsQualifiedName(key); len(errs) > 0 {
		return nil, fmt.Errorf("invalid taint spec: %v, %s", spec, strings.Join(errs, "; "))
	}
	return &corralpb.Taint{Key: key, Value: value, Effect: effect}, nil
}

// taintString renders a taint as kubectl does: key=value:effect, key:effect,
// key=value or key.
func taintString(t *corralpb.Taint) string {
	s := t.GetKey()
	if t.GetValue() != "" {
		s += "=" + t.GetValue()
	}
	if t.GetEffect() != "" {
		s += ":" + t.GetEffect()
	}
	return s
}

// sameTaint reports whether two taints share key and effect.
func sameTaint(a, b *corralpb.Taint) bool {
	return a.GetKey() == b.GetKey() && a.GetEffect() == b.GetEffect()
}

// existingTaintKeys lists the keys of taints to add that the node already
// has with the same effect.
func existingTaintKeys(old, add []*corralpb.Taint) string {
	var keys []string
	for _, t := range add {
		for _, o := range old {
			if sameTaint(t, o) {
				keys = append(keys, t.GetKey())
				break
			}
		}
	}
	return strings.Join(keys, ",")
}

// reorganizeTaints merges the node's taints with the changes: new taints
// first, then old ones not replaced, minus the removed ones. It returns
// kubectl's message, the new list, and an error naming each taint to remove
// that was not there.
func reorganizeTaints(old []*corralpb.Taint, overwrite bool, add, remove []*corralpb.Taint) (string, []*corralpb.Taint, error) {
	next := append([]*corralpb.Taint{}, add...)
	for _, o := range old {
		replaced := false
		for _, t := range add {
			if sameTaint(t, o) {
				replaced = true
				break
			}
		}
		if !replaced {
			next = append(next, o)
		}
	}
	added := len(old) != len(next)
	var errs []string
	deleted := false
	for _, r := range remove {
		var ok bool
		next, ok = removeTaint(next, r)
		if !ok {
			errs = append(errs, fmt.Sprintf("taint %q not found", taintString(r)))
		}
		deleted = deleted || ok
	}
	var err error
	if len(errs) > 0 {
		err = errors.New(strings.Join(errs, ", "))
	}
	switch {
	case (added && deleted) || overwrite:
		return msgModified, next, err
	case added:
		return msgTainted, next, err
	}
	return msgUntainted, next, err
}

// removeTaint removes the taints matching r (by key and effect, or by key
// alone when r has no effect) and reports whether any matched.
func removeTaint(ts []*corralpb.Taint, r *corralpb.Taint) ([]*corralpb.Taint, bool) {
	out := ts[:0:0]
	found := false
	for _, t := range ts {
		if t.GetKey() == r.GetKey() && (r.GetEffect() == "" || t.GetEffect() == r.GetEffect()) {
			found = true
			continue
		}
		out = append(out, t)
	}
	return out, found
}
