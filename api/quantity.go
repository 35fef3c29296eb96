package api

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"

	corralpb "github.com/corral-dev/corral/proto"
)

// ParseQuantity parses a resource quantity as Kubernetes writes them:
// "100m", "200Mi", "1.5", "2G".
func ParseQuantity(s string) (resource.Quantity, error) {
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return q, fmt.Errorf("parse quantity %q: %w", s, err)
	}
	return q, nil
}

// ScaledValue resolves an int-or-percent value against total, as
// intstr.GetScaledValueFromIntOrPercent: an int is itself, "25%" is 25% of
// total, rounded up when roundUp (maxUnavailable, maxSurge round up in a
// DaemonSet's rolling update) and down otherwise. A string without a
// trailing "%" is an error.
func ScaledValue(v *corralpb.IntOrString, total int, roundUp bool) (int, error) {
	if v == nil {
		return 0, fmt.Errorf("scaled value: nil int-or-string")
	}
	is := intstr.FromInt32(v.IntVal)
	if v.IsString {
		is = intstr.FromString(v.StrVal)
	}
	n, err := intstr.GetScaledValueFromIntOrPercent(&is, total, roundUp)
	if err != nil {
		return 0, fmt.Errorf("scaled value: %w", err)
	}
	return n, nil
}
