package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"

	"github.com/corral-dev/corral/events"
	corralpb "github.com/corral-dev/corral/proto"
	"github.com/corral-dev/corral/raftstore"
	"github.com/corral-dev/corral/scheduler"
	"github.com/corral-dev/corral/version"
)

// Config configures a server process.
type Config struct {
	Name            string
	DataDir         string
	APIAddr         string
	RaftAddr        string
	BootstrapExpect int
	Join            []string
	// ClusterCIDR is where nodes' pod CIDRs are allocated from, fixed at
	// bootstrap (default 10.42.0.0/16).
	ClusterCIDR string
	// Token is the shared secret servers bootstrap a new cluster with, or
	// the server token of the cluster to join (raftstore.Config.Token).
	Token string
	// CertValidity is how long node and server certificates are valid
	// (default 90 days); they are renewed at 50–80 % of it.
	CertValidity time.Duration

	// Raft timing; zero takes raftstore's LAN defaults.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	SnapshotThreshold  uint64
	TrailingLogs       uint64

	// NodeGracePeriod is how long a node may go without heartbeats before
	// it is marked Ready=Unknown (default 40s).
	NodeGracePeriod time.Duration
	// EventTTL is how long an event lives after it was last seen (default
	// 1h); the leader looks for expired events every EventTTLPeriod
	// (default 1m).
	EventTTL       time.Duration
	EventTTLPeriod time.Duration

	Logger        *slog.Logger
	RaftLogOutput io.Writer
}

// Server is a running corral server.
type Server struct {
	cfg  Config
	log  *slog.Logger
	rs   *raftstore.Server
	grpc *grpc.Server
	lis  net.Listener
	// agents caches connections to node agents (logs, exec).
	agents *agentConns
	// calls counts the calls in flight that Stop lets finish.
	calls *calls

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// TransportOptions are the API port's connection options, credentials
// aside: fixed flow-control windows (corralpb.FlowWindow) and small
// buffers. One connection per node: at thousands of nodes, per-connection
// buffers held while idle add up. gRPC pools write buffers between writes
// by itself, but each is held from a write to its flush: at its default
// 32 KiB, thousands of streams pushing assignments at once held some 30 MB
// of them, and fed the garbage collector. Agents' messages are small;
// 8 KiB batches them as well. Reads need no buffer of their own: TLS
// decrypts each record into its own, and the HTTP/2 framer reads from that
// (a 4 KiB buffer per connection held 20 MB at 5,000 agents).
func TransportOptions() []grpc.ServerOption {
	return append(corralpb.FlowWindowServerOptions(), grpc.ReadBufferSize(0), grpc.WriteBufferSize(8<<10))
}

// Start listens on the API address, opens the Raft node and serves the
// cluster and peer APIs. It returns once serving; bootstrap and join go on
// in the background.
func Start(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	lis, err := net.Listen("tcp", cfg.APIAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on api address %s: %w", cfg.APIAddr, err)
	}
	apiAddr := lis.Addr().String()
	rs, err := raftstore.New(raftstore.Config{
		Name: cfg.Name, DataDir: cfg.DataDir, RaftAddr: cfg.RaftAddr, APIAddr: apiAddr,
		BootstrapExpect: cfg.BootstrapExpect, Join: cfg.Join, Version: version.Version, ClusterCIDR: cfg.ClusterCIDR,
		Token: cfg.Token, CertValidity: cfg.CertValidity,
		HeartbeatTimeout: cfg.HeartbeatTimeout, ElectionTimeout: cfg.ElectionTimeout,
		LeaderLeaseTimeout: cfg.LeaderLeaseTimeout, SnapshotThreshold: cfg.SnapshotThreshold,
		TrailingLogs: cfg.TrailingLogs, Logger: cfg.Logger, RaftLogOutput: cfg.RaftLogOutput,
	})
	if err != nil {
		_ = lis.Close()
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, rs: rs, lis: lis, agents: newAgentConns(rs.Credentials()), calls: newCalls()}
	s.cfg.APIAddr = apiAddr
	// TLS only. A client certificate is verified when given; calls that
	// need one and come without are refused by the interceptors (joining
	// machines have none yet).
	tlsCfg := rs.Credentials().ServerConfig(tls.VerifyClientCertIfGiven, nil, "h2")
	s.grpc = grpc.NewServer(append(TransportOptions(),
		grpc.Creds(limitHandshakes(credentials.NewTLS(tlsCfg), handshakeLimit())),
		grpc.ChainUnaryInterceptor(s.unaryAuth),
		grpc.ChainStreamInterceptor(s.streamAuth),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	)...)
	lifecycle := scheduler.NewNodeLifecycle(rs, cfg.NodeGracePeriod, cfg.Logger.With("component", "node-lifecycle"))
	rs.SetHeartbeatHandler(func(nodes []string) { lifecycle.Seen(nodes, time.Now()) })
	eventTTL := scheduler.NewEventTTL(rs, cfg.EventTTL, cfg.EventTTLPeriod, cfg.Logger.With("component", "event-ttl"))
	hb := newHeartbeatBuffer(rs, cfg.Logger)
	corralpb.RegisterPeerServer(s.grpc, rs.PeerService())
	corralpb.RegisterCertificatesServer(s.grpc, rs.CertificatesService())
	corralpb.RegisterClusterServer(s.grpc, &clusterService{rs: rs, agents: s.agents, log: cfg.Logger})
	hub := newAssignHub(rs, cfg.Logger.With("component", "assignments"))
	corralpb.RegisterNodeAPIServer(s.grpc, &nodeService{rs: rs, log: cfg.Logger, hb: hb, hub: hub, period: HeartbeatPeriod(cfg.NodeGracePeriod)})
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	recorder := events.NewBuffer(s.RecordEvents, &corralpb.EventSource{Component: "daemonset-controller"}, nil,
		cfg.Logger.With("component", "daemonset-events"))
	daemons := scheduler.NewDaemonSetController(rs, recorder, cfg.Logger.With("component", "daemonset-controller"))
	s.wg.Add(8)
	go func() {
		defer s.wg.Done()
		_ = recorder.Run(ctx)
	}()
	go func() {
		defer s.wg.Done()
		hub.run(ctx)
	}()
	go func() {
		defer s.wg.Done()
		daemons.Run(ctx)
	}()
	go func() {
		defer s.wg.Done()
		lifecycle.Run(ctx)
	}()
	go func() {
		defer s.wg.Done()
		eventTTL.Run(ctx)
	}()
	go func() {
		defer s.wg.Done()
		hb.run(ctx, time.Second)
	}()
	go func() {
		defer s.wg.Done()
		if err := s.grpc.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			s.log.Error("grpc server stopped", "err", err)
		}
	}()
	go func() {
		defer s.wg.Done()
		s.writeClientFiles(ctx)
	}()
	s.log.Info("server started", "node", cfg.Name, "api_addr", apiAddr, "raft_addr", rs.RaftAddr())
	return s, nil
}

// Shutdown stops the server as SIGTERM does: a leader first hands its
// leadership to another server, so that writes go on there at once rather
// than after an election timeout, then Stop.
func (s *Server) Shutdown() error {
	if err := s.rs.TransferLeadership(); err != nil {
		s.log.Warn("stopping without handing raft leadership over", "err", err)
	}
	return s.Stop()
}

// Stop stops serving and shuts the Raft node down; the data directory keeps
// everything. It refuses new calls (Unavailable), lets those in flight
// finish (for stopGrace at most), then cuts the endless streams: agents
// and watchers reconnect to another server; a followed log or an exec
// session ends with Unavailable. A leader just stops: the
// others elect the next one once its heartbeats are missed (Shutdown hands
// leadership over first).
func (s *Server) Stop() error {
	s.cancel()
	idle := s.calls.stop()
	stopped := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(stopped) }()
	grace := time.NewTimer(stopGrace)
	defer grace.Stop()
	select {
	case <-stopped:
	case <-idle:
		s.grpc.Stop()
	case <-grace.C:
		s.grpc.Stop()
	}
	s.agents.close()
	err := s.rs.Shutdown()
	s.wg.Wait()
	return err
}

// Raft returns the server's Raft node and state.
func (s *Server) Raft() *raftstore.Server { return s.rs }

// APIAddr returns the address the API is served on.
func (s *Server) APIAddr() string { return s.cfg.APIAddr }

// Run starts a server and serves until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	s, err := Start(cfg)
	if err != nil {
		return err
	}
	<-ctx.Done()
	return s.Shutdown()
}

// clusterService implements the cluster API over a raftstore.Server.
type clusterService struct {
	corralpb.UnimplementedClusterServer
	rs     *raftstore.Server
	agents *agentConns
	log    *slog.Logger
}
