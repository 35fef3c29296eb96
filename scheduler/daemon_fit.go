package scheduler

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

// resourceList maps resource names to amounts: cpu in millicores, every
// other resource in its own unit (bytes, a count).
type resourceList map[string]int64

// Resource names the fit check knows by name.
const (
	resourceCPU  = "cpu"
	resourcePods = "pods"
)

func (r resourceList) add(o resourceList, sign int64) {
	for k, v := range o {
		r[k] += sign * v
	}
}

// quantityValue parses a quantity of resource name: cpu in millicores, the
// rest rounded up to whole units. A quantity that does not parse (manifests
// are validated, so only a hand-made object has one) counts as nothing.
func quantityValue(name, s string) int64 {
	q, err := api.ParseQuantity(s)
	if err != nil {
		return 0
	}
	if name == resourceCPU {
		return q.MilliValue()
	}
	return q.Value()
}

// containerRequests is what one container asks for: its requests, a limit
// standing in for a request left unset (as Kubernetes' defaulting does).
func containerRequests(c *corralpb.Container) resourceList {
	out := resourceList{}
	res := c.GetResources()
	for name, q := range res.GetLimits() {
		if _, set := res.GetRequests()[name]; !set {
			out[name] = quantityValue(name, q)
		}
	}
	for name, q := range res.GetRequests() {
		out[name] = quantityValue(name, q)
	}
	return out
}

// podRequests is what a pod asks of its node, as Kubernetes' resource fit
// computes it: per resource, the sum over its containers, or the largest
// init container's request when that is more (init containers run one at a
// time, before the others); and one pod.
func podRequests(spec *corralpb.PodSpec) resourceList {
	out := resourceList{}
	for _, c := range spec.GetContainers() {
		out.add(containerRequests(c), 1)
	}
	for _, c := range spec.GetInitContainers() {
		for name, v := range containerRequests(c) {
			out[name] = max(out[name], v)
		}
	}
	out[resourcePods] = 1
	return out
}

// allocatableOf is the node's status.allocatable; nil when the node reports
// none (a node applied by hand), which fits every pod.
func allocatableOf(node *corralpb.Node) resourceList {
	alloc := node.GetStatus().GetAllocatable()
	if len(alloc) == 0 {
		return nil
	}
	out := resourceList{}
	for name, q := range alloc {
		out[name] = quantityValue(name, q)
	}
	return out
}

// insufficient lists why req does not fit a node offering alloc of which
// used is taken, in Kubernetes' words ("Too many pods", "Insufficient
// cpu"), sorted. A resource alloc does not name is not checked.
func insufficient(alloc, used, req resourceList) []string {
	if alloc == nil {
		return nil
	}
	var reasons []string
	for name, want := range req {
		have, known := alloc[name]
		if want <= 0 || !known || used[name]+want <= have {
			continue
		}
		if name == resourcePods {
			reasons = append(reasons, "Too many pods")
		} else {
			reasons = append(reasons, "Insufficient "+name)
		}
	}
	sort.Strings(reasons)
	return reasons
}

// unschedulableMessage is the scheduler's message for a pod that fits no
// node, for a DaemonSet pod whose one possible node lacks room:
// "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory."
func unschedulableMessage(reasons []string) string {
	parts := make([]string, len(reasons))
	for i, r := range reasons {
		parts[i] = "1 " + r
	}
	return fmt.Sprintf("0/1 nodes are available: %s.", strings.Join(parts, ", "))
}

// preemptedMessage is the Preempted event's message on a victim.
func preemptedMessage(preemptor *corralpb.Pod, node string) string {
	return fmt.Sprintf("Preempted by pod %s on node %s", preemptor.GetMetadata().GetUid(), node)
}

// roomPod is a pod counted against a node.
type roomPod struct {
	pod      *corralpb.Pod
	req      resourceList
	priority int32
}

// nodeRoom is one node's resources while a plan is made: what it offers
// and the pods counted against it, including those the plan binds there.
type nodeRoom struct {
	alloc resourceList // nil: unknown, everything fits
	used  resourceList
	pods  []*roomPod // pods not of the DaemonSet: preemption candidates
}

// take counts a pod the plan binds to the node.
func (r *nodeRoom) take(req resourceList) { r.used.add(req, 1) }

// evict removes a preempted pod from the node.
func (r *nodeRoom) evict(v *roomPod) {
	r.used.add(v.req, -1)
	for i, p := range r.pods {
		if p == v {
			r.pods = append(r.pods[:i], r.pods[i+1:]...)
			return
		}
	}
}

// selectVictims picks the pods to preempt so that a pod asking req with
// the given priority fits, as Kubernetes' SelectVictimsOnNode: every pod
// of lower priority is a candidate; if the pod does not fit even with all
// of them gone, there is no way (ok false). Otherwise the candidates are
// put back one by one, the most important first (higher priority, then
// the one started earlier), each staying whenever the pod still fits: the
// rest are the victims, so they are few, and the least important. Pods not
// started yet count as started now (the youngest).
func (r *nodeRoom) selectVictims(req resourceList, priority int32, now time.Time) ([]*roomPod, bool) {
	var cands []*roomPod
	used := resourceList{}
	used.add(r.used, 1)
	for _, p := range r.pods {
		if p.priority < priority {
			cands = append(cands, p)
			used.add(p.req, -1)
		}
	}
	if len(cands) == 0 || len(insufficient(r.alloc, used, req)) > 0 {
		return nil, false
	}
	sort.SliceStable(cands, func(i, j int) bool { return moreImportant(cands[i], cands[j], now) })
	var victims []*roomPod
	for _, c := range cands {
		used.add(c.req, 1)
		if len(insufficient(r.alloc, used, req)) > 0 {
			used.add(c.req, -1)
			victims = append(victims, c)
		}
	}
	// Least important first.
	for i, j := 0, len(victims)-1; i < j; i, j = i+1, j-1 {
		victims[i], victims[j] = victims[j], victims[i]
	}
	return victims, true
}

// moreImportant orders pods as Kubernetes' MoreImportantPod: higher
// priority first, then the one started earlier; creation time and name
// make the order total.
func moreImportant(a, b *roomPod, now time.Time) bool {
	if a.priority != b.priority {
		return a.priority > b.priority
	}
	sa, sb := startTime(a.pod, now), startTime(b.pod, now)
	if !sa.Equal(sb) {
		return sa.Before(sb)
	}
	ma, mb := a.pod.GetMetadata(), b.pod.GetMetadata()
	if ca, cb := ma.GetCreationTimestamp().AsTime(), mb.GetCreationTimestamp().AsTime(); !ca.Equal(cb) {
		return ca.Before(cb)
	}
	return ma.GetNamespace()+"/"+ma.GetName() < mb.GetNamespace()+"/"+mb.GetName()
}

// startTime is when a pod started (status.startTime); now for one that has
// not.
func startTime(p *corralpb.Pod, now time.Time) time.Time {
	if st := p.GetStatus().GetStartTime(); st != nil {
		return st.AsTime()
	}
	return now
}

// terminated reports a pod that no longer holds resources on its node.
func terminated(p *corralpb.Pod) bool {
	ph := p.GetStatus().GetPhase()
	return ph == "Succeeded" || ph == "Failed"
}

// targetNode is the node a DaemonSet pod belongs to: its spec.nodeName, or,
// for a pod not bound yet, the node its matchFields metadata.name affinity
// term names (Kubernetes' GetTargetNodeName).
func targetNode(p *corralpb.Pod) string {
	if n := p.GetSpec().GetNodeName(); n != "" {
		return n
	}
	req := p.GetSpec().GetAffinity().GetNodeAffinity().GetRequiredDuringSchedulingIgnoredDuringExecution()
	for _, term := range req.GetNodeSelectorTerms() {
		for _, f := range term.GetMatchFields() {
			if f.GetKey() == "metadata.name" && f.GetOperator() == "In" && len(f.GetValues()) == 1 {
				return f.GetValues()[0]
			}
		}
	}
	return ""
}
