package scheduler

import (
	"fmt"
	"testing"
	"time"

	corralpb "github.com/corral-dev/corral/proto"
)

func TestPlanPreemption(t *testing.T) {
	never := PreemptNever
	classes := []*corralpb.PriorityClass{
		{Metadata: &corralpb.ObjectMeta{Name: "high"}, Value: 1000},
		{Metadata: &corralpb.ObjectMeta{Name: "high-never"}, Value: 1000, PreemptionPolicy: &never},
		{Metadata: &corralpb.ObjectMeta{Name: "low"}, Value: 10},
	}
	n1 := allocNode("n1", "4", "4Gi", "110")
	gi := res(mem("1Gi"), nil)
	// Four pods fill the node: two of priority 0 (one older), one of 500
	// and one of the preemptor's own 1000.
	full := []*corralpb.Pod{
		other("old0", "n1", 0, gi, 2*time.Hour), other("young0", "n1", 0, gi, time.Hour),
		other("mid", "n1", 500, gi, 3*time.Hour), other("peer", "n1", 1000, gi, 3*time.Hour),
	}
	notStarted := other("unstarted0", "n1", 0, gi, -1)
	byClass := other("byclass", "n1", 0, res(mem("3Gi"), nil), time.Minute)
	byClass.Spec.Priority, byClass.Spec.PriorityClassName = nil, "high"
	neverVictim := other("nevervictim", "n1", 0, gi, 4*time.Hour)
	neverVictim.Spec.PreemptionPolicy = &never
	for _, tc := range []struct {
		name    string
		ds      *corralpb.DaemonSet
		others  []*corralpb.Pod
		victims []string // least important first; nil: no preemption
		msg     string   // the FailedScheduling message when the pod waits
	}{
		{"one victim: lowest priority, youngest", dsAsking(gi, "high"), full, []string{"young0"}, ""},
		{"two victims: the lowest priority ones", dsAsking(res(mem("2Gi"), nil), "high"), full, []string{"young0", "old0"}, ""},
		{"fewest: one large victim rather than many small", dsAsking(res(mem("2Gi"), nil), "high"), []*corralpb.Pod{
			other("s1", "n1", 0, gi, time.Hour), other("s2", "n1", 0, gi, 2*time.Hour), other("large", "n1", 0, res(mem("2Gi"), nil), time.Minute)},
			[]string{"large"}, ""},
		{"a pod not started yet is the youngest", dsAsking(gi, "high"), append(full[:3:3], notStarted), []string{"unstarted0"}, ""},
		{"a pod's priority from its class when spec.priority is unset", dsAsking(gi, "high"), []*corralpb.Pod{byClass, other("old", "n1", 0, gi, 4*time.Hour)},
			[]string{"old"}, ""},
		{"a victim's preemptionPolicy Never does not protect it", dsAsking(gi, "high"), []*corralpb.Pod{neverVictim, other("peer2", "n1", 1000, res(mem("3Gi"), nil), time.Hour)},
			[]string{"nevervictim"}, ""},
		{"never equal or higher priority", dsAsking(gi, "high"), []*corralpb.Pod{other("peer", "n1", 1000, res(mem("2Gi"), nil), time.Hour),
			other("top", "n1", 2000000000, res(mem("2Gi"), nil), time.Hour)}, nil, "0/1 nodes are available: 1 Insufficient memory."},
		{"not enough even with every lower pod gone", dsAsking(res(mem("3500Mi"), nil), "high"), full, nil, "0/1 nodes are available: 1 Insufficient memory."},
		{"a preemptor with preemptionPolicy Never waits", dsAsking(gi, "high-never"), full, nil, "0/1 nodes are available: 1 Insufficient memory."},
		{"priority 0 preempts nothing", dsAsking(gi, ""), full, nil, "0/1 nodes are available: 1 Insufficient memory."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan := PlanDaemonSet(DaemonPlanInput{DaemonSet: tc.ds, Nodes: []*corralpb.Node{n1}, PodsOnNode: onNodes(tc.others...),
				PriorityClasses: classes, Now: planNow})
			if len(plan.Create) != 1 {
				t.Fatalf("create %v", names(plan.Create))
			}
			p := plan.Create[0]
			var victims []string
			for _, v := range plan.Preempt {
				victims = append(victims, v.GetMetadata().GetName())
			}
			if fmt.Sprint(victims) != fmt.Sprint(tc.victims) {
				t.Fatalf("victims %v, want %v", victims, tc.victims)
			}
			if tc.victims == nil {
				if p.GetSpec().GetNodeName() != "" || fmt.Sprint(eventsOf(plan)) != fmt.Sprint([]string{"FailedScheduling: " + tc.msg}) {
					t.Fatalf("node %q events %q, want pending with %q", p.GetSpec().GetNodeName(), eventsOf(plan), tc.msg)
				}
				return
			}
			if p.GetSpec().GetNodeName() != "n1" || len(plan.Delete) != 0 {
				t.Fatalf("preemptor bound to %q, deletes %v", p.GetSpec().GetNodeName(), names(plan.Delete))
			}
			if len(plan.Events) != len(plan.Preempt) {
				t.Fatalf("events %q", eventsOf(plan))
			}
			for i, e := range plan.Events {
				if e.Type != "Normal" || e.Reason != "Preempted" || e.Regarding != plan.Preempt[i] || e.Preemptor != p {
					t.Fatalf("event %d: %+v", i, e)
				}
			}
		})
	}
}

// A pending pod of the DaemonSet that can preempt is bound in the same plan
// as its victims' deletion; the event names it by uid.
func TestPlanPendingPodPreempts(t *testing.T) {
	classes := []*corralpb.PriorityClass{{Metadata: &corralpb.ObjectMeta{Name: "high"}, Value: 1000}}
	n1 := allocNode("n1", "4", "4Gi", "110")
	top := other("top", "n1", 2000, res(mem("3500Mi"), nil), time.Hour)
	pending := pendingPod(t, dsAsking(res(mem("1Gi"), nil), "high"), n1, classes, top)
	// The big pod left; a lower-priority one took part of the room.
	low := other("low", "n1", 0, res(mem("3500Mi"), nil), time.Minute)
	plan := PlanDaemonSet(DaemonPlanInput{DaemonSet: dsAsking(res(mem("1Gi"), nil), "high"), Nodes: []*corralpb.Node{n1},
		Pods: []*corralpb.Pod{pending}, PodsOnNode: onNodes(low), PriorityClasses: classes, Now: planNow})
	if len(plan.Bind) != 1 || len(plan.Preempt) != 1 || plan.Preempt[0] != low || len(plan.Create) != 0 {
		t.Fatalf("bind %v preempt %v create %v", names(plan.Bind), names(plan.Preempt), names(plan.Create))
	}
	want := []string{"Preempted: Preempted by pod uid-pend on node n1", "Scheduled: Successfully assigned default/ds-pend to n1"}
	if fmt.Sprint(eventsOf(plan)) != fmt.Sprint(want) || plan.Events[0].Regarding != low {
		t.Fatalf("events %q, want %q", eventsOf(plan), want)
	}
}

// Pods of another DaemonSet, bound by an earlier plan, count against the
// node; the second DaemonSet's pod waits, or preempts when its priority is
// higher.
func TestPlanCountsOtherDaemonSets(t *testing.T) {
	classes := []*corralpb.PriorityClass{{Metadata: &corralpb.ObjectMeta{Name: "high"}, Value: 1000}}
	n1 := allocNode("n1", "4", "4Gi", "2")
	first := dsAsking(res(mem("3Gi"), nil), "")
	plan := PlanDaemonSet(DaemonPlanInput{DaemonSet: first, Nodes: []*corralpb.Node{n1}, Now: planNow})
	bound := plan.Create[0]
	bound.Metadata.Name, bound.Metadata.Uid = "first-abcde", "uid-first"
	for _, tc := range []struct {
		name, class string
		bound       bool
		events      []string
	}{
		{"equal priority waits", "", false, []string{"FailedScheduling: 0/1 nodes are available: 1 Insufficient memory."}},
		{"higher priority preempts", "high", true, []string{"Preempted: Preempted by pod  on node n1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			second := dsAsking(res(mem("2Gi"), nil), tc.class)
			second.Metadata.Name, second.Metadata.Uid = "second", "uid-second"
			plan := PlanDaemonSet(DaemonPlanInput{DaemonSet: second, Nodes: []*corralpb.Node{n1}, PodsOnNode: onNodes(bound),
				PriorityClasses: classes, Now: planNow})
			if len(plan.Create) != 1 || (plan.Create[0].GetSpec().GetNodeName() == "n1") != tc.bound || fmt.Sprint(eventsOf(plan)) != fmt.Sprint(tc.events) {
				t.Fatalf("create %v events %q", names(plan.Create), eventsOf(plan))
			}
		})
	}
}

func TestSelectVictimsKeepsTheRoomWhole(t *testing.T) {
	r := &nodeRoom{alloc: resourceList{"memory": 4 << 30, "pods": 3}, used: resourceList{}}
	for i, prio := range []int32{0, 0, 5} {
		p := &roomPod{pod: other(fmt.Sprint("p", i), "n1", prio, nil, time.Duration(i)*time.Hour), req: resourceList{"memory": 1 << 30, "pods": 1}, priority: prio}
		r.pods = append(r.pods, p)
		r.used.add(p.req, 1)
	}
	// The pod count is what runs out: one victim frees it.
	victims, ok := r.selectVictims(resourceList{"memory": 1 << 30, "pods": 1}, 10, planNow)
	if !ok || len(victims) != 1 || victims[0].pod.GetMetadata().GetName() != "p0" {
		t.Fatalf("victims %v ok %v", victims, ok)
	}
	if r.used["pods"] != 3 {
		t.Fatalf("selectVictims changed the room: %v", r.used)
	}
}
