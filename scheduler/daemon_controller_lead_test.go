package scheduler

import (
	"context"
	"log/slog"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

// storedNode is a node as the store holds it.
func storedNode(name string) *corralpb.Node {
	n := nodeWith(name, nil)
	n.Kind, n.ApiVersion, n.Metadata.Uid = "Node", "v1", "uid-"+name
	return n
}

// storedDS is dsFor(nil) as the store holds it.
func storedDS() *corralpb.DaemonSet {
	ds := dsFor(nil)
	ds.Kind, ds.ApiVersion = "DaemonSet", "apps/v1"
	return ds
}

// podNodes returns the nodes of the stored pods, sorted, and fails the
// test if a pod's name is not its DaemonSet's name and five characters.
func podNodes(t *testing.T, c *storeCluster) []string {
	t.Helper()
	var got []string
	for name, p := range storedPods(t, c) {
		if !regexp.MustCompile(`^ds-[bcdfghjklmnpqrstvwxz2456789]{5}$`).MatchString(name) && name != "other-leader" {
			t.Fatalf("pod name %q", name)
		}
		got = append(got, p.GetSpec().GetNodeName())
	}
	slices.Sort(got)
	return got
}

// A plan that went stale between its snapshot and its write (here: another
// writer put the DaemonSet's pod on n1 meanwhile, as a deposed leader's
// last plan might) is refused by the store's guard, and the controller
// plans again from the new state: one pod per node, never two.
func TestDaemonSetControllerReplansAStaleWrite(t *testing.T) {
	c := newStoreCluster(t)
	ds := storedDS()
	c.apply(t, put(storedNode("n1")), put(storedNode("n2")), put(ds))
	c.beforeWrite = func(c *storeCluster, n int) {
		if n != 1 {
			return
		}
		p := NewDaemonPod(ds, "n1", TemplateHash(ds))
		p.Metadata.Name, p.Metadata.Uid, p.Metadata.GenerateName = "other-leader", "uid-other", ""
		c.apply(t, put(p))
	}
	ctl := NewDaemonSetController(c, &recorder{}, slog.New(slog.DiscardHandler))
	if err := ctl.sync(context.Background(), dsKey(ds)); err != nil {
		t.Fatal(err)
	}
	if got := podNodes(t, c); !slices.Equal(got, []string{"n1", "n2"}) {
		t.Fatalf("pods on %v, want one on each of n1 and n2", got)
	}
	if _, ok := storedPods(t, c)["other-leader"]; !ok {
		t.Fatal("the pod the other writer made was replaced")
	}
	// The first write (two creations) was refused, the second made one.
	if len(c.batches) < 2 || countCreates(c.batches[0]) != 2 || countCreates(c.batches[len(c.batches)-1]) != 1 {
		t.Fatalf("batches written: %d; creations in the first %d", len(c.batches), countCreates(c.batches[0]))
	}
}

func countCreates(b *corralpb.Batch) int {
	n := 0
	for _, op := range b.GetOps() {
		if op.GetType() == corralpb.Op_PUT && op.GetPrecondition() == corralpb.Op_MUST_NOT_EXIST && api.KindOf(op.GetObject()) == "Pod" {
			n++
		}
	}
	return n
}

// leadershipCluster is a storeCluster whose leadership the test decides.
// Its channel is unbuffered: a send returns once Run took the value, and
// the next send once Run has acted on it (started or stopped leading).
type leadershipCluster struct {
	*storeCluster
	leader chan bool
}

func (c *leadershipCluster) SubscribeLeadership() <-chan bool { return c.leader }

// The controller works only while its server leads: it starts on true,
// stops on false (writing nothing while it follows), and a later term
// resumes from the store with no duplicate pods. Changes reach it through
// its watch, and the periodic resync corrects what no change announces.
func TestDaemonSetControllerFollowsLeadership(t *testing.T) {
	c := &leadershipCluster{storeCluster: newStoreCluster(t), leader: make(chan bool)}
	ds := storedDS()
	c.apply(t, put(storedNode("n1")), put(ds))
	logged := &msgLog{}
	ctl := NewDaemonSetController(c, &recorder{}, slog.New(logged))
	ctl.resync = 50 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); ctl.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitNodes := func(what string, want ...string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for got := podNodes(t, c.storeCluster); !slices.Equal(got, want); got = podNodes(t, c.storeCluster) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: pods on %v, want %v", what, got, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	c.leader <- true
	waitNodes("leading", "n1")
	c.apply(t, put(storedNode("n2"))) // reaches the controller through its watch
	waitNodes("a node joined", "n1", "n2")

	c.leader <- false
	c.leader <- false // taken once Run has stopped the first term's work
	if n := logged.count("daemonset controller stopped"); n != 1 {
		t.Fatalf("the controller stopped %d times on losing leadership, want once", n)
	}
	c.mu.Lock()
	writes := c.writes
	c.mu.Unlock()
	c.apply(t, put(storedNode("n3")))
	if got := podNodes(t, c.storeCluster); !slices.Equal(got, []string{"n1", "n2"}) {
		t.Fatalf("a follower's controller acted: pods on %v", got)
	}
	c.mu.Lock()
	if c.writes != writes {
		t.Errorf("%d writes while following", c.writes-writes)
	}
	c.mu.Unlock()

	c.leader <- true
	waitNodes("leading again", "n1", "n2", "n3")

	// A status changed by someone else, and only the status: no change
	// the controller plans on, so only the resync puts it right.
	obj, err := c.st.Get(nil, "DaemonSet", "default", "ds")
	if err != nil {
		t.Fatal(err)
	}
	bogus := proto.Clone(obj.GetDaemonSet()).(*corralpb.DaemonSet) // stored objects are shared
	bogus.Status.DesiredNumberScheduled = 42
	c.apply(t, &corralpb.Op{Type: corralpb.Op_STATUS, Object: api.Wrap(bogus)})
	deadline := time.Now().Add(10 * time.Second)
	for {
		obj, err := c.st.Get(nil, "DaemonSet", "default", "ds")
		if err != nil {
			t.Fatal(err)
		}
		if obj.GetDaemonSet().GetStatus().GetDesiredNumberScheduled() == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status after the resync period: %v", obj.GetDaemonSet().GetStatus())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Kubernetes' SelectingAll guard: a DaemonSet with an empty selector
// (which the API refuses; a store may hold one all the same) gets a
// warning and no pods, and adopts nothing.
func TestDaemonSetControllerSelectingAll(t *testing.T) {
	c := newStoreCluster(t)
	ds := storedDS()
	ds.Spec.Selector = &corralpb.LabelSelector{}
	loose := &corralpb.Pod{ApiVersion: "v1", Kind: "Pod", Metadata: &corralpb.ObjectMeta{Name: "loose", Namespace: "default", Uid: "uid-loose",
		Labels: map[string]string{"app": "x"}}, Spec: &corralpb.PodSpec{NodeName: "n1", Containers: []*corralpb.Container{{Name: "c", Image: "busybox"}}}}
	c.apply(t, put(storedNode("n1")), put(ds), put(loose))
	rec := &recorder{}
	ctl := NewDaemonSetController(c, rec, slog.New(slog.DiscardHandler))
	if err := ctl.sync(context.Background(), dsKey(ds)); err != nil {
		t.Fatal(err)
	}
	pods := storedPods(t, c)
	if len(pods) != 1 || len(pods["loose"].GetMetadata().GetOwnerReferences()) != 0 || c.writes != 0 {
		t.Fatalf("pods %v after %d writes: want only the loose pod, unowned", pods, c.writes)
	}
	want := []string{"DaemonSet/ds Warning SelectingAll: This daemon set is selecting all pods. A non-empty selector is required."}
	if got := rec.take(); !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
}

// msgLog keeps the messages logged through it.
type msgLog struct {
	mu   sync.Mutex
	msgs []string
}

func (l *msgLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *msgLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *msgLog) WithGroup(string) slog.Handler            { return l }

func (l *msgLog) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, r.Message)
	return nil
}

func (l *msgLog) count(msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.msgs {
		if m == msg {
			n++
		}
	}
	return n
}
