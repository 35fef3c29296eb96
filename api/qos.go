package api

import corralpb "github.com/corral-dev/corral/proto"

// QOSClass is Kubernetes' quality-of-service class of a pod: BestEffort
// when no container sets requests or limits, Guaranteed when every
// container limits cpu and memory and requests (if set) equal the limits,
// Burstable otherwise.
func QOSClass(pod *corralpb.Pod) string {
	anySet, guaranteed := false, true
	for _, cs := range [][]*corralpb.Container{pod.GetSpec().GetInitContainers(), pod.GetSpec().GetContainers()} {
		for _, c := range cs {
			req, lim := c.GetResources().GetRequests(), c.GetResources().GetLimits()
			if len(req) > 0 || len(lim) > 0 {
				anySet = true
			}
			for _, r := range []string{"cpu", "memory"} {
				l, ok := lim[r]
				if !ok {
					guaranteed = false
					continue
				}
				if q, ok := req[r]; ok && !sameQuantity(q, l) {
					guaranteed = false
				}
			}
		}
	}
	switch {
	case !anySet:
		return "BestEffort"
	case guaranteed:
		return "Guaranteed"
	default:
		return "Burstable"
	}
}

// sameQuantity compares two quantities by value ("1" equals "1000m").
func sameQuantity(a, b string) bool {
	qa, errA := ParseQuantity(a)
	qb, errB := ParseQuantity(b)
	if errA != nil || errB != nil {
		return a == b
	}
	return qa.Cmp(qb) == 0
}
