package scheduler

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	corralpb "github.com/corral-dev/corral/proto"
)

// allocNode is a node offering cpu, memory and pods ("" leaves one out).
func allocNode(name, cpu, memory, pods string) *corralpb.Node {
	n := nodeWith(name, nil)
	alloc := map[string]string{}
	for k, v := range map[string]string{"cpu": cpu, "memory": memory, "pods": pods} {
		if v != "" {
			alloc[k] = v
		}
	}
	n.Status = &corralpb.NodeStatus{Allocatable: alloc}
	return n
}

// res is a container's resources: requests, and limits.
func res(requests, limits map[string]string) *corralpb.ResourceRequirements {
	return &corralpb.ResourceRequirements{Requests: requests, Limits: limits}
}

func mem(q string) map[string]string       { return map[string]string{"memory": q} }
func cpuMem(c, m string) map[string]string { return map[string]string{"cpu": c, "memory": m} }

// dsAsking is a DaemonSet whose one container has the given resources and
// whose pods name a priority class.
func dsAsking(r *corralpb.ResourceRequirements, class string) *corralpb.DaemonSet {
	ds := dsFor(&corralpb.PodSpec{PriorityClassName: class})
	ds.Spec.Template.Spec.Containers[0].Resources = r
	return ds
}

// other is a pod of someone else bound to node: its priority, resources,
// and when it started (age ago; a negative age: not started).
func other(name, node string, priority int32, r *corralpb.ResourceRequirements, age time.Duration) *corralpb.Pod {
	p := &corralpb.Pod{
		Metadata: &corralpb.ObjectMeta{Name: name, Namespace: "kube-system", Uid: "uid-" + name,
			CreationTimestamp: timestamppb.New(planNow.Add(-time.Duration(max(age, 0))))},
		Spec:   &corralpb.PodSpec{NodeName: node, Priority: &priority, Containers: []*corralpb.Container{{Name: "c", Resources: r}}},
		Status: &corralpb.PodStatus{Phase: "Running"},
	}
	if age >= 0 {
		p.Status.StartTime = timestamppb.New(planNow.Add(-age))
	}
	return p
}

// onNodes answers PodsOnNode from a list of pods.
func onNodes(pods ...*corralpb.Pod) func(string) []*corralpb.Pod {
	return func(node string) []*corralpb.Pod {
		var out []*corralpb.Pod
		for _, p := range pods {
			if p.GetSpec().GetNodeName() == node {
				out = append(out, p)
			}
		}
		return out
	}
}

// eventsOf renders a plan's events as "Reason: message".
func eventsOf(plan *DaemonPlan) []string {
	var out []string
	for _, e := range plan.Events {
		out = append(out, e.Reason+": "+e.Message)
	}
	return out
}

func TestPlanResourceFit(t *testing.T) {
	n1 := allocNode("n1", "2", "4Gi", "110")
	initHeavy := dsAsking(res(mem("1Gi"), nil), "")
	initHeavy.Spec.Template.Spec.InitContainers = []*corralpb.Container{{Name: "init", Resources: res(mem("3Gi"), nil)}}
	finished := other("done", "n1", 0, res(mem("4Gi"), nil), time.Hour)
	finished.Status.Phase = "Succeeded"
	for _, tc := range []struct {
		name   string
		ds     *corralpb.DaemonSet
		node   *corralpb.Node
		others []*corralpb.Pod
		bound  bool
		msg    string // the FailedScheduling message; "" when it fits
	}{
		{"fits", dsAsking(res(cpuMem("500m", "1Gi"), nil), ""), n1,
			[]*corralpb.Pod{other("a", "n1", 0, res(cpuMem("1", "2Gi"), nil), time.Hour)}, true, ""},
		{"fits exactly", dsAsking(res(cpuMem("1", "2Gi"), nil), ""), n1,
			[]*corralpb.Pod{other("a", "n1", 0, res(cpuMem("1", "2Gi"), nil), time.Hour)}, true, ""},
		{"insufficient memory", dsAsking(res(mem("1Gi"), nil), ""), n1,
			[]*corralpb.Pod{other("a", "n1", 0, res(mem("3500Mi"), nil), time.Hour)}, false, "0/1 nodes are available: 1 Insufficient memory."},
		{"insufficient cpu", dsAsking(res(cpuMem("500m", "1Gi"), nil), ""), n1,
			[]*corralpb.Pod{other("a", "n1", 0, res(cpuMem("1800m", "1Gi"), nil), time.Hour)}, false, "0/1 nodes are available: 1 Insufficient cpu."},
		{"insufficient cpu and memory", dsAsking(res(cpuMem("1", "1Gi"), nil), ""), n1,
			[]*corralpb.Pod{other("a", "n1", 0, res(cpuMem("1500m", "3500Mi"), nil), time.Hour)}, false,
			"0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory."},
		{"too many pods", dsAsking(nil, ""), allocNode("n1", "2", "4Gi", "2"),
			[]*corralpb.Pod{other("a", "n1", 0, nil, time.Hour), other("b", "n1", 0, nil, time.Hour)}, false, "0/1 nodes are available: 1 Too many pods."},
		{"limits stand in for requests", dsAsking(res(nil, mem("2Gi")), ""), n1,
			[]*corralpb.Pod{other("a", "n1", 0, res(nil, mem("3Gi")), time.Hour)}, false, "0/1 nodes are available: 1 Insufficient memory."},
		{"the largest init container counts", initHeavy, n1,
			[]*corralpb.Pod{other("a", "n1", 0, res(mem("2Gi"), nil), time.Hour)}, false, "0/1 nodes are available: 1 Insufficient memory."},
		{"terminated pods hold nothing", dsAsking(res(mem("1Gi"), nil), ""), n1, []*corralpb.Pod{finished}, true, ""},
		{"pods of other nodes do not count", dsAsking(res(mem("1Gi"), nil), ""), n1,
			[]*corralpb.Pod{other("a", "n2", 0, res(mem("4Gi"), nil), time.Hour)}, true, ""},
		{"unknown allocatable fits", dsAsking(res(mem("1Gi"), nil), ""), nodeWith("n1", nil),
			[]*corralpb.Pod{other("a", "n1", 0, res(mem("100Gi"), nil), time.Hour)}, true, ""},
		{"a resource the node does not report is not checked", dsAsking(res(mem("1Gi"), nil), ""), allocNode("n1", "2", "", "110"),
			[]*corralpb.Pod{other("a", "n1", 0, res(mem("100Gi"), nil), time.Hour)}, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan := PlanDaemonSet(DaemonPlanInput{DaemonSet: tc.ds, Nodes: []*corralpb.Node{tc.node}, PodsOnNode: onNodes(tc.others...), Now: planNow})
			if len(plan.Create) != 1 || len(plan.Preempt) != 0 {
				t.Fatalf("create %v preempt %v, want one create", names(plan.Create), names(plan.Preempt))
			}
			p := plan.Create[0]
			if got := p.GetSpec().GetNodeName() != ""; got != tc.bound {
				t.Fatalf("bound %v, want %v; events %v", got, tc.bound, eventsOf(plan))
			}
			if targetNode(p) != "n1" {
				t.Fatalf("pod's node affinity names %q, want n1", targetNode(p))
			}
			if tc.bound {
				if len(plan.Events) != 0 || plan.Waiting != 0 {
					t.Fatalf("events %v, waiting %d", eventsOf(plan), plan.Waiting)
				}
				return
			}
			if len(plan.Events) != 1 || plan.Events[0].Type != "Warning" || plan.Events[0].Reason != "FailedScheduling" ||
				plan.Events[0].Message != tc.msg || plan.Events[0].Regarding != p {
				t.Fatalf("events %v, want FailedScheduling %q on the pod", eventsOf(plan), tc.msg)
			}
			c := p.GetStatus().GetConditions()
			if p.GetStatus().GetPhase() != "Pending" || len(c) != 1 || c[0].GetType() != "PodScheduled" || c[0].GetStatus() != "False" ||
				c[0].GetReason() != "Unschedulable" || c[0].GetMessage() != tc.msg || plan.Waiting != 1 {
				t.Fatalf("status %v, waiting %d", p.GetStatus(), plan.Waiting)
			}
			if st := plan.Status; st.GetDesiredNumberScheduled() != 1 {
				t.Fatalf("status %v", st)
			}
		})
	}
}

// pendingPod is the DaemonSet's pod on node that did not fit when created,
// as stored: named, with a resourceVersion.
func pendingPod(t *testing.T, ds *corralpb.DaemonSet, node *corralpb.Node, classes []*corralpb.PriorityClass, others ...*corralpb.Pod) *corralpb.Pod {
	t.Helper()
	plan := PlanDaemonSet(DaemonPlanInput{DaemonSet: ds, Nodes: []*corralpb.Node{node}, PodsOnNode: onNodes(others...),
		PriorityClasses: classes, Now: planNow})
	if len(plan.Create) != 1 || plan.Create[0].GetSpec().GetNodeName() != "" {
		t.Fatalf("want one pending pod, got %v", names(plan.Create))
	}
	p := plan.Create[0]
	p.Metadata.Name, p.Metadata.Uid, p.Metadata.ResourceVersion = "ds-pend", "uid-pend", "7"
	p.Metadata.CreationTimestamp = timestamppb.New(planNow)
	return p
}

func TestPlanBindsWhenRoomAppears(t *testing.T) {
	ds := dsAsking(res(cpuMem("500m", "1Gi"), nil), "")
	n1 := allocNode("n1", "2", "4Gi", "110")
	big := other("big", "n1", 0, res(cpuMem("100m", "3500Mi"), nil), time.Hour)
	pending := pendingPod(t, ds, n1, nil, big)
	later := planNow.Add(time.Minute)
	for _, tc := range []struct {
		name           string
		others         []*corralpb.Pod
		bind, update   bool
		events         []string
		current, ready int32
	}{
		{"still no room: nothing to do", []*corralpb.Pod{big}, false, false, nil, 1, 0},
		{"another reason: condition and event", []*corralpb.Pod{other("cpu", "n1", 0, res(cpuMem("1800m", "1Gi"), nil), time.Hour)}, false, true,
			[]string{"FailedScheduling: 0/1 nodes are available: 1 Insufficient cpu."}, 1, 0},
		{"room appears: bound", []*corralpb.Pod{other("small", "n1", 0, res(mem("1Gi"), nil), time.Hour)}, true, false,
			[]string{"Scheduled: Successfully assigned default/ds-pend to n1"}, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan := PlanDaemonSet(DaemonPlanInput{DaemonSet: ds, Nodes: []*corralpb.Node{n1}, Pods: []*corralpb.Pod{pending},
				PodsOnNode: onNodes(tc.others...), Now: later})
			if len(plan.Create)+len(plan.Delete)+len(plan.Preempt) != 0 || (len(plan.Bind) == 1) != tc.bind || (len(plan.UpdateStatus) == 1) != tc.update {
				t.Fatalf("create %v delete %v preempt %v bind %v update %v", names(plan.Create), names(plan.Delete), names(plan.Preempt),
					names(plan.Bind), names(plan.UpdateStatus))
			}
			if fmt.Sprint(eventsOf(plan)) != fmt.Sprint(tc.events) {
				t.Fatalf("events %q, want %q", eventsOf(plan), tc.events)
			}
			if st := plan.Status; st.GetCurrentNumberScheduled() != tc.current || st.GetNumberReady() != tc.ready || st.GetDesiredNumberScheduled() != 1 {
				t.Fatalf("status %v", st)
			}
			if tc.bind {
				b := plan.Bind[0]
				if b.GetSpec().GetNodeName() != "n1" || b.GetMetadata().GetResourceVersion() != "7" || pending.GetSpec().GetNodeName() != "" {
					t.Fatalf("bound copy %v (the stored pod must stay untouched)", b.GetSpec().GetNodeName())
				}
				if c := b.GetStatus().GetConditions(); len(c) != 1 || c[0].GetStatus() != "True" || plan.Waiting != 0 {
					t.Fatalf("conditions %v waiting %d", c, plan.Waiting)
				}
			}
			if tc.update {
				c := plan.UpdateStatus[0].GetStatus().GetConditions()
				if len(c) != 1 || c[0].GetMessage() != "0/1 nodes are available: 1 Insufficient cpu." || !c[0].GetLastTransitionTime().AsTime().Equal(planNow) {
					t.Fatalf("condition %v (the transition time stays)", c)
				}
			}
		})
	}
}

func TestPlanPriorityAdmission(t *testing.T) {
	never := PreemptNever
	high := &corralpb.PriorityClass{Metadata: &corralpb.ObjectMeta{Name: "high"}, Value: 1000, PreemptionPolicy: &never}
	def := &corralpb.PriorityClass{Metadata: &corralpb.ObjectMeta{Name: "fleet-default"}, Value: 50, GlobalDefault: true}
	def2 := &corralpb.PriorityClass{Metadata: &corralpb.ObjectMeta{Name: "a-default"}, Value: 70, GlobalDefault: true}
	contradicting := dsFor(&corralpb.PodSpec{PriorityClassName: "high", Priority: proto.Int32(5)})
	for _, tc := range []struct {
		name      string
		ds        *corralpb.DaemonSet
		classes   []*corralpb.PriorityClass
		className string
		priority  int32
		policy    string
		failed    string // the FailedCreate message; then nothing is created
	}{
		{"no class, no default: 0", dsFor(nil), []*corralpb.PriorityClass{high}, "", 0, PreemptLowerPriority, ""},
		{"system-node-critical", dsFor(&corralpb.PodSpec{PriorityClassName: "system-node-critical"}), nil, "system-node-critical", 2000001000, PreemptLowerPriority, ""},
		{"system-cluster-critical", dsFor(&corralpb.PodSpec{PriorityClassName: "system-cluster-critical"}), nil, "system-cluster-critical", 2000000000, PreemptLowerPriority, ""},
		{"a PriorityClass and its policy", dsFor(&corralpb.PodSpec{PriorityClassName: "high"}), []*corralpb.PriorityClass{high, def}, "high", 1000, PreemptNever, ""},
		{"globalDefault for a pod naming none", dsFor(nil), []*corralpb.PriorityClass{high, def}, "fleet-default", 50, PreemptLowerPriority, ""},
		{"two globalDefaults: the lower value", dsFor(nil), []*corralpb.PriorityClass{def2, def}, "fleet-default", 50, PreemptLowerPriority, ""},
		{"unknown class", dsFor(&corralpb.PodSpec{PriorityClassName: "x"}), []*corralpb.PriorityClass{high}, "", 0, "",
			`Error creating: pods "ds-" is forbidden: no PriorityClass with name x was found`},
		{"a priority contradicting the class", contradicting, []*corralpb.PriorityClass{high}, "", 0, "",
			`Error creating: pods "ds-" is forbidden: the integer value of priority (5) must not be provided in pod spec; priority admission controller computed 1000 from the given PriorityClass name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan := PlanDaemonSet(DaemonPlanInput{DaemonSet: tc.ds, Nodes: []*corralpb.Node{nodeWith("n1", nil), nodeWith("n2", nil)},
				PriorityClasses: tc.classes, Now: planNow})
			if tc.failed != "" {
				if len(plan.Create) != 0 || len(plan.Events) != 1 || plan.Events[0].Type != "Warning" || plan.Events[0].Reason != "FailedCreate" ||
					plan.Events[0].Message != tc.failed || plan.Events[0].Regarding != nil {
					t.Fatalf("create %v events %q; want one FailedCreate %q on the DaemonSet", names(plan.Create), eventsOf(plan), tc.failed)
				}
				if plan.Status.GetDesiredNumberScheduled() != 2 {
					t.Fatalf("status %v", plan.Status)
				}
				return
			}
			if len(plan.Create) != 2 {
				t.Fatalf("create %v", names(plan.Create))
			}
			for _, p := range plan.Create {
				s := p.GetSpec()
				if s.GetPriorityClassName() != tc.className || s.Priority == nil || s.GetPriority() != tc.priority || s.GetPreemptionPolicy() != tc.policy {
					t.Fatalf("class %q priority %v policy %q; want %q %d %q", s.GetPriorityClassName(), s.Priority, s.GetPreemptionPolicy(),
						tc.className, tc.priority, tc.policy)
				}
			}
		})
	}
}
