package cli

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

// sortObjects orders objs by the value at a JSONPath (--sort-by), evaluated
// over each object's Kubernetes JSON. Numbers sort numerically; strings,
// including RFC 3339 timestamps, lexically; objects lacking the field first.
// The sort is stable, so ties keep the server's order.
func sortObjects(objs []*corralpb.Object, path string) error {
	steps, err := parsePath(relaxPath(path))
	if err != nil {
		return fmt.Errorf("invalid --sort-by %q: %w", path, err)
	}
	keys := make([]any, len(objs))
	for i, o := range objs {
		m, err := api.ToMap(o)
		if err != nil {
			return fmt.Errorf("sort by %s: %w", path, err)
		}
		if vals := evalSteps(m, steps); len(vals) > 0 {
			keys[i] = vals[0]
		}
	}
	idx := make([]int, len(objs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return lessValue(keys[idx[a]], keys[idx[b]]) })
	sorted := make([]*corralpb.Object, len(objs))
	for i, j := range idx {
		sorted[i] = objs[j]
	}
	copy(objs, sorted)
	return nil
}

// lessValue orders two JSON values for --sort-by.
func lessValue(a, b any) bool {
	if a == nil || b == nil {
		return a == nil && b != nil
	}
	if x, ok := toFloat(a); ok {
		if y, ok := toFloat(b); ok {
			return x < y
		}
	}
	if x, ok := a.(bool); ok {
		if y, ok := b.(bool); ok {
			return !x && y
		}
	}
	return formatValue(a) < formatValue(b)
}

// toFloat converts a JSON number of any decoded type.
func toFloat(v any) (float64, bool) {
	switch t := v.(type) {
	case float64:
		return t, true
	case float32:
		return float64(t), true
	case int:
		return float64(t), true
	case int32:
		return float64(t), true
	case int64:
		return float64(t), true
	case uint32:
		return float64(t), true
	case uint64:
		return float64(t), true
	case json.Number:
		f, err := t.Float64()
		return f, err == nil
	}
	return 0, false
}
