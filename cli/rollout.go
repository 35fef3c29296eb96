package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	corralpb "github.com/corral-dev/corral/proto"
)

// newRolloutCommand returns `corral rollout` and its subcommands.
func newRolloutCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollout SUBCOMMAND",
		Short: "Manage the rollout of a DaemonSet",
		Args:  cobra.ArbitraryArgs,
		RunE:  g.groupRunE(),
	}
	cmd.AddCommand(newRolloutStatusCommand(g), newRolloutHistoryCommand(g), newRolloutUndoCommand(g), newRolloutRestartCommand(g))
	return cmd
}

type rolloutStatusOptions struct {
	g       *globals
	watch   bool
	timeout time.Duration
}

// newRolloutStatusCommand returns `corral rollout status`.
func newRolloutStatusCommand(g *globals) *cobra.Command {
	o := &rolloutStatusOptions{g: g}
	cmd := &cobra.Command{
		Use:   "status (TYPE NAME | TYPE/NAME)",
		Short: "Show the status of the rollout",
		Long: `Show the status of the rollout.

By default 'rollout status' will watch the status of the latest rollout until
it's done. If you don't want to wait for the rollout to finish then you can
use --watch=false.`,
		Example: `  # Watch the rollout status of a daemon set
  corral rollout status ds/nginx-daemonset`,
		RunE: g.runE(func(ctx context.Context, args []string) error {
			name, err := daemonSetArg(args)
			if err != nil {
				return err
			}
			return o.run(ctx, name)
		}),
	}
	cmd.Flags().BoolVarP(&o.watch, "watch", "w", true, "Watch the status of the rollout until it's done.")
	cmd.Flags().DurationVar(&o.timeout, "timeout", 0, "The length of time to wait before ending watch, zero means never. Any other values should contain a corresponding time unit (e.g. 1s, 2m, 3h).")
	return cmd
}

// daemonSetArg accepts `ds NAME`, `daemonset/NAME` and the other forms
// kubectl takes for one object; only DaemonSets roll out in corral.
func daemonSetArg(args []string) (string, error) {
	sels, err := parseResourceArgs(args)
	if err != nil {
		return "", err
	}
	if len(sels) != 1 || len(sels[0].names) != 1 {
		return "", errors.New("required resource not specified")
	}
	if sels[0].kind.Kind != "DaemonSet" {
		return "", fmt.Errorf("no status viewer has been implemented for %s", sels[0].kind.Kind)
	}
	return sels[0].names[0], nil
}

// rolloutMessage is kubectl's DaemonSet status viewer: the line to print
// and whether the rollout is done.
func rolloutMessage(ds *corralpb.DaemonSet) (string, bool, error) {
	if t := ds.GetSpec().GetUpdateStrategy().GetType(); t != "" && t != "RollingUpdate" {
		return "", true, fmt.Errorf("rollout status is only available for RollingUpdate strategy type")
	}
	st := ds.GetStatus()
	name := ds.GetMetadata().GetName()
	if ds.GetMetadata().GetGeneration() > st.GetObservedGeneration() {
		return "Waiting for daemon set spec update to be observed...\n", false, nil
	}
	if st.GetUpdatedNumberScheduled() < st.GetDesiredNumberScheduled() {
		return fmt.Sprintf("Waiting for daemon set %q rollout to finish: %d out of %d new pods have been updated...\n",
			name, st.GetUpdatedNumberScheduled(), st.GetDesiredNumberScheduled()), false, nil
	}
	if st.GetNumberAvailable() < st.GetDesiredNumberScheduled() {
		return fmt.Sprintf("Waiting for daemon set %q rollout to finish: %d of %d updated pods are available...\n",
			name, st.GetNumberAvailable(), st.GetDesiredNumberScheduled()), false, nil
	}
	return fmt.Sprintf("daemon set %q successfully rolled out\n", name), true, nil
}

// run prints the rollout's progress, one line per change, until it is done
// (or once without --watch).
func (o *rolloutStatusOptions) run(ctx context.Context, name string) error {
	ns := o.g.ns()
	obj, err := o.g.getObject(ctx, "DaemonSet", ns, name)
	if err != nil {
		return err
	}
	msg, done, err := rolloutMessage(obj.GetDaemonSet())
	if err != nil {
		return err
	}
	o.g.printf("%s", msg)
	if done || !o.watch {
		return nil
	}
	if o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}
	c, err := o.g.cluster()
	if err != nil {
		return err
	}
	last, finished := msg, false
	err = resumableWatch(ctx, c, &corralpb.WatchRequest{Kind: "DaemonSet", Namespace: ns,
		FieldSelector: "metadata.name=" + name, ResourceVersion: obj.GetDaemonSet().GetMetadata().GetResourceVersion()},
		func(ev *corralpb.WatchEvent) error {
			if ev.GetType() == "DELETED" {
				return fmt.Errorf("daemon set %q was deleted", name)
			}
			msg, done, err := rolloutMessage(ev.GetObject().GetDaemonSet())
			if err != nil {
				return err
			}
			if msg != last {
				o.g.printf("%s", msg)
				last = msg
			}
			if done {
				finished = true
				return errStopWatch
			}
			return nil
		})
	switch {
	case finished:
		return nil
	case status.Code(err) == codes.DeadlineExceeded || timeIsUp(ctx):
		return errors.New("timed out waiting for the condition")
	case err != nil:
		return err
	case ctx.Err() != nil:
		return ctx.Err() // interrupted
	}
	return fmt.Errorf("the server ended the watch of daemon set %q before its rollout finished", name)
}
