package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

// annotateOptions are the flags of `corral annotate`.
type annotateOptions struct {
	g               *globals
	overwrite       bool
	list            bool
	resourceVersion string
	selector        string
	all             bool
	allNamespaces   bool
}

// annotationChange is a parsed set of annotation edits: KEY=VALUE sets
// (the value may hold any text, '=' included), KEY- removes.
type annotationChange struct {
	set    map[string]string
	remove []string
}

// newAnnotateCommand returns `corral annotate`.
func newAnnotateCommand(g *globals) *cobra.Command {
	o := &annotateOptions{g: g}
	cmd := &cobra.Command{
		Use:   "annotate [--overwrite] (TYPE NAME | TYPE/NAME | TYPE -l SELECTOR) KEY_1=VAL_1 ... KEY_N=VAL_N [KEY-] [--resource-version=version]",
		Short: "Update the annotations on a resource",
		Long: `Update the annotations on one or more resources.

Annotations are key/value pairs that can be larger than labels and hold any text, such as
structured JSON. Tools store their own data in them; kubernetes.io/change-cause on a
DaemonSet is what 'corral rollout history' shows for the revision its next template change
makes.

Setting an annotation that already has another value fails unless --overwrite is given
(kubernetes.io/change-cause may always be overwritten). KEY- removes the annotation KEY.
If --resource-version is given and does not match the object's current resource version,
the command fails and changes nothing.`,
		Example: `  # Record why the next template change of a DaemonSet is made
  corral annotate ds fluentd-elasticsearch kubernetes.io/change-cause="fluentd 5.0.2: new log format"

  # Overwrite an annotation, only if the DaemonSet is unchanged since resource version 7
  corral annotate --overwrite ds/fluentd-elasticsearch team=logging --resource-version=7

  # Remove an annotation from every node labelled disktype=ssd
  corral annotate nodes -l disktype=ssd description-

  # Show a DaemonSet's annotations
  corral annotate ds fluentd-elasticsearch --list`,
	}
	cmd.RunE = g.dryRunE(cmd, func(ctx context.Context, args []string, mode string) error {
		return o.run(ctx, args, mode)
	})
	fs := cmd.Flags()
	fs.BoolVar(&o.overwrite, "overwrite", false, "If true, allow annotations to be overwritten, otherwise reject annotation updates that overwrite existing annotations")
	fs.BoolVar(&o.list, "list", false, "If true, display the annotations for a given resource")
	fs.StringVar(&o.resourceVersion, "resource-version", "", "If non-empty, the annotation update will only succeed if this is the current resource-version for the object. Only valid when specifying a single resource")
	fs.StringVarP(&o.selector, "selector", "l", "", "Selector (label query) to filter on")
	fs.BoolVar(&o.all, "all", false, "Select all resources, in the namespace of the specified resource types")
	fs.BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "If true, check the specified action in all namespaces")
	addDryRunFlag(cmd)
	return cmd
}

// run executes `corral annotate`.
func (o *annotateOptions) run(ctx context.Context, args []string, mode string) error {
	if o.all && o.selector != "" {
		return errors.New("cannot set --all and --selector at the same time")
	}
	var resArgs []string
	var change annotationChange
	if o.list {
		// Listing changes nothing: KEY=VALUE arguments would be dropped
		// without a word, so they are refused.
		for i, a := range args {
			if isPairArg(i, a) {
				return fmt.Errorf("--list shows annotations and changes none: remove %q, or drop --list", a)
			}
		}
		resArgs = args
	} else {
		var pairs []string
		var err error
		if resArgs, pairs, err = splitResourcesAndPairs(args, "annotation"); err != nil {
			return err
		}
		if change, err = parseAnnotationChanges(pairs); err != nil {
			return err
		}
	}
	targets, err := o.g.selectTargets(ctx, resArgs, o.selector, o.all, o.allNamespaces)
	if err != nil {
		return err
	}
	if o.resourceVersion != "" && len(targets) != 1 {
		return errors.New("--resource-version may only be used with a single resource")
	}
	return o.g.eachTarget(targets, func(t target) error {
		if o.list {
			return o.listOne(ctx, t, len(targets) > 1)
		}
		return o.annotateOne(ctx, t, change, mode)
	})
}

// annotateOne applies the change to one object and prints kubectl's
// "TYPE/NAME annotated", which it prints whether or not a value changed.
func (o *annotateOptions) annotateOne(ctx context.Context, t target, change annotationChange, mode string) error {
	edit := func(obj *corralpb.Object) (bool, error) {
		md := api.Meta(obj)
		next, changed, err := applyAnnotationChange(md.GetAnnotations(), change, o.overwrite)
		if err != nil || mode == dryRunClient {
			return false, err
		}
		md.Annotations = next
		return changed, nil
	}
	var err error
	if o.resourceVersion == "" {
		_, _, err = o.g.mutate(ctx, t.kind, t.namespace, t.name, mode == dryRunServer, edit)
	} else {
		// The write is conditional on the version the user gave, not on
		// the one just read: the server refuses it if they differ, and
		// there is nothing to retry.
		var cur *corralpb.Object
		if cur, err = o.g.getObject(ctx, t.kind.Kind, t.namespace, t.name); err == nil {
			cur = proto.Clone(cur).(*corralpb.Object)
			api.Meta(cur).ResourceVersion = o.resourceVersion
			_, _, err = o.g.mutateOnce(ctx, cur, mode == dryRunServer, edit)
		}
	}
	if err != nil {
		return err
	}
	o.g.printf("%s annotated%s\n", objectRef(t.kind, t.name), dryRunSuffix(mode))
	return nil
}

// listOne prints an object's annotations as KEY=VALUE lines, sorted by
// key; when several objects are listed, each under a heading.
func (o *annotateOptions) listOne(ctx context.Context, t target, several bool) error {
	obj, err := o.g.getObject(ctx, t.kind.Kind, t.namespace, t.name)
	if err != nil {
		return err
	}
	indent := ""
	if several {
		indent = " "
		o.g.printf("Listing annotations for %s.%s/%s:\n", t.kind.Kind, t.kind.Group, t.name)
	}
	annotations := api.Meta(obj).GetAnnotations()
	for _, k := range sortedKeys(annotations) {
		o.g.printf("%s%s=%s\n", indent, k, annotations[k])
	}
	return nil
}

// parseAnnotationChanges parses the KEY=VALUE and KEY- arguments that
// splitResourcesAndPairs found, as kubectl does. Keys are checked by the
// server, which names the bad one.
func parseAnnotationChanges(specs []string) (annotationChange, error) {
	c := annotationChange{set: map[string]string{}}
	for _, spec := range specs {
		if k, v, ok := strings.Cut(spec, "="); ok {
			c.set[k] = v
		} else {
			c.remove = append(c.remove, strings.TrimSuffix(spec, "-"))
		}
	}
	var both []string
	for _, k := range c.remove {
		if _, ok := c.set[k]; ok {
			both = append(both, k)
		}
	}
	if len(both) > 0 {
		return annotationChange{}, fmt.Errorf("can not both modify and remove the following annotation(s) in the same command: %s", strings.Join(both, ", "))
	}
	return c, nil
}

// applyAnnotationChange computes the new annotations and whether they
// differ from cur. Without overwrite, giving an annotation another value
// than it has is refused, except for kubernetes.io/change-cause.
func applyAnnotationChange(cur map[string]string, c annotationChange, overwrite bool) (map[string]string, bool, error) {
	if !overwrite {
		var conflicts []string
		for _, k := range sortedKeys(c.set) {
			if v, ok := cur[k]; ok && v != c.set[k] && k != changeCauseAnnotation {
				conflicts = append(conflicts, fmt.Sprintf("'%s' already has a value (%s)", k, v))
			}
		}
		if len(conflicts) > 0 {
			return nil, false, fmt.Errorf("--overwrite is false but found the following declared annotation(s): %s", strings.Join(conflicts, "; "))
		}
	}
	next := make(map[string]string, len(cur)+len(c.set))
	for k, v := range cur {
		next[k] = v
	}
	changed := false
	for k, v := range c.set {
		if old, ok := next[k]; !ok || old != v {
			changed = true
		}
		next[k] = v
	}
	for _, k := range c.remove {
		if _, ok := next[k]; ok {
			delete(next, k)
			changed = true
		}
	}
	return next, changed, nil
}
