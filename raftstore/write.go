package raftstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	corralpb "github.com/corral-dev/corral/proto"
)

// Write commits one batch through Raft and returns the FSM's result for it.
// On a follower the batch is forwarded to the leader. An error means the
// batch was not committed (no leader within ctx, shutdown) or, rarely, that
// its fate is unknown: the leader lost its leadership with the entry in
// flight and could not learn within the apply timeout whether the next
// leader kept it (see settle). A logical failure (conflict, not found, ...)
// is a result with a non-OK code.
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
			res, err := s.forwardEntry(ctx, addr, e)
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

// forwardEntry sends e to the leader at addr. Entries carrying only
// batches go through the forwarder, which packs concurrent ones into one
// call, as the leader's committer packs them into one Raft entry.
func (s *Server) forwardEntry(ctx context.Context, addr string, e *corralpb.LogEntry) (*corralpb.LogResult, error) {
	if onlyBatches(e) {
		return s.forward.submit(ctx, e.GetBatches())
	}
	changed := s.leaders.changed()
	if _, now := s.Leader(); now != addr {
		return nil, fmt.Errorf("%w: the leader changed", errPeerUnreachable)
	}
	return s.peers.forward(ctx, addr, e, changed)
}

// applyEntry commits e through this server's Raft node, which must be the
// leader. Entries carrying only batches go through the group committer;
// membership and configuration entries are applied alone.
func (s *Server) applyEntry(ctx context.Context, e *corralpb.LogEntry) (*corralpb.LogResult, error) {
	if onlyBatches(e) {
		return s.commit.submit(ctx, e.GetBatches())
	}
	data, err := proto.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode raft entry: %w", err)
	}
	f := s.raft.Apply(data, s.cfg.ApplyTimeout)
	if err := f.Error(); err != nil {
		return s.settle(f, data, err)
	}
	return asLogResult(f.Response())
}

// onlyBatches reports whether e carries nothing but batches (which the
// committers may pack with others).
func onlyBatches(e *corralpb.LogEntry) bool {
	return len(e.GetPutMembers()) == 0 && len(e.GetDeleteMembers()) == 0 && e.GetClusterConfig() == nil &&
		len(e.GetPutIdentities()) == 0 && len(e.GetDeleteIdentities()) == 0
}

// WriteEntry commits a whole log entry (cluster config, identities,
// members and batches) on the leader, forwarding it from a follower.
func (s *Server) WriteEntry(ctx context.Context, e *corralpb.LogEntry) (*corralpb.LogResult, error) {
	return s.writeEntry(ctx, e)
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
// entries in flight and packs every batch that queued while they were
// committing into the next entry (up to maxBatches). One writer alone pays
// for one entry, as with bare Raft; many writers share entries. The
// leader's committer sends entries to Raft; a follower's forwarder sends
// them to the leader in one Forward call each.
type committer struct {
	s     *Server
	queue chan *pendingBatch
	slots chan struct{}
	// start begins committing an entry and returns the wait for its
	// result; it is called in order, from the committer's loop.
	start func(e *corralpb.LogEntry) func() (*corralpb.LogResult, error)
	// maxBytes bounds an entry's encoded batches when more than one
	// share it (0: no bound): a forwarded entry must fit in one gRPC
	// message.
	maxBytes int
	// carry is a batch taken from the queue that did not fit the last
	// entry: it starts the next one.
	carry *pendingBatch
}

const (
	maxInFlight = 4
	maxBatches  = 1024
)

type pendingBatch struct {
	batches []*corralpb.Batch
	done    chan commitResult
}

// size is the encoded size of p's batches.
func (p *pendingBatch) size() int {
	n := 0
	for _, b := range p.batches {
		n += proto.Size(b)
	}
	return n
}

// maxForwardBytes keeps a forwarded entry well inside gRPC's default 4 MiB
// message limit.
const maxForwardBytes = 3 << 20

type commitResult struct {
	res *corralpb.LogResult
	err error
}

func newCommitter(s *Server, start func(e *corralpb.LogEntry) func() (*corralpb.LogResult, error)) *committer {
	return &committer{s: s, queue: make(chan *pendingBatch, 4096), slots: make(chan struct{}, maxInFlight), start: start}
}

// applyStart appends an entry to the leader's Raft log.
func (s *Server) applyStart(e *corralpb.LogEntry) func() (*corralpb.LogResult, error) {
	data, err := proto.Marshal(e)
	if err != nil {
		return func() (*corralpb.LogResult, error) { return nil, fmt.Errorf("encode raft entry: %w", err) }
	}
	f := s.raft.Apply(data, s.cfg.ApplyTimeout)
	return func() (*corralpb.LogResult, error) {
		if err := f.Error(); err != nil {
			return s.settle(f, data, err)
		}
		return asLogResult(f.Response())
	}
}

// errNotKept is an entry this server appended as leader that the next
// leader did not keep: it was never applied, and writing it again is safe
// (it is raft.ErrNotLeader to the writers, who retry).
var errNotKept = fmt.Errorf("%w: leadership was lost before the entry committed, and the next leader did not keep it", raft.ErrNotLeader)

// settle turns the ambiguous outcome of an entry this server appended as
// leader and lost its leadership before committing (it may commit under
// the next leader, or be replaced) into a definite one. It waits, at most
// the apply timeout, until this server has applied the entry's index, then
// reads its own log there: the entry itself means it committed, and the
// FSM kept what it did (see fsm.await); anything else means it was replaced, and
// errNotKept lets the writers retry. Without this a writer could not tell
// an applied create from a lost one and, retrying, would get "already
// exists" for its own object or count an event twice. Other errors, and
// an entry whose fate stays unknown (this server cut off, the entry
// compacted into a snapshot), are returned as they are.
func (s *Server) settle(f raft.ApplyFuture, data []byte, err error) (*corralpb.LogResult, error) {
	if errors.Is(err, raft.ErrLeadershipTransferInProgress) {
		// Refused before it was appended: the writers wait for the next
		// leader and write it there.
		return nil, fmt.Errorf("%w: %v", raft.ErrNotLeader, err)
	}
	if !errors.Is(err, raft.ErrLeadershipLost) {
		return nil, err
	}
	index := f.Index()
	if index == 0 {
		return nil, err
	}
	// An entry applied before this (committed just as this server stopped
	// leading) has its result gone: if the log shows it there, its writers
	// get err.
	s.fsm.await(index)
	defer s.fsm.forget(index)
	wctx, cancel := context.WithTimeout(s.ctx, s.cfg.ApplyTimeout)
	defer cancel()
	if werr := s.WaitApplied(wctx, index); werr != nil {
		return nil, err
	}
	var l raft.Log
	if gerr := s.logs.GetLog(index, &l); gerr != nil {
		return nil, err
	}
	if l.Type != raft.LogCommand || !bytes.Equal(l.Data, data) {
		return nil, errNotKept
	}
	res, ok := s.fsm.result(index)
	if !ok {
		return nil, err
	}
	s.log.Debug("entry committed after leadership was lost", "raft_index", index)
	return asLogResult(res)
}

// forwardStart sends an entry to the current leader. With none known, or
// none reachable, nothing is sent and the error says so: the writers wait
// for a leader and submit again.
func (s *Server) forwardStart(e *corralpb.LogEntry) func() (*corralpb.LogResult, error) {
	done := make(chan commitResult, 1)
	go func() {
		changed := s.leaders.changed() // before reading the leader
		_, addr := s.Leader()
		if addr == "" {
			done <- commitResult{err: fmt.Errorf("forward: no leader known: %w", errPeerUnreachable)}
			return
		}
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.ApplyTimeout)
		defer cancel()
		s.forwardCalls.Add(1)
		res, err := s.peers.forward(ctx, addr, e, changed)
		done <- commitResult{res: res, err: err}
	}()
	return func() (*corralpb.LogResult, error) {
		r := <-done
		return r.res, r.err
	}
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
		first := c.carry
		c.carry = nil
		if first == nil {
			select {
			case <-ctx.Done():
				c.failQueued()
				return
			case first = <-c.queue:
			}
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
		bytes := 0
		if c.maxBytes > 0 {
			bytes = first.size()
		}
	drain:
		for n < maxBatches {
			select {
			case p := <-c.queue:
				if c.maxBytes > 0 {
					sz := p.size()
					if bytes+sz > c.maxBytes {
						c.carry = p
						break drain
					}
					bytes += sz
				}
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
	if c.carry != nil {
		c.carry.done <- commitResult{err: ErrShutdown}
		c.carry = nil
	}
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
	wait := c.start(e)
	go func() {
		defer func() { <-c.slots }()
		res, err := wait()
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
