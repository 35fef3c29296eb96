package scheduler

import (
	"fmt"
	"regexp"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"
	"pgregory.net/rapid"

	corralpb "github.com/corral-dev/corral/proto"
)

var planNow = time.Unix(1_800_000_000, 0)

func dsFor(spec *corralpb.PodSpec) *corralpb.DaemonSet {
	if spec == nil {
		spec = &corralpb.PodSpec{}
	}
	spec.Containers = []*corralpb.Container{{Name: "c", Image: "nginx:1.25"}}
	return &corralpb.DaemonSet{
		Metadata: &corralpb.ObjectMeta{Name: "ds", Namespace: "default", Uid: "ds-uid", Generation: 1},
		Spec: &corralpb.DaemonSetSpec{
			Selector: &corralpb.LabelSelector{MatchLabels: map[string]string{"app": "x"}},
			Template: &corralpb.PodTemplateSpec{Metadata: &corralpb.ObjectMeta{Labels: map[string]string{"app": "x"}}, Spec: spec},
		},
	}
}

func nodeWith(name string, labels map[string]string, taints ...*corralpb.Taint) *corralpb.Node {
	return &corralpb.Node{Metadata: &corralpb.ObjectMeta{Name: name, Labels: labels}, Spec: &corralpb.NodeSpec{Taints: taints}}
}

func TestNodeShouldRunDaemonPod(t *testing.T) {
	cp := &corralpb.Taint{Key: "node-role.kubernetes.io/control-plane", Effect: "NoSchedule"}
	noExec := &corralpb.Taint{Key: "dedicated", Value: "db", Effect: "NoExecute"}
	for _, tc := range []struct {
		name      string
		spec      *corralpb.PodSpec
		node      *corralpb.Node
		run, cont bool
	}{
		{"no constraints", nil, nodeWith("n", nil), true, true},
		{"nodeSelector matches", &corralpb.PodSpec{NodeSelector: map[string]string{"disktype": "ssd"}}, nodeWith("n", map[string]string{"disktype": "ssd"}), true, true},
		{"nodeSelector does not match", &corralpb.PodSpec{NodeSelector: map[string]string{"disktype": "ssd"}}, nodeWith("n", nil), false, false},
		{"affinity In matches", &corralpb.PodSpec{Affinity: affinityIn("environment", "production", "staging")}, nodeWith("n", map[string]string{"environment": "staging"}), true, true},
		{"affinity In does not match", &corralpb.PodSpec{Affinity: affinityIn("environment", "production", "staging")}, nodeWith("n", map[string]string{"environment": "dev"}), false, false},
		{"template nodeName elsewhere", &corralpb.PodSpec{NodeName: "other"}, nodeWith("n", nil), false, false},
		{"untolerated NoSchedule", nil, nodeWith("n", nil, cp), false, true},
		{"tolerated with Exists", &corralpb.PodSpec{Tolerations: []*corralpb.Toleration{{Key: cp.Key, Operator: "Exists", Effect: "NoSchedule"}}}, nodeWith("n", nil, cp), true, true},
		{"tolerated with an empty value", &corralpb.PodSpec{Tolerations: []*corralpb.Toleration{{Key: cp.Key, Operator: "Equal", Effect: "NoSchedule"}}}, nodeWith("n", nil, cp), true, true},
		{"tolerate everything NoSchedule", &corralpb.PodSpec{Tolerations: []*corralpb.Toleration{{Operator: "Exists", Effect: "NoSchedule"}}}, nodeWith("n", nil, cp), true, true},
		{"untolerated NoExecute evicts", nil, nodeWith("n", nil, noExec), false, false},
		{"PreferNoSchedule ignored", nil, nodeWith("n", nil, &corralpb.Taint{Key: "k", Effect: "PreferNoSchedule"}), true, true},
		{"cordoned nodes still run", nil, &corralpb.Node{Metadata: &corralpb.ObjectMeta{Name: "n"}, Spec: &corralpb.NodeSpec{Unschedulable: true,
			Taints: []*corralpb.Taint{{Key: TaintUnschedulable, Effect: "NoSchedule"}}}}, true, true},
		{"unreachable tolerated automatically", nil, nodeWith("n", nil, &corralpb.Taint{Key: TaintUnreachable, Effect: "NoExecute"}), true, true},
		{"not-ready tolerated automatically", nil, nodeWith("n", nil, &corralpb.Taint{Key: TaintNotReady, Effect: "NoExecute"}), true, true},
		{"network-unavailable stops pod networking", nil, nodeWith("n", nil, &corralpb.Taint{Key: taintNetworkUnavailable, Effect: "NoSchedule"}), false, true},
		{"network-unavailable tolerated with hostNetwork", &corralpb.PodSpec{HostNetwork: true}, nodeWith("n", nil, &corralpb.Taint{Key: taintNetworkUnavailable, Effect: "NoSchedule"}), true, true},
		{"disk-pressure tolerated automatically", nil, nodeWith("n", nil, &corralpb.Taint{Key: taintDiskPressure, Effect: "NoSchedule"}), true, true},
		{"memory-pressure tolerated automatically", nil, nodeWith("n", nil, &corralpb.Taint{Key: taintMemoryPressure, Effect: "NoSchedule"}), true, true},
		{"pid-pressure tolerated automatically", nil, nodeWith("n", nil, &corralpb.Taint{Key: taintPIDPressure, Effect: "NoSchedule"}), true, true},
		{"disk-pressure NoExecute is not tolerated", nil, nodeWith("n", nil, &corralpb.Taint{Key: taintDiskPressure, Effect: "NoExecute"}), false, false},
		{"affinity NotIn excludes", &corralpb.PodSpec{Affinity: affinityOf(expr("environment", "NotIn", "dev"))}, nodeWith("n", map[string]string{"environment": "dev"}), false, false},
		{"affinity NotIn admits", &corralpb.PodSpec{Affinity: affinityOf(expr("environment", "NotIn", "dev"))}, nodeWith("n", map[string]string{"environment": "production"}), true, true},
		{"affinity Exists", &corralpb.PodSpec{Affinity: affinityOf(expr("gpu", "Exists"))}, nodeWith("n", map[string]string{"gpu": ""}), true, true},
		{"affinity DoesNotExist", &corralpb.PodSpec{Affinity: affinityOf(expr("gpu", "DoesNotExist"))}, nodeWith("n", map[string]string{"gpu": ""}), false, false},
		{"affinity Gt", &corralpb.PodSpec{Affinity: affinityOf(expr("cores", "Gt", "4"))}, nodeWith("n", map[string]string{"cores": "8"}), true, true},
		{"affinity Lt", &corralpb.PodSpec{Affinity: affinityOf(expr("cores", "Lt", "4"))}, nodeWith("n", map[string]string{"cores": "8"}), false, false},
		{"affinity matchFields metadata.name", &corralpb.PodSpec{Affinity: &corralpb.Affinity{NodeAffinity: &corralpb.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corralpb.NodeSelector{
			NodeSelectorTerms: []*corralpb.NodeSelectorTerm{{MatchFields: []*corralpb.NodeSelectorRequirement{expr("metadata.name", "In", "n")}}}}}}}, nodeWith("n", nil), true, true},
		{"affinity matchFields another node", &corralpb.PodSpec{Affinity: &corralpb.Affinity{NodeAffinity: &corralpb.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corralpb.NodeSelector{
			NodeSelectorTerms: []*corralpb.NodeSelectorTerm{{MatchFields: []*corralpb.NodeSelectorRequirement{expr("metadata.name", "In", "m")}}}}}}}, nodeWith("n", nil), false, false},
		{"affinity terms are ORed", &corralpb.PodSpec{Affinity: &corralpb.Affinity{NodeAffinity: &corralpb.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corralpb.NodeSelector{
			NodeSelectorTerms: []*corralpb.NodeSelectorTerm{{MatchExpressions: []*corralpb.NodeSelectorRequirement{expr("zone", "In", "a")}},
				{MatchExpressions: []*corralpb.NodeSelectorRequirement{expr("zone", "In", "b")}}}}}}}, nodeWith("n", map[string]string{"zone": "b"}), true, true},
		{"nodeSelector and affinity must both match", &corralpb.PodSpec{NodeSelector: map[string]string{"disktype": "ssd"}, Affinity: affinityIn("environment", "production")},
			nodeWith("n", map[string]string{"environment": "production"}), false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run, cont := NodeShouldRunDaemonPod(tc.node, dsFor(tc.spec))
			if run != tc.run || cont != tc.cont {
				t.Fatalf("(shouldRun, shouldContinueRunning) = (%v, %v), want (%v, %v)", run, cont, tc.run, tc.cont)
			}
		})
	}
}

func affinityIn(key string, values ...string) *corralpb.Affinity {
	return &corralpb.Affinity{NodeAffinity: &corralpb.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corralpb.NodeSelector{
		NodeSelectorTerms: []*corralpb.NodeSelectorTerm{{MatchExpressions: []*corralpb.NodeSelectorRequirement{{Key: key, Operator: "In", Values: values}}}}}}}
}

func expr(key, op string, values ...string) *corralpb.NodeSelectorRequirement {
	return &corralpb.NodeSelectorRequirement{Key: key, Operator: op, Values: values}
}

func affinityOf(reqs ...*corralpb.NodeSelectorRequirement) *corralpb.Affinity {
	return &corralpb.Affinity{NodeAffinity: &corralpb.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corralpb.NodeSelector{
		NodeSelectorTerms: []*corralpb.NodeSelectorTerm{{MatchExpressions: reqs}}}}}
}

// daemonPod is a pod of ds on node, created age ago, in phase, ready or not.
func daemonPod(ds *corralpb.DaemonSet, name, node string, age time.Duration, phase string, ready bool) *corralpb.Pod {
	p := NewDaemonPod(ds, node, TemplateHash(ds))
	p.Metadata.Name, p.Metadata.Uid = name, "uid-"+name
	p.Metadata.CreationTimestamp = timestamppb.New(planNow.Add(-age))
	readyStatus := "False"
	if ready {
		readyStatus = "True"
	}
	p.Status = &corralpb.PodStatus{Phase: phase, Conditions: []*corralpb.PodCondition{{Type: "Ready", Status: readyStatus,
		LastTransitionTime: timestamppb.New(planNow.Add(-age))}}}
	return p
}

func names(pods []*corralpb.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.GetMetadata().GetName()+"@"+p.GetSpec().GetNodeName())
	}
	return out
}

func TestPlanDaemonSet(t *testing.T) {
	ds := dsFor(nil)
	n1, n2, n3 := nodeWith("n1", nil), nodeWith("n2", nil), nodeWith("n3", nil)
	tainted := nodeWith("n3", nil, &corralpb.Taint{Key: "k", Effect: "NoSchedule"})
	evict := nodeWith("n3", nil, &corralpb.Taint{Key: "k", Effect: "NoExecute"})
	orphan := daemonPod(ds, "orphan", "n2", time.Hour, "Running", true)
	orphan.Metadata.OwnerReferences = nil
	affine := dsFor(&corralpb.PodSpec{Affinity: affinityIn("environment", "production")})
	for _, tc := range []struct {
		name         string
		ds           *corralpb.DaemonSet
		nodes        []*corralpb.Node
		pods         []*corralpb.Pod
		creates      int
		deletes      []string
		adopts       int
		desired, mis int32
		current, avl int32
	}{
		{"a pod for every node", ds, []*corralpb.Node{n1, n2, n3}, nil, 3, nil, 0, 3, 0, 0, 0},
		{"converged", ds, []*corralpb.Node{n1, n2}, []*corralpb.Pod{daemonPod(ds, "a", "n1", time.Hour, "Running", true), daemonPod(ds, "b", "n2", time.Hour, "Running", true)}, 0, nil, 0, 2, 0, 2, 2},
		{"two pods on a node: the younger goes", ds, []*corralpb.Node{n1}, []*corralpb.Pod{daemonPod(ds, "old", "n1", time.Hour, "Running", true), daemonPod(ds, "young", "n1", time.Minute, "Running", true)}, 0, []string{"young@n1"}, 0, 1, 0, 1, 1},
		{"NoSchedule added later: misscheduled, kept", ds, []*corralpb.Node{tainted}, []*corralpb.Pod{daemonPod(ds, "a", "n3", time.Hour, "Running", true)}, 0, nil, 0, 0, 1, 0, 0},
		{"NoSchedule: no new pod", ds, []*corralpb.Node{tainted}, nil, 0, nil, 0, 0, 0, 0, 0},
		{"NoExecute evicts", ds, []*corralpb.Node{evict}, []*corralpb.Pod{daemonPod(ds, "a", "n3", time.Hour, "Running", true)}, 0, []string{"a@n3"}, 0, 0, 0, 0, 0},
		{"pod of a deleted node", ds, []*corralpb.Node{n1}, []*corralpb.Pod{daemonPod(ds, "a", "n1", time.Hour, "Running", true), daemonPod(ds, "gone", "n9", time.Hour, "Running", true)}, 0, []string{"gone@n9"}, 0, 1, 0, 1, 1},
		{"failed pod deleted, replacement backs off", ds, []*corralpb.Node{n1}, []*corralpb.Pod{daemonPod(ds, "f", "n1", time.Minute, "Failed", false)}, 0, []string{"f@n1"}, 0, 1, 0, 0, 0},
		{"succeeded pod replaced", ds, []*corralpb.Node{n1}, []*corralpb.Pod{daemonPod(ds, "s", "n1", time.Minute, "Succeeded", false)}, 0, []string{"s@n1"}, 0, 1, 0, 0, 0},
		{"orphan adopted, not duplicated", ds, []*corralpb.Node{n2}, []*corralpb.Pod{orphan}, 0, nil, 1, 1, 0, 1, 1},
		{"affinity no longer matches: the pod goes", affine, []*corralpb.Node{nodeWith("n1", map[string]string{"environment": "dev"})},
			[]*corralpb.Pod{daemonPod(affine, "a", "n1", time.Hour, "Running", true)}, 0, []string{"a@n1"}, 0, 0, 0, 0, 0},
		{"not ready is not available", ds, []*corralpb.Node{n1}, []*corralpb.Pod{daemonPod(ds, "a", "n1", time.Hour, "Running", false)}, 0, nil, 0, 1, 0, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan := PlanDaemonSet(DaemonPlanInput{DaemonSet: tc.ds, Nodes: tc.nodes, Pods: tc.pods, Now: planNow})
			if len(plan.Create) != tc.creates || fmt.Sprint(names(plan.Delete)) != fmt.Sprint(tc.deletes) || len(plan.Adopt) != tc.adopts {
				t.Fatalf("create %v, delete %v, adopt %v; want %d creates, deletes %v, %d adoptions",
					names(plan.Create), names(plan.Delete), names(plan.Adopt), tc.creates, tc.deletes, tc.adopts)
			}
			st := plan.Status
			if st.GetDesiredNumberScheduled() != tc.desired || st.GetNumberMisscheduled() != tc.mis ||
				st.GetCurrentNumberScheduled() != tc.current || st.GetNumberAvailable() != tc.avl {
				t.Fatalf("status %v", st)
			}
			if st.GetNumberUnavailable() != st.GetDesiredNumberScheduled()-st.GetNumberAvailable() || st.GetObservedGeneration() != 1 {
				t.Fatalf("status %v", st)
			}
		})
	}
}

func TestPlanFailedPodBackOff(t *testing.T) {
	ds := dsFor(nil)
	n1 := nodeWith("n1", nil)
	plan := PlanDaemonSet(DaemonPlanInput{DaemonSet: ds, Nodes: []*corralpb.Node{n1},
		Pods: []*corralpb.Pod{daemonPod(ds, "f", "n1", time.Minute, "Failed", false)}, Now: planNow})
	b := plan.BackOff["n1"]
	if b.Delay != time.Second || len(plan.Events) != 1 || plan.Events[0].Reason != "FailedDaemonPod" || plan.Requeue != time.Second {
		t.Fatalf("first failure: backoff %+v events %v requeue %v", b, plan.Events, plan.Requeue)
	}
	// Inside the back-off no replacement is made; after it, one is.
	inside := PlanDaemonSet(DaemonPlanInput{DaemonSet: ds, Nodes: []*corralpb.Node{n1}, FailedBackOff: plan.BackOff, Now: planNow.Add(500 * time.Millisecond)})
	after := PlanDaemonSet(DaemonPlanInput{DaemonSet: ds, Nodes: []*corralpb.Node{n1}, FailedBackOff: plan.BackOff, Now: planNow.Add(2 * time.Second)})
	if len(inside.Create) != 0 || len(after.Create) != 1 {
		t.Fatalf("creates inside back-off %d, after %d", len(inside.Create), len(after.Create))
	}
	// A second failure doubles the delay.
	again := PlanDaemonSet(DaemonPlanInput{DaemonSet: ds, Nodes: []*corralpb.Node{n1}, FailedBackOff: plan.BackOff,
		Pods: []*corralpb.Pod{daemonPod(ds, "f2", "n1", 0, "Failed", false)}, Now: planNow.Add(3 * time.Second)})
	if d := again.BackOff["n1"].Delay; d != 2*time.Second {
		t.Fatalf("second failure delay %v, want 2s", d)
	}
	// Doubling stops at 15 minutes.
	long := map[string]BackOff{"n1": {Until: planNow.Add(-time.Second), Delay: 10 * time.Minute}}
	capped := PlanDaemonSet(DaemonPlanInput{DaemonSet: ds, Nodes: []*corralpb.Node{n1}, FailedBackOff: long,
		Pods: []*corralpb.Pod{daemonPod(ds, "f3", "n1", 0, "Failed", false)}, Now: planNow})
	if b := capped.BackOff["n1"]; b.Delay != 15*time.Minute || !b.Until.Equal(planNow.Add(15*time.Minute)) {
		t.Fatalf("failure after a 10m back-off: %+v, want 15m", b)
	}
}

// A Succeeded pod is deleted with Kubernetes' SucceededDaemonPod event and
// replaced at once: it did not fail, so no back-off.
func TestPlanSucceededPod(t *testing.T) {
	ds := dsFor(nil)
	plan := PlanDaemonSet(DaemonPlanInput{DaemonSet: ds, Nodes: []*corralpb.Node{nodeWith("n1", nil)},
		Pods: []*corralpb.Pod{daemonPod(ds, "s", "n1", time.Minute, "Succeeded", false)}, Now: planNow})
	want := PlanEvent{Type: "Normal", Reason: "SucceededDaemonPod", Message: "Found succeeded daemon pod default/s on node n1, will try to delete it"}
	if len(plan.Events) != 1 || plan.Events[0] != want || len(plan.BackOff) != 0 {
		t.Fatalf("events %+v, back-off %v; want %+v and none", plan.Events, plan.BackOff, want)
	}
	next := PlanDaemonSet(DaemonPlanInput{DaemonSet: ds, Nodes: []*corralpb.Node{nodeWith("n1", nil)}, FailedBackOff: plan.BackOff, Now: planNow})
	if len(next.Create) != 1 {
		t.Fatalf("after the succeeded pod went: %d creates, want 1", len(next.Create))
	}
}

// The pod a DaemonSet runs on a node, as Kubernetes' controller makes it.
func TestNewDaemonPod(t *testing.T) {
	ds := dsFor(&corralpb.PodSpec{Affinity: affinityIn("environment", "production"),
		Tolerations: []*corralpb.Toleration{{Key: TaintNotReady, Operator: "Exists", Effect: "NoExecute"}}})
	ds.Metadata.Generation = 3
	ds.Spec.Template.Metadata.Annotations = map[string]string{"note": "x"}
	hash := TemplateHash(ds)
	p := NewDaemonPod(ds, "n1", hash)
	m := p.GetMetadata()
	if m.GetGenerateName() != "ds-" || m.GetNamespace() != "default" || p.GetApiVersion() != "v1" || p.GetKind() != "Pod" {
		t.Fatalf("metadata %v", m)
	}
	wantLabels := map[string]string{"app": "x", LabelRevisionHash: hash, LabelTemplateGeneration: "3"}
	if fmt.Sprint(m.GetLabels()) != fmt.Sprint(wantLabels) || m.GetAnnotations()["note"] != "x" {
		t.Fatalf("labels %v annotations %v, want labels %v", m.GetLabels(), m.GetAnnotations(), wantLabels)
	}
	refs := m.GetOwnerReferences()
	if len(refs) != 1 || refs[0].GetApiVersion() != "apps/v1" || refs[0].GetKind() != "DaemonSet" || refs[0].GetName() != "ds" ||
		refs[0].GetUid() != "ds-uid" || !refs[0].GetController() || !refs[0].GetBlockOwnerDeletion() {
		t.Fatalf("owner references %v", refs)
	}
	spec := p.GetSpec()
	terms := spec.GetAffinity().GetNodeAffinity().GetRequiredDuringSchedulingIgnoredDuringExecution().GetNodeSelectorTerms()
	if spec.GetNodeName() != "n1" || len(terms) != 1 || len(terms[0].GetMatchExpressions()) != 0 || len(terms[0].GetMatchFields()) != 1 ||
		fmt.Sprint(terms[0].GetMatchFields()[0]) != fmt.Sprint(expr("metadata.name", "In", "n1")) {
		t.Fatalf("node %q, required affinity %v; want n1 and only the matchFields metadata.name term", spec.GetNodeName(), terms)
	}
	var tols []string
	for _, tol := range spec.GetTolerations() {
		tols = append(tols, tol.GetKey()+":"+tol.GetEffect())
	}
	wantTols := []string{TaintNotReady + ":NoExecute", TaintUnreachable + ":NoExecute", taintDiskPressure + ":NoSchedule",
		taintMemoryPressure + ":NoSchedule", taintPIDPressure + ":NoSchedule", TaintUnschedulable + ":NoSchedule"}
	if fmt.Sprint(tols) != fmt.Sprint(wantTols) {
		t.Fatalf("tolerations %v, want %v (the template's not-ready one not repeated)", tols, wantTols)
	}
	if ds.GetSpec().GetTemplate().GetSpec().GetNodeName() != "" || len(ds.GetSpec().GetTemplate().GetSpec().GetTolerations()) != 1 {
		t.Fatal("NewDaemonPod changed the DaemonSet's template")
	}
	// Names: the DaemonSet's name and five characters of Kubernetes'
	// alphabet for generated names.
	for range 20 {
		if s := randomSuffix(5); !regexp.MustCompile(`^[bcdfghjklmnpqrstvwxz2456789]{5}$`).MatchString(s) {
			t.Fatalf("suffix %q", s)
		}
	}
}

func TestPlanForegroundDeletion(t *testing.T) {
	ds := dsFor(nil)
	ds.Metadata.DeletionTimestamp = timestamppb.New(planNow)
	ds.Metadata.Finalizers = []string{"foregroundDeletion"}
	plan := PlanDaemonSet(DaemonPlanInput{DaemonSet: ds, Nodes: []*corralpb.Node{nodeWith("n1", nil)},
		Pods: []*corralpb.Pod{daemonPod(ds, "a", "n1", time.Hour, "Running", true)}, Now: planNow})
	if len(plan.Create) != 0 || len(plan.Delete) != 1 {
		t.Fatalf("foreground deletion: create %v delete %v", names(plan.Create), names(plan.Delete))
	}
}

// TestPlanConverges is the controller's invariant as a property: whatever
// the nodes (labels, taints, allocatable), the pods of others already on
// them, and two DaemonSets with random requests and priority classes,
// committing plan after plan, each against the state the one before left
// (as the guarded batches force), keeps every pod a plan binds within its
// node's allocatable, and ends with at most one pod of each DaemonSet per
// node (bound or waiting), exactly one on every node that should run one,
// none on a node that must not keep one; planning again then changes
// nothing (in particular, no waiting pod could be bound).
func TestPlanConverges(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		w := drawWorld(t)
		for round := range 4 {
			for _, ds := range w.dss {
				plan := w.plan(ds, planNow.Add(time.Hour*time.Duration(round)))
				w.apply(plan, fmt.Sprintf("r%d-%s", round, ds.GetMetadata().GetName()))
				w.checkBoundFit(t, plan)
			}
		}
		for _, ds := range w.dss {
			final := w.plan(ds, planNow.Add(10*time.Hour))
			if n := len(final.Create) + len(final.Delete) + len(final.Bind) + len(final.Preempt) + len(final.UpdateStatus); n != 0 {
				t.Fatalf("%s not converged: create %v delete %v bind %v preempt %v status %v", ds.GetMetadata().GetName(), names(final.Create),
					names(final.Delete), names(final.Bind), names(final.Preempt), names(final.UpdateStatus))
			}
			w.checkPlacement(t, ds)
		}
	})
}

// world is the state the property test's plans run against.
type world struct {
	nodes   []*corralpb.Node
	pods    []*corralpb.Pod // every pod: others' and the DaemonSets'
	dss     []*corralpb.DaemonSet
	classes []*corralpb.PriorityClass
}

func drawWorld(t *rapid.T) *world {
	never := PreemptNever
	w := &world{classes: []*corralpb.PriorityClass{
		{Metadata: &corralpb.ObjectMeta{Name: "low"}, Value: 100},
		{Metadata: &corralpb.ObjectMeta{Name: "high"}, Value: 1000},
		{Metadata: &corralpb.ObjectMeta{Name: "high-never"}, Value: 1000, PreemptionPolicy: &never},
	}}
	spec := &corralpb.PodSpec{}
	if rapid.Bool().Draw(t, "selector") {
		spec.NodeSelector = map[string]string{"disktype": "ssd"}
	}
	first, second := dsFor(spec), dsFor(nil)
	second.Metadata.Name, second.Metadata.Uid = "ds2", "ds2-uid"
	second.Spec.Selector.MatchLabels = map[string]string{"app": "y"}
	second.Spec.Template.Metadata.Labels = map[string]string{"app": "y"}
	for _, ds := range []*corralpb.DaemonSet{first, second} {
		tpl := ds.Spec.Template.Spec
		tpl.PriorityClassName = rapid.SampledFrom([]string{"", "low", "high", "high-never", PriorityClassNodeCritical}).Draw(t, "class")
		tpl.Containers[0].Resources = drawResources(t)
		w.dss = append(w.dss, ds)
	}
	for i := range rapid.IntRange(0, 6).Draw(t, "nodes") {
		name := fmt.Sprintf("n%d", i)
		labels := map[string]string{}
		if rapid.Bool().Draw(t, "ssd") {
			labels["disktype"] = "ssd"
		}
		var taints []*corralpb.Taint
		if effect := rapid.SampledFrom([]string{"", "NoSchedule", "NoExecute", "PreferNoSchedule"}).Draw(t, "taint"); effect != "" {
			taints = append(taints, &corralpb.Taint{Key: "k", Effect: effect})
		}
		node := nodeWith(name, labels, taints...)
		if rapid.IntRange(0, 3).Draw(t, "known") > 0 {
			node.Status = &corralpb.NodeStatus{Allocatable: map[string]string{
				"cpu":    rapid.SampledFrom([]string{"1", "2", "4"}).Draw(t, "cpu"),
				"memory": rapid.SampledFrom([]string{"1Gi", "2Gi", "4Gi"}).Draw(t, "memory"),
				"pods":   rapid.SampledFrom([]string{"1", "2", "3", "110"}).Draw(t, "pods"),
			}}
		}
		w.nodes = append(w.nodes, node)
		for j := range rapid.IntRange(0, 3).Draw(t, "others") {
			prio := rapid.SampledFrom([]int32{0, 100, 1000, 2000}).Draw(t, "priority")
			p := other(fmt.Sprintf("o%d-%d", i, j), name, prio, drawResources(t), time.Duration(rapid.IntRange(-1, 5).Draw(t, "age"))*time.Hour)
			p.Status.Phase = rapid.SampledFrom([]string{"Running", "Running", "Succeeded"}).Draw(t, "otherPhase")
			w.pods = append(w.pods, p)
		}
		for j := range rapid.IntRange(0, 3).Draw(t, "pods") {
			phase := rapid.SampledFrom([]string{"Running", "Pending", "Failed", "Succeeded"}).Draw(t, "phase")
			p := daemonPod(first, fmt.Sprintf("p%d-%d", i, j), name, time.Duration(j)*time.Minute, phase, true)
			if phase == "Pending" && rapid.Bool().Draw(t, "unbound") {
				p.Spec.NodeName = ""
			}
			w.pods = append(w.pods, p)
		}
	}
	return w
}

func drawResources(t *rapid.T) *corralpb.ResourceRequirements {
	r := map[string]string{}
	if c := rapid.SampledFrom([]string{"", "250m", "1"}).Draw(t, "reqCPU"); c != "" {
		r["cpu"] = c
	}
	if m := rapid.SampledFrom([]string{"", "512Mi", "1Gi", "2Gi"}).Draw(t, "reqMemory"); m != "" {
		r["memory"] = m
	}
	if rapid.Bool().Draw(t, "asLimits") {
		return res(nil, r)
	}
	return res(r, nil)
}

// plan plans ds against the world as it stands.
func (w *world) plan(ds *corralpb.DaemonSet, now time.Time) *DaemonPlan {
	var mine []*corralpb.Pod
	for _, p := range w.pods {
		if _, owner := controllerOf(p.GetMetadata()); owner == ds.GetMetadata().GetUid() {
			mine = append(mine, p)
		}
	}
	return PlanDaemonSet(DaemonPlanInput{DaemonSet: ds, Nodes: w.nodes, Pods: mine, PodsOnNode: onNodes(w.pods...),
		PriorityClasses: w.classes, Now: now})
}

// apply is what committing a plan does: deletions and preemptions,
// bindings and status updates, then creations (bound ones run at once).
func (w *world) apply(plan *DaemonPlan, tag string) {
	gone, replaced := map[string]bool{}, map[string]*corralpb.Pod{}
	for _, p := range append(append([]*corralpb.Pod(nil), plan.Delete...), plan.Preempt...) {
		gone[p.GetMetadata().GetUid()] = true
	}
	for _, p := range append(append([]*corralpb.Pod(nil), plan.UpdateStatus...), plan.Bind...) {
		replaced[p.GetMetadata().GetUid()] = p
	}
	var out []*corralpb.Pod
	for _, p := range w.pods {
		uid := p.GetMetadata().GetUid()
		if r, ok := replaced[uid]; ok {
			p = r
		}
		if !gone[uid] {
			out = append(out, p)
		}
	}
	for i, p := range plan.Create {
		p.Metadata.Name = fmt.Sprintf("new-%s-%d", tag, i)
		p.Metadata.Uid = "uid-" + p.Metadata.Name
		p.Metadata.CreationTimestamp = timestamppb.New(planNow)
		if p.GetSpec().GetNodeName() != "" {
			p.Status = &corralpb.PodStatus{Phase: "Running", Conditions: []*corralpb.PodCondition{{Type: "Ready", Status: "True"}}}
		}
		out = append(out, p)
	}
	w.pods = out
}

// checkBoundFit checks that every pod the plan bound fits its node: for
// each resource it asks for, the requests of the running pods there stay
// within the node's allocatable. (The pods drawn at the start may
// overcommit a node; a pod asking for none of a resource may join it, as in
// Kubernetes.)
func (w *world) checkBoundFit(t *rapid.T, plan *DaemonPlan) {
	for _, p := range append(append([]*corralpb.Pod(nil), plan.Create...), plan.Bind...) {
		node := p.GetSpec().GetNodeName()
		if node == "" {
			continue
		}
		var alloc resourceList
		for _, n := range w.nodes {
			if n.GetMetadata().GetName() == node {
				alloc = allocatableOf(n)
			}
		}
		used := resourceList{}
		for _, q := range onNodes(w.pods...)(node) {
			if !terminated(q) {
				used.add(podRequests(q.GetSpec()), 1)
			}
		}
		for name, want := range podRequests(p.GetSpec()) {
			if have, ok := alloc[name]; ok && want > 0 && used[name] > have {
				t.Fatalf("pod %s bound to %s: %s %d of %d", p.GetMetadata().GetName(), node, name, used[name], have)
			}
		}
	}
}

// checkPlacement checks where ds's pods are, bound or waiting.
func (w *world) checkPlacement(t *rapid.T, ds *corralpb.DaemonSet) {
	perNode := map[string]int{}
	for _, p := range w.pods {
		if _, owner := controllerOf(p.GetMetadata()); owner == ds.GetMetadata().GetUid() {
			perNode[targetNode(p)]++
		}
	}
	known := 0
	for _, n := range w.nodes {
		name := n.GetMetadata().GetName()
		run, cont := NodeShouldRunDaemonPod(n, ds)
		got := perNode[name]
		known += got
		switch {
		case got > 1:
			t.Fatalf("%s: node %s has %d pods", ds.GetMetadata().GetName(), name, got)
		case run && got != 1:
			t.Fatalf("%s: eligible node %s has %d pods", ds.GetMetadata().GetName(), name, got)
		case !cont && got != 0:
			t.Fatalf("%s: node %s must not run the pod but has %d", ds.GetMetadata().GetName(), name, got)
		}
	}
	if total := sum(perNode); total != known {
		t.Fatalf("%s: %d pods belong to no node", ds.GetMetadata().GetName(), total-known)
	}
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
