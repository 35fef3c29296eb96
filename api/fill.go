package api

import (
	"bytes"
	"reflect"
	"sync"

	"google.golang.org/protobuf/proto"
)

// Fill completes m from base, in place: every field m leaves unset takes
// base's value, and a singular message field set in both is filled the
// same way, recursively. Lists and maps are whole values: m's, or base's
// when m has none. What m takes from base is shared, not copied: both are
// stored objects, never changed in place. A oneof m sets keeps m's member
// (filled from base's when it is the same member). m and base must be the
// same generated message type. "Unset" is protobuf's: a zero scalar without
// presence, a nil message, an empty list or map.
//
// A Raft batch creating many objects from one template (a DaemonSet's pods)
// carries the template once and, for each object, what Thin leaves of it.
func Fill(m, base proto.Message) {
	mv, bv := reflect.ValueOf(m), reflect.ValueOf(base)
	if mv.Type() != bv.Type() || mv.IsNil() || bv.IsNil() {
		return
	}
	fillStruct(mv.Elem(), bv.Elem())
}

// Thin returns what of m Fill needs to rebuild m from base: a new message
// without the fields equal to base's, singular message fields set in both
// thinned the same way, recursively; the fields it keeps are m's, shared.
// It returns false when no message would do: m leaves unset a field base
// sets (Fill would take base's), sets another member of a oneof than
// base's, or holds unknown fields where Thin looks.
func Thin(m, base proto.Message) (proto.Message, bool) {
	mv, bv := reflect.ValueOf(m), reflect.ValueOf(base)
	if mv.Type() != bv.Type() || mv.IsNil() || bv.IsNil() {
		return nil, false
	}
	out, _, ok := thinStruct(mv.Elem(), bv.Elem())
	if !ok {
		return nil, false
	}
	return out.Addr().Interface().(proto.Message), true
}

// The generated Go structs are walked with reflect, not protoreflect: the
// DaemonSet controller thins every pod it creates, and protoreflect's
// generic values cost ten times as much here.

type fieldKind int

const (
	scalarField  fieldKind = iota // string, number, bool, enum, or a pointer to one (presence)
	messageField                  // pointer to a generated message
	listField                     // slice (bytes included)
	mapField
	oneofField // interface holding a pointer to a one-field wrapper struct
)

type protoField struct {
	index int
	kind  fieldKind
}

// messagePlan is what the walks need of a generated message struct: its
// protobuf fields, and where it keeps its unknown fields (-1: nowhere).
type messagePlan struct {
	fields  []protoField
	unknown int
}

var plans sync.Map // reflect.Type (struct) → *messagePlan

// planOf returns a generated message struct's plan.
func planOf(t reflect.Type) *messagePlan {
	if p, ok := plans.Load(t); ok {
		return p.(*messagePlan)
	}
	p := &messagePlan{unknown: -1}
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if !sf.IsExported() {
			if sf.Name == "unknownFields" && sf.Type.Kind() == reflect.Slice {
				p.unknown = i
			}
			continue // state, sizeCache, unknownFields
		}
		f := protoField{index: i}
		switch {
		case sf.Tag.Get("protobuf_oneof") != "":
			f.kind = oneofField
		case sf.Tag.Get("protobuf") == "":
			continue
		case sf.Type.Kind() == reflect.Slice:
			f.kind = listField
		case sf.Type.Kind() == reflect.Map:
			f.kind = mapField
		case sf.Type.Kind() == reflect.Pointer && sf.Type.Elem().Kind() == reflect.Struct:
			f.kind = messageField
		default:
			f.kind = scalarField
		}
		p.fields = append(p.fields, f)
	}
	plans.Store(t, p)
	return p
}

// fieldsOf lists a generated message struct's protobuf fields.
func fieldsOf(t reflect.Type) []protoField { return planOf(t).fields }

// hasUnknown reports whether v, a generated message struct of plan p,
// holds unknown fields (which Fill does not take from a base, so Thin
// must not drop).
func (p *messagePlan) hasUnknown(v reflect.Value) bool {
	return p.unknown >= 0 && v.Field(p.unknown).Len() > 0
}

// has reports whether a field value is set, as protobuf sees it.
func has(k fieldKind, v reflect.Value) bool {
	switch k {
	case listField, mapField:
		return v.Len() > 0
	case messageField, oneofField:
		return !v.IsNil()
	default:
		return !v.IsZero()
	}
}

func fillStruct(m, base reflect.Value) {
	for _, f := range fieldsOf(m.Type()) {
		bf := base.Field(f.index)
		if !has(f.kind, bf) {
			continue
		}
		mf := m.Field(f.index)
		switch {
		case !has(f.kind, mf):
			mf.Set(bf)
		case f.kind == messageField:
			fillStruct(mf.Elem(), bf.Elem())
		case f.kind == oneofField:
			mw, bw := mf.Elem(), bf.Elem() // *Wrapper
			if mw.Type() == bw.Type() {
				// The member's value: a message is filled; a scalar
				// set in m stays m's.
				mm, bm := mw.Elem().Field(0), bw.Elem().Field(0)
				if mm.Kind() == reflect.Pointer && mm.Type().Elem().Kind() == reflect.Struct && !mm.IsNil() && !bm.IsNil() {
					fillStruct(mm.Elem(), bm.Elem())
				}
			}
		}
	}
}

// thinStruct returns a new struct of m's type holding what Fill needs, and
// whether it has any field set (false: m equals base as Fill sees it).
func thinStruct(m, base reflect.Value) (reflect.Value, bool, bool) {
	p := planOf(m.Type())
	if p.hasUnknown(m) {
		return reflect.Value{}, false, false
	}
	out := reflect.New(m.Type()).Elem()
	set := false
	for _, f := range p.fields {
		mf, bf := m.Field(f.index), base.Field(f.index)
		hm, hb := has(f.kind, mf), has(f.kind, bf)
		switch {
		case !hm && hb:
			return reflect.Value{}, false, false // Fill would take base's
		case !hm:
			continue
		case !hb:
			out.Field(f.index).Set(mf)
			set = true
			continue
		}
		switch f.kind {
		case messageField:
			if mf.Pointer() == bf.Pointer() {
				continue
			}
			sub, subSet, ok := thinStruct(mf.Elem(), bf.Elem())
			if !ok {
				return reflect.Value{}, false, false
			}
			if subSet {
				out.Field(f.index).Set(sub.Addr())
				set = true
			} // else equal to base's: Fill takes base's
		case oneofField:
			mw, bw := mf.Elem(), bf.Elem()
			if mw.Type() != bw.Type() {
				return reflect.Value{}, false, false // Fill keeps m's member, but base's would not be removed
			}
			mm, bm := mw.Elem().Field(0), bw.Elem().Field(0)
			if mm.Kind() == reflect.Pointer && mm.Type().Elem().Kind() == reflect.Struct {
				if mm.IsNil() || bm.IsNil() {
					out.Field(f.index).Set(mf)
					set = true
					continue
				}
				sub, _, ok := thinStruct(mm.Elem(), bm.Elem())
				if !ok {
					return reflect.Value{}, false, false
				}
				w := reflect.New(mw.Type().Elem())
				w.Elem().Field(0).Set(sub.Addr())
				out.Field(f.index).Set(w)
				set = true
				continue
			}
			if !equalValue(mm, bm) {
				out.Field(f.index).Set(mf)
				set = true
			}
		default:
			if !equalValue(mf, bf) {
				out.Field(f.index).Set(mf)
				set = true
			}
		}
	}
	return out, set, true
}

// equalValue compares two values of one field's Go type: scalars,
// pointers to scalars, messages, lists and maps of them. It may call
// equal values unequal (a NaN), never the reverse: Thin then keeps a field
// it could have left out, which Fill rebuilds all the same.
func equalValue(a, b reflect.Value) bool {
	switch a.Kind() {
	case reflect.Pointer:
		if a.Pointer() == b.Pointer() {
			return true
		}
		if a.IsNil() || b.IsNil() {
			return false
		}
		if a.Elem().Kind() == reflect.Struct {
			return equalMessage(a, b)
		}
		return equalValue(a.Elem(), b.Elem())
	case reflect.Slice:
		if a.Len() != b.Len() {
			return false
		}
		if a.Pointer() == b.Pointer() {
			return true
		}
		if a.Type().Elem().Kind() == reflect.Uint8 {
			return bytes.Equal(a.Bytes(), b.Bytes())
		}
		for i := 0; i < a.Len(); i++ {
			if !equalValue(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Map:
		if a.Len() != b.Len() {
			return false
		}
		if a.Pointer() == b.Pointer() {
			return true
		}
		it := a.MapRange()
		for it.Next() {
			bv := b.MapIndex(it.Key())
			if !bv.IsValid() || !equalValue(it.Value(), bv) {
				return false
			}
		}
		return true
	case reflect.String:
		return a.String() == b.String()
	case reflect.Bool:
		return a.Bool() == b.Bool()
	case reflect.Int32, reflect.Int64:
		return a.Int() == b.Int()
	case reflect.Uint32, reflect.Uint64:
		return a.Uint() == b.Uint()
	case reflect.Float32, reflect.Float64:
		return a.Float() == b.Float()
	default:
		return a.Interface() == b.Interface()
	}
}

// equalMessage compares two non-nil pointers to generated messages of one
// type as proto.Equal does (the same fields set to equal values, the same
// unknown fields), by walking their structs: proto.Equal's protoreflect
// costs several times as much for the DaemonSet controller's pods.
func equalMessage(a, b reflect.Value) bool {
	am, aok := a.Interface().(proto.Message)
	bm, bok := b.Interface().(proto.Message)
	if !aok || !bok {
		return false
	}
	if !bytes.Equal(am.ProtoReflect().GetUnknown(), bm.ProtoReflect().GetUnknown()) {
		return false
	}
	as, bs := a.Elem(), b.Elem()
	for _, f := range fieldsOf(as.Type()) {
		af, bf := as.Field(f.index), bs.Field(f.index)
		ha, hb := has(f.kind, af), has(f.kind, bf)
		if ha != hb {
			return false
		}
		if !ha {
			continue
		}
		if f.kind == oneofField {
			aw, bw := af.Elem(), bf.Elem() // *Wrapper
			if aw.Type() != bw.Type() || !equalValue(aw.Elem().Field(0), bw.Elem().Field(0)) {
				return false
			}
			continue
		}
		if !equalValue(af, bf) {
			return false
		}
	}
	return true
}
