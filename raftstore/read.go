package raftstore

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/corral-dev/corral/raftstore/state"
)

// leaderReadIndex returns an index that covers every write acknowledged so
// far by anyone: this server confirms with a quorum that it still leads, and
// it has applied every entry committed before its term (readyForReads), so
// its FSM's applied index is such an index.
func (s *Server) leaderReadIndex(ctx context.Context) (uint64, error) {
	if s.raft.State() != raft.Leader {
		return 0, raft.ErrNotLeader
	}
	if !s.readyForReads.Load() {
		return 0, fmt.Errorf("%w: leader is still applying earlier entries", ErrNoLeader)
	}
	if err := s.raft.VerifyLeader().Error(); err != nil {
		return 0, err
	}
	return s.fsm.applied.Load(), nil
}

// ConsistentRead returns the state store once it reflects every write
// acknowledged before the call (linearizable reads). On a follower it asks
// the leader for its read index and waits for the local FSM to reach it.
func (s *Server) ConsistentRead(ctx context.Context) (*state.Store, error) {
	idx, err := s.readIndex(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.WaitApplied(ctx, idx); err != nil {
		return nil, err
	}
	return s.State(), nil
}

func (s *Server) readIndex(ctx context.Context) (uint64, error) {
	for {
		if s.raft.State() == raft.Leader {
			idx, err := s.leaderReadIndex(ctx)
			if err == nil {
				return idx, nil
			}
		} else {
			changed := s.leaders.changed() // before reading the leader
			if _, addr := s.Leader(); addr != "" && addr != s.cfg.APIAddr {
				idx, err := s.peers.readIndex(ctx, addr, changed)
				if err == nil {
					return idx, nil
				}
				s.log.Debug("read index from leader", "addr", addr, "err", err)
			}
		}
		if err := s.waitLeaderChange(ctx); err != nil {
			return 0, err
		}
	}
}

// waitLeaderChange pauses a retry loop briefly, ending early with the
// context, a new leader, or a newly applied entry.
func (s *Server) waitLeaderChange(ctx context.Context) error {
	changed := s.leaders.changed()
	_, ch := s.fsm.appliedWait()
	t := time.NewTimer(max(s.cfg.HeartbeatTimeout/10, 10*time.Millisecond))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrNoLeader, ctx.Err())
	case <-s.ctx.Done():
		return ErrShutdown
	case <-ch:
		return nil
	case <-changed:
		return nil
	case <-t.C:
		return nil
	}
}

// WaitApplied blocks until the local FSM has applied index.
func (s *Server) WaitApplied(ctx context.Context, index uint64) error {
	for {
		applied, ch := s.fsm.appliedWait()
		if applied >= index {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for raft index %d (applied %d): %w", index, applied, ctx.Err())
		case <-s.ctx.Done():
			return ErrShutdown
		case <-ch:
		}
	}
}
