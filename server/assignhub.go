package server

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/corral-dev/corral/raftstore"
	"github.com/corral-dev/corral/raftstore/state"
)

// assignHub routes state changes to the nodes' assignment streams. One
// subscription to the state store serves every stream on this server:
//
//   - a pod's change goes only to the streams of the node it is bound to;
//   - ConfigMaps (rare) go to every stream, which filters them;
//   - a Node's change goes to the streams that asked for routes, and only
//     when the node's route changed. Agents without pod networking do not
//     ask: a registration storm of thousands of nodes would otherwise wake
//     every one of thousands of streams for each. And a node changes on
//     every condition transition: thousands of nodes going Unknown at once
//     would otherwise wake thousands of streams each, to send nothing;
//   - everything else (events, DaemonSets, revisions: most of the traffic)
//     goes to none.
//
// Without it each of thousands of streams would read and skip every
// change.
//
// A stream registers before it reads its full set, so the hub delivers
// every change after the set's index (and some before, which the stream
// skips). A stream that falls hubQueueLimit changes behind, or whose store
// was replaced by a snapshot, is ended with an error: the agent reconnects
// and gets a full set again.
type assignHub struct {
	rs  *raftstore.Server
	log *slog.Logger

	mu      sync.Mutex
	byNode  map[string]map[*hubStream]struct{}
	streams map[*hubStream]struct{}
	// routed are the streams that follow Nodes (their routes).
	routed map[*hubStream]struct{}
	// routes is each node's route as last delivered by the current
	// subscription (routeKey; "" for none): a Node change that leaves it
	// as it was is not delivered. A node missing here (never seen, or
	// deleted since) is delivered.
	routes map[string]string
	// gen counts subscriptions; while active, the current one delivers
	// every change after index from.
	gen    uint64
	active bool
	from   uint64

	// encoders bounds how many streams encode a message at once (see
	// hubStream.encoding).
	encoders chan struct{}
}

// hubQueueLimit is how many undelivered changes a stream may hold.
const hubQueueLimit = 16384

// Errors a hub stream ends with.
var (
	errHubBehind   = status.Error(codes.OutOfRange, "assignments fell behind; reconnect for a full set")
	errHubReplaced = status.Error(codes.Unavailable, "state was replaced by a snapshot; reconnect")
)

func newAssignHub(rs *raftstore.Server, log *slog.Logger) *assignHub {
	return &assignHub{rs: rs, log: log, byNode: map[string]map[*hubStream]struct{}{}, streams: map[*hubStream]struct{}{},
		routed: map[*hubStream]struct{}{}, routes: map[string]string{},
		encoders: make(chan struct{}, max(4, 2*runtime.GOMAXPROCS(0)))}
}

// hubStream is one assignment stream's queue of changes.
type hubStream struct {
	node string
	gen  uint64 // the hub's subscription when it registered
	wake chan struct{}
	// encoders is the hub's: a slot is held while encoding a message.
	encoders chan struct{}

	mu    sync.Mutex
	queue []state.Event
	err   error
}

// register adds a stream for node, following Nodes too when routes is
// set; unregister must follow.
func (h *assignHub) register(node string, routes bool) *hubStream {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := &hubStream{node: node, gen: h.gen, wake: make(chan struct{}, 1), encoders: h.encoders}
	if h.byNode[node] == nil {
		h.byNode[node] = map[*hubStream]struct{}{}
	}
	h.byNode[node][s] = struct{}{}
	h.streams[s] = struct{}{}
	if routes {
		h.routed[s] = struct{}{}
	}
	return s
}

// covers reports whether s will get every change after index: the hub's
// subscription it registered with is still the one running, and began at
// or before index.
func (h *assignHub) covers(s *hubStream, index uint64) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.active && s.gen == h.gen && h.from <= index
}

func (h *assignHub) unregister(s *hubStream) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.byNode[s.node], s)
	if len(h.byNode[s.node]) == 0 {
		delete(h.byNode, s.node)
	}
	delete(h.streams, s)
	delete(h.routed, s)
}

// run follows the state store until ctx ends, resubscribing to the new
// store after a snapshot restore (ending every stream then).
func (h *assignHub) run(ctx context.Context) {
	for ctx.Err() == nil {
		st := h.rs.State()
		from := st.LatestIndex()
		sub, err := st.Subscribe(from)
		if err != nil {
			h.failAll(errHubReplaced)
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		h.mu.Lock()
		h.gen++
		h.active, h.from = true, from
		h.routes = map[string]string{} // another store, or changes missed
		h.mu.Unlock()
		err = h.follow(ctx, sub)
		sub.Close()
		h.mu.Lock()
		h.active = false
		h.mu.Unlock()
		switch {
		case ctx.Err() != nil:
		case errors.Is(err, state.ErrTooOld):
			h.log.Warn("assignment streams fell behind the state's change ring; agents will reconnect")
			h.failAll(errHubBehind)
		default:
			h.failAll(errHubReplaced)
		}
	}
}

func (h *assignHub) follow(ctx context.Context, sub *state.Subscription) error {
	for {
		events, err := sub.Next(ctx)
		if err != nil {
			return err
		}
		h.deliver(events)
	}
}

// deliver hands each change to the streams it concerns.
func (h *assignHub) deliver(events []state.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ev := range events {
		switch {
		case ev.Object.GetPod() != nil:
			for s := range h.byNode[ev.Object.GetPod().GetSpec().GetNodeName()] {
				s.push(ev)
			}
		case ev.Object.GetConfigMap() != nil:
			for s := range h.streams {
				s.push(ev)
			}
		case ev.Object.GetNode() != nil:
			node := ev.Object.GetNode()
			name, key := node.GetMetadata().GetName(), routeKey(node, ev.Type == state.EventDeleted)
			if prev, ok := h.routes[name]; ok && prev == key {
				continue
			}
			if ev.Type == state.EventDeleted {
				delete(h.routes, name) // a node of that name again is new
			} else {
				h.routes[name] = key
			}
			for s := range h.routed {
				s.push(ev)
			}
		}
	}
}

func (h *assignHub) failAll(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.streams {
		s.fail(err)
	}
}

func (s *hubStream) push(ev state.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return
	}
	if len(s.queue) >= hubQueueLimit {
		s.err, s.queue = errHubBehind, nil
	} else {
		s.queue = append(s.queue, ev)
	}
	s.signal()
}

func (s *hubStream) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err, s.queue = err, nil
	}
	s.signal()
}

func (s *hubStream) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// next waits for changes and returns all that are queued.
func (s *hubStream) next(ctx context.Context) ([]state.Event, error) {
	for {
		s.mu.Lock()
		if s.err != nil {
			err := s.err
			s.mu.Unlock()
			return nil, err
		}
		if len(s.queue) > 0 {
			out := s.queue
			s.queue = nil
			s.mu.Unlock()
			return out, nil
		}
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		case <-s.wake:
		}
	}
}

// encoding runs f, which builds and encodes the stream's next message,
// holding one of the hub's few encoder slots. One change (a DaemonSet's
// pods created, a rolling update's wave) wakes thousands of streams at
// once; without the slots every one of them would be runnable together,
// and any goroutine made runnable then (Raft's, the FSM's) would wait
// behind them all. With them the streams take turns, a few encoding at a
// time, and each sends (which may wait for the agent's flow-control
// window) after giving its slot back.
func (s *hubStream) encoding(ctx context.Context, f func() error) error {
	select {
	case s.encoders <- struct{}{}:
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	}
	defer func() { <-s.encoders }()
	return f()
}
