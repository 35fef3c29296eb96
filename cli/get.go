package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

// getOptions are the flags of `corral get`.
type getOptions struct {
	g              *globals
	out            outputFlags
	allNamespaces  bool
	selector       string
	fieldSelector  string
	watch          bool
	watchOnly      bool
	watchEvents    bool
	ignoreNotFound bool
}

// fetched is the objects found for one selection.
type fetched struct {
	sel  selection
	objs []*corralpb.Object
}

// newGetCommand returns `corral get`.
func newGetCommand(g *globals) *cobra.Command {
	o := &getOptions{g: g}
	cmd := &cobra.Command{
		Use:   "get TYPE[,TYPE...] [NAME...] | TYPE/NAME...",
		Short: "Display one or many resources",
		Long: `Display one or many resources as a table, or as json, yaml, names, a JSONPath template or custom columns.

Resource types are named as kubectl names them: daemonsets (ds), pods (po), nodes (no),
namespaces (ns), configmaps (cm), controllerrevisions, events (ev), priorityclasses (pc).`,
		Example: `  corral get ds
  corral get pods -o wide
  corral get pods -l app=nginx-daemon -o wide
  corral get events --sort-by=.lastTimestamp
  corral get ds/nginx-daemonset -o yaml`,
		RunE: g.runE(o.run),
	}
	fs := cmd.Flags()
	o.out.addFlags(fs, true)
	fs.BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "List the requested objects across all namespaces")
	fs.StringVarP(&o.selector, "selector", "l", "", "Selector (label query) to filter on, supports '=', '==', '!=', 'in', 'notin' and 'exists'")
	fs.StringVar(&o.fieldSelector, "field-selector", "", "Selector (field query) to filter on, e.g. --field-selector spec.nodeName=node1")
	fs.BoolVarP(&o.watch, "watch", "w", false, "After listing/getting the requested object, watch for changes")
	fs.BoolVar(&o.watchOnly, "watch-only", false, "Watch for changes to the requested object(s), without listing/getting first.")
	fs.BoolVar(&o.watchEvents, "output-watch-events", false, "Output watch event objects when --watch or --watch-only is used. Existing objects are output as initial ADDED events.")
	fs.BoolVar(&o.ignoreNotFound, "ignore-not-found", false, "If the requested object does not exist the command will return exit code 0")
	return cmd
}

// run executes `corral get`.
func (o *getOptions) run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		o.g.warnf("You must specify the type of resource to get. Use \"corral api-resources\" for a complete list of supported resources.\n\n")
		return kubectlError("Required resource not specified.")
	}
	sels, err := parseResourceArgs(args)
	if err != nil {
		return err
	}
	p, err := o.out.newPrinter()
	if err != nil {
		return err
	}
	if err := o.checkSelector(sels); err != nil {
		return err
	}
	if o.watch || o.watchOnly {
		return o.runWatch(ctx, sels, p)
	}
	results, failed := o.fetchAll(ctx, sels)
	if o.out.sortBy != "" {
		for _, r := range results {
			if err := sortObjects(r.objs, o.out.sortBy); err != nil {
				return err
			}
		}
	}
	if err := o.print(p, sels, results, failed); err != nil {
		return err
	}
	if failed {
		return errReported
	}
	return nil
}

// checkSelector validates -l locally and refuses names together with it.
func (o *getOptions) checkSelector(sels []selection) error {
	if o.selector == "" {
		return nil
	}
	if _, err := api.ParseSelector(o.selector); err != nil {
		return fmt.Errorf("invalid label selector %q: %w", o.selector, err)
	}
	for _, s := range sels {
		if len(s.names) > 0 {
			return errors.New("name cannot be provided when a selector is specified")
		}
	}
	return nil
}

// fetchAll gets named objects and lists the rest. Failures are printed as
// they happen and reported through failed.
func (o *getOptions) fetchAll(ctx context.Context, sels []selection) ([]fetched, bool) {
	failed := false
	results := make([]fetched, 0, len(sels))
	for _, s := range sels {
		r := fetched{sel: s}
		if len(s.names) == 0 {
			objs, err := o.list(ctx, s.kind)
			if err != nil {
				o.g.printErr(err)
				failed = true
			}
			r.objs = objs
			results = append(results, r)
			continue
		}
		for _, name := range s.names {
			obj, err := o.g.getObject(ctx, s.kind.Kind, namespaceFor(s.kind, o.g.ns()), name)
			switch {
			case err == nil:
				r.objs = append(r.objs, obj)
			case o.ignoreNotFound && isCode(err, codes.NotFound):
			default:
				o.g.printErr(err)
				failed = true
			}
		}
		results = append(results, r)
	}
	return results, failed
}

// list lists one kind with the command's namespace and selectors.
func (o *getOptions) list(ctx context.Context, k api.Kind) ([]*corralpb.Object, error) {
	resp, err := o.g.listObjects(ctx, o.listRequest(k))
	if err != nil {
		return nil, err
	}
	return resp.GetItems(), nil
}

// listRequest is the List (and Watch) scope of one kind.
func (o *getOptions) listRequest(k api.Kind) *corralpb.ListRequest {
	ns := o.g.ns()
	if o.allNamespaces {
		ns = ""
	}
	return &corralpb.ListRequest{
		Kind:          k.Kind,
		Namespace:     namespaceFor(k, ns),
		LabelSelector: o.selector,
		FieldSelector: o.fieldSelector,
	}
}

// print writes the results in the chosen format.
func (o *getOptions) print(p *printer, sels []selection, results []fetched, failed bool) error {
	total := 0
	for _, r := range results {
		total += len(r.objs)
	}
	if !p.isTable() && p.format != formatName {
		var all []*corralpb.Object
		for _, r := range results {
			all = append(all, r.objs...)
		}
		single := len(sels) == 1 && len(sels[0].names) == 1 && o.selector == ""
		if single && len(all) == 0 {
			return nil
		}
		return p.printObjects(o.g.out, all, single)
	}
	if total == 0 {
		if !failed && !o.ignoreNotFound {
			o.g.warnf("%s\n", o.noResourcesMessage(sels))
		}
		return nil
	}
	printed := false
	for _, r := range results {
		if len(r.objs) == 0 {
			continue
		}
		if p.format == formatName {
			if err := p.printObjects(o.g.out, r.objs, false); err != nil {
				return err
			}
			continue
		}
		if printed {
			o.g.printf("\n")
		}
		if err := printTable(o.g.out, r.sel.kind, r.objs, o.tableOptions(p, len(sels) > 1)); err != nil {
			return err
		}
		printed = true
	}
	return nil
}

// tableOptions turns the flags into table decorations.
func (o *getOptions) tableOptions(p *printer, withKind bool) tableOptions {
	return tableOptions{
		wide:          p.format == formatWide,
		noHeaders:     o.out.noHeaders,
		withNamespace: o.allNamespaces,
		withKind:      withKind,
		showLabels:    o.out.showLabels,
		labelColumns:  o.out.labelColumns,
		now:           o.g.now(),
	}
}

// noResourcesMessage is kubectl's message for an empty result.
func (o *getOptions) noResourcesMessage(sels []selection) string {
	if o.allNamespaces {
		return "No resources found"
	}
	for _, s := range sels {
		if s.kind.Namespaced {
			return fmt.Sprintf("No resources found in %s namespace.", o.g.ns())
		}
	}
	return "No resources found"
}

// isCode reports whether err carries a gRPC status with code c.
func isCode(err error, c codes.Code) bool {
	s, ok := grpcStatus(err)
	return ok && s.Code() == c
}
