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

	// results are the outcomes of the last resultsKept entries applied,
	// by index modulo resultsKept: a leader that lost its leadership while
	// its entry was in flight finds there what the entry did, should the
	// next leader have committed it (see Server.settle).
	resultsMu sync.Mutex
	results   [resultsKept]appliedResult
}

// resultsKept is how many applied entries' outcomes the FSM remembers.
const resultsKept = 1024

type appliedResult struct {
	index uint64
	res   any
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
	f.resultsMu.Lock()
	f.results[l.Index%resultsKept] = appliedResult{index: l.Index, res: res}
	f.resultsMu.Unlock()
	return res
}

// result returns what the command entry at index did when it was applied,
// if the FSM still remembers.
func (f *fsm) result(index uint64) (any, bool) {
	f.resultsMu.Lock()
	defer f.resultsMu.Unlock()
	r := f.results[index%resultsKept]
	return r.res, r.index == index && r.res != nil
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
