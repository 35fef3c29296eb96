package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/corral-dev/corral/api"
	"github.com/corral-dev/corral/events"
	corralpb "github.com/corral-dev/corral/proto"
	"github.com/corral-dev/corral/raftstore/state"
)

// recorder keeps the events recorded, as "Kind/name Type Reason: message".
type recorder struct {
	mu  sync.Mutex
	got []string
}

var _ events.Recorder = (*recorder)(nil)

func (r *recorder) Event(obj *corralpb.Object, eventType, reason, message string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, fmt.Sprintf("%s/%s %s %s: %s", api.KindOf(obj), api.Meta(obj).GetName(), eventType, reason, message))
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.got
	r.got = nil
	slices.Sort(out)
	return out
}

func put(o proto.Message) *corralpb.Op {
	return &corralpb.Op{Type: corralpb.Op_PUT, Object: api.Wrap(o)}
}

// storedPods returns the stored pods by name.
func storedPods(t *testing.T, c *storeCluster) map[string]*corralpb.Pod {
	t.Helper()
	objs, err := c.st.List(nil, "Pod", "")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*corralpb.Pod{}
	for _, o := range objs {
		out[o.GetPod().GetMetadata().GetName()] = o.GetPod()
	}
	return out
}

// The controller passes the node's pods and the priority classes to the
// planner, commits preemption and binding in one batch, and records the
// events on the DaemonSet and on the pods.
func TestDaemonSetControllerFitAndPreemption(t *testing.T) {
	c := newStoreCluster(t)
	n1 := allocNode("n1", "2", "4Gi", "110")
	n1.Kind, n1.ApiVersion = "Node", "v1"
	n1.Metadata.Uid = "uid-n1"
	low := other("low", "n1", 0, res(mem("3Gi"), nil), time.Hour)
	c.apply(t, put(&corralpb.Namespace{Metadata: &corralpb.ObjectMeta{Name: "kube-system", Uid: "ns-ks"}}), put(n1), put(low),
		put(&corralpb.PriorityClass{Metadata: &corralpb.ObjectMeta{Name: "high", Uid: "pc-high"}, Value: 1000}))
	rec := &recorder{}
	ctl := NewDaemonSetController(c, rec, slog.New(slog.DiscardHandler))
	syncDS := func(ds *corralpb.DaemonSet) {
		t.Helper()
		if err := ctl.sync(context.Background(), dsKey(ds)); err != nil {
			t.Fatalf("sync %s: %v", dsKey(ds), err)
		}
	}

	// A pod of priority 0 on n1 makes room for the DaemonSet's pod.
	high := dsAsking(res(mem("2Gi"), nil), "high")
	high.Metadata.Name, high.Metadata.Uid = "agent", "uid-agent"
	c.apply(t, put(high))
	syncDS(high)
	pods := storedPods(t, c)
	if _, ok := pods["low"]; ok || len(pods) != 1 {
		t.Fatalf("pods %v: want low preempted and one pod", pods)
	}
	var agent *corralpb.Pod
	for _, p := range pods {
		agent = p
	}
	if agent.GetSpec().GetNodeName() != "n1" || agent.GetSpec().GetPriority() != 1000 {
		t.Fatalf("pod %s on %q priority %d", agent.GetMetadata().GetName(), agent.GetSpec().GetNodeName(), agent.GetSpec().GetPriority())
	}
	want := []string{
		"DaemonSet/agent Normal SuccessfulCreate: Created pod: " + agent.GetMetadata().GetName(),
		fmt.Sprintf("Pod/low Normal Preempted: Preempted by pod %s on node n1", agent.GetMetadata().GetUid()),
	}
	if got := rec.take(); !slices.Equal(got, want) {
		t.Fatalf("events\n%q\nwant\n%q", got, want)
	}

	// A DaemonSet whose pod cannot fit: created unbound, FailedScheduling
	// on the pod; bound once the node grows.
	big := dsAsking(res(mem("4Gi"), nil), "")
	big.Metadata.Name, big.Metadata.Uid = "big", "uid-big"
	big.Spec.Selector.MatchLabels = map[string]string{"app": "big"}
	big.Spec.Template.Metadata.Labels = map[string]string{"app": "big"}
	c.apply(t, put(big))
	syncDS(big)
	var pending *corralpb.Pod
	for _, p := range storedPods(t, c) {
		if p.GetMetadata().GetLabels()["app"] == "big" {
			pending = p
		}
	}
	if pending == nil || pending.GetSpec().GetNodeName() != "" || targetNode(pending) != "n1" || pending.GetStatus().GetPhase() != "Pending" {
		t.Fatalf("pending pod %v", pending)
	}
	name := pending.GetMetadata().GetName()
	want = []string{"DaemonSet/big Normal SuccessfulCreate: Created pod: " + name,
		"Pod/" + name + " Warning FailedScheduling: 0/1 nodes are available: 1 Insufficient memory."}
	if got := rec.take(); !slices.Equal(got, want) {
		t.Fatalf("events\n%q\nwant\n%q", got, want)
	}
	syncDS(big) // the status counts the pod
	writes := c.writes
	syncDS(big) // nothing changed: no new event, no write
	if got := rec.take(); len(got) != 0 || c.writes != writes {
		t.Fatalf("events %q, %d writes", got, c.writes-writes)
	}
	grown := proto.Clone(n1).(*corralpb.Node)
	grown.Status.Allocatable["memory"] = "8Gi"
	c.apply(t, put(grown))
	syncDS(big)
	if p := storedPods(t, c)[name]; p.GetSpec().GetNodeName() != "n1" {
		t.Fatalf("pod %s not bound: %v", name, p.GetSpec().GetNodeName())
	}
	want = []string{"Pod/" + name + " Normal Scheduled: Successfully assigned default/" + name + " to n1"}
	if got := rec.take(); !slices.Equal(got, want) {
		t.Fatalf("events\n%q\nwant\n%q", got, want)
	}

	// A class that does not exist: nothing created, FailedCreate on the
	// DaemonSet though the plan writes nothing else.
	unknown := dsAsking(nil, "nope")
	unknown.Metadata.Name, unknown.Metadata.Uid = "unknown", "uid-unknown"
	unknown.Spec.Selector.MatchLabels = map[string]string{"app": "unknown"}
	unknown.Spec.Template.Metadata.Labels = map[string]string{"app": "unknown"}
	// Its status is already what the plan computes: the plan writes nothing.
	unknown.Status = &corralpb.DaemonSetStatus{DesiredNumberScheduled: 1, NumberUnavailable: 1, ObservedGeneration: 1}
	c.apply(t, put(unknown))
	syncDS(unknown)
	want = []string{`DaemonSet/unknown Warning FailedCreate: Error creating: pods "unknown-" is forbidden: no PriorityClass with name nope was found`}
	if got := rec.take(); !slices.Equal(got, want) {
		t.Fatalf("events\n%q\nwant\n%q", got, want)
	}
}

// The pods a sync creates are written once through a base (what they
// share) and each as what differs; they are stored whole.
func TestDaemonSetControllerWritesCreatedPodsThroughABase(t *testing.T) {
	c := newStoreCluster(t)
	var ops []*corralpb.Op
	for _, name := range []string{"n1", "n2", "n3"} {
		n := allocNode(name, "2", "4Gi", "110")
		n.Kind, n.ApiVersion = "Node", "v1"
		n.Metadata.Uid = "uid-" + name
		ops = append(ops, put(n))
	}
	c.apply(t, append(ops, put(&corralpb.Namespace{Metadata: &corralpb.ObjectMeta{Name: "kube-system", Uid: "ns-ks"}}))...)
	ds := dsAsking(res(mem("64Mi"), nil), "")
	ds.Metadata.Name, ds.Metadata.Uid = "agent", "uid-agent"
	c.apply(t, put(ds))
	ctl := NewDaemonSetController(c, &recorder{}, slog.New(slog.DiscardHandler))
	if err := ctl.sync(context.Background(), dsKey(ds)); err != nil {
		t.Fatal(err)
	}
	creates := c.batches[len(c.batches)-1]
	if len(creates.GetBases()) != 1 {
		t.Fatalf("the batch has %d bases, want 1", len(creates.GetBases()))
	}
	thin := 0
	for _, op := range creates.GetOps() {
		if op.GetBase() == 1 {
			thin++
			if op.GetObject().GetPod().GetSpec().GetContainers() != nil {
				t.Errorf("op for %s carries the containers the base has", op.GetObject().GetPod().GetSpec().GetNodeName())
			}
		}
	}
	if thin != 3 {
		t.Fatalf("%d of the creations go through the base, want 3", thin)
	}
	pods := storedPods(t, c)
	if len(pods) != 3 {
		t.Fatalf("%d pods stored, want 3", len(pods))
	}
	hash := TemplateHash(ds)
	for name, p := range pods {
		node := p.GetSpec().GetNodeName()
		want := NewDaemonPod(ds, node, hash)
		want.Metadata.Name, want.Metadata.Uid = name, p.GetMetadata().GetUid()
		want.Metadata.CreationTimestamp, want.Metadata.Generation = p.GetMetadata().GetCreationTimestamp(), 1
		want.Metadata.ResourceVersion = p.GetMetadata().GetResourceVersion()
		want.Status = &corralpb.PodStatus{Phase: "Pending"}
		// Admission's (no priority class: priority 0).
		want.Spec.Priority, want.Spec.PreemptionPolicy = p.GetSpec().Priority, p.GetSpec().PreemptionPolicy
		if p.GetMetadata().GetUid() == "" || !proto.Equal(p, want) {
			t.Errorf("stored pod %s:\n got %v\nwant %v", name, p, want)
		}
	}
}

// TestRouteSkipsStatusOnlyChanges: a DaemonSet change queues a sync unless
// only its status (collisionCount aside) or resourceVersion moved, as when
// the controller wrote the status it had just planned.
func TestRouteSkipsStatusOnlyChanges(t *testing.T) {
	c := NewDaemonSetController(nil, nil, nil)
	ds := dsFor(nil)
	ds.Metadata.ResourceVersion = "10"
	step := func(name string, typ string, ds *corralpb.DaemonSet, want bool) {
		t.Helper()
		if got := c.planChanged(typ, proto.Clone(ds).(*corralpb.DaemonSet)); got != want {
			t.Errorf("%s: queued %v, want %v", name, got, want)
		}
	}
	step("first sight", state.EventAdded, ds, true)
	step("same again", state.EventModified, ds, false)
	ds.Status = &corralpb.DaemonSetStatus{NumberReady: 3, DesiredNumberScheduled: 3}
	ds.Metadata.ResourceVersion = "11"
	step("status written", state.EventModified, ds, false)
	n := int32(1)
	ds.Status.CollisionCount = &n
	step("collisionCount raised", state.EventModified, ds, true)
	ds.Spec.Template.Spec.Containers[0].Image = "nginx:1.26"
	ds.Metadata.Generation++
	step("template changed", state.EventModified, ds, true)
	ds.Metadata.Annotations = map[string]string{"kubernetes.io/change-cause": "upgrade"}
	step("annotation set", state.EventModified, ds, true)
	ds.Metadata.DeletionTimestamp = timestamppb.New(planNow)
	step("deletion begun", state.EventModified, ds, true)
	step("deleted", state.EventDeleted, ds, true)
	step("recreated with the same content", state.EventAdded, ds, true)
}

// TestStaleSince: the controller refuses its own plan when the local store
// already shows a guarded change after the plan's snapshot, as the FSM's
// guard would, without a Raft round trip.
func TestStaleSince(t *testing.T) {
	c := newStoreCluster(t)
	n1 := nodeWith("n1", nil)
	n1.Kind, n1.ApiVersion, n1.Metadata.Uid = "Node", "v1", "uid-n1"
	pod := daemonPod(dsFor(nil), "p", "n1", time.Hour, "Running", true)
	pod.Kind, pod.ApiVersion = "Pod", "v1"
	c.apply(t, put(n1), put(pod))
	index := c.st.LatestIndex()
	b := &corralpb.Batch{GuardIndex: index, GuardKinds: []string{"Pod", "Node", "Pod" + state.ReadinessGuard}}
	if k := staleSince(c.st, b); k != "" {
		t.Fatalf("fresh plan: stale since %q", k)
	}
	report := func(change func(*corralpb.PodStatus)) {
		cur, err := c.st.Get(nil, "Pod", "default", "p")
		if err != nil || cur == nil {
			t.Fatalf("get pod: %v, %v", cur, err)
		}
		st := proto.Clone(cur.GetPod()).(*corralpb.Pod)
		change(st.Status)
		c.apply(t, &corralpb.Op{Type: corralpb.Op_STATUS, Uid: st.GetMetadata().GetUid(), Object: api.Wrap(st)})
	}
	report(func(s *corralpb.PodStatus) { s.PodIp = "10.42.0.9" })
	if k := staleSince(c.st, b); k != "" {
		t.Fatalf("after a ready pod's IP changed: stale since %q", k)
	}
	report(func(s *corralpb.PodStatus) { s.Phase, s.Conditions[0].Status = "Failed", "False" })
	if k := staleSince(c.st, b); k != "Pod"+state.ReadinessGuard {
		t.Fatalf("after a pod lost readiness: stale since %q, want Pod/readiness", k)
	}
	b.GuardKinds = []string{"Pod", "Node"}
	if k := staleSince(c.st, b); k != "" {
		t.Fatalf("a plan not guarded on status: stale since %q", k)
	}
}

// A sync reuses the node list while no node changes; a node that joins,
// changes its labels or its status, or leaves, is planned for in the next
// sync.
func TestSyncFollowsNodeChanges(t *testing.T) {
	c := newStoreCluster(t)
	node := func(name, disk string) *corralpb.Node {
		n := nodeWith(name, map[string]string{"disktype": disk})
		n.Kind, n.ApiVersion, n.Metadata.Uid = "Node", "v1", "uid-"+name
		return n
	}
	ds := dsFor(&corralpb.PodSpec{NodeSelector: map[string]string{"disktype": "ssd"}})
	ds.Kind, ds.ApiVersion = "DaemonSet", "apps/v1"
	c.apply(t, put(&corralpb.Namespace{Metadata: &corralpb.ObjectMeta{Name: "default", Uid: "ns-default"}}),
		put(node("n1", "ssd")), put(node("n2", "hdd")), put(ds))
	ctl := NewDaemonSetController(c, events.Discard, slog.New(slog.DiscardHandler))
	onNodes := func(want ...string) {
		t.Helper()
		if err := ctl.sync(context.Background(), dsKey(ds)); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, p := range storedPods(t, c) {
			got = append(got, p.GetSpec().GetNodeName())
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("pods on %v, want %v", got, want)
		}
	}
	onNodes("n1")
	onNodes("n1") // nothing changed: the same answer from the kept list
	c.apply(t, put(node("n3", "ssd")))
	onNodes("n1", "n3")
	c.apply(t, put(node("n2", "ssd")), put(node("n1", "hdd")))
	onNodes("n2", "n3")
	st := &corralpb.NodeStatus{Allocatable: map[string]string{"pods": "10"}}
	c.apply(t, &corralpb.Op{Type: corralpb.Op_STATUS, Object: api.Wrap(&corralpb.Node{Metadata: &corralpb.ObjectMeta{Name: "n2"}, Status: st})})
	nodes, err := ctl.nodeList(c.st.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(nodes, func(n *corralpb.Node) bool { return n.GetMetadata().GetName() == "n2" }); i < 0 || !proto.Equal(nodes[i].GetStatus(), st) {
		t.Fatalf("nodes after n2's status changed: %v", nodes)
	}
	c.apply(t, &corralpb.Op{Type: corralpb.Op_DELETE, Object: api.Wrap(node("n3", "ssd"))})
	onNodes("n2")
}
