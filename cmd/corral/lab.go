package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/corral-dev/corral/lab"
)

// defaultLabDir is where `corral lab` keeps a lab unless --dir says otherwise.
const defaultLabDir = "/var/lib/corral-lab"

// labFlags are the flags every lab verb shares.
type labFlags struct {
	dir      string
	logLevel string
	timeout  time.Duration
}

func newLabCmd() *cobra.Command {
	var f labFlags
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "Run a whole corral cluster on this machine (network namespaces, real processes)",
		Long: `A lab is a corral cluster on one machine: one network namespace per node on a
private bridge, real corral server and agent processes, an offline image
registry with stand-in images under the tutorial's image names, and
DIR/admin.conf for the CLI. Needs root.`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.dir, "dir", defaultLabDir, "the lab's directory (data, logs, admin.conf)")
	pf.StringVar(&f.logLevel, "log-level", "warn", "log level: debug, info, warn, error")
	pf.DurationVar(&f.timeout, "timeout", 3*time.Minute, "how long to wait for nodes to be Ready")
	cmd.AddCommand(newLabUpCmd(&f), newLabDownCmd(&f), newLabStatusCmd(&f), newLabAddNodeCmd(&f),
		newLabRemoveNodeCmd(&f), newLabKillCmd(&f), newLabStartCmd(&f), newLabPartitionCmd(&f),
		newLabHealCmd(&f), newLabPushCmd(&f), newLabRegistryCmd(&f))
	return cmd
}

// open checks for root and returns the lab handle and a context that ends
// on SIGINT or SIGTERM.
func (f *labFlags) open(cmd *cobra.Command) (*lab.Lab, context.Context, context.CancelFunc, error) {
	if os.Geteuid() != 0 {
		return nil, nil, nil, fmt.Errorf("corral lab makes network namespaces and runs containers: it needs root (try sudo)")
	}
	level, err := parseLevel(f.logLevel)
	if err != nil {
		return nil, nil, nil, err
	}
	l, err := lab.Open(lab.Options{Dir: f.dir, Out: cmd.OutOrStdout(),
		Logger: slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))})
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	return l, ctx, stop, nil
}

// labVerb makes a lab sub-command whose body gets the opened lab.
func labVerb(f *labFlags, use, short string, args cobra.PositionalArgs, run func(context.Context, *lab.Lab, []string) error) *cobra.Command {
	return &cobra.Command{
		Use: use, Short: short, Args: args,
		RunE: func(cmd *cobra.Command, a []string) error {
			l, ctx, stop, err := f.open(cmd)
			if err != nil {
				return err
			}
			defer stop()
			return run(ctx, l, a)
		},
	}
}

func newLabUpCmd(f *labFlags) *cobra.Command {
	var o lab.UpOptions
	cmd := labVerb(f, "up [--servers N] [--agents M] [--dir DIR]", "Make the lab and wait until every node is Ready",
		cobra.NoArgs, func(ctx context.Context, l *lab.Lab, _ []string) error {
			o.Timeout = f.timeout
			return l.Up(ctx, o)
		})
	cmd.Flags().IntVar(&o.Servers, "servers", 3, "number of servers (server-1..N; each also runs pods, tainted when N > 1)")
	cmd.Flags().IntVar(&o.Agents, "agents", 3, "number of agents (worker-1..M)")
	cmd.Flags().DurationVar(&o.NodeGracePeriod, "node-monitor-grace-period", 0, "the servers' node monitor grace period (for tests)")
	_ = cmd.Flags().MarkHidden("node-monitor-grace-period")
	return cmd
}

func newLabDownCmd(f *labFlags) *cobra.Command {
	return labVerb(f, "down", "Stop the lab and remove every trace of it", cobra.NoArgs,
		func(ctx context.Context, l *lab.Lab, _ []string) error { return l.Down(ctx) })
}

func newLabStatusCmd(f *labFlags) *cobra.Command {
	return labVerb(f, "status", "List the lab's nodes and processes", cobra.NoArgs,
		func(_ context.Context, l *lab.Lab, _ []string) error { return l.Status() })
}

func newLabAddNodeCmd(f *labFlags) *cobra.Command {
	var labels string
	cmd := labVerb(f, "add-node NAME [--labels k=v,...]", "Add an agent node and wait until it is Ready", cobra.ExactArgs(1),
		func(ctx context.Context, l *lab.Lab, a []string) error {
			return l.AddNode(ctx, a[0], labels, f.timeout)
		})
	cmd.Flags().StringVar(&labels, "labels", "", "the node's labels k=v,...")
	return cmd
}

func newLabRemoveNodeCmd(f *labFlags) *cobra.Command {
	return labVerb(f, "remove-node NAME", "Stop an agent node, clean its traces and delete its Node", cobra.ExactArgs(1),
		func(ctx context.Context, l *lab.Lab, a []string) error { return l.RemoveNode(ctx, a[0]) })
}

func newLabKillCmd(f *labFlags) *cobra.Command {
	return labVerb(f, "kill NODE", "Kill a node's process with SIGKILL (its containers keep running)", cobra.ExactArgs(1),
		func(_ context.Context, l *lab.Lab, a []string) error { return l.Kill(a[0]) })
}

func newLabStartCmd(f *labFlags) *cobra.Command {
	return labVerb(f, "start NODE", "Start a stopped node again with the same flags", cobra.ExactArgs(1),
		func(ctx context.Context, l *lab.Lab, a []string) error { return l.Start(ctx, a[0], f.timeout) })
}

func newLabPartitionCmd(f *labFlags) *cobra.Command {
	return labVerb(f, "partition NODE", "Cut a node's network link", cobra.ExactArgs(1),
		func(_ context.Context, l *lab.Lab, a []string) error { return l.Partition(a[0]) })
}

func newLabHealCmd(f *labFlags) *cobra.Command {
	return labVerb(f, "heal", "Restore every node's network link", cobra.NoArgs,
		func(_ context.Context, l *lab.Lab, _ []string) error { return l.Heal() })
}

func newLabPushCmd(f *labFlags) *cobra.Command {
	return labVerb(f, "push TARBALL REF", "Serve a docker save tarball to the lab's nodes under REF", cobra.ExactArgs(2),
		func(ctx context.Context, l *lab.Lab, a []string) error { return l.Push(ctx, a[0], a[1]) })
}

// newLabRegistryCmd is the lab's registry process, which `lab up` starts.
func newLabRegistryCmd(f *labFlags) *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:    "registry --dir DIR --addr HOST:PORT",
		Short:  "Serve the lab's image registry (started by lab up)",
		Args:   cobra.NoArgs,
		Hidden: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			level, err := parseLevel(f.logLevel)
			if err != nil {
				return err
			}
			self, err := os.Executable()
			if err != nil {
				return fmt.Errorf("find the corral binary: %w", err)
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: min(level, slog.LevelInfo)}))
			return lab.ServeRegistry(ctx, f.dir, addr, self, log)
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "", "HOST:PORT to serve on")
	return cmd
}
