package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// The decoder reads documents into a small JSON tree before it walks them
// against the proto descriptors. Unlike map[string]any the tree keeps the
// members' order (errors come out in document order, embedded documents keep
// their bytes' order) and it lets the parser refuse duplicate keys.
//
// Values are: *jsonObject, []any, string, json.Number, bool and nil.

// jsonObject is a JSON object with its members in document order.
type jsonObject struct {
	members []jsonMember
}

// jsonMember is one key and value of a jsonObject.
type jsonMember struct {
	key   string
	value any
}

// get returns the value of the member named key.
func (o *jsonObject) get(key string) (any, bool) {
	for _, m := range o.members {
		if m.key == key {
			return m.value, true
		}
	}
	return nil, false
}

// maxJSONDepth bounds nesting so hostile input cannot exhaust the stack.
const maxJSONDepth = 1000

// errEndOfStream marks a clean end of a JSON stream.
var errEndOfStream = errors.New("end of JSON stream")

// jsonParser builds trees from a JSON stream. A duplicate key does not stop
// it (the stream stays readable); the first one is kept in dup.
type jsonParser struct {
	dec *json.Decoder
	dup error
}

// newJSONParser reads a JSON stream, numbers as json.Number.
func newJSONParser(data []byte) *jsonParser {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return &jsonParser{dec: dec}
}

// next reads the next whole value of the stream. It returns errEndOfStream
// when the stream holds no more values, and a syntax error as err. A
// duplicate key inside the value is returned as docErr.
func (p *jsonParser) next() (v any, docErr, err error) {
	p.dup = nil
	tok, err := p.dec.Token()
	if errors.Is(err, io.EOF) {
		return nil, nil, errEndOfStream
	}
	if err != nil {
		return nil, nil, err
	}
	v, err = p.value(tok, nil, 0)
	return v, p.dup, err
}

// value builds the tree of the value that starts with tok.
func (p *jsonParser) value(tok json.Token, path *field.Path, depth int) (any, error) {
	if depth > maxJSONDepth {
		return nil, fmt.Errorf("nested more than %d levels deep", maxJSONDepth)
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			return p.object(path, depth)
		case '[':
			return p.array(path, depth)
		default:
			return nil, fmt.Errorf("unexpected %q", rune(t))
		}
	case string, json.Number, bool, nil:
		return t, nil
	default:
		return nil, fmt.Errorf("unexpected JSON token %v", tok)
	}
}

func (p *jsonParser) object(path *field.Path, depth int) (any, error) {
	obj := &jsonObject{}
	seen := map[string]bool{}
	for {
		tok, err := p.dec.Token()
		if err != nil {
			return nil, unexpectedEOF(err)
		}
		if d, ok := tok.(json.Delim); ok && d == '}' {
			return obj, nil
		}
		key, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("unexpected object key %v", tok)
		}
		if seen[key] && p.dup == nil {
			p.dup = fmt.Errorf("%s: duplicate field %q", pathString(childPath(path, key)), key)
		}
		tok, err = p.dec.Token()
		if err != nil {
			return nil, unexpectedEOF(err)
		}
		v, err := p.value(tok, childPath(path, key), depth+1)
		if err != nil {
			return nil, err
		}
		if !seen[key] {
			obj.members = append(obj.members, jsonMember{key: key, value: v})
		}
		seen[key] = true
	}
}

func (p *jsonParser) array(path *field.Path, depth int) (any, error) {
	arr := []any{}
	for i := 0; ; i++ {
		tok, err := p.dec.Token()
		if err != nil {
			return nil, unexpectedEOF(err)
		}
		if d, ok := tok.(json.Delim); ok && d == ']' {
			return arr, nil
		}
		v, err := p.value(tok, indexPath(path, i), depth+1)
		if err != nil {
			return nil, err
		}
		arr = append(arr, v)
	}
}

func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// writeJSONValue writes a tree value as compact JSON, members in order.
func writeJSONValue(buf *bytes.Buffer, v any) error {
	switch t := v.(type) {
	case nil:
		buf.WriteString("null")
	case bool:
		if t {
			buf.WriteString("true")
		} else {
			buf.WriteString("false")
		}
	case json.Number:
		buf.WriteString(t.String())
	case string:
		return writeJSONString(buf, t)
	case []any:
		buf.WriteByte('[')
		for i, e := range t {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeJSONValue(buf, e); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	case *jsonObject:
		return writeJSONObject(buf, t)
	default:
		return fmt.Errorf("unexpected JSON tree value %T", v)
	}
	return nil
}

func writeJSONObject(buf *bytes.Buffer, o *jsonObject) error {
	buf.WriteByte('{')
	for i, m := range o.members {
		if i > 0 {
			buf.WriteByte(',')
		}
		if err := writeJSONString(buf, m.key); err != nil {
			return err
		}
		buf.WriteByte(':')
		if err := writeJSONValue(buf, m.value); err != nil {
			return err
		}
	}
	buf.WriteByte('}')
	return nil
}

// writeJSONString writes a JSON string without escaping HTML characters.
func writeJSONString(buf *bytes.Buffer, s string) error {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return err
	}
	buf.Truncate(buf.Len() - 1) // the newline Encode appends
	return nil
}

// jsonTypeName names a tree value's JSON type for error messages.
func jsonTypeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case *jsonObject:
		return "object"
	default:
		return fmt.Sprintf("%T", v)
	}
}

// childPath and indexPath extend a path that may be nil (the document root).
func childPath(p *field.Path, name string) *field.Path {
	if p == nil {
		return field.NewPath(name)
	}
	return p.Child(name)
}

func indexPath(p *field.Path, i int) *field.Path {
	if p == nil {
		return field.NewPath("").Index(i)
	}
	return p.Index(i)
}

func keyPath(p *field.Path, key string) *field.Path {
	if p == nil {
		return field.NewPath("").Key(key)
	}
	return p.Key(key)
}

// pathString renders a path; the document root is "<root>".
func pathString(p *field.Path) string {
	if p == nil {
		return "<root>"
	}
	return p.String()
}
