package common

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
	"github.com/corral-dev/corral/test/framework"
)

// rollingDaemonSet is DaemonSet name on nodes labelled suite=name, with
// the image and rolling-update budget given.
func rollingDaemonSet(t *testing.T, name, image, maxUnavailable, maxSurge string) *corralpb.Object {
	t.Helper()
	objs, err := api.Decode([]byte(fmt.Sprintf(`
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: %[1]s, namespace: default}
spec:
  selector: {matchLabels: {app: %[1]s}}
  updateStrategy:
    type: RollingUpdate
    rollingUpdate: {maxUnavailable: %[3]s, maxSurge: %[4]s}
  template:
    metadata: {labels: {app: %[1]s}}
    spec:
      nodeSelector: {suite: %[1]s}
      containers:
      - {name: main, image: %[2]q}
`, name, image, maxUnavailable, maxSurge)), name+".yml")
	if err != nil {
		t.Fatalf("decode daemonset %s: %v", name, err)
	}
	return objs[0]
}

// rolloutWatch follows a DaemonSet's pods through a watch and, at every
// resourceVersion, counts the eligible nodes without an available pod
// (Running and Ready) and the most pods of the DaemonSet on one node.
type rolloutWatch struct {
	nodes []string

	mu          sync.Mutex
	pods        map[string]*corralpb.Pod // by name
	rv          string
	unavailable int // the most nodes without an available pod at once
	perNode     int // the most pods on one node at once
	states      int
	err         error
}

func watchRollout(t *testing.T, cl corralpb.ClusterClient, ds string, nodes []string) *rolloutWatch {
	t.Helper()
	w := &rolloutWatch{nodes: nodes, pods: map[string]*corralpb.Pod{}}
	followPods(t, cl, ds, w)
	return w
}

// apply follows one change. Changes committed together share a
// resourceVersion: the state is judged between entries, not halfway
// through one (nor halfway through the list).
func (w *rolloutWatch) apply(typ string, pod *corralpb.Pod) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if rv := pod.GetMetadata().GetResourceVersion(); w.rv != "" && rv != w.rv {
		w.measure()
		w.rv = rv
	}
	if typ == "DELETED" {
		delete(w.pods, pod.GetMetadata().GetName())
	} else {
		w.pods[pod.GetMetadata().GetName()] = pod
	}
}

func (w *rolloutWatch) listed(rv string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.rv = rv
}

func (w *rolloutWatch) failed(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.err = err
}

func podAvailable(p *corralpb.Pod) bool {
	if p.GetStatus().GetPhase() != "Running" || p.GetMetadata().GetDeletionTimestamp() != nil {
		return false
	}
	for _, c := range p.GetStatus().GetConditions() {
		if c.GetType() == "Ready" {
			return c.GetStatus() == "True"
		}
	}
	return false
}

// measure judges the current state. Callers hold w.mu.
func (w *rolloutWatch) measure() {
	count, avail := map[string]int{}, map[string]bool{}
	for _, p := range w.pods {
		n := p.GetSpec().GetNodeName()
		count[n]++
		w.perNode = max(w.perNode, count[n])
		if podAvailable(p) {
			avail[n] = true
		}
	}
	missing := 0
	for _, n := range w.nodes {
		if !avail[n] {
			missing++
		}
	}
	w.unavailable = max(w.unavailable, missing)
	w.states++
}

// phase returns the worst counts since the last call (taking the current
// state into account) and starts over.
func (w *rolloutWatch) phase(t *testing.T) (unavailable, perNode, states int) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		t.Fatalf("pod watch ended: %v", w.err)
	}
	w.measure()
	unavailable, perNode, states = w.unavailable, w.perNode, w.states
	w.unavailable, w.perNode, w.states = 0, 0, 0
	return unavailable, perNode, states
}

// podUIDs maps each node to the uid of the DaemonSet's pod there.
func podUIDs(t *testing.T, cl corralpb.ClusterClient, ds string) map[string]string {
	out := map[string]string{}
	for _, p := range podsOf(t, cl, ds) {
		out[p.GetSpec().GetNodeName()] = p.GetMetadata().GetUid()
	}
	return out
}

// imagesOf counts the DaemonSet's pods by image.
func imagesOf(t *testing.T, cl corralpb.ClusterClient, ds string) map[string]int {
	out := map[string]int{}
	for _, p := range podsOf(t, cl, ds) {
		out[p.GetSpec().GetContainers()[0].GetImage()]++
	}
	return out
}

// A rolling update across a fleet of simulated nodes whose pods become
// Ready after different delays, observed at every committed state: the
// budget is never exceeded; a new template whose pods never become ready
// stops after the budget's worth of nodes; setting the template back rolls
// back without touching pods that were never updated; with surge no node
// is ever without an available pod and none holds more than two.
func testRollingUpdateFleet(t *testing.T, f *dsFixture) {
	const nodes = 12
	cl := f.client(t)
	sel := map[string]string{"suite": "rollout"}
	var agents []*framework.SimAgent
	var names []string
	for i := 1; i <= nodes; i++ {
		name := fmt.Sprintf("rollout-%d", i)
		agents = append(agents, f.fleet.Start(framework.SimAgentConfig{Name: name, Labels: sel,
			StatusDelay: time.Duration(i%4) * 40 * time.Millisecond}))
		names = append(names, name)
	}
	waitRegistered(t, agents...)
	all := func(gen int64) dsStatus {
		return dsStatus{Desired: nodes, Current: nodes, Ready: nodes, Available: nodes, Updated: nodes, ObservedGeneration: gen}
	}
	apply(t, cl, rollingDaemonSet(t, "rollout", "nginx:1.25", "25%", "0"))
	waitStatus(t, cl, "rollout", all(1))
	w := watchRollout(t, cl, "rollout", names)

	// 25% of 12 nodes: at most 3 without an available pod.
	apply(t, cl, rollingDaemonSet(t, "rollout", "nginx:1.26", "25%", "0"))
	waitStatus(t, cl, "rollout", all(2))
	if u, per, n := w.phase(t); u > 3 || per > 1 || n < nodes {
		t.Fatalf("rolling update: up to %d nodes without an available pod (budget 3), up to %d pods on a node, over %d states", u, per, n)
	}
	if got := imagesOf(t, cl, "rollout"); got["nginx:1.26"] != nodes {
		t.Fatalf("after the rolling update: images %v", got)
	}
	before := podUIDs(t, cl, "rollout")

	// A bad template: its pods never become ready. The rollout takes the
	// budget's 3 nodes and stops there.
	for _, a := range agents {
		a.SetOutcome(framework.PodUnready)
	}
	apply(t, cl, rollingDaemonSet(t, "rollout", "nginx:broken", "25%", "0"))
	framework.WaitFor(t, "3 unready pods of the bad template", 30*time.Second, func() bool {
		n := 0
		for _, p := range podsOf(t, cl, "rollout") {
			if p.GetSpec().GetContainers()[0].GetImage() == "nginx:broken" && p.GetStatus().GetPhase() == "Running" {
				n++
			}
		}
		return n == 3
	})
	waitStatus(t, cl, "rollout", dsStatus{Desired: nodes, Current: nodes, Ready: nodes - 3, Available: nodes - 3, Updated: 3,
		Unavailable: 3, ObservedGeneration: 3})
	if got := imagesOf(t, cl, "rollout"); got["nginx:broken"] != 3 || got["nginx:1.26"] != nodes-3 {
		t.Fatalf("a bad template went beyond the budget: images %v", got)
	}
	if u, per, _ := w.phase(t); u > 3 || per > 1 {
		t.Fatalf("bad template: up to %d nodes without an available pod (budget 3), up to %d pods on a node", u, per)
	}

	// Back to the good template: only the 3 broken pods are replaced.
	for _, a := range agents {
		a.SetOutcome(framework.PodReady)
	}
	apply(t, cl, rollingDaemonSet(t, "rollout", "nginx:1.26", "25%", "0"))
	waitStatus(t, cl, "rollout", all(4))
	after := podUIDs(t, cl, "rollout")
	replaced := 0
	for n, uid := range before {
		if after[n] != uid {
			replaced++
		}
	}
	if replaced != 3 {
		t.Fatalf("rollback replaced the pods of %d nodes, want only the 3 that had the bad template", replaced)
	}
	if u, per, _ := w.phase(t); u > 3 || per > 1 {
		t.Fatalf("rollback: up to %d nodes without an available pod, up to %d pods on a node", u, per)
	}

	// Surge: a new pod starts beside the old one, which goes once the new
	// one is available.
	apply(t, cl, rollingDaemonSet(t, "rollout", "nginx:1.27", "0", "2"))
	waitStatus(t, cl, "rollout", all(5))
	if u, per, n := w.phase(t); u > 0 || per > 2 || n < nodes {
		t.Fatalf("surge: up to %d nodes without an available pod (want none), up to %d pods on a node (want ≤ 2), over %d states", u, per, n)
	}
	if got := imagesOf(t, cl, "rollout"); got["nginx:1.27"] != nodes || len(podsOf(t, cl, "rollout")) != nodes {
		t.Fatalf("after the surge update: images %v", got)
	}
}
