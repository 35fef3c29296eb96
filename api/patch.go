package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	corralpb "github.com/corral-dev/corral/proto"
)

// Patch types, as kubectl patch --type names them.
const (
	PatchStrategic = "strategic" // Kubernetes' strategic merge patch
	PatchMerge     = "merge"     // JSON merge patch, RFC 7386
	PatchJSON      = "json"      // JSON patch, RFC 6902
)

// Patch applies patch (JSON or YAML) of the given type to o and returns
// the patched object, decoded as strictly as a manifest: a patch that
// adds an unknown field, or a value of the wrong type, is an error naming
// the field. o is not changed. The result is not validated: the caller
// validates it as the update it is.
func Patch(o *corralpb.Object, patchType string, patch []byte) (*corralpb.Object, error) {
	orig, err := MarshalJSON(o)
	if err != nil {
		return nil, err
	}
	pj, err := yaml.YAMLToJSON(patch)
	if err != nil {
		return nil, fmt.Errorf("unable to parse %q: %w", patch, err)
	}
	var patched []byte
	switch patchType {
	case PatchMerge:
		if !isJSONObject(pj) {
			return nil, fmt.Errorf("unable to parse %q: a merge patch must be an object", patch)
		}
		patched, err = jsonpatch.MergePatch(orig, pj)
	case PatchJSON:
		var ops jsonpatch.Patch
		if ops, err = jsonpatch.DecodePatch(pj); err == nil {
			patched, err = ops.Apply(orig)
		}
	case PatchStrategic:
		var p, doc map[string]any
		if err = unmarshalNumbers(pj, &p); err != nil || p == nil {
			return nil, fmt.Errorf("unable to parse %q: a strategic merge patch must be an object", patch)
		}
		if err = unmarshalNumbers(orig, &doc); err != nil {
			return nil, err
		}
		var merged any
		if merged, err = strategicMerge(doc, p, nil); err == nil {
			patched, err = json.Marshal(merged)
		}
	default:
		return nil, fmt.Errorf("--type must be one of [json merge strategic], not %q", patchType)
	}
	if err != nil {
		return nil, fmt.Errorf("apply %s patch to %s: %w", patchType, Ref(o), err)
	}
	objs, err := Decode(patched, "the patched "+Ref(o))
	if err != nil {
		return nil, err
	}
	if len(objs) != 1 {
		return nil, fmt.Errorf("the patch made %s into %d objects", Ref(o), len(objs))
	}
	return objs[0], nil
}

// unmarshalNumbers decodes JSON keeping numbers as written (an int64 does
// not pass through a float64).
func unmarshalNumbers(j []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber()
	return dec.Decode(v)
}

func isJSONObject(j []byte) bool {
	var m map[string]any
	return json.Unmarshal(j, &m) == nil && m != nil
}

// mergeKeys are the lists a strategic merge patch merges element by
// element, by their field name, with the key that identifies an element:
// the patchMergeKey of Kubernetes' types for the fields corral has. Other
// lists (tolerations, taints, command, args, node selector terms, ...) are
// replaced whole, as in Kubernetes.
var mergeKeys = map[string]string{
	"containers":          "name",
	"initContainers":      "name",
	"ephemeralContainers": "name",
	"env":                 "name",
	"volumes":             "name",
	"imagePullSecrets":    "name",
	"ports":               "containerPort",
	"volumeMounts":        "mountPath",
	"conditions":          "type",
	"addresses":           "type",
	"ownerReferences":     "uid",
	"podIPs":              "ip",
}

// primitiveMergeLists are the lists of scalars a strategic merge patch
// merges as a set (Kubernetes' finalizers).
var primitiveMergeLists = map[string]bool{"finalizers": true}

// Strategic merge patch directives.
const (
	directivePatch        = "$patch"
	directiveRetainKeys   = "$retainKeys"
	prefixDeleteFromList  = "$deleteFromPrimitiveList/"
	prefixSetElementOrder = "$setElementOrder/"
)

// errDeleteMap is what a map patched with {"$patch": "delete"} becomes.
var errDeleteMap = errors.New("$patch: delete")

// strategicMerge merges patch into doc as Kubernetes' strategic merge
// patch does: maps merge key by key, null deletes a key, lists with a
// merge key merge element by element (an element {"$patch": "delete",
// KEY: ...} removes one), lists of finalizers merge as sets, other lists
// and scalars are replaced. The directives $patch (replace, delete,
// merge), $retainKeys, $deleteFromPrimitiveList/FIELD and
// $setElementOrder/FIELD are honoured. at is the path, for errors.
func strategicMerge(doc, patch map[string]any, at *field.Path) (map[string]any, error) {
	if doc == nil {
		doc = map[string]any{}
	}
	switch d := patch[directivePatch]; d {
	case nil, "merge":
	case "replace":
		out := map[string]any{}
		for k, v := range patch {
			if k != directivePatch {
				out[k] = v
			}
		}
		return out, nil
	case "delete":
		return nil, errDeleteMap
	default:
		return nil, fmt.Errorf("%s: unknown $patch directive %v", pathOr(at), d)
	}
	for k, pv := range patch {
		fp := at.Child(k)
		switch {
		case k == directivePatch || k == directiveRetainKeys || strings.HasPrefix(k, prefixSetElementOrder):
			continue // $setElementOrder only orders the list: the order here is the patch's
		case strings.HasPrefix(k, prefixDeleteFromList):
			name := strings.TrimPrefix(k, prefixDeleteFromList)
			drop, ok := pv.([]any)
			if !ok {
				return nil, fmt.Errorf("%s: must be a list", fp)
			}
			if cur, ok := doc[name].([]any); ok {
				doc[name] = without(cur, drop)
			}
			continue
		case pv == nil:
			delete(doc, k)
			continue
		}
		switch p := pv.(type) {
		case map[string]any:
			cur, _ := doc[k].(map[string]any)
			merged, err := strategicMerge(cur, p, fp)
			switch {
			case errors.Is(err, errDeleteMap):
				delete(doc, k)
			case err != nil:
				return nil, err
			default:
				doc[k] = merged
			}
		case []any:
			cur, _ := doc[k].([]any)
			merged, err := mergeList(k, cur, p, fp)
			if err != nil {
				return nil, err
			}
			doc[k] = merged
		default:
			doc[k] = pv
		}
	}
	if keep, ok := patch[directiveRetainKeys]; ok {
		names, ok := keep.([]any)
		if !ok {
			return nil, fmt.Errorf("%s: $retainKeys must be a list", pathOr(at))
		}
		retained := map[string]bool{}
		for _, n := range names {
			s, _ := n.(string)
			retained[s] = true
		}
		for k := range doc {
			if !retained[k] {
				delete(doc, k)
			}
		}
	}
	return doc, nil
}

// mergeList merges the patch's list for field name into cur.
func mergeList(name string, cur, patch []any, at *field.Path) ([]any, error) {
	for _, e := range patch {
		if m, ok := e.(map[string]any); ok && m[directivePatch] == "replace" {
			// {"$patch": "replace"} in a list: the rest of it replaces the list.
			var out []any
			for _, e := range patch {
				if m, ok := e.(map[string]any); !ok || m[directivePatch] != "replace" {
					out = append(out, e)
				}
			}
			return out, nil
		}
	}
	if primitiveMergeLists[name] {
		out := append([]any(nil), cur...)
		for _, e := range patch {
			if !containsValue(out, e) {
				out = append(out, e)
			}
		}
		return out, nil
	}
	key, ok := mergeKeys[name]
	if !ok {
		return stripDirectives(patch), nil // replaced whole
	}
	out := append([]any(nil), cur...)
	for i, e := range patch {
		pm, ok := e.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: must be an object", at.Index(i))
		}
		id, ok := pm[key]
		if !ok {
			return nil, fmt.Errorf("%s: %s: Required value: the key %s merges %s by", at.Index(i), key, key, name)
		}
		j := indexByKey(out, key, id)
		if pm[directivePatch] == "delete" {
			if j >= 0 {
				out = append(out[:j], out[j+1:]...)
			}
			continue
		}
		var base map[string]any
		if j >= 0 {
			base, _ = out[j].(map[string]any)
		}
		merged, err := strategicMerge(base, pm, at.Index(i))
		if err != nil && !errors.Is(err, errDeleteMap) {
			return nil, err
		}
		if j >= 0 {
			out[j] = merged
		} else {
			out = append(out, merged)
		}
	}
	return out, nil
}

// stripDirectives returns list without directive-only elements.
func stripDirectives(list []any) []any {
	out := make([]any, 0, len(list))
	for _, e := range list {
		if m, ok := e.(map[string]any); ok {
			if _, ok := m[directivePatch]; ok && len(m) == 1 {
				continue
			}
		}
		out = append(out, e)
	}
	return out
}

func indexByKey(list []any, key string, id any) int {
	for i, e := range list {
		if m, ok := e.(map[string]any); ok && reflect.DeepEqual(m[key], id) {
			return i
		}
	}
	return -1
}

func containsValue(list []any, v any) bool {
	for _, e := range list {
		if reflect.DeepEqual(e, v) {
			return true
		}
	}
	return false
}

func without(list, drop []any) []any {
	out := make([]any, 0, len(list))
	for _, e := range list {
		if !containsValue(drop, e) {
			out = append(out, e)
		}
	}
	return out
}

// pathOr names at in an error: the patch itself at its root.
func pathOr(at *field.Path) string {
	if at == nil {
		return "the patch"
	}
	return at.String()
}
