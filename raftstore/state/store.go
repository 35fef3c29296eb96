package state

import (
	"errors"
	"fmt"

	"github.com/hashicorp/go-memdb"
)

// DefaultEventBuffer is how many events the ring keeps when no
// WithEventBuffer option is given.
const DefaultEventBuffer = 16384

// Errors of the package. Query and subscription errors wrap them.
var (
	// ErrTooOld means the events a subscriber asked for have left the ring:
	// it must re-list and subscribe again from the list's index (Kubernetes
	// answers 410 Gone).
	ErrTooOld = errors.New("state: requested events are too old; re-list")
	// ErrClosed means the subscription was closed or its store abandoned.
	ErrClosed = errors.New("state: subscription closed")
	// ErrUnknownKind means a kind name is not one of the object kinds.
	ErrUnknownKind = errors.New("state: unknown kind")
)

// Store is the replicated state: an in-memory go-memdb database written
// only by Apply (and Restore), read by the query methods, plus the ring of
// events for watches. A Store is safe for concurrent use; Apply must be
// called by one goroutine at a time (the FSM), as Raft does.
type Store struct {
	db   *memdb.MemDB
	hub  *hub
	view bool // read-only point-in-time view from Snapshot
}

// Option configures a Store made by New or Restore.
type Option func(*options)

type options struct {
	eventBuffer int
}

// WithEventBuffer sets how many events the ring keeps (DefaultEventBuffer
// when n < 1). A subscriber that falls more than n events behind gets
// ErrTooOld.
func WithEventBuffer(n int) Option {
	return func(o *options) { o.eventBuffer = n }
}

// New returns an empty store.
func New(opts ...Option) *Store {
	o := options{eventBuffer: DefaultEventBuffer}
	for _, opt := range opts {
		opt(&o)
	}
	if o.eventBuffer < 1 {
		o.eventBuffer = DefaultEventBuffer
	}
	db, err := memdb.NewMemDB(schema())
	if err != nil {
		// The schema is a constant of this package; tests pin it.
		panic(fmt.Sprintf("state: invalid memdb schema: %v", err))
	}
	return &Store{db: db, hub: newHub(o.eventBuffer)}
}

// Snapshot returns a cheap point-in-time, read-only view of the store: its
// queries, Persist, KindIndex and LatestIndex see the state as of the call,
// however the store changes afterwards. It shares the store's events and
// lifecycle (Subscribe, AbandonCh); Apply on a view panics and Abandon on a
// view does nothing.
func (s *Store) Snapshot() *Store {
	return &Store{db: s.db.Snapshot(), hub: s.hub, view: true}
}

// Abandon marks the store as replaced (after a Restore swapped a new one
// in): it closes AbandonCh, and every Subscription's Next returns ErrClosed.
// Blocking queries should watch AbandonCh too and re-run against the new
// store. Abandon is idempotent.
func (s *Store) Abandon() {
	if s.view {
		return
	}
	s.hub.abandon()
}

// AbandonCh is closed when the store is abandoned.
func (s *Store) AbandonCh() <-chan struct{} {
	return s.hub.abandoned
}

// KindIndex returns the Raft index of the last change to objects of kind (0
// when there was none or the kind is unknown). The keys "members" and "meta"
// give the last change to members and to the cluster config.
func (s *Store) KindIndex(kind string) uint64 {
	return indexValue(s.db.Txn(false), kind)
}

// LatestIndex returns the index of the last applied log entry (0 for an
// empty store). An entry's changes and its index become visible together;
// to list and then subscribe without a gap, read both from one Snapshot
// view: its LatestIndex is exactly the state it lists.
func (s *Store) LatestIndex() uint64 {
	return indexValue(s.db.Txn(false), indexKeyLatest)
}

// indexValue reads a row of the index table.
func indexValue(txn *memdb.Txn, key string) uint64 {
	raw, err := txn.First(tableIndex, indexID, key)
	if err != nil || raw == nil {
		return 0
	}
	return raw.(*indexEntry).Value
}

// setIndex writes a row of the index table.
func setIndex(txn *memdb.Txn, key string, index uint64) error {
	if err := txn.Insert(tableIndex, &indexEntry{Key: key, Value: index}); err != nil {
		return fmt.Errorf("update index %s: %w", key, err)
	}
	return nil
}

// kindTable returns the kind's info or an ErrUnknownKind error.
func kindTable(kind string) (*kindInfo, error) {
	k, ok := lookupKind(kind)
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownKind, kind)
	}
	return k, nil
}
