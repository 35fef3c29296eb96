package cli

import (
	"context"
	"fmt"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

// runWatch implements `get -w` and `get --watch-only`: print the current
// objects once (a table with its header; skipped by --watch-only), then one
// row per change, without repeating the header, until the user interrupts
// or the server ends the stream.
func (o *getOptions) runWatch(ctx context.Context, sels []selection, p *printer) error {
	if len(sels) != 1 || len(sels[0].names) > 1 {
		return fmt.Errorf("watch is only supported on individual resources and resource collections, but %d resources were found", countSelected(sels))
	}
	if o.watchEvents && !p.isTable() && p.format != formatJSON && p.format != formatYAML {
		return fmt.Errorf("--output-watch-events works with the table, wide, json and yaml output formats, not %q", p.format)
	}
	sel := sels[0]
	name := ""
	if len(sel.names) == 1 {
		name = sel.names[0]
		if _, err := o.g.getObject(ctx, sel.kind.Kind, namespaceFor(sel.kind, o.g.ns()), name); err != nil {
			return err
		}
	}
	req := o.listRequest(sel.kind)
	resp, err := o.g.listObjects(ctx, req)
	if err != nil {
		return err
	}
	w := &watchPrinter{o: o, p: p, kind: sel.kind}
	if p.isTable() {
		opts := o.tableOptions(p, false)
		opts.eventColumn = o.watchEvents
		w.table = newTable(o.g.out, sel.kind, opts)
	}
	if !o.watchOnly {
		objs := filterByName(resp.GetItems(), name)
		if o.out.sortBy != "" {
			if err := sortObjects(objs, o.out.sortBy); err != nil {
				return err
			}
		}
		if err := w.initial(objs, sels); err != nil {
			return err
		}
	}
	return o.stream(ctx, req, resp.GetResourceVersion(), name, w)
}

// stream follows the Watch RPC from resource version rv and prints
// events, resuming on another server when its server goes away
// (resumableWatch).
func (o *getOptions) stream(ctx context.Context, req *corralpb.ListRequest, rv, name string, w *watchPrinter) error {
	c, err := o.g.cluster()
	if err != nil {
		return err
	}
	err = resumableWatch(ctx, c, &corralpb.WatchRequest{
		Kind:            req.GetKind(),
		Namespace:       req.GetNamespace(),
		LabelSelector:   req.GetLabelSelector(),
		FieldSelector:   req.GetFieldSelector(),
		ResourceVersion: rv,
	}, func(ev *corralpb.WatchEvent) error {
		if name != "" && api.Meta(ev.GetObject()).GetName() != name {
			return nil
		}
		return w.event(ev.GetType(), ev.GetObject())
	})
	if err != nil {
		return fmt.Errorf("watch %s: %w", req.GetKind(), err)
	}
	return nil
}

// watchPrinter prints the initial objects and then one event at a time.
type watchPrinter struct {
	o      *getOptions
	p      *printer
	kind   api.Kind
	table  *table // table and wide output
	header bool   // the header has been written
}

// initial prints the objects found before watching, as ADDED events.
func (w *watchPrinter) initial(objs []*corralpb.Object, sels []selection) error {
	if w.table == nil {
		for _, obj := range objs {
			if err := w.event("ADDED", obj); err != nil {
				return err
			}
		}
		return nil
	}
	if len(objs) == 0 {
		w.o.g.warnf("%s\n", w.o.noResourcesMessage(sels))
		return nil
	}
	w.table.writeHeader()
	w.header = true
	for _, obj := range objs {
		w.table.writeEventRow("ADDED", obj)
	}
	return w.table.flush()
}

// event prints one changed object; with --output-watch-events, as an event
// of type typ.
func (w *watchPrinter) event(typ string, obj *corralpb.Object) error {
	if w.table != nil {
		w.table.opts.now = w.o.g.now()
		if !w.header {
			w.table.writeHeader()
			w.header = true
		}
		w.table.writeEventRow(typ, obj)
		return w.table.flush()
	}
	if w.p.format == formatYAML {
		w.o.g.printf("---\n")
	}
	if w.o.watchEvents {
		return printWatchEvent(w.o.g.out, typ, obj, w.p.format == formatYAML)
	}
	return w.p.printObjects(w.o.g.out, []*corralpb.Object{obj}, true)
}

// filterByName keeps the objects called name; "" keeps all.
func filterByName(objs []*corralpb.Object, name string) []*corralpb.Object {
	if name == "" {
		return objs
	}
	var out []*corralpb.Object
	for _, o := range objs {
		if api.Meta(o).GetName() == name {
			out = append(out, o)
		}
	}
	return out
}

// countSelected counts the objects or collections a command line names.
func countSelected(sels []selection) int {
	n := 0
	for _, s := range sels {
		if len(s.names) == 0 {
			n++
		}
		n += len(s.names)
	}
	return n
}
