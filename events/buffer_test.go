package events

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// harness runs a Buffer whose timer the test fires and whose sink records
// batches; fail, when set, decides each send's error.
type harness struct {
	b     *Buffer
	clock *fakeClock
	asked chan time.Duration // every wait Run asks the timer for
	ticks chan time.Time     // fires whichever timer Run waits on
	sent  chan []*corralpb.Event
	tried chan int // every send attempt, numbered from 1

	mu   sync.Mutex
	fail func(n int) error // n counts sends from 1
	n    int
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{
		clock: &fakeClock{now: t0},
		asked: make(chan time.Duration, 100),
		ticks: make(chan time.Time),
		sent:  make(chan []*corralpb.Event, 100),
		tried: make(chan int, 100),
	}
	send := func(_ context.Context, evs []*corralpb.Event) error {
		h.mu.Lock()
		h.n++
		n, fail := h.n, h.fail
		h.mu.Unlock()
		h.tried <- n
		if fail != nil {
			if err := fail(n); err != nil {
				return err
			}
		}
		cp := make([]*corralpb.Event, len(evs))
		for i, e := range evs {
			cp[i] = proto.Clone(e).(*corralpb.Event)
		}
		h.sent <- cp
		return nil
	}
	h.b = NewBuffer(send, &corralpb.EventSource{Component: "kubelet", Host: "w1"}, h.clock.Now, nil)
	h.b.after = func(d time.Duration) <-chan time.Time {
		h.asked <- d
		return h.ticks
	}
	return h
}

// run starts the buffer's Run; the returned function stops it and waits.
func (h *harness) run(t *testing.T) (stop func()) {
	t.Helper()
	// Events recorded before Run kicked it already: Run sees them anyway.
	select {
	case <-h.b.kick:
	default:
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = h.b.Run(ctx)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Error("Run did not return after its context ended")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// wantAsked waits for Run to arm its timer for d. Run may re-arm the
// timer for the same wait (a kick for an event it already saw), so other
// waits before it are skipped.
func (h *harness) wantAsked(t *testing.T, d time.Duration) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case got := <-h.asked:
			if got == d {
				return
			}
		case <-deadline:
			t.Fatalf("Run did not arm its timer for %v", d)
		}
	}
}

// fireUntilSent fires the timer until a batch is sent, and returns it.
func (h *harness) fireUntilSent(t *testing.T) []*corralpb.Event {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case h.ticks <- time.Time{}:
		case evs := <-h.sent:
			return evs
		case <-deadline:
			t.Fatal("no batch sent")
		}
	}
}

// tick fires the timer Run waits on.
func (h *harness) tick(t *testing.T) {
	t.Helper()
	select {
	case h.ticks <- time.Time{}:
	case <-time.After(5 * time.Second):
		t.Fatal("Run does not wait on its timer")
	}
}

// wantTried waits for send attempt n.
func (h *harness) wantTried(t *testing.T, n int) {
	t.Helper()
	select {
	case got := <-h.tried:
		if got != n {
			t.Fatalf("send attempt %d, want %d", got, n)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no send attempt %d", n)
	}
}

// wantSent waits for one batch.
func (h *harness) wantSent(t *testing.T) []*corralpb.Event {
	t.Helper()
	select {
	case evs := <-h.sent:
		return evs
	case <-time.After(5 * time.Second):
		t.Fatal("no batch sent")
		return nil
	}
}

func (h *harness) wantNothingSent(t *testing.T) {
	t.Helper()
	select {
	case evs := <-h.sent:
		t.Fatalf("unexpected batch of %d events", len(evs))
	default:
	}
}

func pod(name string) *corralpb.Object {
	return &corralpb.Object{Kind: &corralpb.Object_Pod{Pod: &corralpb.Pod{
		Metadata: &corralpb.ObjectMeta{Namespace: "default", Name: name, Uid: "uid-" + name}}}}
}

func TestBufferMergesIdenticalEvents(t *testing.T) {
	h := newHarness(t)
	h.b.Event(pod("a"), TypeNormal, "Pulling", `Pulling image "nginx"`)
	h.clock.Advance(100 * time.Millisecond)
	h.b.Event(pod("a"), TypeNormal, "Pulling", `Pulling image "nginx"`)
	Eventf(h.b, pod("a"), TypeNormal, "Pulling", "Pulling image %q", "nginx")
	h.b.Event(pod("a"), TypeNormal, "Pulled", `Pulled image "nginx"`)
	h.b.Event(pod("b"), TypeNormal, "Pulling", `Pulling image "nginx"`)
	if n := h.b.Len(); n != 3 {
		t.Fatalf("pending = %d, want 3", n)
	}
	h.run(t)
	h.wantAsked(t, 400*time.Millisecond)
	h.clock.Advance(400 * time.Millisecond)
	evs := h.fireUntilSent(t)
	if len(evs) != 3 {
		t.Fatalf("sent %d events, want 3", len(evs))
	}
	first := evs[0]
	if first.GetReason() != "Pulling" || first.GetInvolvedObject().GetName() != "a" || first.GetCount() != 3 ||
		!first.GetFirstTimestamp().AsTime().Equal(t0) || !first.GetLastTimestamp().AsTime().Equal(t0.Add(100*time.Millisecond)) {
		t.Fatalf("merged event: %v", first)
	}
	if first.GetSource().GetComponent() != "kubelet" || first.GetSource().GetHost() != "w1" {
		t.Fatalf("source: %v", first.GetSource())
	}
	if evs[1].GetCount() != 1 || evs[2].GetCount() != 1 {
		t.Fatalf("counts: %d %d", evs[1].GetCount(), evs[2].GetCount())
	}
}

// TestBufferCombinesSimilarEvents: as Kubernetes' event aggregator, nine
// different messages about one object with one reason travel as they are;
// from the tenth on they are one combined event with the latest message,
// and ten quiet minutes start the group over.
func TestBufferCombinesSimilarEvents(t *testing.T) {
	h := newHarness(t)
	ds := &corralpb.Object{Kind: &corralpb.Object_DaemonSet{DaemonSet: &corralpb.DaemonSet{
		Metadata: &corralpb.ObjectMeta{Namespace: "default", Name: "web", Uid: "uid-web"}}}}
	for i := 0; i < 12; i++ {
		h.b.Event(ds, TypeNormal, "SuccessfulCreate", fmt.Sprintf("Created pod: web-%d", i))
	}
	h.b.Event(ds, TypeNormal, "SuccessfulDelete", "Deleted pod: web-0") // another reason: its own group
	h.b.Event(pod("a"), TypeNormal, "Started", "Started container c")
	h.run(t)
	h.wantAsked(t, FlushInterval)
	h.clock.Advance(FlushInterval)
	evs := h.fireUntilSent(t)
	var got []string
	for _, e := range evs {
		got = append(got, fmt.Sprintf("%s/%s %d %s", e.GetInvolvedObject().GetName(), e.GetReason(), e.GetCount(), e.GetMessage()))
	}
	want := []string{}
	for i := 0; i < 9; i++ {
		want = append(want, fmt.Sprintf("web/SuccessfulCreate 1 Created pod: web-%d", i))
	}
	want = append(want, "web/SuccessfulCreate 3 (combined from similar events): Created pod: web-11",
		"web/SuccessfulDelete 1 Deleted pod: web-0", "a/Started 1 Started container c")
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("sent\n%q\nwant\n%q", got, want)
	}

	// Still combined a minute later; ten quiet minutes later, on its own.
	h.clock.Advance(time.Minute)
	h.b.Event(ds, TypeNormal, "SuccessfulCreate", "Created pod: web-12")
	h.wantAsked(t, FlushInterval)
	h.clock.Advance(FlushInterval)
	if evs := h.fireUntilSent(t); len(evs) != 1 || evs[0].GetMessage() != api.CombinedEventPrefix+"Created pod: web-12" {
		t.Fatalf("a minute later: %v", evs)
	}
	h.clock.Advance(similarInterval + time.Second)
	h.b.Event(ds, TypeNormal, "SuccessfulCreate", "Created pod: web-13")
	h.wantAsked(t, FlushInterval)
	h.clock.Advance(FlushInterval)
	if evs := h.fireUntilSent(t); len(evs) != 1 || evs[0].GetMessage() != "Created pod: web-13" {
		t.Fatalf("after ten quiet minutes: %v", evs)
	}
}

// TestSimilarEventsBounded: the groups remembered stay bounded, the
// quietest forgotten first.
func TestSimilarEventsBounded(t *testing.T) {
	s := similarEvents{}
	ev := func(obj int) *corralpb.Event {
		return &corralpb.Event{InvolvedObject: &corralpb.ObjectReference{Kind: "Pod", Namespace: "default", Name: fmt.Sprint("p", obj)},
			Reason: "Started", Type: TypeNormal, Message: "Started container c"}
	}
	for i := 0; i < similarMaxObjects+10; i++ {
		s.message(ev(i), t0.Add(time.Duration(i)*time.Millisecond))
	}
	if len(s) != similarMaxObjects {
		t.Fatalf("%d groups remembered, want %d", len(s), similarMaxObjects)
	}
	for i := 0; i < 10; i++ {
		if s[groupKey(ev(i))] != nil {
			t.Fatalf("group of p%d, among the quietest, still remembered", i)
		}
	}
	if s[groupKey(ev(similarMaxObjects+9))] == nil {
		t.Fatal("the latest group forgotten")
	}
}

func TestBufferFlushesOnTime(t *testing.T) {
	h := newHarness(t)
	h.b.Event(pod("a"), TypeWarning, "BackOff", "Back-off restarting failed container")
	h.run(t)
	h.wantAsked(t, 500*time.Millisecond)
	// Woken early: not due yet, Run waits for the rest.
	h.clock.Advance(200 * time.Millisecond)
	h.tick(t)
	h.wantAsked(t, 300*time.Millisecond)
	h.wantNothingSent(t)
	h.clock.Advance(300 * time.Millisecond)
	if evs := h.fireUntilSent(t); len(evs) != 1 || evs[0].GetReason() != "BackOff" {
		t.Fatalf("sent %v", evs)
	}
	if h.b.Len() != 0 {
		t.Fatalf("pending after flush: %d", h.b.Len())
	}
}

func TestBufferFlushesOnSize(t *testing.T) {
	h := newHarness(t)
	h.run(t)
	for i := 0; i < MaxBatch+1; i++ {
		h.b.Event(pod(fmt.Sprintf("p%d", i)), TypeNormal, "Started", "Started container app")
	}
	// No time passes: a full batch goes at once; the one left over waits.
	if evs := h.wantSent(t); len(evs) != MaxBatch {
		t.Fatalf("sent %d events, want %d", len(evs), MaxBatch)
	}
	h.wantNothingSent(t)
	deadline := time.Now().Add(5 * time.Second)
	for h.b.Len() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("pending = %d, want 1", h.b.Len())
		}
		time.Sleep(time.Millisecond)
	}
}

func TestBufferDropsOldestBeyondBound(t *testing.T) {
	h := newHarness(t)
	for i := 0; i < MaxPending+5; i++ {
		h.b.Event(pod(fmt.Sprintf("p%d", i)), TypeNormal, "Started", "Started container app")
	}
	if n := h.b.Len(); n != MaxPending {
		t.Fatalf("pending = %d, want %d", n, MaxPending)
	}
	h.run(t)
	// Full batches go at once, oldest first.
	var names []string
	for len(names) < MaxPending {
		evs := h.wantSent(t)
		if len(evs) != MaxBatch {
			t.Fatalf("batch of %d, want %d", len(evs), MaxBatch)
		}
		for _, e := range evs {
			names = append(names, e.GetInvolvedObject().GetName())
		}
	}
	if names[0] != "p5" || names[MaxPending-1] != fmt.Sprintf("p%d", MaxPending+4) {
		t.Fatalf("sent %s .. %s, want p5 .. p%d", names[0], names[MaxPending-1], MaxPending+4)
	}
	// An event dropped from the buffer starts afresh when seen again.
	h.b.Event(pod("p0"), TypeNormal, "Started", "Started container app")
	h.clock.Advance(FlushInterval)
	if evs := h.fireUntilSent(t); len(evs) != 1 || evs[0].GetInvolvedObject().GetName() != "p0" || evs[0].GetCount() != 1 {
		t.Fatalf("sent %v", evs)
	}
}

func TestBufferRetriesWithBackoffAndMerges(t *testing.T) {
	h := newHarness(t)
	h.fail = func(n int) error {
		if n <= 2 {
			return status.Error(codes.Unavailable, "no leader")
		}
		return nil
	}
	h.b.Event(pod("a"), TypeNormal, "Killing", "Stopping container app")
	h.run(t)
	h.wantAsked(t, 500*time.Millisecond)
	h.clock.Advance(500 * time.Millisecond)
	h.tick(t)
	h.wantTried(t, 1)
	// First failure: back off 500 ms. The same event, seen meanwhile,
	// merges into the one that failed.
	h.wantAsked(t, 500*time.Millisecond)
	h.b.Event(pod("a"), TypeNormal, "Killing", "Stopping container app")
	h.clock.Advance(500 * time.Millisecond)
	h.tick(t)
	h.wantTried(t, 2)
	// Second failure: back off 1 s.
	h.wantAsked(t, time.Second)
	if n := h.b.Len(); n != 1 {
		t.Fatalf("pending = %d, want 1", n)
	}
	h.clock.Advance(time.Second)
	evs := h.fireUntilSent(t)
	if len(evs) != 1 || evs[0].GetCount() != 2 {
		t.Fatalf("sent %v", evs)
	}
}

// A send that recorded some events and not others retries those alone:
// sending the recorded ones again would count them twice.
func TestBufferRetriesOnlyWhatWasNotRecorded(t *testing.T) {
	h := newHarness(t)
	h.fail = func(n int) error {
		if n == 1 {
			return &PartialError{Failed: []int{1, 1}, Err: status.Error(codes.Unavailable, "no leader")}
		}
		return nil
	}
	h.b.Event(pod("a"), TypeNormal, "Started", "Started container app")
	h.b.Event(pod("b"), TypeNormal, "Started", "Started container app")
	h.b.Event(pod("c"), TypeNormal, "Started", "Started container app")
	h.run(t)
	h.wantAsked(t, 500*time.Millisecond)
	h.clock.Advance(500 * time.Millisecond)
	h.tick(t)
	h.wantTried(t, 1)
	h.wantAsked(t, 500*time.Millisecond) // the backoff
	if n := h.b.Len(); n != 1 {
		t.Fatalf("pending = %d, want the one event not recorded", n)
	}
	h.clock.Advance(500 * time.Millisecond)
	evs := h.fireUntilSent(t)
	if len(evs) != 1 || evs[0].GetInvolvedObject().GetName() != "b" || evs[0].GetCount() != 1 {
		t.Fatalf("retried %v, want b's event alone", evs)
	}
}

func TestBufferDropsRejectedBatches(t *testing.T) {
	for _, err := range []error{
		status.Error(codes.PermissionDenied, "not your pod"),
		fmt.Errorf("send: %w", ErrRejected),
	} {
		h := newHarness(t)
		h.fail = func(n int) error {
			if n == 1 {
				return err
			}
			return nil
		}
		h.b.Event(pod("a"), TypeNormal, "Started", "Started container app")
		h.run(t)
		h.wantAsked(t, 500*time.Millisecond)
		h.clock.Advance(500 * time.Millisecond)
		h.tick(t)
		h.wantTried(t, 1)
		// The rejected batch is gone, and no backoff holds the next one.
		h.b.Event(pod("b"), TypeNormal, "Started", "Started container app")
		h.clock.Advance(500 * time.Millisecond)
		if evs := h.fireUntilSent(t); len(evs) != 1 || evs[0].GetInvolvedObject().GetName() != "b" {
			t.Fatalf("%v: sent %v", err, evs)
		}
	}
}

func TestBufferDrainsAtShutdown(t *testing.T) {
	h := newHarness(t)
	h.b.Event(pod("a"), TypeNormal, "Killing", "Stopping container app")
	stop := h.run(t)
	h.wantAsked(t, 500*time.Millisecond)
	stop()
	if evs := h.wantSent(t); len(evs) != 1 {
		t.Fatalf("sent %v", evs)
	}
}

func TestBufferDropsInvalidEvents(t *testing.T) {
	h := newHarness(t)
	h.b.Event(pod("a"), "Info", "Started", "x")
	h.b.Event(pod("a"), TypeNormal, "", "x")
	h.b.Event(&corralpb.Object{}, TypeNormal, "Started", "x")
	h.b.Record(nil, TypeNormal, "Started", "x")
	if n := h.b.Len(); n != 0 {
		t.Fatalf("pending = %d, want 0", n)
	}
}

func TestRejected(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{status.Error(codes.InvalidArgument, "x"), true},
		{fmt.Errorf("record: %w", status.Error(codes.PermissionDenied, "x")), true},
		{status.Error(codes.Unauthenticated, "x"), true},
		{status.Error(codes.Unimplemented, "x"), true},
		{ErrRejected, true},
		{status.Error(codes.Unavailable, "x"), false},
		{status.Error(codes.DeadlineExceeded, "x"), false},
		{context.DeadlineExceeded, false},
		{errors.New("connection refused"), false},
	}
	for _, tt := range tests {
		if got := rejected(tt.err); got != tt.want {
			t.Errorf("rejected(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

// nodeAPI answers RecordEvents with resp; the other calls are not used.
type nodeAPI struct {
	corralpb.NodeAPIClient
	resp *corralpb.RecordEventsResponse
	got  *corralpb.RecordEventsRequest
}

func (n *nodeAPI) RecordEvents(_ context.Context, req *corralpb.RecordEventsRequest, _ ...grpc.CallOption) (*corralpb.RecordEventsResponse, error) {
	n.got = req
	return n.resp, nil
}

func TestNodeSenderReportsWhatWasNotRecorded(t *testing.T) {
	api := &nodeAPI{resp: &corralpb.RecordEventsResponse{}}
	send := NodeSender(api, "w1")
	evs := []*corralpb.Event{{Reason: "Pulled"}, {Reason: "Started"}}
	if err := send(context.Background(), evs); err != nil || api.got.GetNodeName() != "w1" || len(api.got.GetEvents()) != 2 {
		t.Fatalf("all recorded: %v, sent %v", err, api.got)
	}
	api.resp = &corralpb.RecordEventsResponse{Failed: []int32{1}, Error: "no leader"}
	var partial *PartialError
	if err := send(context.Background(), evs); !errors.As(err, &partial) || !slices.Equal(partial.Failed, []int{1}) || rejected(err) {
		t.Fatalf("one not recorded: %v", err)
	}
}
