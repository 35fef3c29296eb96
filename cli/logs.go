package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	corralpb "github.com/corral-dev/corral/proto"
)

// logsOptions are the flags of `corral logs`.
type logsOptions struct {
	g          *globals
	follow     bool
	container  string
	tail       int64
	previous   bool
	timestamps bool
	since      time.Duration
	limitBytes int64
}

// newLogsCommand returns `corral logs`.
func newLogsCommand(g *globals) *cobra.Command {
	o := &logsOptions{g: g}
	cmd := &cobra.Command{
		Use:   "logs [-f] [-p] (POD | pod/NAME) [-c CONTAINER]",
		Short: "Print the logs for a container in a pod",
		Example: `  # Return snapshot logs from pod nginx with only one container
  corral logs nginx

  # Begin streaming the logs of the ruby container in pod web-1
  corral logs -f -c ruby web-1

  # Display only the most recent 20 lines of output in pod nginx
  corral logs --tail=20 nginx

  # Show the logs of the previous terminated container, with timestamps
  corral logs -p --timestamps nginx`,
		RunE: g.runE(func(ctx context.Context, args []string) error {
			req, err := o.request(args)
			if err != nil {
				return err
			}
			return o.run(ctx, req)
		}),
	}
	fs := cmd.Flags()
	fs.BoolVarP(&o.follow, "follow", "f", false, "Specify if the logs should be streamed.")
	fs.StringVarP(&o.container, "container", "c", "", "Print the logs of this container")
	fs.Int64Var(&o.tail, "tail", -1, "Lines of recent log file to display. Defaults to -1, showing all log lines.")
	fs.BoolVarP(&o.previous, "previous", "p", false, "If true, print the logs for the previous instance of the container in a pod if it exists.")
	fs.BoolVar(&o.timestamps, "timestamps", false, "Include timestamps on each line in the log output")
	fs.DurationVar(&o.since, "since", 0, "Only return logs newer than a relative duration like 5s, 2m, or 3h. Defaults to all logs.")
	fs.Int64Var(&o.limitBytes, "limit-bytes", 0, "Maximum bytes of logs to return. Defaults to no limit.")
	return cmd
}

// request checks the arguments and flags and builds the Logs request.
// As kubectl still accepts, a second argument names the container.
func (o *logsOptions) request(args []string) (*corralpb.LogsRequest, error) {
	if len(args) == 0 || len(args) > 2 {
		return nil, errors.New("expected 'logs [-f] [-p] (POD | TYPE/NAME) [-c CONTAINER]'.\n" +
			"POD or TYPE/NAME is a required argument for the logs command\nSee 'corral logs -h' for help and examples")
	}
	pod, err := podArg(args[0], "get the logs from")
	if err != nil {
		return nil, err
	}
	ctr := o.container
	if len(args) == 2 {
		if ctr != "" {
			return nil, errors.New("only one of -c or an inline [CONTAINER] arg is allowed")
		}
		ctr = args[1]
	}
	switch {
	case o.tail < -1:
		return nil, errors.New("--tail must be greater than or equal to -1")
	case o.since < 0:
		return nil, errors.New("--since must be greater than 0")
	case o.limitBytes < 0:
		return nil, errors.New("--limit-bytes must be greater than 0")
	}
	return &corralpb.LogsRequest{
		Namespace:    o.g.ns(),
		Pod:          pod,
		Container:    ctr,
		Follow:       o.follow,
		TailLines:    o.tail,
		Previous:     o.previous,
		Timestamps:   o.timestamps,
		SinceSeconds: int64(math.Ceil(o.since.Seconds())),
		LimitBytes:   o.limitBytes,
	}, nil
}

// run streams the logs to the output until the server ends the stream or
// the user interrupts a follow.
func (o *logsOptions) run(ctx context.Context, req *corralpb.LogsRequest) error {
	c, err := o.g.cluster()
	if err != nil {
		return err
	}
	st, err := c.Logs(ctx, req)
	if err != nil {
		return fmt.Errorf("logs of pod %s: %w", req.GetPod(), err)
	}
	for {
		chunk, err := st.Recv()
		switch {
		case errors.Is(err, io.EOF):
			return nil
		case err != nil && (ctx.Err() != nil || isCode(err, codes.Canceled)):
			return nil
		case err != nil:
			return fmt.Errorf("logs of pod %s: %w", req.GetPod(), asBadRequest(err))
		}
		if _, err := o.g.out.Write(chunk.GetData()); err != nil {
			return fmt.Errorf("write logs: %w", err)
		}
	}
}

// podArg resolves POD or pod/NAME (any of the pod type's names); verb says
// what other types cannot do, in kubectl's words.
func podArg(arg, verb string) (string, error) {
	typ, name, ok := strings.Cut(arg, "/")
	if !ok {
		if arg == "" {
			return "", errors.New("pod name must not be empty")
		}
		return arg, nil
	}
	if typ == "" || name == "" || strings.Contains(name, "/") {
		return "", errors.New("arguments in resource/name form must have a single resource and name")
	}
	k, err := lookupKind(typ)
	if err != nil {
		return "", err
	}
	if k.Kind != "Pod" {
		return "", fmt.Errorf("cannot %s %s: only pods are supported", verb, objectRef(k, name))
	}
	return name, nil
}

// asBadRequest makes an InvalidArgument status from logs or exec print as
// kubectl prints the apiserver's and kubelet's rejections of such calls:
// "Error from server (BadRequest): ...".
func asBadRequest(err error) error {
	s, ok := grpcStatus(err)
	if !ok || s.Code() != codes.InvalidArgument {
		return err
	}
	return status.Error(codes.FailedPrecondition, s.Message())
}
