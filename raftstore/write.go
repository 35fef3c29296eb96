package raftstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	corralpb "github.com/corral-dev/corral/proto"
)

// Write commits one batch through Raft and returns the FSM's result for it.
// On a follower the batch is forwarded to the leader. An error means the
// batch's fate is unknown or it was not committed (no leader, timeout,
// leadership lost); a logical failure (conflict, not found, ...) is a
// result with a non-OK code.
func (s *Server) Write(ctx context.Context, b *corralpb.Batch) (*corralpb.BatchResult, error) {
	res, err := s.writeEntry(ctx, &corralpb.LogEntry{Batches: []*corralpb.Batch{b}})
	if err != nil {
		return nil, err
	}
	if len(res.GetResults()) != 1 {
		return nil, fmt.Errorf("raft entry returned %d results for 1 batch", len(res.GetResults()))
	}
	return res.GetResults()[0], nil
}

// writeEntry commits entry on the leader, locally or by forwarding.
func (s *Server) writeEntry(ctx context.Context, e *corralpb.LogEntry) (*corralpb.LogResult, error) {
	for attempt := 0; ; attempt++ {
		if s.raft.State() == raft.Leader {
			res, err := s.applyEntry(ctx, e)
			if !errors.Is(err, raft.ErrNotLeader) {
				return res, err
			}
		} else if _, addr := s.Leader(); addr != "" {
			res, err := s.peers.forward(ctx, addr, e)
			if err == nil || !(isNotLeader(err) || errors.Is(err, errPeerUnreachable)) {
				return res, err
			}
		}
		// No leader known, the one we knew stepped down before taking the
		// entry, or it could not be reached at all: nothing was appended,
		// so wait for an election (bounded by the caller's context) and
		// try again.
		if err := s.waitLeaderChange(ctx); err != nil {
			return nil, err
		}
	}
}

// applyEntry commits e through this server's Raft node, which must be the
// leader. Entries carrying only batches go through the group committer;
// membership and configuration entries are applied alone.
func (s *Server) applyEntry(ctx context.Context, e *corralpb.LogEntry) (*corralpb.LogResult, error) {
	if len(e.GetPutMembers()) == 0 && len(e.GetDeleteMembers()) == 0 && e.GetClusterConfig() == nil {
		return s.commit.submit(ctx, e.GetBatches())
	}
	data, err := proto.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode raft entry: %w", err)
	}
	f := s.raft.Apply(data, s.cfg.ApplyTimeout)
	if err := f.Error(); err != nil {
		return nil, err
	}
	return asLogResult(f.Response())
}

func asLogResult(resp any) (*corralpb.LogResult, error) {
	switch r := resp.(type) {
	case *corralpb.LogResult:
		return r, nil
	case error:
		return nil, r
	default:
		return nil, fmt.Errorf("unexpected fsm response %T", resp)
	}
}

// committer group-commits concurrent batches: it keeps up to maxInFlight
// Raft entries in flight and packs every batch that queued while they were
// committing into the next entry (up to maxBatches). One writer alone pays
// for one entry, as with bare Raft; many writers share entries.
type committer struct {
	s     *Server
	queue chan *pendingBatch
	slots chan struct{}
}

const (
	maxInFlight = 4
	maxBatches  = 1024
)

type pendingBatch struct {
	batches []*corralpb.Batch
	done    chan commitResult
}

type commitResult struct {
	res *corralpb.LogResult
	err error
}

func newCommitter(s *Server) *committer {
	return &committer{s: s, queue: make(chan *pendingBatch, 4096), slots: make(chan struct{}, maxInFlight)}
}

// submit queues batches for the next entry and waits for their results.
func (c *committer) submit(ctx context.Context, batches []*corralpb.Batch) (*corralpb.LogResult, error) {
	p := &pendingBatch{batches: batches, done: make(chan commitResult, 1)}
	select {
	case c.queue <- p:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.s.ctx.Done():
		return nil, ErrShutdown
	}
	// Once queued the entry may commit: wait for the outcome even if ctx
	// ends, bounded by the apply timeout, so no acknowledged-or-not
	// ambiguity is created by the caller's deadline alone.
	select {
	case r := <-p.done:
		return r.res, r.err
	case <-c.s.ctx.Done():
		return nil, ErrShutdown
	}
}

func (c *committer) run(ctx context.Context) {
	for {
		var first *pendingBatch
		select {
		case <-ctx.Done():
			c.failQueued()
			return
		case first = <-c.queue:
		}
		select {
		case c.slots <- struct{}{}:
		case <-ctx.Done():
			first.done <- commitResult{err: ErrShutdown}
			c.failQueued()
			return
		}
		group := []*pendingBatch{first}
		n := len(first.batches)
	drain:
		for n < maxBatches {
			select {
			case p := <-c.queue:
				group = append(group, p)
				n += len(p.batches)
			default:
				break drain
			}
		}
		c.commit(group, n)
	}
}

func (c *committer) failQueued() {
	for {
		select {
		case p := <-c.queue:
			p.done <- commitResult{err: ErrShutdown}
		default:
			return
		}
	}
}

// commit sends one entry for the group; a goroutine waits for it so that
// the next group can be formed meanwhile.
func (c *committer) commit(group []*pendingBatch, n int) {
	e := &corralpb.LogEntry{Batches: make([]*corralpb.Batch, 0, n)}
	for _, p := range group {
		e.Batches = append(e.Batches, p.batches...)
	}
	data, err := proto.Marshal(e)
	if err != nil {
		<-c.slots
		for _, p := range group {
			p.done <- commitResult{err: fmt.Errorf("encode raft entry: %w", err)}
		}
		return
	}
	f := c.s.raft.Apply(data, c.s.cfg.ApplyTimeout)
	go func() {
		defer func() { <-c.slots }()
		err := f.Error()
		var res *corralpb.LogResult
		if err == nil {
			res, err = asLogResult(f.Response())
		}
		if err == nil && len(res.GetResults()) != n {
			err = fmt.Errorf("raft entry returned %d results for %d batches", len(res.GetResults()), n)
		}
		i := 0
		for _, p := range group {
			if err != nil {
				p.done <- commitResult{err: err}
				continue
			}
			k := len(p.batches)
			p.done <- commitResult{res: &corralpb.LogResult{Results: res.GetResults()[i : i+k]}}
			i += k
		}
	}()
}
