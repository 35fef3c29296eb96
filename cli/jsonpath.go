package cli

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// This file holds a small JSONPath, enough for kubectl's common uses:
// --sort-by, -o custom-columns and -o jsonpath templates such as
// '{.items[*].metadata.name}' or
// '{range .items[*]}{.metadata.name}{"\t"}{.spec.nodeName}{"\n"}{end}'.
// Paths are evaluated over the generic JSON value of an object (api.ToMap).

// step is one step of a path: a field name, an index, or every element.
type step struct {
	field string
	index int
	all   bool
	isIdx bool
}

// relaxPath accepts the spellings kubectl accepts for --sort-by and
// custom columns: "{.a.b}", ".a.b", "a.b", "{a.b}"; it returns ".a.b".
func relaxPath(p string) string {
	p = strings.TrimSpace(p)
	p = strings.TrimPrefix(p, "{")
	p = strings.TrimSuffix(p, "}")
	p = strings.TrimPrefix(p, "$")
	p = strings.TrimPrefix(p, "@")
	if !strings.HasPrefix(p, ".") && !strings.HasPrefix(p, "[") {
		p = "." + p
	}
	return p
}

// parsePath parses ".a.b[0].c", ".a[*]" and ".a['x.y']" into steps.
func parsePath(p string) ([]step, error) {
	var steps []step
	for i := 0; i < len(p); {
		switch p[i] {
		case '.':
			j := i + 1
			for j < len(p) && p[j] != '.' && p[j] != '[' {
				j++
			}
			if j > i+1 {
				steps = append(steps, step{field: p[i+1 : j]})
			}
			i = j
		case '[':
			end := strings.IndexByte(p[i:], ']')
			if end < 0 {
				return nil, fmt.Errorf("unterminated [ in path %q", p)
			}
			s, err := parseBracket(p[i+1 : i+end])
			if err != nil {
				return nil, fmt.Errorf("path %q: %w", p, err)
			}
			steps = append(steps, s)
			i += end + 1
		default:
			return nil, fmt.Errorf("unexpected %q at offset %d in path %q", p[i], i, p)
		}
	}
	return steps, nil
}

// parseBracket parses the inside of [...]: *, an index, or a quoted name.
func parseBracket(in string) (step, error) {
	in = strings.TrimSpace(in)
	switch {
	case in == "*":
		return step{all: true}, nil
	case len(in) >= 2 && (in[0] == '\'' || in[0] == '"') && in[len(in)-1] == in[0]:
		return step{field: in[1 : len(in)-1]}, nil
	}
	n, err := strconv.Atoi(in)
	if err != nil {
		return step{}, fmt.Errorf("unsupported subscript [%s]", in)
	}
	return step{index: n, isIdx: true}, nil
}

// evalSteps applies steps to v and returns every value reached.
func evalSteps(v any, steps []step) []any {
	cur := []any{v}
	for _, s := range steps {
		var next []any
		for _, c := range cur {
			next = append(next, applyStep(c, s)...)
		}
		cur = next
	}
	return cur
}

// applyStep applies one step to one value.
func applyStep(v any, s step) []any {
	switch {
	case s.all:
		switch t := v.(type) {
		case []any:
			return t
		case map[string]any:
			out := make([]any, 0, len(t))
			for _, k := range sortedKeys(t) {
				out = append(out, t[k])
			}
			return out
		}
	case s.isIdx:
		if arr, ok := v.([]any); ok {
			i := s.index
			if i < 0 {
				i += len(arr)
			}
			if i >= 0 && i < len(arr) {
				return []any{arr[i]}
			}
		}
	default:
		if m, ok := v.(map[string]any); ok {
			if x, ok := m[s.field]; ok {
				return []any{x}
			}
		}
	}
	return nil
}

// evalPath evaluates a relaxed path over v.
func evalPath(v any, path string) ([]any, error) {
	steps, err := parsePath(relaxPath(path))
	if err != nil {
		return nil, err
	}
	return evalSteps(v, steps), nil
}

// formatValue prints a JSON value as kubectl's JSONPath does: strings bare,
// whole numbers without exponent, composites as JSON.
func formatValue(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		return t
	case float64:
		if t == math.Trunc(t) && math.Abs(t) < 1e15 {
			return strconv.FormatInt(int64(t), 10)
		}
		return strconv.FormatFloat(t, 'f', -1, 64)
	case bool, int, int32, int64, uint32, uint64, json.Number:
		return fmt.Sprint(t)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// template is a parsed -o jsonpath template.
type template struct{ nodes []tnode }

// tnode is a literal, a path, or a range over a path with a body.
type tnode struct {
	text  string
	path  []step
	isVar bool
	body  []tnode // range body
	rng   bool
}

// parseTemplate parses a jsonpath template.
func parseTemplate(src string) (*template, error) {
	nodes, rest, err := parseNodes(src, false)
	if err != nil {
		return nil, err
	}
	if rest != "" {
		return nil, fmt.Errorf("unexpected {end} in template %q", src)
	}
	return &template{nodes: nodes}, nil
}

// parseNodes parses until the end of src, or until {end} when inRange.
func parseNodes(src string, inRange bool) ([]tnode, string, error) {
	var nodes []tnode
	for len(src) > 0 {
		open := strings.IndexByte(src, '{')
		if open < 0 {
			return append(nodes, tnode{text: src}), "", nil
		}
		if open > 0 {
			nodes = append(nodes, tnode{text: src[:open]})
		}
		closeAt := strings.IndexByte(src[open:], '}')
		if closeAt < 0 {
			return nil, "", fmt.Errorf("unclosed action in template %q", src)
		}
		action := strings.TrimSpace(src[open+1 : open+closeAt])
		src = src[open+closeAt+1:]
		switch {
		case action == "end":
			if !inRange {
				return nil, "", fmt.Errorf("{end} without {range}")
			}
			return nodes, src, nil
		case strings.HasPrefix(action, "range "):
			n, rest, err := parseRange(strings.TrimPrefix(action, "range "), src)
			if err != nil {
				return nil, "", err
			}
			nodes, src = append(nodes, n), rest
		case strings.HasPrefix(action, `"`) || strings.HasPrefix(action, "'"):
			lit, err := strconv.Unquote(`"` + strings.Trim(action, `"'`) + `"`)
			if err != nil {
				return nil, "", fmt.Errorf("bad literal %s: %w", action, err)
			}
			nodes = append(nodes, tnode{text: lit})
		default:
			steps, err := parsePath(relaxPath(action))
			if err != nil {
				return nil, "", err
			}
			nodes = append(nodes, tnode{path: steps, isVar: true})
		}
	}
	if inRange {
		return nil, "", fmt.Errorf("{range} without {end}")
	}
	return nodes, "", nil
}

// parseRange parses "{range PATH}BODY{end}".
func parseRange(path, src string) (tnode, string, error) {
	steps, err := parsePath(relaxPath(path))
	if err != nil {
		return tnode{}, "", err
	}
	body, rest, err := parseNodes(src, true)
	if err != nil {
		return tnode{}, "", err
	}
	return tnode{rng: true, path: steps, body: body}, rest, nil
}

// execute renders the template over v.
func (t *template) execute(v any) string {
	var b strings.Builder
	execNodes(&b, t.nodes, v)
	return b.String()
}

// execNodes renders nodes over v into b.
func execNodes(b *strings.Builder, nodes []tnode, v any) {
	for _, n := range nodes {
		switch {
		case n.rng:
			for _, item := range evalSteps(v, n.path) {
				execNodes(b, n.body, item)
			}
		case n.isVar:
			vals := evalSteps(v, n.path)
			parts := make([]string, 0, len(vals))
			for _, x := range vals {
				parts = append(parts, formatValue(x))
			}
			b.WriteString(strings.Join(parts, " "))
		default:
			b.WriteString(n.text)
		}
	}
}
