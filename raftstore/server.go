package raftstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/corral-dev/corral/pki"
	"github.com/corral-dev/corral/raftstore/state"
)

// Errors returned by a Server.
var (
	// ErrNoLeader means the cluster has no leader right now (an election is
	// running, or a quorum is missing).
	ErrNoLeader = errors.New("no raft leader")
	// ErrShutdown means the server is shutting down.
	ErrShutdown = errors.New("raft server is shut down")
)

// Server is one corral server's Raft node and replicated state.
type Server struct {
	cfg   Config
	log   *slog.Logger
	raft  *raft.Raft
	fsm   *fsm
	trans *raft.NetworkTransport
	logs  *raftboltdb.BoltStore
	snaps *raft.FileSnapshotStore
	// peers are mutual-TLS connections to other servers; open ones verify
	// nothing and carry only public or sealed calls (discovery, BootstrapCA);
	// joining with a token dials its own (package join).
	peers *peerClients
	open  *peerClients
	// leaders tells waiters that the Raft leader changed.
	leaders *leaderWatch
	creds   *pki.Credentials
	token   pki.Token
	caMu    sync.Mutex
	localCA *pki.CA
	commit  *committer // the leader's: batches into Raft entries
	forward *committer // a follower's: batches to the leader
	// forwardCalls counts the forwarder's calls to the leader.
	forwardCalls atomic.Uint64

	// readyForReads is set once this server, as leader, has applied every
	// entry committed before its term began (a barrier after election).
	readyForReads atomic.Bool
	isLeader      atomic.Bool

	leaderMu   sync.Mutex
	leaderSubs []chan bool

	hbMu      sync.Mutex
	hbHandler func(nodes []string)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// discovered maps server names to what bootstrap discovery learned.
	discMu     sync.Mutex
	discovered map[string]memberInfo
	knownAddrs map[string]bool
}

type memberInfo struct {
	name, raftAddr, apiAddr string
}

// New opens the data directory and starts the Raft node. The caller serves
// the Peer API (PeerService) on cfg.APIAddr; discovery, bootstrap and join
// run in the background until the server is part of a cluster.
func New(cfg Config) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("raft config: %w", err)
	}
	raftDir := filepath.Join(cfg.DataDir, "raft")
	if err := os.MkdirAll(raftDir, 0o700); err != nil {
		return nil, fmt.Errorf("create raft dir: %w", err)
	}
	s := &Server{
		cfg:        cfg,
		log:        cfg.Logger,
		fsm:        newFSM(),
		creds:      &pki.Credentials{},
		discovered: map[string]memberInfo{},
		knownAddrs: map[string]bool{},
	}
	if cfg.Token != "" {
		t, err := pki.ParseToken(cfg.Token)
		if err != nil {
			return nil, fmt.Errorf("--token: %w", err)
		}
		if t.CAHash != "" && t.Role != pki.TokenServer {
			return nil, errors.New("--token: an agent token cannot join a server; use corral token show --role server")
		}
		s.token = t
	}
	s.peers = newPeerClients(s.creds.ClientConfig(pki.ServerName, pki.OnlyRole(pki.RoleServer)))
	s.open = newPeerClients(pki.AnyServerConfig())
	for _, a := range cfg.Join {
		if a != "" && a != cfg.APIAddr {
			s.knownAddrs[a] = true
		}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.leaders = newLeaderWatch()
	if err := s.openRaft(raftDir); err != nil {
		s.cancel()
		s.closeStores()
		return nil, err
	}
	s.commit = newCommitter(s, s.applyStart)
	s.forward = newCommitter(s, s.forwardStart)
	s.forward.maxBytes = maxForwardBytes
	s.wg.Add(4)
	go func() { defer s.wg.Done(); s.leaders.follow(s.ctx, s.raft) }()
	go func() { defer s.wg.Done(); s.commit.run(s.ctx) }()
	go func() { defer s.wg.Done(); s.forward.run(s.ctx) }()
	go func() { defer s.wg.Done(); s.watchLeadership(s.ctx) }()
	s.background(s.keepTLS)
	if err := s.startCluster(); err != nil {
		_ = s.Shutdown()
		return nil, err
	}
	return s, nil
}

func (s *Server) openRaft(dir string) error {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(s.cfg.Name)
	rc.HeartbeatTimeout = s.cfg.HeartbeatTimeout
	rc.ElectionTimeout = s.cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = s.cfg.LeaderLeaseTimeout
	rc.CommitTimeout = s.cfg.CommitTimeout
	rc.SnapshotThreshold = s.cfg.SnapshotThreshold
	rc.TrailingLogs = s.cfg.TrailingLogs
	rc.SnapshotInterval = s.cfg.SnapshotInterval
	rc.MaxAppendEntries = 256
	rc.BatchApplyCh = true
	rc.Logger = hclog.New(&hclog.LoggerOptions{
		Name: "raft", Level: hclog.Warn, Output: s.cfg.RaftLogOutput,
	})

	var err error
	s.logs, err = raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db")})
	if err != nil {
		return fmt.Errorf("open raft log %s: %w", filepath.Join(dir, "raft.db"), err)
	}
	s.snaps, err = raft.NewFileSnapshotStoreWithLogger(dir, 2, rc.Logger)
	if err != nil {
		return fmt.Errorf("open raft snapshots in %s: %w", dir, err)
	}
	serverTLS, clientTLS := s.raftTLS() // read s.creds at each handshake
	layer, advertise, err := listenRaft(s.cfg.RaftAddr, serverTLS, clientTLS)
	if err != nil {
		return err
	}
	s.cfg.RaftAddr = advertise
	existing, err := raft.HasExistingState(s.logs, s.logs, s.snaps)
	if err != nil {
		_ = layer.Close()
		return fmt.Errorf("check raft state: %w", err)
	}
	if err := s.initTLS(existing); err != nil {
		_ = layer.Close()
		return err
	}
	s.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: layer, MaxPool: 3, Timeout: 10 * time.Second, Logger: rc.Logger,
	})
	// Recent entries are served from memory: replication re-reads the
	// previous entry for every AppendEntries, and decoding it from BoltDB
	// each time was a tenth of a busy leader's CPU.
	logs, err := raft.NewLogCache(1024, s.logs)
	if err != nil {
		return fmt.Errorf("raft log cache: %w", err)
	}
	s.raft, err = raft.NewRaft(rc, s.fsm, logs, s.logs, s.snaps, s.trans)
	if err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	return nil
}

func (s *Server) closeStores() {
	if s.trans != nil {
		_ = s.trans.Close()
	}
	if s.logs != nil {
		_ = s.logs.Close()
	}
}

// Shutdown stops the Raft node and closes the stores. The state stays on
// disk: a new Server on the same data directory rejoins the cluster.
func (s *Server) Shutdown() error {
	s.cancel()
	var err error
	if s.raft != nil {
		err = s.raft.Shutdown().Error()
	}
	s.wg.Wait()
	s.peers.close()
	s.open.close()
	s.closeStores()
	return err
}

// TransferLeadership hands this server's leadership, if it leads, to the
// most up-to-date other voter, and returns once that one has been told to
// take over and this server has stepped down (at most the election timeout
// later). A server about to stop calls it, so that writes move to the next
// leader at once instead of waiting out an election timeout. Writes that
// reach this server meanwhile wait for the next leader and go there.
func (s *Server) TransferLeadership() error {
	if s.raft.State() != raft.Leader {
		return nil
	}
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return fmt.Errorf("hand over raft leadership: %w", err)
	}
	alone := true
	for _, srv := range f.Configuration().Servers {
		if srv.Suffrage == raft.Voter && string(srv.ID) != s.cfg.Name {
			alone = false
		}
	}
	if alone {
		return nil // no one to hand it to
	}
	if err := s.raft.LeadershipTransfer().Error(); err != nil {
		return fmt.Errorf("hand over raft leadership: %w", err)
	}
	return nil
}

// RaftAddr returns the address Raft advertises (the bound port when the
// configured one was 0).
func (s *Server) RaftAddr() string { return s.cfg.RaftAddr }

// Name returns the server's name.
func (s *Server) Name() string { return s.cfg.Name }

// APIAddr returns the server's API address.
func (s *Server) APIAddr() string { return s.cfg.APIAddr }

// State returns the local state store without any freshness guarantee. Use
// ConsistentRead for linearizable reads.
func (s *Server) State() *state.Store { return s.fsm.State() }

// IsLeader reports whether this server is the Raft leader.
func (s *Server) IsLeader() bool { return s.isLeader.Load() }

// Leader returns the leader's name and API address, if known.
func (s *Server) Leader() (name, apiAddr string) {
	_, id := s.raft.LeaderWithID()
	if id == "" {
		return "", ""
	}
	name = string(id)
	if name == s.cfg.Name {
		return name, s.cfg.APIAddr
	}
	if m := s.memberByName(name); m.apiAddr != "" {
		return name, m.apiAddr
	}
	return name, ""
}

// SubscribeLeadership returns a channel that receives true when this server
// becomes leader (after its barrier) and false when it stops being leader.
// The current state is sent first. The channel is closed at shutdown.
func (s *Server) SubscribeLeadership() <-chan bool {
	ch := make(chan bool, 8)
	s.leaderMu.Lock()
	s.leaderSubs = append(s.leaderSubs, ch)
	ch <- s.isLeader.Load()
	s.leaderMu.Unlock()
	return ch
}

func (s *Server) publishLeadership(v bool) {
	s.leaderMu.Lock()
	defer s.leaderMu.Unlock()
	for _, ch := range s.leaderSubs {
		select {
		case ch <- v:
		default:
			// A subscriber that does not keep up gets the latest value.
			select {
			case <-ch:
			default:
			}
			ch <- v
		}
	}
}

// watchLeadership follows Raft's leadership changes. On gaining leadership
// it issues a barrier so that reads and leader-only loops see every entry
// committed before its term, then runs the leader's set-up duties.
func (s *Server) watchLeadership(ctx context.Context) {
	defer func() {
		s.leaderMu.Lock()
		for _, ch := range s.leaderSubs {
			close(ch)
		}
		s.leaderSubs = nil
		s.leaderMu.Unlock()
	}()
	var stopLeader context.CancelFunc
	defer func() {
		if stopLeader != nil {
			stopLeader()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case leader := <-s.raft.LeaderCh():
			if stopLeader != nil {
				stopLeader()
				stopLeader = nil
			}
			s.readyForReads.Store(false)
			if !leader {
				if s.isLeader.Swap(false) {
					s.log.Info("lost raft leadership", "node", s.cfg.Name)
					s.publishLeadership(false)
				}
				continue
			}
			lctx, cancel := context.WithCancel(ctx)
			stopLeader = cancel
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.establishLeadership(lctx)
			}()
		}
	}
}

func (s *Server) establishLeadership(ctx context.Context) {
	for ctx.Err() == nil {
		err := s.raft.Barrier(s.cfg.ApplyTimeout).Error()
		if err == nil {
			break
		}
		if errors.Is(err, raft.ErrLeadershipTransferInProgress) {
			// This server is handing its leadership over (it is
			// stopping): if that fails it leads on, so try again.
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		s.log.Warn("leader barrier failed", "err", err)
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrRaftShutdown) {
			return
		}
	}
	if ctx.Err() != nil {
		return
	}
	s.readyForReads.Store(true)
	s.isLeader.Store(true)
	s.log.Info("raft leadership established", "node", s.cfg.Name, "raft_index", s.fsm.applied.Load())
	s.publishLeadership(true)
	if err := s.leaderSetup(ctx); err != nil && ctx.Err() == nil {
		s.log.Error("leader set-up failed", "err", err)
	}
}
