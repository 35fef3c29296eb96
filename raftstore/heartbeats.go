package raftstore

import (
	"context"
	"fmt"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	corralpb "github.com/corral-dev/corral/proto"
)

// SetHeartbeatHandler sets the function that receives node heartbeats on
// the leader, from this server's own agents and from followers' reports.
// Heartbeats are soft state: they never go through Raft.
func (s *Server) SetHeartbeatHandler(fn func(nodes []string)) {
	s.hbMu.Lock()
	defer s.hbMu.Unlock()
	s.hbHandler = fn
}

func (s *Server) handleHeartbeats(nodes []string) {
	s.hbMu.Lock()
	fn := s.hbHandler
	s.hbMu.Unlock()
	if fn != nil {
		fn(nodes)
	}
}

// ReportHeartbeats hands node heartbeats to the leader: directly when this
// server leads, else in one Peer call.
func (s *Server) ReportHeartbeats(ctx context.Context, nodes []string) error {
	if len(nodes) == 0 {
		return nil
	}
	if s.raft.State() == raft.Leader {
		s.handleHeartbeats(nodes)
		return nil
	}
	_, addr := s.Leader()
	if addr == "" {
		return ErrNoLeader
	}
	c, err := s.peers.readyClient(ctx, addr, s.cfg.HeartbeatTimeout, s.leaders.changed())
	if err != nil {
		return err
	}
	if _, err := c.Heartbeats(ctx, &corralpb.HeartbeatsRequest{Nodes: nodes}); err != nil {
		return fmt.Errorf("report heartbeats to %s: %w", addr, err)
	}
	return nil
}

func (p *peerService) Heartbeats(_ context.Context, req *corralpb.HeartbeatsRequest) (*corralpb.HeartbeatsResponse, error) {
	if p.s.raft.State() != raft.Leader {
		return nil, status.Error(codes.FailedPrecondition, notLeaderMsg)
	}
	p.s.handleHeartbeats(req.GetNodes())
	return &corralpb.HeartbeatsResponse{}, nil
}
