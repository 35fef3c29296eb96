package raftstore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/corral-dev/corral/pki"
	corralpb "github.com/corral-dev/corral/proto"
)

const notLeaderMsg = "not the raft leader"

// PeerService returns the Peer API implementation for the caller to register
// on its gRPC server.
func (s *Server) PeerService() corralpb.PeerServer { return &peerService{s: s} }

type peerService struct {
	corralpb.UnimplementedPeerServer
	s *Server
}

func (p *peerService) Info(ctx context.Context, _ *corralpb.InfoRequest) (*corralpb.InfoResponse, error) {
	return p.s.info(), nil
}

func (s *Server) info() *corralpb.InfoResponse {
	leaderName, leaderAPI := s.Leader()
	s.discMu.Lock()
	peers := make([]string, 0, len(s.knownAddrs))
	for a := range s.knownAddrs {
		peers = append(peers, a)
	}
	s.discMu.Unlock()
	if ms, err := s.State().Members(nil); err == nil {
		for _, m := range ms {
			if m.GetApiAddr() != s.cfg.APIAddr {
				peers = append(peers, m.GetApiAddr())
			}
		}
	}
	sort.Strings(peers)
	return &corralpb.InfoResponse{
		Name:            s.cfg.Name,
		RaftAddr:        s.cfg.RaftAddr,
		ApiAddr:         s.cfg.APIAddr,
		Bootstrapped:    s.hasClusterConfig(),
		BootstrapExpect: int32(s.cfg.BootstrapExpect),
		RaftState:       s.raft.State().String(),
		LeaderName:      leaderName,
		LeaderApiAddr:   leaderAPI,
		LastIndex:       s.raft.LastIndex(),
		AppliedIndex:    s.fsm.applied.Load(),
		Peers:           dedupe(peers),
		Version:         s.cfg.Version,
	}
}

func dedupe(in []string) []string {
	out := in[:0]
	for i, v := range in {
		if i == 0 || v != in[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// Join adds the caller as a voter (idempotent for a server already in the
// configuration at the same address) and records its addresses.
func (p *peerService) Join(ctx context.Context, req *corralpb.JoinRequest) (*corralpb.JoinResponse, error) {
	m := req.GetMember()
	if m.GetName() == "" || m.GetRaftAddr() == "" || m.GetApiAddr() == "" {
		return nil, status.Error(codes.InvalidArgument, "join: member name, raft address and api address are required")
	}
	s := p.s
	// A server joins as itself; a member may pass another's join on to
	// the leader.
	if id, _, err := pki.FromContext(ctx); err != nil || id.Role != pki.RoleServer ||
		(id.Name != m.GetName() && !s.inRaftConfig(id.Name)) {
		return nil, status.Errorf(codes.PermissionDenied, "join: a server certificate for %q (or a member's) is required to join as %q", m.GetName(), m.GetName())
	}
	if s.raft.State() != raft.Leader {
		_, addr := s.Leader()
		if addr == "" || addr == s.cfg.APIAddr {
			return nil, status.Error(codes.Unavailable, "join: no raft leader")
		}
		if err := s.peers.join(ctx, addr, m); err != nil {
			return nil, err
		}
		return &corralpb.JoinResponse{}, nil
	}
	if err := s.addVoter(ctx, m); err != nil {
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	}
	ms, _ := s.State().Members(nil)
	return &corralpb.JoinResponse{Members: ms}, nil
}

func (s *Server) addVoter(ctx context.Context, m *corralpb.Member) error {
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return fmt.Errorf("read raft configuration: %w", err)
	}
	present := false
	for _, srv := range f.Configuration().Servers {
		switch {
		case string(srv.ID) == m.GetName() && string(srv.Address) == m.GetRaftAddr():
			present = true
		case string(srv.ID) == m.GetName():
			return fmt.Errorf("a server named %q is already a member at %s; remove it first (corral cluster remove-server %s)", m.GetName(), srv.Address, m.GetName())
		case string(srv.Address) == m.GetRaftAddr():
			return fmt.Errorf("raft address %s already belongs to server %q", m.GetRaftAddr(), srv.ID)
		}
	}
	if !present {
		if err := s.raft.AddVoter(raft.ServerID(m.GetName()), raft.ServerAddress(m.GetRaftAddr()), 0, s.cfg.ApplyTimeout).Error(); err != nil {
			return fmt.Errorf("add voter %s: %w", m.GetName(), err)
		}
		s.log.Info("server joined", "member", m.GetName(), "raft_addr", m.GetRaftAddr())
	}
	if _, err := s.applyEntry(ctx, &corralpb.LogEntry{PutMembers: []*corralpb.Member{m}}); err != nil {
		return fmt.Errorf("record member %s: %w", m.GetName(), err)
	}
	return nil
}

func (p *peerService) Forward(ctx context.Context, req *corralpb.ForwardRequest) (*corralpb.ForwardResponse, error) {
	if p.s.raft.State() != raft.Leader {
		return nil, status.Error(codes.FailedPrecondition, notLeaderMsg)
	}
	res, err := p.s.applyEntry(ctx, req.GetEntry())
	if err != nil {
		if errors.Is(err, raft.ErrNotLeader) {
			return nil, status.Error(codes.FailedPrecondition, notLeaderMsg)
		}
		// Leadership lost or a timeout after the entry was appended: the
		// write may or may not commit.
		return nil, status.Errorf(codes.Unavailable, "the write may or may not have been applied: %v", err)
	}
	return &corralpb.ForwardResponse{Result: res}, nil
}

func (p *peerService) ReadIndex(ctx context.Context, _ *corralpb.ReadIndexRequest) (*corralpb.ReadIndexResponse, error) {
	idx, err := p.s.leaderReadIndex(ctx)
	if err != nil {
		if errors.Is(err, raft.ErrNotLeader) {
			return nil, status.Error(codes.FailedPrecondition, notLeaderMsg)
		}
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	return &corralpb.ReadIndexResponse{Index: idx}, nil
}

func (p *peerService) RemovePeer(ctx context.Context, req *corralpb.RemovePeerRequest) (*corralpb.RemovePeerResponse, error) {
	if err := p.s.RemoveServer(ctx, req.GetName()); err != nil {
		return nil, err
	}
	return &corralpb.RemovePeerResponse{}, nil
}

// StoppingMsg is in the Unavailable error a stopping server refuses new
// calls with: the call did nothing there, so a write forwarded to it may
// go to the next leader.
const StoppingMsg = "the server is stopping"

func isStopping(err error) bool {
	st, ok := status.FromError(err)
	return ok && st.Code() == codes.Unavailable && strings.Contains(st.Message(), StoppingMsg)
}

func isNotLeader(err error) bool {
	st, ok := status.FromError(err)
	return ok && st.Code() == codes.FailedPrecondition && strings.Contains(st.Message(), notLeaderMsg)
}

// peerClients caches one gRPC connection per peer API address, all with
// one TLS configuration.
type peerClients struct {
	mu    sync.Mutex
	creds credentials.TransportCredentials
	conns map[string]*grpc.ClientConn
}

func newPeerClients(cfg *tls.Config) *peerClients {
	return &peerClients{creds: credentials.NewTLS(cfg), conns: map[string]*grpc.ClientConn{}}
}

func (pc *peerClients) client(addr string) (corralpb.PeerClient, error) {
	c, err := pc.conn(addr)
	if err != nil {
		return nil, err
	}
	return corralpb.NewPeerClient(c), nil
}

// errPeerUnreachable means no connection to the peer could be made: a call
// was not sent.
var errPeerUnreachable = errors.New("peer unreachable")

// readyClient returns a client whose connection is up, waiting at most
// timeout for it, and no longer once abort is closed (nil: never). An
// error means nothing was sent, so the caller may try another server
// safely.
func (pc *peerClients) readyClient(ctx context.Context, addr string, timeout time.Duration, abort <-chan struct{}) (corralpb.PeerClient, error) {
	c, err := pc.conn(addr)
	if err != nil {
		return nil, err
	}
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if abort != nil {
		go func() {
			select {
			case <-abort:
				cancel()
			case <-tctx.Done():
			}
		}()
	}
	for st := c.GetState(); st != connectivity.Ready; st = c.GetState() {
		c.Connect()
		if !c.WaitForStateChange(tctx, st) {
			return nil, fmt.Errorf("%w: %s is %v", errPeerUnreachable, addr, st)
		}
	}
	return corralpb.NewPeerClient(c), nil
}

func (pc *peerClients) conn(addr string) (*grpc.ClientConn, error) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if c, ok := pc.conns[addr]; ok {
		return c, nil
	}
	// Peers come and go: reconnect quickly after a failed attempt.
	c, err := grpc.NewClient(addr, append(corralpb.FlowWindowDialOptions(),
		grpc.WithTransportCredentials(pc.creds),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: time.Second,
		}),
	)...)
	if err != nil {
		return nil, fmt.Errorf("dial peer %s: %w", addr, err)
	}
	pc.conns[addr] = c
	return c, nil
}

func (pc *peerClients) close() {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	for a, c := range pc.conns {
		_ = c.Close()
		delete(pc.conns, a)
	}
}

func (pc *peerClients) info(ctx context.Context, addr string) (*corralpb.InfoResponse, error) {
	c, err := pc.client(addr)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	// Fail fast: a peer that is down must not hold up discovery rounds or
	// `cluster members`.
	return c.Info(cctx, &corralpb.InfoRequest{})
}

func (pc *peerClients) join(ctx context.Context, addr string, m *corralpb.Member) error {
	c, err := pc.client(addr)
	if err != nil {
		return err
	}
	_, err = c.Join(ctx, &corralpb.JoinRequest{Member: m}, grpc.WaitForReady(true))
	return err
}

// forward sends an entry to the leader at addr, giving up on connecting
// when leaderChanged is closed. errPeerUnreachable means it was not sent;
// any other error leaves its fate unknown.
func (pc *peerClients) forward(ctx context.Context, addr string, e *corralpb.LogEntry, leaderChanged <-chan struct{}) (*corralpb.LogResult, error) {
	c, err := pc.readyClient(ctx, addr, time.Second, leaderChanged)
	if err != nil {
		return nil, err
	}
	resp, err := c.Forward(ctx, &corralpb.ForwardRequest{Entry: e})
	if isStopping(err) {
		return nil, fmt.Errorf("%w: %v", errPeerUnreachable, err)
	}
	if err != nil {
		return nil, err
	}
	return resp.GetResult(), nil
}

func (pc *peerClients) readIndex(ctx context.Context, addr string, leaderChanged <-chan struct{}) (uint64, error) {
	c, err := pc.readyClient(ctx, addr, time.Second, leaderChanged)
	if err != nil {
		return 0, err
	}
	// A read index is safe to ask again: bound each attempt so that a
	// leader dying mid-call costs one attempt, not the caller's deadline.
	actx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err := c.ReadIndex(actx, &corralpb.ReadIndexRequest{})
	if err != nil {
		return 0, err
	}
	return resp.GetIndex(), nil
}
