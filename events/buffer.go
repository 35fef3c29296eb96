package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

// Buffer limits.
const (
	// FlushInterval is the longest an event waits in a Buffer before it is
	// sent (unless the sink is failing).
	FlushInterval = 500 * time.Millisecond
	// MaxBatch is the most events sent at once; a Buffer holding that many
	// sends at once.
	MaxBatch = 100
	// MaxPending is the most events a Buffer holds; beyond it the oldest
	// are dropped.
	MaxPending = 1000
)

const (
	sendTimeout  = 10 * time.Second
	drainTimeout = 2 * time.Second
	minBackoff   = FlushInterval
	maxBackoff   = 30 * time.Second
)

// ErrRejected marks a send error that retrying cannot cure: a SendFunc
// wraps it so that the Buffer drops the batch. gRPC errors with codes
// InvalidArgument, PermissionDenied, Unauthenticated, FailedPrecondition
// and Unimplemented count as rejections too.
var ErrRejected = errors.New("events rejected by the sink")

// PartialError is a send that recorded some of the batch's events and not
// others: Failed are the indexes of those it did not record, and Err why.
// The Buffer retries only those: the others would be counted twice.
type PartialError struct {
	Failed []int
	Err    error
}

func (e *PartialError) Error() string {
	return fmt.Sprintf("%d events not recorded: %v", len(e.Failed), e.Err)
}

func (e *PartialError) Unwrap() error { return e.Err }

// NodeSender sends a node's events through NodeAPI.RecordEvents, telling
// the Buffer which were not recorded when only some were.
func NodeSender(client corralpb.NodeAPIClient, node string) SendFunc {
	return func(ctx context.Context, evs []*corralpb.Event) error {
		resp, err := client.RecordEvents(ctx, &corralpb.RecordEventsRequest{NodeName: node, Events: evs})
		if err != nil {
			return err
		}
		if len(resp.GetFailed()) == 0 {
			return nil
		}
		failed := make([]int, len(resp.GetFailed()))
		for i, n := range resp.GetFailed() {
			failed[i] = int(n)
		}
		return &PartialError{Failed: failed, Err: errors.New(resp.GetError())}
	}
}

// SendFunc delivers a batch of events to the sink: NodeAPI.RecordEvents
// for an agent, the server's own RecordEvents for its controllers.
type SendFunc func(ctx context.Context, events []*corralpb.Event) error

// Buffer is the Recorder agents and controllers use. It stamps each event
// with its source and the time, combines similar events as Kubernetes'
// recorder does (see similarEvents), merges identical events (see Key)
// while they wait, and sends them in batches from Run: at most FlushInterval
// after the oldest arrived, or at once when MaxBatch are waiting. A failed
// send is retried with backoff (FlushInterval doubling to 30 s); while the
// sink is down the Buffer holds at most MaxPending events, dropping the
// oldest. Record never blocks on the sink.
type Buffer struct {
	send   SendFunc
	source *corralpb.EventSource
	clock  func() time.Time
	log    *slog.Logger
	// after is time.After; tests replace it to drive the flush timer.
	after func(time.Duration) <-chan time.Time
	kick  chan struct{}

	mu      sync.Mutex
	similar similarEvents
	pending []*entry // oldest first
	byKey   map[string]*entry
	dropped int
	backoff time.Duration
	retryAt time.Time
}

// entry is one pending event.
type entry struct {
	key    string
	ev     *corralpb.Event
	queued time.Time
	merged bool // folded into an older entry by requeue
}

var _ Recorder = (*Buffer)(nil)

// NewBuffer returns a Buffer that sends through send, with source as every
// event's source (component "kubelet" and the node name for an agent,
// "daemonset-controller" for the controller) and clock for timestamps
// (time.Now when nil). Run sends.
func NewBuffer(send SendFunc, source *corralpb.EventSource, clock func() time.Time, log *slog.Logger) *Buffer {
	if clock == nil {
		clock = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	src := &corralpb.EventSource{}
	if source != nil {
		src = proto.Clone(source).(*corralpb.EventSource)
	}
	return &Buffer{
		send: send, source: src, clock: clock, log: log, after: time.After,
		kick: make(chan struct{}, 1), byKey: map[string]*entry{}, similar: similarEvents{},
	}
}

// Event records an event about obj. It implements Recorder.
func (b *Buffer) Event(obj *corralpb.Object, eventType, reason, message string) {
	b.Record(Reference(obj), eventType, reason, message)
}

// Record records an event about the object ref names; ref.fieldPath names
// a part of it ("spec.containers{nginx}"). Events with an unknown type or
// no reason are dropped (and logged), as Kubernetes' recorder does.
func (b *Buffer) Record(ref *corralpb.ObjectReference, eventType, reason, message string) {
	if ref == nil || ref.GetKind() == "" || ref.GetName() == "" {
		b.log.Error("event without an object dropped", "reason", reason)
		return
	}
	if (eventType != TypeNormal && eventType != TypeWarning) || reason == "" {
		b.log.Error("invalid event dropped", "type", eventType, "reason", reason, "object", ref.GetKind()+"/"+ref.GetName())
		return
	}
	now := b.clock()
	ev := &corralpb.Event{
		InvolvedObject: cloneRef(ref),
		Reason:         reason,
		Message:        truncate(message),
		Type:           eventType,
		Source:         proto.Clone(b.source).(*corralpb.EventSource),
		FirstTimestamp: timestamppb.New(now),
		LastTimestamp:  timestamppb.New(now),
		Count:          1,
	}
	b.mu.Lock()
	ev.Message = b.similar.message(ev, now)
	key := Key(ev)
	if e, ok := b.byKey[key]; ok {
		e.ev.Count++
		e.ev.LastTimestamp = ev.LastTimestamp
		e.ev.Message = ev.Message // a combined event's latest
		b.mu.Unlock()
		return
	}
	e := &entry{key: key, ev: ev, queued: now}
	b.pending = append(b.pending, e)
	b.byKey[key] = e
	b.trim()
	n := len(b.pending)
	b.mu.Unlock()
	if n == 1 || n == MaxBatch {
		select {
		case b.kick <- struct{}{}:
		default:
		}
	}
}

// trim drops the oldest pending events beyond MaxPending. b.mu is held.
func (b *Buffer) trim() {
	for len(b.pending) > MaxPending {
		delete(b.byKey, b.pending[0].key)
		b.pending[0] = nil
		b.pending = b.pending[1:]
		b.dropped++
	}
}

// Run sends batches until ctx ends, then makes one last attempt, for a
// short while, to send what is left. It always returns nil.
func (b *Buffer) Run(ctx context.Context) error {
	for {
		wait, ok := b.flushDue(ctx)
		if ok && wait <= 0 {
			continue
		}
		var wake <-chan time.Time
		if ok {
			wake = b.after(wait)
		}
		select {
		case <-ctx.Done():
			b.drain(ctx)
			return nil
		case <-b.kick:
		case <-wake:
		}
	}
}

// flushDue sends one batch if one is due. It returns how long until the
// next is due; ok is false when nothing is pending.
func (b *Buffer) flushDue(ctx context.Context) (wait time.Duration, ok bool) {
	now := b.clock()
	batch, wait, ok := b.take(now, false)
	if len(batch) == 0 {
		return wait, ok
	}
	sctx, cancel := context.WithTimeout(ctx, sendTimeout)
	err := b.deliver(sctx, batch)
	cancel()
	if err != nil {
		b.failed(batch, now, err)
	} else {
		b.mu.Lock()
		b.backoff, b.retryAt = 0, time.Time{}
		b.mu.Unlock()
	}
	return 0, true
}

// take removes the oldest batch from the buffer when it is due at now (or
// whenever anything is pending, with force). Otherwise it returns how long
// until one is due, and ok false when nothing is pending.
func (b *Buffer) take(now time.Time, force bool) (batch []*entry, wait time.Duration, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dropped > 0 {
		b.log.Warn("events dropped: the sink is not keeping up", "dropped", b.dropped, "pending", len(b.pending))
		b.dropped = 0
	}
	if len(b.pending) == 0 {
		return nil, 0, false
	}
	if !force {
		due := b.pending[0].queued.Add(FlushInterval)
		if len(b.pending) >= MaxBatch {
			due = now
		}
		if b.retryAt.After(due) {
			due = b.retryAt
		}
		if now.Before(due) {
			return nil, due.Sub(now), true
		}
	}
	n := min(len(b.pending), MaxBatch)
	batch = make([]*entry, n)
	copy(batch, b.pending)
	for i, e := range batch {
		delete(b.byKey, e.key)
		b.pending[i] = nil
	}
	b.pending = b.pending[n:]
	return batch, 0, true
}

// deliver sends the batch's events.
func (b *Buffer) deliver(ctx context.Context, batch []*entry) error {
	evs := make([]*corralpb.Event, len(batch))
	for i, e := range batch {
		evs[i] = e.ev
	}
	return b.send(ctx, evs)
}

// failed handles a failed send: a rejected batch is dropped; otherwise it
// (or, for a PartialError, what of it was not recorded) goes back to the
// front of the buffer and the next send waits a backoff.
func (b *Buffer) failed(batch []*entry, now time.Time, err error) {
	var partial *PartialError
	if errors.As(err, &partial) {
		failed := make([]bool, len(batch))
		for _, i := range partial.Failed {
			if i >= 0 && i < len(batch) {
				failed[i] = true
			}
		}
		var left []*entry
		for i, e := range batch {
			if failed[i] {
				left = append(left, e)
			}
		}
		batch = left
	}
	if len(batch) == 0 {
		return
	}
	if rejected(err) {
		b.log.Warn("events rejected by the sink; dropped", "events", len(batch), "err", err)
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	first := b.backoff == 0
	b.backoff = min(max(2*b.backoff, minBackoff), maxBackoff)
	b.retryAt = now.Add(b.backoff)
	b.requeue(batch)
	if first {
		b.log.Warn("send events; retrying", "events", len(batch), "err", err)
	} else {
		b.log.Debug("send events; retrying", "events", len(batch), "backoff", b.backoff, "err", err)
	}
}

// requeue puts a batch that was not sent back before the pending events,
// merging pending events identical to one of it into it. b.mu is held.
func (b *Buffer) requeue(batch []*entry) {
	out := make([]*entry, 0, len(batch)+len(b.pending))
	for _, e := range batch {
		if cur, ok := b.byKey[e.key]; ok {
			e.ev.Count += cur.ev.Count
			e.ev.LastTimestamp = cur.ev.LastTimestamp
			e.ev.Message = cur.ev.Message
			cur.merged = true
		}
		b.byKey[e.key] = e
		out = append(out, e)
	}
	for _, e := range b.pending {
		if !e.merged {
			out = append(out, e)
		}
	}
	b.pending = out
	b.trim()
}

// drain makes a last, short attempt to send everything pending.
func (b *Buffer) drain(ctx context.Context) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drainTimeout)
	defer cancel()
	for {
		batch, _, _ := b.take(b.clock(), true)
		if len(batch) == 0 {
			return
		}
		if err := b.deliver(dctx, batch); err != nil {
			b.log.Debug("events not sent at shutdown", "events", len(batch)+b.Len(), "err", err)
			return
		}
	}
}

// Len returns how many distinct events wait to be sent.
func (b *Buffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.pending)
}

// rejected reports whether err says that retrying the batch cannot help.
func rejected(err error) bool {
	if errors.Is(err, ErrRejected) {
		return true
	}
	switch status.Code(err) {
	case codes.InvalidArgument, codes.PermissionDenied, codes.Unauthenticated,
		codes.FailedPrecondition, codes.Unimplemented:
		return true
	}
	return false
}

// Kubernetes' event aggregation (client-go's EventAggregator defaults).
const (
	// similarMaxMessages is the number of different messages of similar
	// events after which they are combined.
	similarMaxMessages = 10
	// similarInterval is how long similar events are remembered after the
	// last one.
	similarInterval = 10 * time.Minute
	// similarMaxObjects bounds the groups of similar events remembered.
	similarMaxObjects = 4096
)

// similarEvents combines similar events: events about the same object
// from the same source with the same type and reason but different
// messages ("Created pod: web-x2f9k", "Created pod: web-8fk2d", ...). The
// first nine messages of a group travel as they are; from the tenth
// different one within ten minutes, each event of the group becomes one
// event, "(combined from similar events): " and its message, which the
// server stores once and counts, showing the latest message. A DaemonSet
// creating pods on 5,000 nodes records ten events, not 5,000, as in
// Kubernetes.
type similarEvents map[string]*similarGroup

type similarGroup struct {
	messages map[string]bool
	last     time.Time
}

// message returns the message to send for ev, recorded at now.
func (s similarEvents) message(ev *corralpb.Event, now time.Time) string {
	key := groupKey(ev)
	g := s[key]
	if g == nil || now.Sub(g.last) > similarInterval {
		if g == nil && len(s) >= similarMaxObjects {
			s.forget(now)
		}
		g = &similarGroup{messages: map[string]bool{}}
		s[key] = g
	}
	g.last = now
	g.messages[ev.GetMessage()] = true
	if len(g.messages) < similarMaxMessages {
		return ev.GetMessage()
	}
	// As Kubernetes: drop one message so that the set stays bounded; a
	// message still in it travels on its own again.
	for m := range g.messages {
		delete(g.messages, m)
		break
	}
	return truncate(api.CombinedEventPrefix + ev.GetMessage())
}

// groupKey is what similar events share: the object, the source, the
// type and the reason.
func groupKey(ev *corralpb.Event) string {
	ref, src := ev.GetInvolvedObject(), ev.GetSource()
	return strings.Join([]string{src.GetComponent(), src.GetHost(), ref.GetKind(), ref.GetNamespace(), ref.GetName(),
		ref.GetUid(), ref.GetApiVersion(), ev.GetType(), ev.GetReason()}, "\x00")
}

// forget makes room: groups quiet for similarInterval go, and if none is,
// the quietest.
func (s similarEvents) forget(now time.Time) {
	var oldest string
	for k, g := range s {
		if now.Sub(g.last) > similarInterval {
			delete(s, k)
			continue
		}
		if oldest == "" || g.last.Before(s[oldest].last) {
			oldest = k
		}
	}
	if len(s) >= similarMaxObjects {
		delete(s, oldest)
	}
}
