package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
	"sigs.k8s.io/yaml"

	corralpb "github.com/corral-dev/corral/proto"
)

// MarshalJSON writes the object as Kubernetes JSON, compact, with apiVersion
// and kind from the Kind table.
func MarshalJSON(o *corralpb.Object) ([]byte, error) {
	tree, err := objectTree(o)
	if err != nil {
		return nil, err
	}
	return writeJSON(tree, false)
}

// MarshalJSONIndent writes the object as MarshalJSON does, indented by four
// spaces like `kubectl get -o json`.
func MarshalJSONIndent(o *corralpb.Object) ([]byte, error) {
	tree, err := objectTree(o)
	if err != nil {
		return nil, err
	}
	return writeJSON(tree, true)
}

// MarshalYAML writes the object as YAML (the JSON form converted by
// sigs.k8s.io/yaml, as kubectl does).
func MarshalYAML(o *corralpb.Object) ([]byte, error) {
	j, err := MarshalJSON(o)
	if err != nil {
		return nil, err
	}
	y, err := yaml.JSONToYAML(j)
	if err != nil {
		return nil, fmt.Errorf("marshal %s as YAML: %w", Ref(o), err)
	}
	return y, nil
}

// MarshalList writes items as kubectl writes a list: a v1 List document,
// {"apiVersion":"v1","items":[...],"kind":"List","metadata":{"resourceVersion":""}},
// as JSON indented by four spaces or, when asYAML, as YAML.
func MarshalList(items []*corralpb.Object, asYAML bool) ([]byte, error) {
	trees := make([]any, 0, len(items))
	for _, o := range items {
		t, err := objectTree(o)
		if err != nil {
			return nil, err
		}
		trees = append(trees, t)
	}
	list := map[string]any{
		"apiVersion": "v1",
		"kind":       "List",
		"items":      trees,
		"metadata":   map[string]any{"resourceVersion": ""},
	}
	if !asYAML {
		return writeJSON(list, true)
	}
	j, err := writeJSON(list, false)
	if err != nil {
		return nil, err
	}
	y, err := yaml.JSONToYAML(j)
	if err != nil {
		return nil, fmt.Errorf("marshal list as YAML: %w", err)
	}
	return y, nil
}

// ToMap returns the object's Kubernetes JSON as a generic value, as
// kubectl's unstructured objects hold it: integers are int64, other numbers
// float64. JSONPath and --sort-by evaluate against it.
func ToMap(o *corralpb.Object) (map[string]any, error) {
	j, err := MarshalJSON(o)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("convert %s to a map: %w", Ref(o), err)
	}
	return normalizeNumbers(m).(map[string]any), nil
}

// normalizeNumbers replaces json.Number by int64 or float64.
func normalizeNumbers(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			t[k] = normalizeNumbers(e)
		}
	case []any:
		for i, e := range t {
			t[i] = normalizeNumbers(e)
		}
	case json.Number:
		if n, err := strconv.ParseInt(t.String(), 10, 64); err == nil {
			return n
		}
		f, _ := strconv.ParseFloat(t.String(), 64)
		return f
	}
	return v
}

// writeJSON marshals a tree built by the encoder. Map keys come out sorted;
// HTML characters are not escaped.
func writeJSON(tree any, indent bool) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if indent {
		enc.SetIndent("", "    ")
	}
	if err := enc.Encode(tree); err != nil {
		return nil, fmt.Errorf("marshal JSON: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// objectTree builds the JSON tree of an object: its message's fields, with
// apiVersion and kind taken from the Kind table.
func objectTree(o *corralpb.Object) (map[string]any, error) {
	e, m, ok := entryOf(o)
	if !ok {
		return nil, fmt.Errorf("marshal object: empty object (no kind set)")
	}
	tree, err := messageTree(m.ProtoReflect())
	if err != nil {
		return nil, fmt.Errorf("marshal %s: %w", Ref(o), err)
	}
	obj, ok := tree.(map[string]any)
	if !ok {
		obj = map[string]any{}
	}
	obj["apiVersion"] = e.kind.APIVersion()
	obj["kind"] = e.kind.Kind
	return obj, nil
}

// messageTree builds the JSON tree of a message: every populated field under
// its json_name. Fields without presence are populated when not zero;
// optional fields and message fields when set, even to zero or empty.
func messageTree(m protoreflect.Message) (any, error) {
	switch m.Descriptor().FullName() {
	case intOrStringName, rawExtensionName, timestampName:
		return specialTree(m)
	}
	out := map[string]any{}
	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		var val any
		val, err = fieldTree(fd, v)
		if err != nil {
			err = fmt.Errorf("%s: %w", fd.JSONName(), err)
			return false
		}
		out[fd.JSONName()] = val
		return true
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func fieldTree(fd protoreflect.FieldDescriptor, v protoreflect.Value) (any, error) {
	switch {
	case fd.IsList():
		l := v.List()
		arr := make([]any, l.Len())
		for i := range arr {
			e, err := valueTree(fd, l.Get(i))
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			arr[i] = e
		}
		return arr, nil
	case fd.IsMap():
		out := map[string]any{}
		var err error
		v.Map().Range(func(k protoreflect.MapKey, e protoreflect.Value) bool {
			var val any
			val, err = valueTree(fd.MapValue(), e)
			out[k.String()] = val
			return err == nil
		})
		return out, err
	default:
		return valueTree(fd, v)
	}
}

// valueTree converts one singular value of the field's kind.
func valueTree(fd protoreflect.FieldDescriptor, v protoreflect.Value) (any, error) {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return messageTree(v.Message())
	case protoreflect.StringKind:
		return v.String(), nil
	case protoreflect.BoolKind:
		return v.Bool(), nil
	case protoreflect.BytesKind:
		return base64.StdEncoding.EncodeToString(v.Bytes()), nil
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return v.Int(), nil
	default: // the model has no unsigned, float or enum fields (see TestCodecCoversModel)
		return nil, fmt.Errorf("unsupported field kind %s", fd.Kind())
	}
}

// specialTree converts IntOrString (a bare number or string), RawExtension
// (the embedded document itself) and Timestamp (RFC 3339, seconds, UTC).
func specialTree(m protoreflect.Message) (any, error) {
	fields := m.Descriptor().Fields()
	switch m.Descriptor().FullName() {
	case intOrStringName:
		if m.Get(fields.ByName("is_string")).Bool() {
			return m.Get(fields.ByName("str_val")).String(), nil
		}
		return m.Get(fields.ByName("int_val")).Int(), nil
	case rawExtensionName:
		raw := m.Get(fields.ByName("raw")).Bytes()
		if len(raw) == 0 {
			return nil, nil
		}
		if !json.Valid(raw) {
			return nil, fmt.Errorf("raw extension is not valid JSON")
		}
		return json.RawMessage(raw), nil
	default: // timestampName
		t := time.Unix(m.Get(fields.ByName("seconds")).Int(), 0).UTC()
		if t.Year() < 0 || t.Year() > 9999 {
			return nil, fmt.Errorf("timestamp %v out of RFC 3339 range", t)
		}
		return t.Format(time.RFC3339), nil
	}
}
