package common

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
	"github.com/corral-dev/corral/test/framework"
)

// The DaemonSet controller on three in-process servers, with simulated
// agents over real gRPC standing in for nodes. The subtests share one
// cluster: each labels its own nodes with suite=<subtest> and selects only
// those, so the DaemonSets of one never reach the nodes of another.
func TestDaemonSet(t *testing.T) {
	f := newDSFixture(t)
	for _, tc := range []struct {
		name string
		run  func(*testing.T, *dsFixture)
	}{
		{"NodeJoins", testNodeJoins},
		{"NodeLabelChange", testNodeLabelChange},
		{"NoExecuteTaintEvicts", testNoExecuteTaint},
		{"NoScheduleTaintLaterKeepsPod", testNoScheduleTaintLater},
		{"NodeDeleted", testNodeDeleted},
		{"StatusCounts", testStatusCounts},
		{"FailedPodReplaced", testFailedPodReplaced},
		{"RollingUpdateFleet", testRollingUpdateFleet},
		{"Drain", testDrain},
		{"Wait", testWait},
		{"DeleteModes", testDeleteModes},
		{"Patch", testPatch},
		{"Diff", testDiff},
		{"Replace", testReplace},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, f) })
	}
}

// dsFixture is a cluster of three in-process servers and a fleet of
// simulated agents talking to all of them.
type dsFixture struct {
	c     *framework.InProcess
	fleet *framework.SimFleet
	// top is the test that owns the cluster: the clients the cluster
	// caches live as long as it does, not as long as a subtest.
	top *testing.T
}

func newDSFixture(t *testing.T) *dsFixture {
	c := framework.NewInProcess(t, 3)
	return &dsFixture{c: c, fleet: framework.NewSimFleet(t, c.CA(t), c.APIAddrs()), top: t}
}

// client returns the cluster API of the first running server.
func (f *dsFixture) client(t *testing.T) corralpb.ClusterClient {
	t.Helper()
	for i := 0; i < f.c.Size(); i++ {
		if f.c.Running(i) {
			return f.c.Client(f.top, i)
		}
	}
	t.Fatal("no server is running")
	return nil
}

// agents starts n simulated nodes named <prefix>-<i> with labels and
// waits until they have registered.
func (f *dsFixture) agents(t *testing.T, prefix string, n int, labels map[string]string) []*framework.SimAgent {
	t.Helper()
	var out []*framework.SimAgent
	for i := 1; i <= n; i++ {
		out = append(out, f.fleet.Start(framework.SimAgentConfig{Name: fmt.Sprintf("%s-%d", prefix, i), Labels: labels}))
	}
	waitRegistered(t, out...)
	return out
}

func waitRegistered(t *testing.T, agents ...*framework.SimAgent) {
	t.Helper()
	framework.WaitFor(t, "the simulated nodes to register", 30*time.Second, func() bool {
		for _, a := range agents {
			if !a.Registered() {
				return false
			}
		}
		return true
	})
}

// daemonSet is a DaemonSet in namespace default whose pods carry
// app=<name> and which runs on nodes with every label of nodeSelector.
func daemonSet(t *testing.T, name string, nodeSelector map[string]string, minReadySeconds int) *corralpb.Object {
	t.Helper()
	var sel []string
	for k, v := range nodeSelector {
		sel = append(sel, fmt.Sprintf("%q: %q", k, v))
	}
	sort.Strings(sel)
	objs, err := api.Decode([]byte(fmt.Sprintf(`
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: %[1]s
  namespace: default
spec:
  minReadySeconds: %[3]d
  selector:
    matchLabels: {app: %[1]s}
  template:
    metadata:
      labels: {app: %[1]s}
    spec:
      nodeSelector: {%[2]s}
      containers:
      - name: main
        image: nginx:1.25
`, name, strings.Join(sel, ", "), minReadySeconds)), name+".yml")
	if err != nil {
		t.Fatalf("decode daemonset %s: %v", name, err)
	}
	return objs[0]
}

func apply(t *testing.T, cl corralpb.ClusterClient, objs ...*corralpb.Object) {
	t.Helper()
	if _, err := cl.Apply(ctx(t), &corralpb.ApplyRequest{Objects: objs}); err != nil {
		t.Fatalf("apply: %v", err)
	}
}

// podsOf lists the pods of DaemonSet ds (by its app label), in any phase.
func podsOf(t *testing.T, cl corralpb.ClusterClient, ds string) []*corralpb.Pod {
	t.Helper()
	resp, err := cl.List(ctx(t), &corralpb.ListRequest{Kind: "Pod", Namespace: "default", LabelSelector: "app=" + ds})
	if err != nil {
		t.Fatalf("list pods of %s: %v", ds, err)
	}
	var out []*corralpb.Pod
	for _, o := range resp.GetItems() {
		out = append(out, o.GetPod())
	}
	return out
}

// byNode maps each node to the names of the pods bound to it.
func byNode(pods []*corralpb.Pod) map[string][]string {
	out := map[string][]string{}
	for _, p := range pods {
		out[p.GetSpec().GetNodeName()] = append(out[p.GetSpec().GetNodeName()], p.GetMetadata().GetName())
	}
	return out
}

// waitPodsOn waits until DaemonSet ds has exactly one pod on each of nodes
// and none elsewhere, each reported Running; it returns them.
func waitPodsOn(t *testing.T, cl corralpb.ClusterClient, ds string, nodes ...string) []*corralpb.Pod {
	t.Helper()
	var pods []*corralpb.Pod
	framework.WaitFor(t, fmt.Sprintf("one running pod of %s on each of %v", ds, nodes), 30*time.Second, func() bool {
		pods = podsOf(t, cl, ds)
		on := byNode(pods)
		if len(pods) != len(nodes) || len(on) != len(nodes) {
			return false
		}
		for _, n := range nodes {
			if len(on[n]) != 1 {
				return false
			}
		}
		for _, p := range pods {
			if p.GetStatus().GetPhase() != "Running" {
				return false
			}
		}
		return true
	})
	return pods
}

// dsStatus is the part of a DaemonSet's status Kubernetes computes from
// its nodes and pods.
type dsStatus struct {
	Desired, Current, Ready, Available, Updated, Misscheduled, Unavailable int32
	ObservedGeneration                                                     int64
}

func statusOf(ds *corralpb.DaemonSet) dsStatus {
	s := ds.GetStatus()
	return dsStatus{Desired: s.GetDesiredNumberScheduled(), Current: s.GetCurrentNumberScheduled(), Ready: s.GetNumberReady(),
		Available: s.GetNumberAvailable(), Updated: s.GetUpdatedNumberScheduled(), Misscheduled: s.GetNumberMisscheduled(),
		Unavailable: s.GetNumberUnavailable(), ObservedGeneration: s.GetObservedGeneration()}
}

// waitStatus waits until DaemonSet name reports want.
func waitStatus(t *testing.T, cl corralpb.ClusterClient, name string, want dsStatus) {
	t.Helper()
	var last dsStatus
	defer func() {
		if t.Failed() {
			t.Logf("daemonset %s: last status %+v, want %+v", name, last, want)
		}
	}()
	framework.WaitFor(t, "the status of daemonset "+name, 30*time.Second, func() bool {
		resp, err := cl.Get(ctx(t), &corralpb.GetRequest{Kind: "DaemonSet", Namespace: "default", Name: name})
		if err != nil {
			return false
		}
		last = statusOf(resp.GetObject().GetDaemonSet())
		return last == want
	})
}

// updateNode changes node name with change, retrying on conflicts.
func updateNode(t *testing.T, cl corralpb.ClusterClient, name string, change func(*corralpb.Node)) {
	t.Helper()
	framework.WaitFor(t, "an update of node "+name, 20*time.Second, func() bool {
		resp, err := cl.Get(ctx(t), &corralpb.GetRequest{Kind: "Node", Name: name})
		if err != nil {
			t.Fatalf("get node %s: %v", name, err)
		}
		o := proto.Clone(resp.GetObject()).(*corralpb.Object)
		change(o.GetNode())
		_, err = cl.Update(ctx(t), &corralpb.UpdateRequest{Object: o})
		if status.Code(err) == codes.Aborted {
			return false
		}
		if err != nil {
			t.Fatalf("update node %s: %v", name, err)
		}
		return true
	})
}

func taint(key, effect string) func(*corralpb.Node) {
	return func(n *corralpb.Node) {
		if n.Spec == nil {
			n.Spec = &corralpb.NodeSpec{}
		}
		n.Spec.Taints = append(n.Spec.Taints, &corralpb.Taint{Key: key, Value: "true", Effect: effect})
	}
}

// eventsAbout lists the events about object name in namespace default,
// as `reason: message`.
func eventsAbout(t *testing.T, cl corralpb.ClusterClient, name string) []string {
	t.Helper()
	resp, err := cl.List(ctx(t), &corralpb.ListRequest{Kind: "Event", Namespace: "default", FieldSelector: "involvedObject.name=" + name})
	if err != nil {
		t.Fatalf("list events of %s: %v", name, err)
	}
	var out []string
	for _, o := range resp.GetItems() {
		e := o.GetEvent()
		out = append(out, fmt.Sprintf("%s/%s: %s", e.GetSource().GetComponent(), e.GetReason(), e.GetMessage()))
	}
	return out
}

// waitEvents waits until every one of want is among the events about name.
func waitEvents(t *testing.T, cl corralpb.ClusterClient, name string, want ...string) {
	t.Helper()
	var got []string
	defer func() {
		if t.Failed() {
			t.Logf("events about %s: %q", name, got)
		}
	}()
	framework.WaitFor(t, fmt.Sprintf("events %q about %s", want, name), 20*time.Second, func() bool {
		got = eventsAbout(t, cl, name)
		for _, w := range want {
			if !slices.Contains(got, w) {
				return false
			}
		}
		return true
	})
}

func created(pod string) string { return "daemonset-controller/SuccessfulCreate: Created pod: " + pod }

// waitAgentPods waits until agent a is assigned exactly the pods named.
func waitAgentPods(t *testing.T, a *framework.SimAgent, names ...string) {
	t.Helper()
	framework.WaitFor(t, fmt.Sprintf("node %s to be assigned %v", a.Name(), names), 20*time.Second, func() bool {
		var got []string
		for _, p := range a.Pods() {
			got = append(got, p.GetMetadata().GetName())
		}
		sort.Strings(got)
		want := slices.Sorted(slices.Values(names))
		return slices.Equal(got, want)
	})
}

// A node that joins gets the DaemonSet's pod, which its agent is assigned
// and reports Running; the controller records SuccessfulCreate for each.
func testNodeJoins(t *testing.T, f *dsFixture) {
	cl := f.client(t)
	sel := map[string]string{"suite": "joins"}
	apply(t, cl, daemonSet(t, "joins", sel, 0))
	waitStatus(t, cl, "joins", dsStatus{ObservedGeneration: 1})
	first := f.agents(t, "joins", 1, sel)[0]
	pods := waitPodsOn(t, cl, "joins", "joins-1")
	waitAgentPods(t, first, pods[0].GetMetadata().GetName())
	second := f.fleet.Start(framework.SimAgentConfig{Name: "joins-2", Labels: sel})
	pods = waitPodsOn(t, cl, "joins", "joins-1", "joins-2")
	waitStatus(t, cl, "joins", dsStatus{Desired: 2, Current: 2, Ready: 2, Available: 2, Updated: 2, ObservedGeneration: 1})
	var want []string
	for _, p := range pods {
		want = append(want, created(p.GetMetadata().GetName()))
		if p.GetSpec().GetNodeName() == "joins-2" {
			waitAgentPods(t, second, p.GetMetadata().GetName())
		}
	}
	waitEvents(t, cl, "joins", want...)
}

// A label that makes a node match the nodeSelector brings the pod; taking
// it away removes the pod.
func testNodeLabelChange(t *testing.T, f *dsFixture) {
	cl := f.client(t)
	a := f.agents(t, "labels", 1, map[string]string{"suite": "labels"})[0]
	apply(t, cl, daemonSet(t, "labels", map[string]string{"suite": "labels", "disk": "ssd"}, 0))
	waitStatus(t, cl, "labels", dsStatus{ObservedGeneration: 1})
	if pods := podsOf(t, cl, "labels"); len(pods) != 0 {
		t.Fatalf("pods on a node the selector does not match: %v", byNode(pods))
	}
	updateNode(t, cl, "labels-1", func(n *corralpb.Node) { n.Metadata.Labels["disk"] = "ssd" })
	pods := waitPodsOn(t, cl, "labels", "labels-1")
	waitAgentPods(t, a, pods[0].GetMetadata().GetName())
	updateNode(t, cl, "labels-1", func(n *corralpb.Node) { delete(n.Metadata.Labels, "disk") })
	waitPodsOn(t, cl, "labels")
	waitAgentPods(t, a)
	waitStatus(t, cl, "labels", dsStatus{ObservedGeneration: 1})
	waitEvents(t, cl, "labels", "daemonset-controller/SuccessfulDelete: Deleted pod: "+pods[0].GetMetadata().GetName())
}

// An untolerated NoExecute taint evicts the node's pod; once the taint is
// removed the node gets a new one.
func testNoExecuteTaint(t *testing.T, f *dsFixture) {
	cl := f.client(t)
	sel := map[string]string{"suite": "noexecute"}
	a := f.agents(t, "noexecute", 1, sel)[0]
	apply(t, cl, daemonSet(t, "noexecute", sel, 0))
	pods := waitPodsOn(t, cl, "noexecute", "noexecute-1")
	updateNode(t, cl, "noexecute-1", taint("example.com/evict", "NoExecute"))
	waitPodsOn(t, cl, "noexecute")
	waitAgentPods(t, a)
	waitStatus(t, cl, "noexecute", dsStatus{ObservedGeneration: 1})
	waitEvents(t, cl, "noexecute", "daemonset-controller/SuccessfulDelete: Deleted pod: "+pods[0].GetMetadata().GetName())

	// The taint removed, the node is eligible again: a new pod.
	updateNode(t, cl, "noexecute-1", func(n *corralpb.Node) { n.Spec.Taints = nil })
	again := waitPodsOn(t, cl, "noexecute", "noexecute-1")
	if again[0].GetMetadata().GetUid() == pods[0].GetMetadata().GetUid() {
		t.Fatalf("pod %s is the evicted one", again[0].GetMetadata().GetName())
	}
	waitStatus(t, cl, "noexecute", dsStatus{Desired: 1, Current: 1, Ready: 1, Available: 1, Updated: 1, ObservedGeneration: 1})
}

// An untolerated NoSchedule taint added after the pod started leaves the
// pod running; the status counts it misscheduled, not desired.
func testNoScheduleTaintLater(t *testing.T, f *dsFixture) {
	cl := f.client(t)
	sel := map[string]string{"suite": "noschedule"}
	a := f.agents(t, "noschedule", 1, sel)[0]
	apply(t, cl, daemonSet(t, "noschedule", sel, 0))
	pods := waitPodsOn(t, cl, "noschedule", "noschedule-1")
	waitStatus(t, cl, "noschedule", dsStatus{Desired: 1, Current: 1, Ready: 1, Available: 1, Updated: 1, ObservedGeneration: 1})
	updateNode(t, cl, "noschedule-1", taint("example.com/dedicated", "NoSchedule"))
	waitStatus(t, cl, "noschedule", dsStatus{Misscheduled: 1, ObservedGeneration: 1})
	after := waitPodsOn(t, cl, "noschedule", "noschedule-1")
	if got, want := after[0].GetMetadata().GetUid(), pods[0].GetMetadata().GetUid(); got != want {
		t.Fatalf("pod on the tainted node was replaced: uid %s, was %s", got, want)
	}
	if got := a.Assigned(); len(got) != 1 {
		t.Fatalf("node was assigned %v, want only the first pod", got)
	}
}

// Deleting a Node through the cluster API garbage-collects its pods.
func testNodeDeleted(t *testing.T, f *dsFixture) {
	cl := f.client(t)
	sel := map[string]string{"suite": "deleted"}
	agents := f.agents(t, "deleted", 2, sel)
	apply(t, cl, daemonSet(t, "deleted", sel, 0))
	waitPodsOn(t, cl, "deleted", "deleted-1", "deleted-2")
	if _, err := cl.Delete(ctx(t), &corralpb.DeleteRequest{Kind: "Node", Name: "deleted-1"}); err != nil {
		t.Fatalf("delete node: %v", err)
	}
	waitPodsOn(t, cl, "deleted", "deleted-2")
	waitAgentPods(t, agents[0])
	waitStatus(t, cl, "deleted", dsStatus{Desired: 1, Current: 1, Ready: 1, Available: 1, Updated: 1, ObservedGeneration: 1})
}

// The status counts as Kubernetes does: a node with an untolerated
// NoSchedule taint from the start is neither desired nor misscheduled; an
// unready pod is current and updated but neither ready nor available; with
// minReadySeconds a ready pod is not yet available.
func testStatusCounts(t *testing.T, f *dsFixture) {
	cl := f.client(t)
	sel := map[string]string{"suite": "status"}
	agents := f.agents(t, "status", 2, sel)
	agents = append(agents, f.fleet.Start(framework.SimAgentConfig{Name: "status-3", Labels: sel, Outcome: framework.PodUnready}),
		f.fleet.Start(framework.SimAgentConfig{Name: "status-4", Labels: sel,
			Taints: []*corralpb.Taint{{Key: "example.com/dedicated", Value: "db", Effect: "NoSchedule"}}}))
	waitRegistered(t, agents...)
	apply(t, cl, daemonSet(t, "status", sel, 0), daemonSet(t, "status-slow", sel, 3600))
	waitPodsOn(t, cl, "status", "status-1", "status-2", "status-3")
	waitPodsOn(t, cl, "status-slow", "status-1", "status-2", "status-3")
	waitStatus(t, cl, "status", dsStatus{Desired: 3, Current: 3, Ready: 2, Available: 2, Updated: 3, Unavailable: 1, ObservedGeneration: 1})
	waitStatus(t, cl, "status-slow", dsStatus{Desired: 3, Current: 3, Ready: 2, Available: 0, Updated: 3, Unavailable: 3, ObservedGeneration: 1})
	if got := agents[3].Assigned(); len(got) != 0 {
		t.Fatalf("tainted node was assigned %v", got)
	}
}

// A pod its agent reports Failed is deleted and replaced (after the
// per-node back-off), with a FailedDaemonPod warning.
func testFailedPodReplaced(t *testing.T, f *dsFixture) {
	cl := f.client(t)
	sel := map[string]string{"suite": "failed"}
	a := f.fleet.Start(framework.SimAgentConfig{Name: "failed-1", Labels: sel, Outcome: framework.PodFailed})
	waitRegistered(t, a)
	apply(t, cl, daemonSet(t, "failed", sel, 0))
	var first string
	framework.WaitFor(t, "the first pod to be assigned", 20*time.Second, func() bool {
		got := a.Assigned()
		if len(got) > 0 {
			first = got[0]
		}
		return first != ""
	})
	a.SetOutcome(framework.PodReady)
	pods := waitPodsOn(t, cl, "failed", "failed-1")
	if "default/"+pods[0].GetMetadata().GetName() == first {
		t.Fatalf("failed pod %s was not replaced", first)
	}
	waitEvents(t, cl, "failed", "daemonset-controller/FailedDaemonPod: Found failed daemon pod "+first+" on node failed-1, will try to kill it")
}

// TestDaemonSetLeaderFailover applies a DaemonSet for 50 nodes and kills
// the leader right away: the new leader converges, and a watch through a
// survivor never sees two of the DaemonSet's pods on one node.
func TestDaemonSetLeaderFailover(t *testing.T) {
	const nodes = 50
	f := newDSFixture(t)
	agents := f.agents(t, "failover", nodes, map[string]string{"suite": "failover"})
	leader := framework.Leader(t, f.c)
	via := (leader + 1) % f.c.Size()
	cl := f.c.Client(t, via)
	w := watchPods(t, cl, "failover")
	apply(t, cl, daemonSet(t, "failover", map[string]string{"suite": "failover"}, 0))
	f.c.Kill(t, leader)
	t.Logf("killed the leader (server %d) with %d pods of the DaemonSet created", leader, w.pods())
	if l := framework.Leader(t, f.c); l == leader {
		t.Fatalf("server %d still leads after it was killed", l)
	}
	var names []string
	for _, a := range agents {
		names = append(names, a.Name())
	}
	waitPodsOn(t, cl, "failover", names...)
	waitStatus(t, cl, "failover", dsStatus{Desired: nodes, Current: nodes, Ready: nodes, Available: nodes, Updated: nodes, ObservedGeneration: 1})
	w.check(t)
	for _, a := range agents {
		if got := a.Assigned(); len(got) != 1 {
			t.Errorf("node %s was assigned %v, want one pod", a.Name(), got)
		}
	}
}

// podWatch follows a DaemonSet's pods through one server's watch and
// records every moment a node held two of them.
type podWatch struct {
	mu         sync.Mutex
	node       map[string]string // pod name → node
	perNode    map[string]int
	events     int
	violations []string
	err        error
}

// watchPods lists the pods labelled app=ds through cl and watches them
// from the list's resourceVersion until the test ends.
func watchPods(t *testing.T, cl corralpb.ClusterClient, ds string) *podWatch {
	t.Helper()
	w := &podWatch{node: map[string]string{}, perNode: map[string]int{}}
	followPods(t, cl, ds, w)
	return w
}

// podFollower is told what followPods sees.
type podFollower interface {
	// apply gets each listed pod as ADDED, then every change in order.
	apply(typ string, p *corralpb.Pod)
	// listed marks the end of the list, at resourceVersion rv.
	listed(rv string)
	// failed gets the error of a watch that ended before the test.
	failed(err error)
}

// followPods lists the pods labelled app=ds and then follows the watch
// from the list's resourceVersion until the test ends.
func followPods(t *testing.T, cl corralpb.ClusterClient, ds string, f podFollower) {
	t.Helper()
	list, err := cl.List(ctx(t), &corralpb.ListRequest{Kind: "Pod", Namespace: "default", LabelSelector: "app=" + ds})
	if err != nil {
		t.Fatalf("list pods: %v", err)
	}
	for _, o := range list.GetItems() {
		f.apply("ADDED", o.GetPod())
	}
	f.listed(list.GetResourceVersion())
	wctx, cancel := context.WithCancel(context.Background())
	stream, err := cl.Watch(wctx, &corralpb.WatchRequest{Kind: "Pod", Namespace: "default", LabelSelector: "app=" + ds,
		ResourceVersion: list.GetResourceVersion()})
	if err != nil {
		cancel()
		t.Fatalf("watch pods: %v", err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		for {
			ev, err := stream.Recv()
			if err != nil {
				if wctx.Err() == nil {
					f.failed(err)
				}
				return
			}
			f.apply(ev.GetType(), ev.GetObject().GetPod())
		}
	}()
}

func (w *podWatch) listed(string) {}

func (w *podWatch) failed(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.err = err
}

// apply follows one watch event. Pods are bound at creation and the
// controller never creates and deletes on one node in one batch, so a
// second pod appearing on a node is two pods there at one instant.
func (w *podWatch) apply(typ string, p *corralpb.Pod) {
	name, node := p.GetMetadata().GetName(), p.GetSpec().GetNodeName()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.events++
	_, known := w.node[name]
	switch {
	case typ == "DELETED" && known:
		delete(w.node, name)
		w.perNode[node]--
	case typ != "DELETED" && !known:
		w.node[name] = node
		if w.perNode[node]++; w.perNode[node] > 1 {
			w.violations = append(w.violations, fmt.Sprintf("pod %s made %d pods on node %s", name, w.perNode[node], node))
		}
	}
}

// pods is how many pods the watch knows of now.
func (w *podWatch) pods() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.node)
}

// check fails the test if the watch saw a node with two pods or ended.
func (w *podWatch) check(t *testing.T) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		t.Fatalf("pod watch ended: %v", w.err)
	}
	if len(w.violations) > 0 {
		t.Fatalf("two pods of the DaemonSet on one node: %v", w.violations)
	}
	t.Logf("pod watch: %d events, at most one pod per node throughout", w.events)
}
