package scheduler

import (
	"sort"
	"time"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

// rolloutNode is one node's DaemonSet pods once the per-node pass is done:
// the pod of the current template and the pod of an older one, either may
// be nil.
type rolloutNode struct {
	node           string
	newPod, oldPod *corralpb.Pod
	shouldRun      bool
}

// rollingBudget is Kubernetes' updatedDesiredNodeCounts: maxSurge and
// maxUnavailable scaled against the number of nodes that should run the
// pod, rounding up; both zero means maxUnavailable 1.
func rollingBudget(ds *corralpb.DaemonSet, desired int) (maxSurge, maxUnavailable int) {
	ru := ds.GetSpec().GetUpdateStrategy().GetRollingUpdate()
	if v := ru.GetMaxSurge(); v != nil {
		maxSurge, _ = api.ScaledValue(v, desired, true)
	}
	if v := ru.GetMaxUnavailable(); v != nil {
		maxUnavailable, _ = api.ScaledValue(v, desired, true)
	}
	if maxSurge == 0 && maxUnavailable == 0 {
		maxUnavailable = 1
	}
	return maxSurge, maxUnavailable
}

// planRollingUpdate is Kubernetes' DaemonSet rollingUpdate over the pods
// the per-node pass keeps, reading pods through facts. Without surge, old
// pods are deleted (PlanDaemonSet creates their replacements in the same
// plan) while the number of nodes without an available pod stays within
// maxUnavailable; an unavailable old pod is always replaced. With surge, a
// new pod starts beside an old one on up to maxSurge nodes at a time and
// the old pod goes once the new one is available. It returns the old pods
// to delete and the nodes that get a new pod now.
func planRollingUpdate(ds *corralpb.DaemonSet, nodes []rolloutNode, now time.Time, facts func(*corralpb.Pod) *podFacts) (del []*corralpb.Pod, create []string) {
	desired := 0
	for _, n := range nodes {
		if n.shouldRun {
			desired++
		}
	}
	maxSurge, maxUnavailable := rollingBudget(ds, desired)
	minReady := time.Duration(ds.GetSpec().GetMinReadySeconds()) * time.Second
	if !sort.SliceIsSorted(nodes, func(i, j int) bool { return nodes[i].node < nodes[j].node }) {
		sort.Slice(nodes, func(i, j int) bool { return nodes[i].node < nodes[j].node })
	}
	avail := func(p *corralpb.Pod) bool { return facts(p).available(minReady, now) }
	if maxSurge == 0 {
		return updateWithoutSurge(nodes, maxUnavailable, avail), nil
	}
	return updateWithSurge(nodes, maxSurge, avail)
}

func updateWithoutSurge(nodes []rolloutNode, maxUnavailable int, available func(*corralpb.Pod) bool) []*corralpb.Pod {
	unavailable := 0
	var replace, candidates []*corralpb.Pod
	for _, n := range nodes {
		switch {
		case n.oldPod == nil && n.newPod == nil, n.oldPod != nil && n.newPod != nil:
			// The per-node pass creates or deletes here: count it out.
			unavailable++
		case n.newPod != nil:
			if !available(n.newPod) {
				unavailable++
			}
		case !available(n.oldPod):
			replace = append(replace, n.oldPod)
		case unavailable >= maxUnavailable:
		default:
			candidates = append(candidates, n.oldPod)
		}
	}
	room := max(0, maxUnavailable-unavailable)
	room = min(room, len(candidates))
	return append(replace, candidates[:room]...)
}

func updateWithSurge(nodes []rolloutNode, maxSurge int, available func(*corralpb.Pod) bool) ([]*corralpb.Pod, []string) {
	surging := 0
	var del []*corralpb.Pod
	var must, candidates []string
	for _, n := range nodes {
		switch {
		case n.newPod == nil && n.oldPod == nil:
			// The per-node pass creates the pod.
		case n.newPod == nil && !available(n.oldPod):
			must = append(must, n.node)
		case n.newPod == nil:
			if n.shouldRun && surging < maxSurge {
				candidates = append(candidates, n.node)
			}
		case !available(n.newPod):
			if n.oldPod != nil {
				surging++
			}
		case n.oldPod != nil:
			// The new pod is available: the old one can go.
			del = append(del, n.oldPod)
		}
	}
	room := min(max(0, maxSurge-surging), len(candidates))
	return del, append(must, candidates[:room]...)
}
