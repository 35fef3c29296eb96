package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

// Output formats of -o.
const (
	formatTable   = ""
	formatWide    = "wide"
	formatJSON    = "json"
	formatYAML    = "yaml"
	formatName    = "name"
	formatJSONP   = "jsonpath"
	formatColumns = "custom-columns"
)

// outputFlags are get's printing flags, shared with the commands that can
// print what they changed (apply, create, label, ...).
type outputFlags struct {
	output       string
	noHeaders    bool
	showLabels   bool
	labelColumns []string
	sortBy       string
}

// addFlags registers -o; withTable adds the table-only flags of get.
func (f *outputFlags) addFlags(fs *pflag.FlagSet, withTable bool) {
	fs.StringVarP(&f.output, "output", "o", "", "Output format: json|yaml|name|wide|jsonpath=TEMPLATE|custom-columns=SPEC")
	if !withTable {
		return
	}
	fs.BoolVar(&f.noHeaders, "no-headers", false, "When using the default or custom-column output format, don't print headers")
	fs.BoolVar(&f.showLabels, "show-labels", false, "When printing, show all labels as the last column")
	fs.StringSliceVarP(&f.labelColumns, "label-columns", "L", nil, "Accepts a comma separated list of labels that are going to be presented as columns")
	fs.StringVar(&f.sortBy, "sort-by", "", "If non-empty, sort list types using this field specification (a JSONPath expression such as '.metadata.name')")
}

// printer renders objects in one -o format.
type printer struct {
	format   string
	template *template // jsonpath
	columns  []customColumn
	flags    *outputFlags
}

// customColumn is one HEADER:PATH of -o custom-columns.
type customColumn struct {
	header string
	path   []step
}

// newPrinter validates -o and returns its printer.
func (f *outputFlags) newPrinter() (*printer, error) {
	p := &printer{flags: f}
	name, arg, _ := strings.Cut(f.output, "=")
	switch name {
	case formatTable, formatWide, formatJSON, formatYAML, formatName:
		p.format = name
		return p, nil
	case formatJSONP:
		t, err := parseTemplate(arg)
		if err != nil {
			return nil, fmt.Errorf("error parsing jsonpath %s: %w", arg, err)
		}
		p.format, p.template = name, t
		return p, nil
	case formatColumns:
		cs, err := parseCustomColumns(arg)
		if err != nil {
			return nil, err
		}
		p.format, p.columns = name, cs
		return p, nil
	}
	return nil, fmt.Errorf("unable to match a printer suitable for the output format %q, allowed formats are: custom-columns,json,jsonpath,name,wide,yaml", f.output)
}

// parseCustomColumns parses "HEADER:PATH,HEADER:PATH".
func parseCustomColumns(spec string) ([]customColumn, error) {
	if spec == "" {
		return nil, fmt.Errorf("custom-columns format specified but no custom columns given")
	}
	var out []customColumn
	for _, part := range strings.Split(spec, ",") {
		header, path, ok := strings.Cut(part, ":")
		if !ok || header == "" || path == "" {
			return nil, fmt.Errorf("unexpected custom-columns spec: %s, expected <header>:<json-path-expr>", part)
		}
		steps, err := parsePath(relaxPath(path))
		if err != nil {
			return nil, fmt.Errorf("custom-columns %s: %w", part, err)
		}
		out = append(out, customColumn{header: header, path: steps})
	}
	return out, nil
}

// isTable reports whether the printer draws kubectl tables.
func (p *printer) isTable() bool { return p.format == formatTable || p.format == formatWide }

// printObjects prints objects in a non-table format. single means one
// object was asked for by name, so json/yaml print the object itself rather
// than a List.
func (p *printer) printObjects(w io.Writer, objs []*corralpb.Object, single bool) error {
	switch p.format {
	case formatName:
		for _, o := range objs {
			fmt.Fprintln(w, api.Ref(o))
		}
		return nil
	case formatJSON, formatYAML:
		return printEncoded(w, objs, single, p.format == formatYAML)
	case formatJSONP:
		v, err := documentValue(objs, single)
		if err != nil {
			return err
		}
		_, err = io.WriteString(w, p.template.execute(v))
		return err
	case formatColumns:
		return p.printCustomColumns(w, objs)
	}
	return fmt.Errorf("output format %q does not print objects", p.format)
}

// printWatchEvent writes one watch event as kubectl's
// --output-watch-events does: {"type": ..., "object": ...} as indented JSON,
// or the same document as YAML.
func printWatchEvent(w io.Writer, typ string, obj *corralpb.Object, asYAML bool) error {
	o, err := api.MarshalJSONIndent(obj)
	if err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	t, err := json.Marshal(typ)
	if err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	data := []byte("{\n    \"type\": " + string(t) + ",\n    \"object\": " + strings.ReplaceAll(string(o), "\n", "\n    ") + "\n}\n")
	if asYAML {
		if data, err = yaml.JSONToYAML(data); err != nil {
			return fmt.Errorf("encode output: %w", err)
		}
	}
	_, err = w.Write(data)
	return err
}

// printEncoded writes one object or a List as JSON or YAML.
func printEncoded(w io.Writer, objs []*corralpb.Object, single, asYAML bool) error {
	var data []byte
	var err error
	switch {
	case single && len(objs) == 1 && asYAML:
		data, err = api.MarshalYAML(objs[0])
	case single && len(objs) == 1:
		data, err = api.MarshalJSONIndent(objs[0])
	default:
		data, err = api.MarshalList(objs, asYAML)
	}
	if err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		data = append(data, '\n')
	}
	_, err = w.Write(data)
	return err
}

// documentValue is the generic JSON value -o jsonpath runs over: the object,
// or a List of them.
func documentValue(objs []*corralpb.Object, single bool) (any, error) {
	if single && len(objs) == 1 {
		return api.ToMap(objs[0])
	}
	items := make([]any, 0, len(objs))
	for _, o := range objs {
		m, err := api.ToMap(o)
		if err != nil {
			return nil, err
		}
		items = append(items, m)
	}
	return map[string]any{
		"apiVersion": "v1",
		"kind":       "List",
		"items":      items,
		"metadata":   map[string]any{"resourceVersion": ""},
	}, nil
}

// printCustomColumns writes a table of the custom columns.
func (p *printer) printCustomColumns(w io.Writer, objs []*corralpb.Object) error {
	tw := newTabWriter(w)
	if !p.flags.noHeaders {
		hs := make([]string, 0, len(p.columns))
		for _, c := range p.columns {
			hs = append(hs, c.header)
		}
		fmt.Fprintln(tw, strings.Join(hs, "\t"))
	}
	for _, o := range objs {
		m, err := api.ToMap(o)
		if err != nil {
			return err
		}
		cells := make([]string, 0, len(p.columns))
		for _, c := range p.columns {
			vals := evalSteps(m, c.path)
			parts := make([]string, 0, len(vals))
			for _, v := range vals {
				parts = append(parts, formatValue(v))
			}
			cells = append(cells, orNone(strings.Join(parts, ",")))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}
