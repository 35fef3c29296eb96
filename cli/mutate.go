package cli

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

// conflictRetries bounds the read-modify-write loop of label, taint and
// cordon: a conflict means someone else wrote in between, so the change is
// re-applied to a fresh copy.
const conflictRetries = 5

// changeFunc edits obj in place and reports whether anything changed.
type changeFunc func(obj *corralpb.Object) (changed bool, err error)

// mutate reads an object, applies change to a copy and writes it back
// conditional on the resourceVersion it read, retrying on conflict. It
// returns the object as stored (or as read when nothing changed) and
// whether it changed.
func (g *globals) mutate(ctx context.Context, k api.Kind, namespace, name string, dryRun bool, change changeFunc) (*corralpb.Object, bool, error) {
	var lastErr error
	for attempt := 0; attempt < conflictRetries; attempt++ {
		cur, err := g.getObject(ctx, k.Kind, namespace, name)
		if err != nil {
			return nil, false, err
		}
		obj, changed, err := g.mutateOnce(ctx, cur, dryRun, change)
		if err == nil || !isCode(err, codes.Aborted) {
			return obj, changed, err
		}
		lastErr = err
	}
	return nil, false, fmt.Errorf("%s %q kept changing under %d attempts: %w", kindString(k), name, conflictRetries, lastErr)
}

// mutateOnce applies change to a copy of cur and writes it if it changed.
func (g *globals) mutateOnce(ctx context.Context, cur *corralpb.Object, dryRun bool, change changeFunc) (*corralpb.Object, bool, error) {
	obj := proto.Clone(cur).(*corralpb.Object)
	changed, err := change(obj)
	if err != nil || !changed {
		return cur, false, err
	}
	api.Meta(obj).ResourceVersion = api.Meta(cur).GetResourceVersion()
	stored, err := g.updateObject(ctx, obj, dryRun)
	if err != nil {
		return nil, false, err
	}
	if stored == nil {
		stored = obj
	}
	return stored, true, nil
}

// selectTargets resolves resource arguments (TYPE NAME..., TYPE/NAME...,
// or TYPE with -l or --all) into the objects a label-like command changes.
func (g *globals) selectTargets(ctx context.Context, resArgs []string, selector string, all, allNamespaces bool) ([]target, error) {
	sels, err := parseResourceArgs(resArgs)
	if err != nil {
		return nil, err
	}
	if len(sels) == 0 {
		return nil, errors.New("one or more resources must be specified as <resource> <name> or <resource>/<name>")
	}
	return g.targetObjects(ctx, sels, selector, all, allNamespaces)
}

// eachTarget runs change on every target, printing each failure as it
// comes, as kubectl goes on past one object's error; it returns
// errReported when any failed.
func (g *globals) eachTarget(targets []target, change func(target) error) error {
	failed := false
	for _, t := range targets {
		if err := change(t); err != nil {
			g.printErr(err)
			failed = true
		}
	}
	if failed {
		return errReported
	}
	return nil
}

// targetObjects resolves the objects a label/taint-like command works on:
// TYPE NAME..., TYPE/NAME..., or TYPE with -l / --all.
func (g *globals) targetObjects(ctx context.Context, sels []selection, selector string, all, allNamespaces bool) ([]target, error) {
	var out []target
	for _, s := range sels {
		ns := namespaceFor(s.kind, g.ns())
		if len(s.names) > 0 {
			if selector != "" || all {
				return nil, fmt.Errorf("name cannot be provided when a selector is specified")
			}
			for _, n := range s.names {
				out = append(out, target{kind: s.kind, namespace: ns, name: n})
			}
			continue
		}
		if selector == "" && !all {
			return nil, fmt.Errorf("resource(s) were provided, but no name was specified")
		}
		if allNamespaces {
			ns = ""
		}
		resp, err := g.listObjects(ctx, &corralpb.ListRequest{Kind: s.kind.Kind, Namespace: ns, LabelSelector: selector})
		if err != nil {
			return nil, err
		}
		for _, obj := range resp.GetItems() {
			md := api.Meta(obj)
			out = append(out, target{kind: s.kind, namespace: md.GetNamespace(), name: md.GetName()})
		}
	}
	return out, nil
}
