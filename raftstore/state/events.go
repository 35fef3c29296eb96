package state

import (
	"context"
	"sort"
	"sync"

	corralpb "github.com/corral-dev/corral/proto"
)

// Event types, as Kubernetes' watch events name them.
const (
	EventAdded    = "ADDED"
	EventModified = "MODIFIED"
	EventDeleted  = "DELETED"
)

// Event is one applied change to one object. Object is the stored object
// after an ADDED or MODIFIED change and the last stored one for DELETED; it
// is shared with the store and must not be mutated. Index is the Raft index
// of the entry that made the change; several events can share one.
type Event struct {
	Type   string
	Index  uint64
	Object *corralpb.Object
}

// hub is the ring of recent events and the broadcast that wakes
// subscribers. Apply appends under mu and never waits for a subscriber;
// subscribers keep their own position and notice on their next Next when
// the ring has overwritten it.
//
// Events are numbered by a sequence that never resets: the ring holds
// sequence numbers [first, first+n). floor is the highest Index of any
// event no longer in the ring (or the restore point), so every event with
// Index > floor is still there.
type hub struct {
	mu    sync.Mutex
	ring  []Event
	head  int // ring position of sequence number first
	n     int
	first uint64
	floor uint64
	// wake is closed, and replaced, whenever events are appended.
	wake chan struct{}

	abandoned   chan struct{}
	abandonOnce sync.Once
}

func newHub(size int) *hub {
	return &hub{
		ring:      make([]Event, size),
		wake:      make(chan struct{}),
		abandoned: make(chan struct{}),
	}
}

// publish appends events, evicting the oldest when the ring is full, and
// wakes every waiting subscriber.
func (h *hub) publish(events []Event) {
	if len(events) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	size := len(h.ring)
	for _, e := range events {
		if h.n == size {
			h.floor = h.ring[h.head].Index
			h.ring[h.head] = Event{}
			h.head = (h.head + 1) % size
			h.first++
			h.n--
		}
		h.ring[(h.head+h.n)%size] = e
		h.n++
	}
	close(h.wake)
	h.wake = make(chan struct{})
}

// at returns the i-th retained event, 0 being the oldest. Callers hold mu.
func (h *hub) at(i int) *Event {
	return &h.ring[(h.head+i)%len(h.ring)]
}

// setFloor declares that events up to index are unknown (a restored store
// starts at its snapshot's index).
func (h *hub) setFloor(index uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.floor = index
}

func (h *hub) abandon() {
	h.abandonOnce.Do(func() { close(h.abandoned) })
}

func (h *hub) isAbandoned() bool {
	select {
	case <-h.abandoned:
		return true
	default:
		return false
	}
}

// Subscription reads the store's events in index order. One goroutine
// calls Next; Close may be called from any goroutine.
type Subscription struct {
	hub       *hub
	next      uint64 // sequence number of the next event to return; under hub.mu
	done      chan struct{}
	closeOnce sync.Once
}

// Subscribe returns a subscription to every event with an index greater
// than afterIndex: typically the index a list was read at (LatestIndex of
// the snapshot listed). It fails with ErrTooOld when some of those events
// have already left the ring, and with ErrClosed when the store was
// abandoned.
func (s *Store) Subscribe(afterIndex uint64) (*Subscription, error) {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.isAbandoned() {
		return nil, ErrClosed
	}
	if afterIndex < h.floor {
		return nil, ErrTooOld
	}
	pos := sort.Search(h.n, func(i int) bool { return h.at(i).Index > afterIndex })
	return &Subscription{hub: h, next: h.first + uint64(pos), done: make(chan struct{})}, nil
}

// Next returns the events after the last one returned, blocking until there
// is at least one. It returns ErrTooOld when the subscriber fell so far
// behind that the ring dropped events it has not read (re-list and
// subscribe again), ErrClosed after Close or once the store is abandoned,
// and ctx's error when ctx ends first.
func (sub *Subscription) Next(ctx context.Context) ([]Event, error) {
	h := sub.hub
	for {
		events, wake, err := sub.poll()
		if err != nil || len(events) > 0 {
			return events, err
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-sub.done:
			return nil, ErrClosed
		case <-h.abandoned:
			return nil, ErrClosed
		}
	}
}

// poll returns the pending events, or none and the channel that will be
// closed when more arrive.
func (sub *Subscription) poll() ([]Event, <-chan struct{}, error) {
	h := sub.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case <-sub.done:
		return nil, nil, ErrClosed
	case <-h.abandoned:
		return nil, nil, ErrClosed
	default:
	}
	if sub.next < h.first {
		return nil, nil, ErrTooOld
	}
	end := h.first + uint64(h.n)
	if sub.next == end {
		return nil, h.wake, nil
	}
	out := make([]Event, 0, end-sub.next)
	for seq := sub.next; seq < end; seq++ {
		out = append(out, *h.at(int(seq - h.first)))
	}
	sub.next = end
	return out, nil, nil
}

// Close ends the subscription; a blocked Next returns ErrClosed. Close is
// idempotent.
func (sub *Subscription) Close() {
	sub.closeOnce.Do(func() { close(sub.done) })
}
