package raftstore

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	corralpb "github.com/corral-dev/corral/proto"
)

// Members lists the servers in the Raft configuration with their addresses,
// and asks each for its Raft state and indexes (Unreachable when it does
// not answer).
func (s *Server) Members(ctx context.Context) ([]*corralpb.ServerMember, error) {
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("read raft configuration: %w", err)
	}
	servers := f.Configuration().Servers
	out := make([]*corralpb.ServerMember, len(servers))
	var wg sync.WaitGroup
	for i, srv := range servers {
		m := &corralpb.ServerMember{
			Name:     string(srv.ID),
			RaftAddr: string(srv.Address),
			Voter:    srv.Suffrage == raft.Voter,
		}
		out[i] = m
		info := s.memberByName(m.Name)
		m.ApiAddr = info.apiAddr
		if m.Name == s.cfg.Name {
			in := s.info()
			m.ApiAddr, m.RaftState, m.LastIndex, m.AppliedIndex = in.ApiAddr, in.RaftState, in.LastIndex, in.AppliedIndex
			continue
		}
		if m.ApiAddr == "" {
			m.RaftState = "Unknown"
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			in, err := s.open.info(ctx, m.ApiAddr)
			if err != nil {
				m.RaftState = "Unreachable"
				return
			}
			m.RaftState, m.LastIndex, m.AppliedIndex = in.GetRaftState(), in.GetLastIndex(), in.GetAppliedIndex()
		}()
	}
	wg.Wait()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// RemoveServer removes a server from the Raft configuration and the member
// table. It runs on the leader (forwarded there from a follower).
func (s *Server) RemoveServer(ctx context.Context, name string) error {
	if name == "" {
		return status.Error(codes.InvalidArgument, "remove-server: a server name is required")
	}
	if s.raft.State() != raft.Leader {
		_, addr := s.Leader()
		if addr == "" || addr == s.cfg.APIAddr {
			return status.Error(codes.Unavailable, "remove-server: no raft leader")
		}
		c, err := s.peers.client(addr)
		if err != nil {
			return status.Error(codes.Unavailable, err.Error())
		}
		_, err = c.RemovePeer(ctx, &corralpb.RemovePeerRequest{Name: name})
		return err
	}
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return status.Error(codes.Unavailable, err.Error())
	}
	found := false
	for _, srv := range f.Configuration().Servers {
		if string(srv.ID) == name {
			found = true
		}
	}
	if !found {
		return status.Errorf(codes.NotFound, "server %q is not a member of the cluster", name)
	}
	// The member record goes first: once the leader has removed itself it
	// can no longer commit anything.
	if _, err := s.applyEntry(ctx, &corralpb.LogEntry{DeleteMembers: []string{name}, DeleteIdentities: []string{"server:" + name}}); err != nil {
		return status.Errorf(codes.Unavailable, "remove member record %s: %v", name, err)
	}
	if err := s.raft.RemoveServer(raft.ServerID(name), 0, s.cfg.ApplyTimeout).Error(); err != nil {
		return status.Errorf(codes.Unavailable, "remove server %s: %v", name, err)
	}
	s.discMu.Lock()
	delete(s.discovered, name)
	s.discMu.Unlock()
	s.log.Info("server removed", "member", name)
	return nil
}
