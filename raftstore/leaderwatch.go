package raftstore

import (
	"context"
	"sync"

	"github.com/hashicorp/raft"
)

// leaderWatch tells waiters that the Raft leader changed (a new one
// elected, or the old one lost): changed returns a channel closed at the
// next change. A write forwarded to a leader that died waits for a
// connection to it; the wait must end as soon as another is elected, not
// when its own timeout runs out.
type leaderWatch struct {
	mu sync.Mutex
	ch chan struct{}
}

func newLeaderWatch() *leaderWatch { return &leaderWatch{ch: make(chan struct{})} }

// changed returns a channel closed at the next leader change.
func (w *leaderWatch) changed() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ch
}

func (w *leaderWatch) notify() {
	w.mu.Lock()
	defer w.mu.Unlock()
	close(w.ch)
	w.ch = make(chan struct{})
}

// follow notifies w of every leader change r observes until ctx ends.
func (w *leaderWatch) follow(ctx context.Context, r *raft.Raft) {
	obs := make(chan raft.Observation, 8)
	o := raft.NewObserver(obs, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	r.RegisterObserver(o)
	defer r.DeregisterObserver(o)
	for {
		select {
		case <-ctx.Done():
			return
		case <-obs:
			w.notify()
		}
	}
}
