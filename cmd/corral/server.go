package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/corral-dev/corral/pki"
	corralpb "github.com/corral-dev/corral/proto"
	"github.com/corral-dev/corral/raftstore"
	"github.com/corral-dev/corral/server"
)

// Default addresses of a server started without flags. For a cluster of
// several machines, give each server addresses the others can reach.
const (
	defaultAPIAddr  = "127.0.0.1:7443"
	defaultRaftAddr = "127.0.0.1:7444"
	defaultDataDir  = "/var/lib/corral"
)

func newServerCmd() *cobra.Command {
	var (
		cfg        server.Config
		join       string
		tokenFile  string
		logLevel   string
		noAgent    bool
		cpTaint    bool
		agentFlags agentFlags
	)
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a corral server (Raft member and API endpoint)",
		Long: `Run a corral server. With no flags it is a single-server cluster in /var/lib/corral.

A three-server cluster: start each server with --bootstrap-expect 3, --join
listing the other servers' API addresses, and the same --token (a secret of
at least 32 characters, e.g. from openssl rand -hex 16); they find each other
and bootstrap exactly once, in any start order, with one cluster CA. A
restarted server rejoins from its data dir. To add a server to a running
cluster, give it --join and --token "$(corral token show --role server)".

Every port speaks TLS 1.3 with certificates of the cluster CA (DATA_DIR/tls).
Each server writes DATA_DIR/admin.conf (the CLI config, with an admin
certificate) and DATA_DIR/token (the agent join token), both mode 0600.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.Name == "" {
				h, err := os.Hostname()
				if err != nil {
					return fmt.Errorf("--name not given and no hostname: %w", err)
				}
				cfg.Name = h
			}
			for _, a := range strings.Split(join, ",") {
				if a = strings.TrimSpace(a); a != "" {
					cfg.Join = append(cfg.Join, a)
				}
			}
			if !cmd.Flags().Changed("bootstrap-expect") && len(cfg.Join) > 0 {
				cfg.BootstrapExpect = 0
			}
			level, err := parseLevel(logLevel)
			if err != nil {
				return err
			}
			cfg.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			cfg.RaftLogOutput = cmd.ErrOrStderr()
			if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
				return fmt.Errorf("create data dir: %w", err)
			}
			for _, name := range []string{"admin.conf", "token"} {
				if err := pki.CheckPrivate(filepath.Join(cfg.DataDir, name)); err != nil {
					return err
				}
			}
			if tokenFile != "" {
				if cfg.Token != "" {
					return fmt.Errorf("--token and --token-file: give one")
				}
				if err := pki.CheckPrivate(tokenFile); err != nil {
					return err
				}
				b, err := os.ReadFile(tokenFile)
				if err != nil {
					return fmt.Errorf("read --token-file: %w", err)
				}
				cfg.Token = strings.TrimSpace(string(b))
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if noAgent {
				return server.Run(ctx, cfg)
			}
			if os.Geteuid() != 0 {
				return fmt.Errorf("a server runs an embedded node agent, which needs root; run as root or pass --no-agent")
			}
			srv, err := server.Start(cfg)
			if err != nil {
				return err
			}
			multi := cfg.BootstrapExpect > 1 || len(cfg.Join) > 0
			if !cmd.Flags().Changed("control-plane-taint") {
				cpTaint = multi
			}
			agentErr := runEmbeddedAgent(ctx, srv, cfg, agentFlags, cpTaint)
			stop()
			if err := srv.Shutdown(); err != nil {
				return err
			}
			return agentErr
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Name, "name", "", "unique server name (default: the hostname)")
	f.StringVar(&cfg.DataDir, "data-dir", defaultDataDir, "directory for Raft state, admin.conf and token")
	f.StringVar(&cfg.APIAddr, "api-addr", defaultAPIAddr, "HOST:PORT of the gRPC API (CLI, agents, other servers)")
	f.StringVar(&cfg.RaftAddr, "raft-addr", defaultRaftAddr, "HOST:PORT of the Raft transport (a host other servers can reach)")
	f.IntVar(&cfg.BootstrapExpect, "bootstrap-expect", 1, "number of servers that bootstrap a new cluster together")
	f.StringVar(&join, "join", "", "comma-separated API addresses of other servers")
	f.StringVar(&cfg.Token, "token", "", "shared secret of the servers bootstrapping a new cluster (--bootstrap-expect > 1), or the server token of the cluster to join")
	f.StringVar(&tokenFile, "token-file", "", "file holding --token (mode 0600)")
	f.DurationVar(&cfg.CertValidity, "cert-validity", 0, "validity of the node and server certificates this server issues (default 2160h); they are renewed at 50-80% of it")
	f.StringVar(&cfg.ClusterCIDR, "cluster-cidr", raftstore.DefaultClusterCIDR, "IPv4 network of the pods: each node gets a /24 of it (fixed when the cluster bootstraps)")
	f.DurationVar(&cfg.HeartbeatTimeout, "raft-heartbeat-timeout", raftstore.DefaultHeartbeatTimeout, "Raft heartbeat timeout (raise with the election timeout for WAN links)")
	f.DurationVar(&cfg.ElectionTimeout, "raft-election-timeout", raftstore.DefaultElectionTimeout, "Raft election timeout")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	f.BoolVar(&noAgent, "no-agent", false, "do not run the embedded node agent")
	f.BoolVar(&cpTaint, "control-plane-taint", false, "taint this server's node node-role.kubernetes.io/control-plane:NoSchedule (default: true in a multi-server cluster)")
	f.StringVar(&agentFlags.labels, "node-labels", "", "labels of this server's node k=v,...")
	f.StringVar(&agentFlags.nodeIP, "node-ip", "", "InternalIP of this server's node")
	f.IntVar(&agentFlags.agentPort, "agent-port", defaultAgentPort, "port of this server's agent API (logs, exec)")
	f.StringVar(&agentFlags.cgroupParent, "cgroup-parent", "", "cgroup under which this server's pods run (default /corral/NAME)")
	f.BoolVar(&agentFlags.seccompDefault, "seccomp-default", false, seccompDefaultHelp)
	f.StringVar(&agentFlags.bridge, "bridge", defaultBridge, "the pod network's bridge on this server's node (also names its nftables table)")
	f.DurationVar(&cfg.EventTTL, "event-ttl", 0, "how long events are kept after they last happened (default 1h)")
	f.DurationVar(&cfg.NodeGracePeriod, "node-monitor-grace-period", 0, "how long a node may miss heartbeats before it is marked Unknown (default 40s)")
	return cmd
}

// runEmbeddedAgent runs the node agent of a server: its node is named after
// the server, labelled node-role.kubernetes.io/control-plane="" and, when
// asked, tainted so that only pods that tolerate it land there.
func runEmbeddedAgent(ctx context.Context, srv *server.Server, cfg server.Config, f agentFlags, taint bool) error {
	tokenFile := filepath.Join(cfg.DataDir, "token")
	for {
		if _, err := os.Stat(tokenFile); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
	}
	f.name = cfg.Name
	f.dataDir = filepath.Join(cfg.DataDir, "agent")
	f.tokenFile = tokenFile
	f.servers = strings.Join(append([]string{srv.APIAddr()}, cfg.Join...), ",")
	if f.labels != "" {
		f.labels += ","
	}
	f.labels += controlPlaneLabel + "="
	var taints []*corralpb.Taint
	if taint {
		taints = append(taints, &corralpb.Taint{Key: controlPlaneLabel, Effect: "NoSchedule"})
	}
	return runAgent(ctx, f, taints, cfg.Logger)
}

// controlPlaneLabel marks servers' nodes, as Kubernetes marks its control plane.
const controlPlaneLabel = "node-role.kubernetes.io/control-plane"

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("--log-level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

func newSnapshotRestoreCmd() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "restore FILE --data-dir DIR",
		Short: "Seed a new cluster's data dir from a snapshot (corral snapshot save)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := raftstore.RestoreSnapshot(args[0], dataDir); err != nil {
				return err
			}
			_, err := io.WriteString(cmd.OutOrStdout(), fmt.Sprintf(
				"Snapshot %s staged in %s.\nStart a server with --data-dir %s (and --bootstrap-expect for a new cluster): it loads the snapshot once it leads.\n",
				args[0], dataDir, dataDir))
			return err
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", defaultDataDir, "data dir of the new cluster's first server (must be empty)")
	return cmd
}
