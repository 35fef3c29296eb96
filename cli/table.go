package cli

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

// kubectl's tabwriter settings: minimum width 6, tab width 4, three spaces
// of padding, no flags (so the last column is never padded).
const (
	tabMinWidth = 6
	tabWidth    = 4
	tabPadding  = 3
)

// newTabWriter returns a tabwriter laid out like kubectl's tables.
func newTabWriter(out io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(out, tabMinWidth, tabWidth, tabPadding, ' ', 0)
}

// column is one column of a kind's table.
type column struct {
	header string
	wide   bool // shown only with -o wide
}

// tablePrinter describes a kind's table: its columns and how an object
// fills them (one cell per column, wide ones included).
type tablePrinter struct {
	columns []column
	cells   func(o *corralpb.Object, now time.Time) []string
}

// tableOptions are the decorations kubectl's get adds around a kind's
// columns.
type tableOptions struct {
	wide          bool
	noHeaders     bool
	withNamespace bool     // -A: a NAMESPACE column first (namespaced kinds)
	withKind      bool     // several types: names print as kind/name
	showLabels    bool     // --show-labels: a LABELS column last
	labelColumns  []string // -L: one column per label key
	eventColumn   bool     // --output-watch-events: an EVENT column first
	now           time.Time
}

// table renders objects of one kind in kubectl's layout.
type table struct {
	kind    api.Kind
	printer tablePrinter
	opts    tableOptions
	w       *tabwriter.Writer
}

// newTable starts a table of kind k writing to out.
func newTable(out io.Writer, k api.Kind, opts tableOptions) *table {
	if !k.Namespaced {
		opts.withNamespace = false
	}
	return &table{kind: k, printer: printerFor(k.Kind), opts: opts, w: newTabWriter(out)}
}

// headers returns the header cells.
func (t *table) headers() []string {
	var hs []string
	if t.opts.eventColumn {
		hs = append(hs, "EVENT")
	}
	if t.opts.withNamespace {
		hs = append(hs, "NAMESPACE")
	}
	for _, c := range t.printer.columns {
		if !c.wide || t.opts.wide {
			hs = append(hs, c.header)
		}
	}
	for _, l := range t.opts.labelColumns {
		parts := strings.Split(l, "/")
		hs = append(hs, strings.ToUpper(parts[len(parts)-1]))
	}
	if t.opts.showLabels {
		hs = append(hs, "LABELS")
	}
	return hs
}

// cells returns the row cells of one object.
func (t *table) cells(o *corralpb.Object) []string {
	md := api.Meta(o)
	var row []string
	if t.opts.withNamespace {
		row = append(row, md.GetNamespace())
	}
	all := t.printer.cells(o, t.opts.now)
	for i, c := range t.printer.columns {
		if c.wide && !t.opts.wide {
			continue
		}
		cell := ""
		if i < len(all) {
			cell = all[i]
		}
		if i == 0 && t.opts.withKind {
			cell = objectRef(t.kind, cell)
		}
		row = append(row, cell)
	}
	for _, l := range t.opts.labelColumns {
		row = append(row, md.GetLabels()[l])
	}
	if t.opts.showLabels {
		row = append(row, formatLabels(md.GetLabels()))
	}
	return row
}

// writeHeader writes the header line unless --no-headers.
func (t *table) writeHeader() {
	if !t.opts.noHeaders {
		fmt.Fprintln(t.w, strings.Join(t.headers(), "\t"))
	}
}

// writeRow writes one object's line.
func (t *table) writeRow(o *corralpb.Object) {
	fmt.Fprintln(t.w, strings.Join(t.cells(o), "\t"))
}

// writeEventRow writes one watch event's line: the object's, after the
// event type when the table has an EVENT column.
func (t *table) writeEventRow(typ string, o *corralpb.Object) {
	cells := t.cells(o)
	if t.opts.eventColumn {
		cells = append([]string{typ}, cells...)
	}
	fmt.Fprintln(t.w, strings.Join(cells, "\t"))
}

// flush aligns and writes what has been buffered.
func (t *table) flush() error {
	if err := t.w.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}

// printTable writes a whole table: header and one row per object.
func printTable(out io.Writer, k api.Kind, objs []*corralpb.Object, opts tableOptions) error {
	t := newTable(out, k, opts)
	t.writeHeader()
	for _, o := range objs {
		t.writeRow(o)
	}
	return t.flush()
}

// formatLabels renders a label map as kubectl does: "k=v,k2=v2" sorted by
// key, "<none>" when empty.
func formatLabels(m map[string]string) string {
	if len(m) == 0 {
		return "<none>"
	}
	keys := sortedKeys(m)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, ",")
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// orNone returns s, or "<none>" when s is empty.
func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}
