package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	corralpb "github.com/corral-dev/corral/proto"
)

// defaultNamespace is the namespace namespaced commands use without -n.
const defaultNamespace = "default"

// globals is the state one invocation of the CLI shares between its
// commands: streams, connection flags, the clock and the lazily dialed
// connection.
type globals struct {
	in     io.Reader
	out    io.Writer
	errOut io.Writer

	configPath     string
	servers        string
	caFile         string
	certFile       string
	keyFile        string
	namespace      string
	requestTimeout string

	// now is the clock used for ages; getenv, homeDir and adminConf (the
	// last candidate, DefaultAdminConf) find the config.
	now       func() time.Time
	getenv    func(string) string
	homeDir   func() (string, error)
	adminConf string

	conn   *grpc.ClientConn
	client corralpb.ClusterClient
	// dialed are the server addresses conn was dialed with.
	dialed []string
}

// NewRootCommand returns the `corral` command with every CLI verb. extra
// commands (server, agent, lab) are added by main; an extra command whose
// name matches one of the CLI's own (for example a `snapshot` command holding
// `restore`) has its subcommands merged into the CLI's command instead.
func NewRootCommand(in io.Reader, out, errOut io.Writer, extra ...*cobra.Command) *cobra.Command {
	return newRootCommand(&globals{
		in:        in,
		out:       out,
		errOut:    errOut,
		now:       time.Now,
		getenv:    os.Getenv,
		homeDir:   os.UserHomeDir,
		adminConf: DefaultAdminConf,
	}, extra...)
}

// newRootCommand builds the command tree around g (tests inject a clock and
// environment through it).
func newRootCommand(g *globals, extra ...*cobra.Command) *cobra.Command {
	root := &cobra.Command{
		Use:           "corral",
		Short:         "corral controls a corral cluster",
		Long:          "corral controls a corral cluster: DaemonSets on every eligible node, replicated by three Raft servers.",
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return g.report(fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath()))
			}
			return cmd.Help()
		},
	}
	root.SetIn(g.in)
	root.SetOut(g.out)
	root.SetErr(g.errOut)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return g.report(fmt.Errorf("%w\nSee '%s --help' for usage", err, c.CommandPath()))
	})
	root.CompletionOptions.DisableDefaultCmd = true

	pf := root.PersistentFlags()
	pf.StringVar(&g.configPath, "config", "", "Path to the CLI config file (default: $CORRAL_CONFIG, ~/.corral/config, /var/lib/corral/admin.conf)")
	pf.StringVarP(&g.servers, "server", "s", "", "API address(es) of the servers, host:port[,host:port...]; overrides the config")
	pf.StringVar(&g.caFile, "certificate-authority", "", "Path to the cluster CA certificate (PEM) to verify the servers with; overrides the config")
	pf.StringVar(&g.certFile, "client-certificate", "", "Path to a client certificate file (PEM) for TLS; overrides the config")
	pf.StringVar(&g.keyFile, "client-key", "", "Path to a client key file (PEM) for TLS; overrides the config")
	pf.StringVarP(&g.namespace, "namespace", "n", "", "If present, the namespace scope for this CLI request")
	pf.StringVar(&g.requestTimeout, "request-timeout", "30s", "The length of time to wait before giving up on a single server request (e.g. 1s, 2m, 3h; 0 waits forever)")

	for _, c := range g.commands() {
		root.AddCommand(c)
	}
	for _, c := range extra {
		mergeCommand(root, c)
	}
	return root
}

// commands returns every CLI verb, one constructor per file.
func (g *globals) commands() []*cobra.Command {
	return []*cobra.Command{
		newAnnotateCommand(g),
		newAPIResourcesCommand(g),
		newApplyCommand(g),
		newClusterCommand(g),
		newCompletionCommand(g),
		newCordonCommand(g, true),
		newCordonCommand(g, false),
		newCpCommand(g),
		newCreateCommand(g),
		newDeleteCommand(g),
		newDrainCommand(g),
		newDescribeCommand(g),
		newDiffCommand(g),
		newEditCommand(g),
		newExecCommand(g),
		newGetCommand(g),
		newLabelCommand(g),
		newLogsCommand(g),
		newPatchCommand(g),
		newPortForwardCommand(g),
		newReplaceCommand(g),
		newRolloutCommand(g),
		newSetCommand(g),
		newSnapshotCommand(g),
		newTaintCommand(g),
		newTokenCommand(g),
		newUserCommand(g),
		newVersionCommand(g),
		newWaitCommand(g),
	}
}

// groupRunE is the body of a command that only groups subcommands (cluster,
// snapshot, token, user): help without arguments, kubectl's error for an
// unknown one.
func (g *globals) groupRunE() func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return g.report(fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath()))
		}
		return cmd.Help()
	}
}

// mergeCommand adds c to root, or, when root already has a command of that
// name, adds c's subcommands to it.
func mergeCommand(root, c *cobra.Command) {
	for _, existing := range root.Commands() {
		if existing.Name() == c.Name() && c.HasSubCommands() {
			for _, sub := range c.Commands() {
				c.RemoveCommand(sub)
				existing.AddCommand(sub)
			}
			return
		}
	}
	root.AddCommand(c)
}

// ExitCode maps an error returned by the root command's Execute to the
// process exit code: 0 for nil, the remote command's code for `exec`, 1
// otherwise. Errors are printed by the commands themselves; an error that
// never reached a command (which the CLI tries to rule out) is printed here
// to standard error so it is not lost.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var r *reportedError
	if !errors.As(err, &r) && !errors.Is(err, errReported) {
		fmt.Fprintln(os.Stderr, formatError(err))
	}
	var ec *exitCodeError
	if errors.As(err, &ec) {
		return ec.code
	}
	return 1
}

// runE adapts a command body to cobra: it runs fn, reports its error in
// kubectl's words, and closes the connection the body may have opened.
func (g *globals) runE(fn func(ctx context.Context, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if ctx == nil {
			ctx = context.Background()
		}
		err := fn(ctx, args)
		if cerr := g.closeConn(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		if err != nil {
			return g.report(err)
		}
		return nil
	}
}

// ns returns the namespace of this invocation: -n, else "default".
func (g *globals) ns() string {
	if g.namespace != "" {
		return g.namespace
	}
	return defaultNamespace
}

// printf writes to the output stream. As in kubectl, writes to stdout are
// not checked line by line: a closed pipe ends the process (SIGPIPE) and a
// full disk shows in the output itself.
func (g *globals) printf(format string, a ...any) {
	fmt.Fprintf(g.out, format, a...)
}

// warnf writes a line to the error stream.
func (g *globals) warnf(format string, a ...any) {
	fmt.Fprintf(g.errOut, format, a...)
}
