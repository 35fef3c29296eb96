package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

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
		cfg      server.Config
		join     string
		logLevel string
	)
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a corral server (Raft member and API endpoint)",
		Long: `Run a corral server. With no flags it is a single-server cluster in /var/lib/corral.

A three-server cluster: start each server with --bootstrap-expect 3 and --join
listing the other servers' API addresses; they find each other and bootstrap
exactly once, in any start order. A restarted server rejoins from its data dir.
At bootstrap each server writes DATA_DIR/admin.conf (the CLI config) and
DATA_DIR/token (the join token).`,
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
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return server.Run(ctx, cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Name, "name", "", "unique server name (default: the hostname)")
	f.StringVar(&cfg.DataDir, "data-dir", defaultDataDir, "directory for Raft state, admin.conf and token")
	f.StringVar(&cfg.APIAddr, "api-addr", defaultAPIAddr, "HOST:PORT of the gRPC API (CLI, agents, other servers)")
	f.StringVar(&cfg.RaftAddr, "raft-addr", defaultRaftAddr, "HOST:PORT of the Raft transport (a host other servers can reach)")
	f.IntVar(&cfg.BootstrapExpect, "bootstrap-expect", 1, "number of servers that bootstrap a new cluster together")
	f.StringVar(&join, "join", "", "comma-separated API addresses of other servers")
	f.DurationVar(&cfg.HeartbeatTimeout, "raft-heartbeat-timeout", raftstore.DefaultHeartbeatTimeout, "Raft heartbeat timeout (raise with the election timeout for WAN links)")
	f.DurationVar(&cfg.ElectionTimeout, "raft-election-timeout", raftstore.DefaultElectionTimeout, "Raft election timeout")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	return cmd
}

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
