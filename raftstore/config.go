package raftstore

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"time"

	"github.com/corral-dev/corral/pki"
)

// Config configures a Server.
type Config struct {
	// Name is the server's unique name; it is also its Raft server ID.
	Name string
	// DataDir holds raft.db, the snapshots and the files the server writes
	// for users (admin.conf, token).
	DataDir string
	// RaftAddr is the address the Raft transport binds and advertises.
	RaftAddr string
	// APIAddr is the address of this server's gRPC API (cluster and peer
	// services), served by the caller.
	APIAddr string
	// BootstrapExpect is the number of servers that bootstrap a new cluster
	// together. 1 with no Join makes a single-server cluster; 0 means join
	// an existing cluster through Join.
	BootstrapExpect int
	// Join lists API addresses of other servers.
	Join []string
	// Token is the shared secret servers bootstrap a new cluster with
	// (required with BootstrapExpect > 1), or the server join token of an
	// existing cluster (required to join one). A server with a certificate
	// in DataDir/tls does not need it again.
	Token string
	// CertValidity is how long the certificates this server issues to
	// itself and to nodes are valid (default pki.DefaultCertValidity);
	// they are renewed at 50–80 % of it.
	CertValidity time.Duration
	// Version is reported by the Peer Info call.
	Version string
	// ClusterCIDR is where nodes' pod CIDRs (a /24 each) are allocated
	// from; it is written into the cluster configuration at bootstrap
	// (default DefaultClusterCIDR). Later servers use the stored one.
	ClusterCIDR string

	// Raft timing. Zero values take the LAN defaults below.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	// SnapshotThreshold is the number of log entries between snapshots and
	// TrailingLogs the number kept after one.
	SnapshotThreshold uint64
	TrailingLogs      uint64
	SnapshotInterval  time.Duration

	// ApplyTimeout bounds one Raft apply (default 10s).
	ApplyTimeout time.Duration
	// DiscoveryInterval is the pause between bootstrap discovery rounds
	// (default 500ms).
	DiscoveryInterval time.Duration

	// Logger receives corral's own log lines; RaftLogOutput receives
	// hashicorp/raft's (warnings and errors only). Nil discards.
	Logger        *slog.Logger
	RaftLogOutput io.Writer
}

// LAN defaults: a leader is detected dead after ~500 ms without contact, so
// a failover completes in about a second on a LAN. Raise them together for
// WAN links. The leader lease defaults to the heartbeat timeout, the most
// Raft allows: a leader whose followers answer late for a moment (a busy
// CPU while thousands of agents report at once) keeps leading rather than
// stepping down and stalling every write for an election. It does not slow
// failover, which the followers' heartbeat timeout decides, and reads never
// trust it (they confirm leadership with a quorum, VerifyLeader).
const (
	DefaultHeartbeatTimeout = 500 * time.Millisecond
	DefaultElectionTimeout  = 500 * time.Millisecond
	DefaultCommitTimeout    = 20 * time.Millisecond
)

// DefaultClusterCIDR is the cluster CIDR of a cluster that names none, as K3s's.
const DefaultClusterCIDR = "10.42.0.0/16"

func (c *Config) setDefaults() {
	if c.ClusterCIDR == "" {
		c.ClusterCIDR = DefaultClusterCIDR
	}
	if c.HeartbeatTimeout == 0 {
		c.HeartbeatTimeout = DefaultHeartbeatTimeout
	}
	if c.ElectionTimeout == 0 {
		c.ElectionTimeout = DefaultElectionTimeout
	}
	if c.LeaderLeaseTimeout == 0 {
		c.LeaderLeaseTimeout = c.HeartbeatTimeout
	}
	if c.CommitTimeout == 0 {
		c.CommitTimeout = DefaultCommitTimeout
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = 8192
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = 10240
	}
	if c.SnapshotInterval == 0 {
		c.SnapshotInterval = 2 * time.Minute
	}
	if c.ApplyTimeout == 0 {
		c.ApplyTimeout = 10 * time.Second
	}
	if c.DiscoveryInterval == 0 {
		c.DiscoveryInterval = 500 * time.Millisecond
	}
	if c.CertValidity == 0 {
		c.CertValidity = pki.DefaultCertValidity
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.RaftLogOutput == nil {
		c.RaftLogOutput = io.Discard
	}
}

func (c *Config) validate() error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, errors.New("name is required"))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data dir is required"))
	}
	if c.RaftAddr == "" {
		errs = append(errs, errors.New("raft address is required"))
	}
	if c.APIAddr == "" {
		errs = append(errs, errors.New("api address is required"))
	}
	if p, err := netip.ParsePrefix(c.ClusterCIDR); err != nil || !p.Addr().Is4() || p.Bits() > 24 || p.Masked() != p {
		errs = append(errs, fmt.Errorf("cluster CIDR %q: must be an IPv4 network of /24 or larger, such as %s", c.ClusterCIDR, DefaultClusterCIDR))
	}
	if c.BootstrapExpect < 0 {
		errs = append(errs, fmt.Errorf("bootstrap-expect %d: must not be negative", c.BootstrapExpect))
	}
	if c.BootstrapExpect == 0 && len(c.Join) == 0 {
		errs = append(errs, errors.New("either bootstrap-expect or join is required"))
	}
	if c.BootstrapExpect > 1 && len(c.Join) == 0 {
		errs = append(errs, fmt.Errorf("bootstrap-expect %d needs --join with the other servers' API addresses", c.BootstrapExpect))
	}
	return errors.Join(errs...)
}
