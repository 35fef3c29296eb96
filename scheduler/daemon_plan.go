package scheduler

import (
	"fmt"
	"sort"
	"time"

	"google.golang.org/protobuf/proto"

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
	// FailedBackOff holds, per node, the back-off after a failed pod: no
	// replacement is created there before it ends.
	FailedBackOff map[string]BackOff
	Now           time.Time
}

// PlanEvent is an event the controller records once the plan committed.
type PlanEvent struct {
	Type, Reason, Message string
	// Pod, when set, is the pod the message names (its name is known only
	// once the controller has named the pods it creates).
	Pod *corralpb.Pod
}

// DaemonPlan is what the controller must do for one DaemonSet.
type DaemonPlan struct {
	// Create are new pods, bound to their nodes; the controller names them.
	Create []*corralpb.Pod
	// Delete are pods to remove.
	Delete []*corralpb.Pod
	// Adopt are orphans the DaemonSet takes (their owner reference is set).
	Adopt []*corralpb.Pod
	// Status is the DaemonSet's status after the plan.
	Status *corralpb.DaemonSetStatus
	Events []PlanEvent
	// BackOff is the failed-pod back-off per node after the plan.
	BackOff map[string]BackOff
	// Requeue, when non-zero, asks for another sync after that long (a
	// back-off ends, a pod's minReadySeconds pass).
	Requeue time.Duration
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
// reports. A DaemonSet being deleted in the foreground plans the deletion
// of all its pods.
func PlanDaemonSet(in DaemonPlanInput) *DaemonPlan {
	ds := in.DaemonSet
	plan := &DaemonPlan{BackOff: map[string]BackOff{}}
	for n, b := range in.FailedBackOff {
		// A node quiet for twice the longest delay starts over.
		if in.Now.Before(b.Until.Add(2 * failedBackOffMax)) {
			plan.BackOff[n] = b
		}
	}
	byNode := map[string][]*corralpb.Pod{}
	uid := ds.GetMetadata().GetUid()
	for _, p := range in.Pods {
		if _, owner := controllerOf(p.GetMetadata()); owner == "" {
			plan.Adopt = append(plan.Adopt, p)
		} else if owner != uid {
			continue
		}
		byNode[p.GetSpec().GetNodeName()] = append(byNode[p.GetSpec().GetNodeName()], p)
	}
	if ds.GetMetadata().GetDeletionTimestamp() != nil {
		for _, p := range in.Pods {
			if _, owner := controllerOf(p.GetMetadata()); owner == uid {
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
	known := map[string]bool{}
	nodes := append([]*corralpb.Node(nil), in.Nodes...)
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].GetMetadata().GetName() < nodes[j].GetMetadata().GetName() })
	for _, node := range nodes {
		name := node.GetMetadata().GetName()
		known[name] = true
		plan.planNode(in, node, byNode[name], hash, st)
	}
	// Pods bound to nodes that no longer exist are garbage.
	for node, pods := range byNode {
		if !known[node] {
			for _, p := range pods {
				plan.deletePod(p)
			}
		}
	}
	st.NumberUnavailable = st.DesiredNumberScheduled - st.NumberAvailable
	plan.Status = st
	return plan
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
func (plan *DaemonPlan) planNode(in DaemonPlanInput, node *corralpb.Node, pods []*corralpb.Pod, hash string, st *corralpb.DaemonSetStatus) {
	name := node.GetMetadata().GetName()
	shouldRun, shouldContinue := NodeShouldRunDaemonPod(node, in.DaemonSet)
	var live []*corralpb.Pod
	for _, p := range pods {
		switch {
		case !shouldContinue:
			plan.deletePod(p)
		case p.GetStatus().GetPhase() == "Failed":
			plan.failedPod(in, p, name)
		case p.GetStatus().GetPhase() == "Succeeded":
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
		plan.Create = append(plan.Create, NewDaemonPod(in.DaemonSet, name, hash))
	case shouldContinue && len(live) > 1:
		// Keep the oldest; delete the others (at most one pod per node).
		sort.Slice(live, func(i, j int) bool { return olderPod(live[i], live[j]) })
		for _, p := range live[1:] {
			plan.deletePod(p)
		}
		live = live[:1]
	}
	if len(live) == 0 {
		return
	}
	if !shouldRun {
		if shouldContinue {
			st.NumberMisscheduled++
		}
		return
	}
	p := live[0]
	st.CurrentNumberScheduled++
	if p.GetMetadata().GetLabels()[LabelRevisionHash] == hash {
		st.UpdatedNumberScheduled++
	}
	if ready, since := podReady(p); ready {
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
	for _, c := range p.GetStatus().GetConditions() {
		if c.GetType() == "Ready" {
			return c.GetStatus() == "True", c.GetLastTransitionTime().AsTime()
		}
	}
	return false, time.Time{}
}
