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

	corralpb "github.com/corral-dev/corral/proto"
	"github.com/corral-dev/corral/raftstore/state"
)

var ttlNow = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// ev is an event called name with the given timestamps (nil: unset).
func ev(name string, created, first, last *time.Time) *corralpb.Event {
	ts := func(t *time.Time) *timestamppb.Timestamp {
		if t == nil {
			return nil
		}
		return timestamppb.New(*t)
	}
	return &corralpb.Event{
		ApiVersion: "v1", Kind: "Event",
		Metadata:       &corralpb.ObjectMeta{Namespace: "default", Name: name, Uid: "uid-" + name, CreationTimestamp: ts(created)},
		InvolvedObject: &corralpb.ObjectReference{Kind: "Node", Name: "w1"},
		Reason:         "NodeReady", Type: "Normal", Count: 1,
		FirstTimestamp: ts(first), LastTimestamp: ts(last),
	}
}

func ago(d time.Duration) *time.Time {
	t := ttlNow.Add(-d)
	return &t
}

func TestExpiredEvents(t *testing.T) {
	const ttl = time.Hour
	evs := []*corralpb.Event{
		ev("fresh", ago(3*time.Hour), ago(3*time.Hour), ago(time.Minute)),              // seen again lately
		ev("stale", ago(3*time.Hour), ago(3*time.Hour), ago(61*time.Minute)),           // last seen too long ago
		ev("exactly-ttl", ago(time.Hour), ago(time.Hour), ago(time.Hour)),              // not older than the TTL
		ev("first-only-old", ago(2*time.Hour), ago(2*time.Hour), nil),                  // firstTimestamp decides
		ev("first-only-new", ago(2*time.Hour), ago(time.Minute), nil),                  // firstTimestamp decides
		ev("created-only-old", ago(2*time.Hour), nil, nil),                             // creationTimestamp decides
		ev("created-only-new", ago(time.Second), nil, nil),                             // creationTimestamp decides
		ev("no-timestamps", nil, nil, nil),                                             // kept: age unknown
		ev("future", ago(-time.Hour), ago(-time.Hour), ago(-time.Hour)),                // clock skew: kept
		ev("last-new-created-old", ago(5*time.Hour), nil, ago(30*time.Minute)),         // lastTimestamp wins
		ev("last-old-first-new", ago(5*time.Hour), ago(time.Minute), ago(2*time.Hour)), // lastTimestamp wins
	}
	tests := []struct {
		name string
		ttl  time.Duration
		want []string
	}{
		{"one hour", ttl, []string{"stale", "first-only-old", "created-only-old", "last-old-first-new"}},
		{"a day", 24 * time.Hour, nil},
		{"ten minutes", 10 * time.Minute, []string{"stale", "exactly-ttl", "first-only-old", "created-only-old", "last-new-created-old", "last-old-first-new"}},
	}
	for _, tt := range tests {
		var got []string
		for _, e := range ExpiredEvents(evs, ttlNow, tt.ttl) {
			got = append(got, e.GetMetadata().GetName())
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: expired %v, want %v", tt.name, got, tt.want)
		}
	}
}

// storeCluster is a Cluster over a real state store: writes apply at once,
// at the next index. beforeWrite, when set, runs before each write.
type storeCluster struct {
	mu          sync.Mutex
	st          *state.Store
	index       uint64
	writes      int
	beforeWrite func(c *storeCluster, n int)
	batches     []*corralpb.Batch // as written
}

var _ Cluster = (*storeCluster)(nil)

func newStoreCluster(t *testing.T) *storeCluster {
	t.Helper()
	c := &storeCluster{st: state.New()}
	c.apply(t, &corralpb.Op{Type: corralpb.Op_PUT, Object: &corralpb.Object{Kind: &corralpb.Object_Namespace{Namespace: &corralpb.Namespace{
		ApiVersion: "v1", Kind: "Namespace", Metadata: &corralpb.ObjectMeta{Name: "default", Uid: "ns-default"}}}}})
	return c
}

func (c *storeCluster) State() *state.Store { return c.st }

func (c *storeCluster) SubscribeLeadership() <-chan bool {
	ch := make(chan bool, 1)
	ch <- true
	return ch
}

func (c *storeCluster) Write(_ context.Context, b *corralpb.Batch) (*corralpb.BatchResult, error) {
	c.mu.Lock()
	c.writes++
	n, hook := c.writes, c.beforeWrite
	c.mu.Unlock()
	if hook != nil {
		hook(c, n)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.index++
	c.batches = append(c.batches, proto.Clone(b).(*corralpb.Batch))
	// As the FSM applies it: decoded from the log, owned.
	data, err := proto.Marshal(&corralpb.LogEntry{Batches: []*corralpb.Batch{b}})
	if err != nil {
		return nil, err
	}
	var e corralpb.LogEntry
	if err := proto.Unmarshal(data, &e); err != nil {
		return nil, err
	}
	return c.st.ApplyOwned(c.index, &e).GetResults()[0], nil
}

// apply writes ops as one batch and fails the test unless it succeeds.
func (c *storeCluster) apply(t testing.TB, ops ...*corralpb.Op) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.index++
	res := c.st.Apply(c.index, &corralpb.LogEntry{Batches: []*corralpb.Batch{{Ops: ops}}}).GetResults()[0]
	if res.GetCode() != corralpb.ErrorCode_OK {
		t.Fatalf("apply: %s: %s", res.GetCode(), res.GetMessage())
	}
}

func putEvent(e *corralpb.Event) *corralpb.Op {
	return &corralpb.Op{Type: corralpb.Op_PUT, Object: &corralpb.Object{Kind: &corralpb.Object_Event{Event: e}}}
}

func storedEvents(t *testing.T, c *storeCluster) []string {
	t.Helper()
	objs, err := c.st.List(nil, "Event", "")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, o := range objs {
		out = append(out, o.GetEvent().GetMetadata().GetName())
	}
	return out
}

func TestSweepDeletesInBatches(t *testing.T) {
	c := newStoreCluster(t)
	var ops []*corralpb.Op
	for i := 0; i < 2*eventDeleteBatch+1; i++ {
		ops = append(ops, putEvent(ev(fmt.Sprintf("old-%04d", i), ago(2*time.Hour), ago(2*time.Hour), ago(2*time.Hour))))
	}
	ops = append(ops, putEvent(ev("young", ago(2*time.Hour), ago(2*time.Hour), ago(time.Minute))))
	c.apply(t, ops...)
	l := NewEventTTL(c, time.Hour, time.Minute, slog.New(slog.DiscardHandler))
	if n := l.Sweep(context.Background(), ttlNow); n != 2*eventDeleteBatch+1 {
		t.Fatalf("deleted %d events, want %d", n, 2*eventDeleteBatch+1)
	}
	if c.writes != 3 {
		t.Fatalf("%d writes, want 3 batches", c.writes)
	}
	if got := storedEvents(t, c); !slices.Equal(got, []string{"young"}) {
		t.Fatalf("left %v", got)
	}
}

func TestSweepSparesEventsSeenAgain(t *testing.T) {
	c := newStoreCluster(t)
	c.apply(t, putEvent(ev("a", ago(2*time.Hour), ago(2*time.Hour), ago(2*time.Hour))),
		putEvent(ev("b", ago(2*time.Hour), ago(2*time.Hour), ago(2*time.Hour))),
		putEvent(ev("c", ago(2*time.Hour), ago(2*time.Hour), ago(2*time.Hour))))
	// Between the sweep's read and its first write, "b" is seen again and
	// "c" is deleted and recreated (another uid, fresh): the batch is
	// refused, planned again, and only "a" goes.
	c.beforeWrite = func(c *storeCluster, n int) {
		if n != 1 {
			return
		}
		b := ev("b", ago(2*time.Hour), ago(2*time.Hour), &ttlNow)
		b.Count = 2
		recreated := ev("c", &ttlNow, &ttlNow, &ttlNow)
		recreated.Metadata.Uid = "uid-c-2"
		c.apply(t, putEvent(b), putEvent(recreated))
	}
	l := NewEventTTL(c, time.Hour, time.Minute, slog.New(slog.DiscardHandler))
	if n := l.Sweep(context.Background(), ttlNow); n != 1 {
		t.Fatalf("deleted %d events, want 1", n)
	}
	if got := storedEvents(t, c); !slices.Equal(got, []string{"b", "c"}) {
		t.Fatalf("left %v", got)
	}
}

func TestEventTTLRunsWhileLeading(t *testing.T) {
	c := newStoreCluster(t)
	// Run reads the real clock: this event was last seen an hour ago.
	hourAgo := time.Now().Add(-time.Hour)
	c.apply(t, putEvent(ev("old", &hourAgo, &hourAgo, &hourAgo)))
	l := NewEventTTL(c, time.Minute, 10*time.Millisecond, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(5 * time.Second)
	for len(storedEvents(t, c)) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the expired event was not deleted")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
