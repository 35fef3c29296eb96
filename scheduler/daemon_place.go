package scheduler

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

// placer is what a plan needs to put pods on nodes: the template's
// admitted priority, and each node's room, built on first use from the
// pods bound there.
type placer struct {
	in     DaemonPlanInput
	prios  *priorities
	adm    admitted
	admErr error
	// own are the uids of the DaemonSet's pods, which the nodes' rooms
	// leave out (they are planned, not fitted); built with the first room.
	own   map[string]bool
	facts func(*corralpb.Pod) *podFacts
	rooms map[string]*nodeRoom
	// refused is set once the plan reported that it cannot create pods.
	refused bool
	// base is NewDaemonPod's pod for no node, admitted, without affinity:
	// what the pods the plan creates share (for template hash baseHash).
	base     *corralpb.Pod
	baseHash string
}

// newPod is NewDaemonPod(ds, node, hash) with admission applied. What all
// the plan's pods have in common (labels, owner, containers, tolerations,
// ...) they share, not copy: 5,000 pods hold one template, and the Raft
// entry creating them carries it once (see the controller's batch).
func (pl *placer) newPod(node, hash string) *corralpb.Pod {
	ds := pl.in.DaemonSet
	if pl.base == nil || pl.baseHash != hash {
		b := NewDaemonPod(ds, "", hash)
		b.Spec.Affinity = nil
		pl.adm.apply(b.Spec)
		pl.base, pl.baseHash = b, hash
	}
	pod := &corralpb.Pod{Metadata: &corralpb.ObjectMeta{},
		Spec: &corralpb.PodSpec{NodeName: node, Affinity: daemonAffinity(ds.GetSpec().GetTemplate().GetSpec().GetAffinity(), node)}}
	api.Fill(pod, pl.base)
	return pod
}

func newPlacer(in DaemonPlanInput, facts func(*corralpb.Pod) *podFacts) *placer {
	pl := &placer{in: in, prios: newPriorities(in.PriorityClasses), facts: facts, rooms: map[string]*nodeRoom{}}
	pl.adm, pl.admErr = pl.prios.admit(in.DaemonSet.GetSpec().GetTemplate().GetSpec())
	return pl
}

// room returns the node's room: its allocatable and the pods of others
// bound there that still run.
func (pl *placer) room(node *corralpb.Node) *nodeRoom {
	name := node.GetMetadata().GetName()
	if r, ok := pl.rooms[name]; ok {
		return r
	}
	r := &nodeRoom{alloc: allocatableOf(node), used: resourceList{}}
	if pl.own == nil {
		pl.own = make(map[string]bool, len(pl.in.Pods))
		for _, p := range pl.in.Pods {
			if uid := pl.facts(p).uid; uid != "" {
				pl.own[uid] = true
			}
		}
	}
	if pl.in.PodsOnNode != nil {
		for _, p := range pl.in.PodsOnNode(name) {
			if pl.own[p.GetMetadata().GetUid()] || terminated(p) {
				continue
			}
			rp := &roomPod{pod: p, req: podRequests(p.GetSpec()), priority: pl.prios.of(p)}
			r.pods = append(r.pods, rp)
			r.used.add(rp.req, 1)
		}
	}
	pl.rooms[name] = r
	return r
}

// place creates the DaemonSet's pod for node: bound when it fits (after
// preempting lower-priority pods if it must), otherwise created unbound,
// Pending, with a FailedScheduling event. A template whose priority class
// does not exist creates nothing: one FailedCreate event says why.
func (plan *DaemonPlan) place(pl *placer, node *corralpb.Node, hash string) {
	ds := pl.in.DaemonSet
	if pl.admErr != nil {
		if !pl.refused {
			pl.refused = true
			plan.Events = append(plan.Events, PlanEvent{Type: "Warning", Reason: "FailedCreate",
				Message: fmt.Sprintf("Error creating: pods %q is forbidden: %v", ds.GetMetadata().GetName()+"-", pl.admErr)})
		}
		return
	}
	pod := pl.newPod(node.GetMetadata().GetName(), hash)
	if msg, ok := plan.fit(pl, node, pod); !ok {
		pod.Spec.NodeName = ""
		plan.Waiting++
		pod.Status = &corralpb.PodStatus{Phase: "Pending", Conditions: []*corralpb.PodCondition{unschedulable(msg, pl.in.Now)}}
		plan.Events = append(plan.Events, PlanEvent{Type: "Warning", Reason: "FailedScheduling", Message: msg, Regarding: pod})
	}
	plan.Create = append(plan.Create, pod)
}

// bind binds a pending pod of the DaemonSet to its node once it fits. One
// that still does not fit keeps waiting; when the reason changed, its
// PodScheduled condition is updated and a FailedScheduling event says so.
func (plan *DaemonPlan) bind(pl *placer, node *corralpb.Node, pod *corralpb.Pod) {
	msg, ok := plan.fit(pl, node, pod)
	if ok {
		b := proto.Clone(pod).(*corralpb.Pod)
		b.Spec.NodeName = node.GetMetadata().GetName()
		setCondition(b, &corralpb.PodCondition{Type: "PodScheduled", Status: "True", LastTransitionTime: stamp(pl.in.Now)})
		plan.Bind = append(plan.Bind, b)
		plan.Events = append(plan.Events, PlanEvent{Type: "Normal", Reason: "Scheduled", Regarding: b,
			Message: fmt.Sprintf("Successfully assigned %s/%s to %s", b.GetMetadata().GetNamespace(), b.GetMetadata().GetName(), b.GetSpec().GetNodeName())})
		return
	}
	plan.Waiting++
	for _, c := range pod.GetStatus().GetConditions() {
		if c.GetType() == "PodScheduled" && c.GetStatus() == "False" && c.GetMessage() == msg {
			return
		}
	}
	u := proto.Clone(pod).(*corralpb.Pod)
	if u.Status == nil {
		u.Status = &corralpb.PodStatus{Phase: "Pending"}
	}
	setCondition(u, unschedulable(msg, pl.in.Now))
	plan.UpdateStatus = append(plan.UpdateStatus, u)
	plan.Events = append(plan.Events, PlanEvent{Type: "Warning", Reason: "FailedScheduling", Message: msg, Regarding: pod})
}

// fit decides whether pod, of the DaemonSet, goes onto node now: it fits
// the node's room, or it does once lower-priority pods are preempted
// (unless its preemptionPolicy is Never). When it goes, the room counts it
// and the victims are planned for deletion with a Preempted event each;
// when not, msg is the scheduler's reason.
func (plan *DaemonPlan) fit(pl *placer, node *corralpb.Node, pod *corralpb.Pod) (msg string, ok bool) {
	r := pl.room(node)
	req := podRequests(pod.GetSpec())
	reasons := insufficient(r.alloc, r.used, req)
	if len(reasons) == 0 {
		r.take(req)
		return "", true
	}
	if pl.prios.preempts(pod) {
		if victims, ok := r.selectVictims(req, pl.prios.of(pod), pl.in.Now); ok {
			name := node.GetMetadata().GetName()
			for _, v := range victims {
				r.evict(v)
				plan.Preempt = append(plan.Preempt, v.pod)
				plan.Events = append(plan.Events, PlanEvent{Type: "Normal", Reason: "Preempted", Regarding: v.pod, Preemptor: pod,
					Message: preemptedMessage(pod, name)})
			}
			r.take(req)
			return "", true
		}
	}
	return unschedulableMessage(reasons), false
}

// unschedulable is the PodScheduled condition of a pod that fits nowhere.
func unschedulable(msg string, now time.Time) *corralpb.PodCondition {
	return &corralpb.PodCondition{Type: "PodScheduled", Status: "False", Reason: "Unschedulable", Message: msg, LastTransitionTime: stamp(now)}
}

// setCondition replaces the pod's condition of c's type, or adds it.
func setCondition(p *corralpb.Pod, c *corralpb.PodCondition) {
	if p.Status == nil {
		p.Status = &corralpb.PodStatus{Phase: "Pending"}
	}
	for i, have := range p.Status.Conditions {
		if have.GetType() == c.GetType() {
			if have.GetStatus() == c.GetStatus() && have.LastTransitionTime != nil {
				c.LastTransitionTime = have.LastTransitionTime
			}
			p.Status.Conditions[i] = c
			return
		}
	}
	p.Status.Conditions = append(p.Status.Conditions, c)
}

// stamp is a timestamp at second precision, as Kubernetes stores them.
func stamp(t time.Time) *timestamppb.Timestamp {
	return timestamppb.New(t.UTC().Truncate(time.Second))
}
