package scheduler

import (
	"fmt"
	"sort"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

// DaemonPlanInput is everything a DaemonSet's plan depends on: a snapshot
// of the state and the clock, nothing else.
type DaemonPlanInput struct {
	DaemonSet *corralpb.DaemonSet
	Nodes     []*corralpb.Node
	// Pods are the DaemonSet's pods: those it controls (by uid) and
	// orphans in its namespace that its selector matches.
	Pods []*corralpb.Pod
	// PodsOnNode returns the pods bound to a node (spec.nodeName), of every
	// namespace and owner, from the same snapshot; the DaemonSet's own pods
	// among them are left out of the fit. Nil means no node holds any.
	PodsOnNode func(node string) []*corralpb.Pod
	// PriorityClasses are the cluster's PriorityClass objects (the
	// built-in system- classes need not be among them).
	PriorityClasses []*corralpb.PriorityClass
	// FailedBackOff holds, per node, the back-off after a failed pod: no
	// replacement is created there before it ends.
	FailedBackOff map[string]BackOff
	Now           time.Time
	// Facts, when set, remembers what the plan reads of each pod between
	// plans (the controller keeps one per DaemonSet); with nil, the plan
	// reads each pod once for itself.
	Facts *PodFacts
}

// PlanEvent is an event the controller records once the plan committed.
type PlanEvent struct {
	Type, Reason, Message string
	// Regarding, when set, is the pod the event is about (one the plan
	// creates or binds, or one already stored); otherwise the event is
	// about the DaemonSet.
	Regarding *corralpb.Pod
	// Preemptor, set on a Preempted event, is the DaemonSet's pod that took
	// the victim's room. A pod the plan creates has no uid yet: the
	// controller writes the message again once it has named the pod.
	Preemptor *corralpb.Pod
}

// DaemonPlan is what the controller must do for one DaemonSet.
type DaemonPlan struct {
	// Create are new pods, bound to their nodes, or, when they do not fit,
	// unbound and Pending (their node affinity still names the one node);
	// the controller names them.
	Create []*corralpb.Pod
	// Bind are pending pods of the DaemonSet that now fit their node:
	// copies with spec.nodeName set, to write only if the stored pod has
	// not changed (compare-and-set on its resourceVersion).
	Bind []*corralpb.Pod
	// UpdateStatus are pending pods whose PodScheduled condition changed
	// (copies, written compare-and-set).
	UpdateStatus []*corralpb.Pod
	// Delete are pods of the DaemonSet to remove.
	Delete []*corralpb.Pod
	// Preempt are lower-priority pods of any owner removed so that a pod of
	// the DaemonSet fits their node, in the same batch as that pod's
	// binding; each has a Preempted event.
	Preempt []*corralpb.Pod
	// Adopt are orphans the DaemonSet takes (their owner reference is set).
	Adopt []*corralpb.Pod
	// Status is the DaemonSet's status after the plan.
	Status *corralpb.DaemonSetStatus
	Events []PlanEvent
	// Waiting counts the DaemonSet's pods left unbound for want of room;
	// the controller plans again when pods leave any node.
	Waiting int
	// BackOff is the failed-pod back-off per node after the plan.
	BackOff map[string]BackOff
	// Requeue, when non-zero, asks for another sync after that long (a
	// back-off ends, a pod's minReadySeconds pass).
	Requeue time.Duration
	// rollout is what the rolling update works on: each node's surviving
	// pods of the current and of an older template.
	rollout []rolloutNode
	// facts returns what the plan reads of a pod.
	facts func(*corralpb.Pod) *podFacts
	// live is planNode's scratch slice.
	live []*corralpb.Pod
}

// BackOff is one node's failed-pod back-off.
type BackOff struct {
	Until time.Time
	Delay time.Duration
}

// Failed-pod back-off per node, as Kubernetes: 1 s doubling to 15 min.
const (
	failedBackOffInitial = time.Second
	failedBackOffMax     = 15 * time.Minute
)

// PlanDaemonSet is the pure DaemonSet controller: for every node, whether
// the DaemonSet's pod belongs there, and what to create and delete so that
// exactly one runs on every eligible node, and the status Kubernetes
// reports. It also does the scheduler's part for its pods: new pods get
// their priority from their class (as Kubernetes' admission); a pod is
// bound only when its requests fit the node's allocatable minus what the
// pods there request, preempting lower-priority pods if that makes it fit,
// and otherwise waits unbound until room appears. A DaemonSet being
// deleted in the foreground plans the deletion of all its pods.
func PlanDaemonSet(in DaemonPlanInput) *DaemonPlan {
	ds := in.DaemonSet
	facts := in.Facts
	if facts == nil {
		facts = &PodFacts{} // for this plan alone
	}
	plan := &DaemonPlan{BackOff: map[string]BackOff{}, facts: facts.of}
	for n, b := range in.FailedBackOff {
		// A node quiet for twice the longest delay starts over.
		if in.Now.Before(b.Until.Add(2 * failedBackOffMax)) {
			plan.BackOff[n] = b
		}
	}
	// One entry per node name that has pods or a Node (or both), found
	// through one map: thousands of nodes make map operations a good part
	// of a plan.
	byName := make(map[string]int, len(in.Nodes))
	entries := make([]nodeEntry, 0, len(in.Nodes))
	indexOf := func(name string) int {
		i, ok := byName[name]
		if !ok {
			i = len(entries)
			entries = append(entries, nodeEntry{})
			byName[name] = i
		}
		return i
	}
	// The DaemonSet's pods by node, in in.Pods' order, all in one array:
	// most nodes have one pod, and a slice each was a third of a plan's
	// allocations.
	uid := ds.GetMetadata().GetUid()
	at := make([]int32, len(in.Pods)) // each pod's entry, -1 for none
	var counts []int32
	for i, p := range in.Pods {
		f := plan.facts(p)
		at[i] = -1
		if f.owner == "" {
			plan.Adopt = append(plan.Adopt, p)
		} else if f.owner != uid {
			continue
		}
		e := indexOf(f.node)
		at[i] = int32(e)
		if e == len(counts) {
			counts = append(counts, 0)
		}
		counts[e]++
	}
	byNodePods := make([]*corralpb.Pod, 0, len(in.Pods))
	for e, n := range counts {
		entries[e].pods = byNodePods[len(byNodePods) : len(byNodePods) : len(byNodePods)+int(n)]
		byNodePods = byNodePods[:len(byNodePods)+int(n)]
	}
	for i, p := range in.Pods {
		if e := at[i]; e >= 0 {
			entries[e].pods = append(entries[e].pods, p)
		}
	}
	if ds.GetMetadata().GetDeletionTimestamp() != nil {
		for _, p := range in.Pods {
			if plan.facts(p).owner == uid {
				plan.deletePod(p)
			}
		}
		plan.Adopt = nil
		plan.Status = currentStatus(ds)
		return plan
	}
	hash := TemplateHash(ds)
	st := &corralpb.DaemonSetStatus{ObservedGeneration: ds.GetMetadata().GetGeneration()}
	if cur := ds.GetStatus(); cur != nil {
		st.CollisionCount = cur.CollisionCount
	}
	pl := newPlacer(in, plan.facts)
	plan.rollout = make([]rolloutNode, 0, len(in.Nodes))
	nodes := in.Nodes // as listed from the store: by name
	byNodeName := func(i, j int) bool { return nodes[i].GetMetadata().GetName() < nodes[j].GetMetadata().GetName() }
	if !sort.SliceIsSorted(nodes, byNodeName) {
		nodes = append([]*corralpb.Node(nil), in.Nodes...)
		sort.Slice(nodes, byNodeName)
	}
	for _, node := range nodes {
		i := indexOf(node.GetMetadata().GetName()) // may grow entries
		e := &entries[i]
		e.node = node
		plan.planNode(pl, node, e.pods, hash, st)
	}
	if rollingUpdate(ds) {
		del, create := planRollingUpdate(ds, plan.rollout, in.Now, plan.facts)
		for _, p := range del {
			plan.deletePod(p)
		}
		if !allowsSurge(ds) {
			create = append(create, replacements(plan.rollout, del)...)
		}
		for _, n := range create {
			// Every name the rollout returns is a node's of this plan.
			if i, ok := byName[n]; ok && entries[i].node != nil {
				plan.place(pl, entries[i].node, hash)
			}
		}
	}
	// Pods of nodes that no longer exist, bound or waiting, are garbage.
	for _, e := range entries {
		if e.node == nil {
			for _, p := range e.pods {
				plan.deletePod(p)
			}
		}
	}
	st.NumberUnavailable = st.DesiredNumberScheduled - st.NumberAvailable
	plan.Status = st
	return plan
}

// nodeEntry is a node name's Node (nil if none exists) and the
// DaemonSet's pods bound to or waiting for it, for one plan.
type nodeEntry struct {
	node *corralpb.Node
	pods []*corralpb.Pod
}

// replacements are the nodes where a rolling update without surge deletes
// the old pod and the node should run the DaemonSet: their new pods are
// created in the same plan as the deletions. Kubernetes creates them in a
// later sync, once the deleted pods are gone, because its deletion is
// graceful; corral removes a pod at once, and the node's agent starts the
// new pod only after the old one has terminated, so the node still never
// runs both, and a wave of the rollout is one Raft entry rather than two.
func replacements(nodes []rolloutNode, del []*corralpb.Pod) []string {
	if len(del) == 0 {
		return nil
	}
	deleted := make(map[*corralpb.Pod]bool, len(del))
	for _, p := range del {
		deleted[p] = true
	}
	var out []string
	for _, n := range nodes {
		if n.shouldRun && n.newPod == nil && n.oldPod != nil && deleted[n.oldPod] {
			out = append(out, n.node)
		}
	}
	return out
}

// currentStatus is a copy of the DaemonSet's status as it stands.
func currentStatus(ds *corralpb.DaemonSet) *corralpb.DaemonSetStatus {
	if ds.GetStatus() == nil {
		return &corralpb.DaemonSetStatus{}
	}
	// A copy, never the stored message itself (callers change it, and a
	// value copy of a message races with its concurrent marshalling).
	return proto.Clone(ds.GetStatus()).(*corralpb.DaemonSetStatus)
}

// planNode decides one node, Kubernetes' podsShouldBeOnNode.
func (plan *DaemonPlan) planNode(pl *placer, node *corralpb.Node, pods []*corralpb.Pod, hash string, st *corralpb.DaemonSetStatus) {
	in := pl.in
	name := node.GetMetadata().GetName()
	shouldRun, shouldContinue := NodeShouldRunDaemonPod(node, in.DaemonSet)
	// The node's surviving pods, in a slice every node reuses: nothing
	// keeps it past this call.
	live := plan.live[:0]
	defer func() { plan.live = live[:0] }()
	for _, p := range pods {
		switch {
		case !shouldContinue:
			plan.deletePod(p)
		case plan.facts(p).phase == "Failed":
			plan.failedPod(in, p, name)
		case plan.facts(p).phase == "Succeeded":
			plan.deletePod(p)
			plan.Events = append(plan.Events, PlanEvent{Type: "Normal", Reason: "SucceededDaemonPod",
				Message: fmt.Sprintf("Found succeeded daemon pod %s/%s on node %s, will try to delete it", p.GetMetadata().GetNamespace(), p.GetMetadata().GetName(), name)})
		default:
			live = append(live, p)
		}
	}
	if shouldRun {
		st.DesiredNumberScheduled++
	}
	switch {
	case shouldRun && len(live) == 0 && len(pods) == len(live):
		if b, ok := plan.BackOff[name]; ok && in.Now.Before(b.Until) {
			plan.requeueAfter(b.Until.Sub(in.Now))
			break
		}
		plan.place(pl, node, hash)
	case shouldContinue && len(live) > 1:
		live = plan.keepOnNode(in.DaemonSet, live, hash)
	}
	if len(live) == 0 {
		if shouldRun {
			// No pod yet (or its replacement not made): the rolling update
			// counts the node as unavailable.
			plan.rollout = append(plan.rollout, rolloutNode{node: name, shouldRun: true})
		}
		return
	}
	if shouldContinue {
		rn := rolloutNode{node: name, shouldRun: shouldRun}
		for _, p := range live {
			if plan.facts(p).hash == hash {
				rn.newPod = p
			} else {
				rn.oldPod = p
			}
		}
		plan.rollout = append(plan.rollout, rn)
	}
	if !shouldRun {
		if shouldContinue {
			st.NumberMisscheduled++
		}
		return
	}
	p := live[0]
	f := plan.facts(p)
	if !f.bound {
		plan.bind(pl, node, p)
	}
	st.CurrentNumberScheduled++
	if f.hash == hash {
		st.UpdatedNumberScheduled++
	}
	if ready, since := f.ready, f.readySince; ready {
		st.NumberReady++
		minReady := time.Duration(in.DaemonSet.GetSpec().GetMinReadySeconds()) * time.Second
		if minReady == 0 || !since.Add(minReady).After(in.Now) {
			st.NumberAvailable++
		} else {
			plan.requeueAfter(since.Add(minReady).Sub(in.Now))
		}
	}
}

// failedPod deletes a failed pod and backs off its replacement on the node.
func (plan *DaemonPlan) failedPod(in DaemonPlanInput, p *corralpb.Pod, node string) {
	plan.deletePod(p)
	plan.Events = append(plan.Events, PlanEvent{Type: "Warning", Reason: "FailedDaemonPod",
		Message: fmt.Sprintf("Found failed daemon pod %s/%s on node %s, will try to kill it", p.GetMetadata().GetNamespace(), p.GetMetadata().GetName(), node)})
	delay := failedBackOffInitial
	if prev, ok := plan.BackOff[node]; ok {
		delay = min(prev.Delay*2, failedBackOffMax)
	}
	plan.BackOff[node] = BackOff{Until: in.Now.Add(delay), Delay: delay}
	plan.requeueAfter(delay)
}

func (plan *DaemonPlan) deletePod(p *corralpb.Pod) {
	for _, d := range plan.Delete {
		if d == p {
			return
		}
	}
	plan.Delete = append(plan.Delete, p)
}

func (plan *DaemonPlan) requeueAfter(d time.Duration) {
	if d > 0 && (plan.Requeue == 0 || d < plan.Requeue) {
		plan.Requeue = d
	}
}

// keepOnNode chooses which of several live pods of the DaemonSet on one
// node stay, oldest first, and deletes the rest: the oldest pod, or, while
// a surge rollout runs, the oldest pod of the current template and the
// oldest of an older one.
func (plan *DaemonPlan) keepOnNode(ds *corralpb.DaemonSet, live []*corralpb.Pod, hash string) []*corralpb.Pod {
	sort.Slice(live, func(i, j int) bool { return olderPod(live[i], live[j]) })
	if !allowsSurge(ds) {
		for _, p := range live[1:] {
			plan.deletePod(p)
		}
		return live[:1]
	}
	var keptNew, keptOld *corralpb.Pod
	var kept []*corralpb.Pod
	for _, p := range live {
		isNew := plan.facts(p).hash == hash
		switch {
		case isNew && keptNew == nil:
			keptNew = p
			kept = append(kept, p)
		case !isNew && keptOld == nil:
			keptOld = p
			kept = append(kept, p)
		default:
			plan.deletePod(p)
		}
	}
	return kept
}

// rollingUpdate reports whether template changes roll out by themselves
// (RollingUpdate, the default) rather than on deletion (OnDelete).
func rollingUpdate(ds *corralpb.DaemonSet) bool {
	t := ds.GetSpec().GetUpdateStrategy().GetType()
	return t == "" || t == "RollingUpdate"
}

// allowsSurge reports whether a rolling update may run two pods on a node.
func allowsSurge(ds *corralpb.DaemonSet) bool {
	if !rollingUpdate(ds) {
		return false
	}
	surge, _ := rollingBudget(ds, 1)
	return surge > 0
}

// olderPod orders pods by creation time, then name.
func olderPod(a, b *corralpb.Pod) bool {
	ta, tb := a.GetMetadata().GetCreationTimestamp().AsTime(), b.GetMetadata().GetCreationTimestamp().AsTime()
	if !ta.Equal(tb) {
		return ta.Before(tb)
	}
	return a.GetMetadata().GetName() < b.GetMetadata().GetName()
}

// podReady reports the pod's Ready condition and since when it holds.
func podReady(p *corralpb.Pod) (bool, time.Time) {
	c := api.PodCondition(p.GetStatus(), "Ready")
	if c == nil {
		return false, time.Time{}
	}
	return c.GetStatus() == "True", c.GetLastTransitionTime().AsTime()
}
