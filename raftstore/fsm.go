package raftstore

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	corralpb "github.com/corral-dev/corral/proto"
	"github.com/corral-dev/corral/raftstore/state"
)

// fsm applies committed log entries to the state store. Restore builds a new
// store, swaps it in and abandons the old one so that every reader and
// watcher of the old store wakes up and re-reads (Consul's FSM does the same).
type fsm struct {
	mu    sync.RWMutex
	store *state.Store

	// applied is the index of the last entry applied (or restored).
	applied atomic.Uint64
	// appliedCh is closed and replaced whenever applied advances.
	notifyMu  sync.Mutex
	appliedCh chan struct{}

	// awaited are the indexes of entries a leader appended and lost its
	// leadership before they committed, and what each did once applied:
	// should the next leader commit one, its writers learn from here (see
	// Server.settle).
	awaitMu sync.Mutex
	awaited map[uint64]any
}

var _ raft.FSM = (*fsm)(nil)

func newFSM() *fsm {
	return &fsm{store: state.New(), appliedCh: make(chan struct{})}
}

// State returns the current store.
func (f *fsm) State() *state.Store {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.store
}

// Apply implements raft.FSM. The returned value is a *corralpb.LogResult or
// an error for an entry that cannot be decoded (which no corral server
// writes).
func (f *fsm) Apply(l *raft.Log) any {
	defer f.advance(l.Index)
	if l.Type != raft.LogCommand {
		return nil
	}
	var res any
	var e corralpb.LogEntry
	if err := proto.Unmarshal(l.Data, &e); err != nil {
		res = fmt.Errorf("decode raft entry %d: %w", l.Index, err)
	} else {
		res = f.State().ApplyOwned(l.Index, &e)
	}
	f.awaitMu.Lock()
	if _, ok := f.awaited[l.Index]; ok {
		f.awaited[l.Index] = res
	}
	f.awaitMu.Unlock()
	return res
}

// await asks the FSM to keep what the entry at index does when applied
// (result returns it) until forget.
func (f *fsm) await(index uint64) {
	f.awaitMu.Lock()
	defer f.awaitMu.Unlock()
	if f.awaited == nil {
		f.awaited = map[uint64]any{}
	}
	f.awaited[index] = nil
}

func (f *fsm) forget(index uint64) {
	f.awaitMu.Lock()
	defer f.awaitMu.Unlock()
	delete(f.awaited, index)
}

// result returns what the awaited command entry at index did, if it was
// applied since await.
func (f *fsm) result(index uint64) (any, bool) {
	f.awaitMu.Lock()
	defer f.awaitMu.Unlock()
	res := f.awaited[index]
	return res, res != nil
}

func (f *fsm) advance(index uint64) {
	f.applied.Store(index)
	f.notifyMu.Lock()
	close(f.appliedCh)
	f.appliedCh = make(chan struct{})
	f.notifyMu.Unlock()
}

// appliedWait returns the applied index and a channel closed when it next
// advances.
func (f *fsm) appliedWait() (uint64, <-chan struct{}) {
	f.notifyMu.Lock()
	defer f.notifyMu.Unlock()
	return f.applied.Load(), f.appliedCh
}

// Snapshot implements raft.FSM: a point-in-time view, persisted later
// without blocking Apply.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	return &fsmSnapshot{view: f.State().Snapshot()}, nil
}

// Restore implements raft.FSM.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	fresh, err := state.Restore(rc)
	if err != nil {
		return fmt.Errorf("restore state snapshot: %w", err)
	}
	f.mu.Lock()
	old := f.store
	f.store = fresh
	f.mu.Unlock()
	old.Abandon()
	f.advance(fresh.LatestIndex())
	return nil
}

type fsmSnapshot struct {
	view *state.Store
}

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.view.Persist(sink); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("persist state snapshot: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}
