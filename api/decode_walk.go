package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Full names of the messages with a JSON form of their own.
const (
	intOrStringName  protoreflect.FullName = "corral.v1.IntOrString"
	rawExtensionName protoreflect.FullName = "corral.v1.RawExtension"
	timestampName    protoreflect.FullName = "google.protobuf.Timestamp"
)

// maxFieldErrors bounds how many field errors one document reports.
const maxFieldErrors = 20

// walker fills proto messages from a JSON tree, strictly: every key must be a
// field's json_name and every value must have the field's type. It collects
// errors (with their paths) instead of stopping at the first.
type walker struct {
	errs []error
}

func (w *walker) fail(path *field.Path, format string, args ...any) {
	if len(w.errs) < maxFieldErrors {
		w.errs = append(w.errs, fmt.Errorf("%s: %s", pathString(path), fmt.Sprintf(format, args...)))
	}
}

func (w *walker) wrongType(path *field.Path, want string, v any) {
	w.fail(path, "expected %s, got %s", want, describeJSON(v))
}

// describeJSON names a value for a type error: `string "abc"`, `number 3.5`.
func describeJSON(v any) string {
	switch t := v.(type) {
	case string:
		if len(t) > 40 {
			t = t[:40] + "..."
		}
		return fmt.Sprintf("string %q", t)
	case json.Number:
		return "number " + t.String()
	case bool:
		return fmt.Sprintf("boolean %v", t)
	default:
		return jsonTypeName(v)
	}
}

// object fills m from a JSON object. skip names top-level keys that the
// caller has consumed already (apiVersion and kind).
func (w *walker) object(m protoreflect.Message, v any, path *field.Path, skip map[string]bool) {
	switch m.Descriptor().FullName() {
	case intOrStringName, rawExtensionName, timestampName:
		w.special(m, v, path)
		return
	}
	obj, ok := v.(*jsonObject)
	if !ok {
		w.wrongType(path, "object", v)
		return
	}
	fields := m.Descriptor().Fields()
	for _, mem := range obj.members {
		if skip[mem.key] {
			continue
		}
		fpath := childPath(path, mem.key)
		fd := fields.ByJSONName(mem.key)
		if fd == nil {
			w.fail(fpath, "unknown field %q", mem.key)
			continue
		}
		if mem.value == nil {
			continue // null leaves the field unset
		}
		switch {
		case fd.IsList():
			w.list(m.Mutable(fd).List(), fd, mem.value, fpath)
		case fd.IsMap():
			w.mapField(m.Mutable(fd).Map(), fd, mem.value, fpath)
		case fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind:
			w.object(m.Mutable(fd).Message(), mem.value, fpath, nil)
		default:
			if val, ok := w.scalar(fd, mem.value, fpath); ok {
				m.Set(fd, val)
			}
		}
	}
}

func (w *walker) list(l protoreflect.List, fd protoreflect.FieldDescriptor, v any, path *field.Path) {
	arr, ok := v.([]any)
	if !ok {
		w.wrongType(path, "array", v)
		return
	}
	for i, e := range arr {
		epath := path.Index(i)
		if fd.Kind() == protoreflect.MessageKind {
			el := l.NewElement()
			if e != nil {
				w.object(el.Message(), e, epath, nil)
			}
			l.Append(el)
			continue
		}
		if e == nil {
			// null in a list of scalars decodes as the zero value, as
			// encoding/json (and so Kubernetes) decodes it.
			l.Append(l.NewElement())
			continue
		}
		if val, ok := w.scalar(fd, e, epath); ok {
			l.Append(val)
		}
	}
}

func (w *walker) mapField(mp protoreflect.Map, fd protoreflect.FieldDescriptor, v any, path *field.Path) {
	obj, ok := v.(*jsonObject)
	if !ok {
		w.wrongType(path, "object", v)
		return
	}
	keyFd, valFd := fd.MapKey(), fd.MapValue()
	for _, mem := range obj.members {
		kpath := keyPath(path, mem.key)
		key, ok := w.scalar(keyFd, mem.key, kpath) // map keys are strings in the model
		if !ok {
			continue
		}
		mk := key.MapKey()
		switch {
		case valFd.Kind() == protoreflect.MessageKind:
			el := mp.NewValue()
			if mem.value != nil {
				w.object(el.Message(), mem.value, kpath, nil)
			}
			mp.Set(mk, el)
		case mem.value == nil:
			mp.Set(mk, valFd.Default())
		default:
			if val, ok := w.scalar(valFd, mem.value, kpath); ok {
				mp.Set(mk, val)
			}
		}
	}
}

// scalar converts a tree value to a field's scalar kind: the kinds the
// model uses (string, bool, bytes, signed integers).
func (w *walker) scalar(fd protoreflect.FieldDescriptor, v any, path *field.Path) (protoreflect.Value, bool) {
	switch fd.Kind() {
	case protoreflect.StringKind:
		if s, ok := v.(string); ok {
			return protoreflect.ValueOfString(s), true
		}
		w.wrongType(path, "string", v)
	case protoreflect.BoolKind:
		if b, ok := v.(bool); ok {
			return protoreflect.ValueOfBool(b), true
		}
		w.wrongType(path, "boolean", v)
	case protoreflect.BytesKind:
		return w.bytesValue(v, path)
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		n, ok := w.integer(v, path, math.MinInt32, math.MaxInt32, "int32")
		return protoreflect.ValueOfInt32(int32(n)), ok
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		n, ok := w.integer(v, path, math.MinInt64, math.MaxInt64, "int64")
		return protoreflect.ValueOfInt64(n), ok
	default: // the model has no unsigned, float or enum fields (see TestCodecCoversModel)
		w.fail(path, "unsupported field kind %s", fd.Kind())
	}
	return protoreflect.Value{}, false
}

func (w *walker) bytesValue(v any, path *field.Path) (protoreflect.Value, bool) {
	s, ok := v.(string)
	if !ok {
		w.wrongType(path, "base64 string", v)
		return protoreflect.Value{}, false
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		w.fail(path, "invalid base64 data: %v", err)
		return protoreflect.Value{}, false
	}
	return protoreflect.ValueOfBytes(b), true
}

// integer reads a JSON number as a signed integer in [lo, hi]. An integral
// number in exponent form (3e2) is accepted; a fraction is a type error.
func (w *walker) integer(v any, path *field.Path, lo, hi int64, typ string) (int64, bool) {
	num, ok := v.(json.Number)
	if !ok {
		w.wrongType(path, "integer", v)
		return 0, false
	}
	n, err := strconv.ParseInt(num.String(), 10, 64)
	if err == nil {
		if n < lo || n > hi {
			w.fail(path, "value %s out of range for %s", num, typ)
			return 0, false
		}
		return n, true
	}
	f, ferr := strconv.ParseFloat(num.String(), 64)
	switch {
	case isRangeError(err), isRangeError(ferr):
		w.fail(path, "value %s out of range for %s", num, typ)
	case ferr != nil:
		w.wrongType(path, "integer", v)
	case f != math.Trunc(f):
		w.fail(path, "expected integer, got number %s", num)
	case f < float64(lo) || f > float64(hi) || f >= math.Exp2(63):
		w.fail(path, "value %s out of range for %s", num, typ)
	default:
		return int64(f), true
	}
	return 0, false
}

func isRangeError(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// special fills the messages that have a JSON form of their own.
func (w *walker) special(m protoreflect.Message, v any, path *field.Path) {
	fields := m.Descriptor().Fields()
	switch m.Descriptor().FullName() {
	case intOrStringName:
		switch t := v.(type) {
		case string:
			m.Set(fields.ByName("is_string"), protoreflect.ValueOfBool(true))
			if t != "" {
				m.Set(fields.ByName("str_val"), protoreflect.ValueOfString(t))
			}
		case json.Number:
			if n, ok := w.integer(v, path, math.MinInt32, math.MaxInt32, "int32"); ok && n != 0 {
				m.Set(fields.ByName("int_val"), protoreflect.ValueOfInt32(int32(n)))
			}
		default:
			w.wrongType(path, "integer or string", v)
		}
	case rawExtensionName:
		var buf bytes.Buffer
		if err := writeJSONValue(&buf, v); err != nil {
			w.fail(path, "%v", err)
			return
		}
		m.Set(fields.ByName("raw"), protoreflect.ValueOfBytes(buf.Bytes()))
	case timestampName:
		s, ok := v.(string)
		if !ok {
			w.wrongType(path, "RFC 3339 time string", v)
			return
		}
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			w.fail(path, "invalid RFC 3339 time %q", s)
			return
		}
		if sec := t.Unix(); sec != 0 {
			m.Set(fields.ByName("seconds"), protoreflect.ValueOfInt64(sec))
		}
	}
}
