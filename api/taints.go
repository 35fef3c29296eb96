package api

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	corralpb "github.com/corral-dev/corral/proto"
)

// ToleratesTaint reports whether the toleration tolerates the taint, as
// Kubernetes' Toleration.ToleratesTaint: an empty effect matches every
// effect, an empty key (with operator Exists) every key; operator Exists
// matches any value and Equal (or empty) the same value.
func ToleratesTaint(tol *corralpb.Toleration, taint *corralpb.Taint) bool {
	if tol == nil || taint == nil {
		return false
	}
	if tol.Effect != "" && tol.Effect != taint.Effect {
		return false
	}
	if tol.Key != "" && tol.Key != taint.Key {
		return false
	}
	switch tol.Operator {
	case "", "Equal":
		return tol.Value == taint.Value
	case "Exists":
		return true
	default:
		return false
	}
}

// tolerated reports whether any of the tolerations tolerates the taint.
func tolerated(taint *corralpb.Taint, tols []*corralpb.Toleration) bool {
	for _, t := range tols {
		if ToleratesTaint(t, taint) {
			return true
		}
	}
	return false
}

// FindUntoleratedTaint returns the first taint that no toleration
// tolerates, considering only taints with one of the given effects (every
// taint when no effect is given).
func FindUntoleratedTaint(taints []*corralpb.Taint, tols []*corralpb.Toleration, effects ...string) (*corralpb.Taint, bool) {
	for _, taint := range taints {
		if taint == nil {
			continue
		}
		if len(effects) > 0 && !containsString(effects, taint.Effect) {
			continue
		}
		if !tolerated(taint, tols) {
			return taint, true
		}
	}
	return nil, false
}

func containsString(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// ParseTaint parses a taint written as kubectl taint and the agent's
// --taints flag take it: "key=value:Effect" or "key:Effect". The key must be
// a qualified name, the value a label value, the effect NoSchedule,
// PreferNoSchedule or NoExecute.
func ParseTaint(s string) (*corralpb.Taint, error) {
	spec, effect, ok := strings.Cut(s, ":")
	if !ok || strings.Contains(effect, ":") {
		return nil, fmt.Errorf("parse taint %q: want key=value:Effect or key:Effect", s)
	}
	if !containsString(taintEffects, effect) {
		return nil, fmt.Errorf("parse taint %q: unsupported effect %q (want one of %s)", s, effect, strings.Join(taintEffects, ", "))
	}
	key, value, _ := strings.Cut(spec, "=")
	if strings.Contains(value, "=") {
		return nil, fmt.Errorf("parse taint %q: want key=value:Effect or key:Effect", s)
	}
	var msgs []string
	for _, m := range validation.IsQualifiedName(key) {
		msgs = append(msgs, "key "+m)
	}
	for _, m := range validation.IsValidLabelValue(value) {
		msgs = append(msgs, "value "+m)
	}
	if len(msgs) > 0 {
		return nil, fmt.Errorf("parse taint %q: %s", s, strings.Join(msgs, "; "))
	}
	return &corralpb.Taint{Key: key, Value: value, Effect: effect}, nil
}
