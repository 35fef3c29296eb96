package nodeagent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/corral-dev/corral/nodeagent/runtime/containerinit"
	corralpb "github.com/corral-dev/corral/proto"
)

// The agent API is what an agent serves on its node address (port in
// Node.status.daemonEndpoints.kubeletEndpoint) for the servers, which proxy
// the CLI's `logs`, `exec` and `port-forward` to it. It is served over mutual TLS with the
// node's certificate, and the listener lets only servers of the cluster
// connect (tls.RequireAndVerifyClientCert, pki.OnlyRole(pki.RoleServer)):
// authentication is the TLS layer's, and the API checks nothing more.

// Containers finds a pod's containers on this node for logs and exec.
//
// Its methods report what is missing with the errors below (wrapped as the
// implementation likes): ErrPodNotFound, ErrContainerNotFound,
// ErrNoPreviousContainer, or a *WaitingError for a container that has not
// started yet. Any other error from DefaultContainer is the user's to fix
// and its text is shown as is; any other error from LogDir or Exec is the
// node's.
type Containers interface {
	// LogDir returns the host directory holding the container.log files of the
	// container's current attempt, or the previous one (kubectl logs --previous).
	LogDir(namespace, pod, container string, previous bool) (string, error)
	// Exec runs cmd in the container's current attempt.
	Exec(ctx context.Context, namespace, pod, container string, cmd []string, stdin io.Reader, stdout, stderr io.Writer, tty bool) (int, error)
	// DefaultContainer is the container used when none is named: the only one, or an error
	// listing them as kubectl does ("a container name must be specified for pod x, choose one of: [a b]").
	DefaultContainer(namespace, pod string) (string, error)
	// DialPod opens a TCP connection to port on the pod's loopback, from
	// inside its network namespace (the node's own for a hostNetwork pod).
	DialPod(ctx context.Context, namespace, pod string, port int) (net.Conn, error)
}

var (
	// ErrPodNotFound means the pod does not run on this node.
	ErrPodNotFound = errors.New("pod not found on this node")
	// ErrContainerNotFound means the pod has no container of that name.
	ErrContainerNotFound = errors.New("container not found in pod")
	// ErrNoPreviousContainer means the container has no terminated attempt
	// before the current one.
	ErrNoPreviousContainer = errors.New("no previous terminated container")
)

// WaitingError reports a container that has no attempt to show yet.
type WaitingError struct {
	// Reason is the container's waiting reason, e.g. ContainerCreating.
	Reason string
}

// Error implements error.
func (e *WaitingError) Error() string { return "container is waiting to start: " + e.Reason }

// logChunkSize bounds the data of one LogsChunk or ExecOutput message.
const logChunkSize = 32 << 10

// agentAPI implements corralpb.AgentAPIServer over a Containers.
type agentAPI struct {
	corralpb.UnimplementedAgentAPIServer
	c   Containers
	log *slog.Logger
	now func() time.Time
}

var _ corralpb.AgentAPIServer = (*agentAPI)(nil)

// NewAgentAPI returns the agent API served over c. It authenticates no
// one: serve it only over TLS that admits servers' certificates alone (see
// above).
func NewAgentAPI(c Containers, log *slog.Logger) corralpb.AgentAPIServer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &agentAPI{c: c, log: log, now: time.Now}
}

// Logs streams a container's logs as "kubectl logs" shows them, in chunks
// of at most 32 KiB. With follow it goes on until the caller cancels or the
// container's command has ended.
func (a *agentAPI) Logs(req *corralpb.LogsRequest, stream corralpb.AgentAPI_LogsServer) error {
	ctx := stream.Context()
	ns, pod := namespaceOrDefault(req.GetNamespace()), req.GetPod()
	ctr, err := a.container(ns, pod, req.GetContainer())
	if err != nil {
		return err
	}
	dir, err := a.c.LogDir(ns, pod, ctr, req.GetPrevious())
	if err != nil {
		return agentAPIStatus(err, pod, ctr)
	}
	opts := containerinit.ReadOptions{
		Tail:       int(max(req.GetTailLines(), -1)),
		Follow:     req.GetFollow(),
		Timestamps: req.GetTimestamps(),
		LimitBytes: max(req.GetLimitBytes(), 0),
	}
	if s := req.GetSinceSeconds(); s > 0 {
		opts.Since = a.now().Add(-time.Duration(s) * time.Second)
	}
	w := &chunkSender{send: func(b []byte) error { return stream.Send(&corralpb.LogsChunk{Data: b}) }}
	err = containerinit.ReadLogs(ctx, dir, opts, w)
	switch {
	case err == nil, ctx.Err() != nil:
		return nil // done, or the caller went away
	case w.err != nil:
		return w.err
	case errors.Is(err, fs.ErrNotExist):
		return status.Errorf(codes.NotFound, "logs of container %q in pod %q: %v", ctr, pod, err)
	default:
		a.log.Debug("read logs", "pod", ns+"/"+pod, "container", ctr, "err", err)
		return status.Errorf(codes.Internal, "logs of container %q in pod %q: %v", ctr, pod, err)
	}
}

// namespaceOrDefault is ns, or "default" when a request leaves it empty.
func namespaceOrDefault(ns string) string {
	if ns == "" {
		return "default"
	}
	return ns
}

// container returns the container a request names, or the pod's default.
func (a *agentAPI) container(ns, pod, name string) (string, error) {
	if pod == "" {
		return "", status.Error(codes.InvalidArgument, "pod name is required")
	}
	if name != "" {
		return name, nil
	}
	ctr, err := a.c.DefaultContainer(ns, pod)
	if err == nil {
		return ctr, nil
	}
	if errors.Is(err, ErrPodNotFound) {
		return "", agentAPIStatus(err, pod, "")
	}
	return "", status.Error(codes.InvalidArgument, err.Error())
}

// agentAPIStatus maps a Containers error to a gRPC status worded as
// kubectl users know it.
func agentAPIStatus(err error, pod, ctr string) error {
	var waiting *WaitingError
	switch {
	case errors.Is(err, ErrPodNotFound):
		return status.Errorf(codes.NotFound, "pods %q not found", pod)
	case errors.Is(err, ErrContainerNotFound):
		return status.Errorf(codes.NotFound, "container %s is not valid for pod %s", ctr, pod)
	case errors.Is(err, ErrNoPreviousContainer):
		return status.Errorf(codes.InvalidArgument, "previous terminated container %q in pod %q not found", ctr, pod)
	case errors.As(err, &waiting):
		return status.Errorf(codes.InvalidArgument, "container %q in pod %q is waiting to start: %s", ctr, pod, waiting.Reason)
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	default:
		return status.Errorf(codes.Internal, "container %q in pod %q: %v", ctr, pod, err)
	}
}

// chunkSender sends what is written as messages of at most logChunkSize
// bytes, each a copy (the caller may reuse its buffer). The first send
// error is kept and returned by every later Write.
type chunkSender struct {
	mu   sync.Mutex
	send func([]byte) error
	err  error
}

// Write implements io.Writer.
func (w *chunkSender) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return 0, w.err
	}
	n := 0
	for len(p) > 0 {
		k := min(len(p), logChunkSize)
		if err := w.send(bytes.Clone(p[:k])); err != nil {
			w.err = fmt.Errorf("send to caller: %w", err)
			return n, w.err
		}
		n += k
		p = p[k:]
	}
	return n, nil
}

// Exec runs a command in a container. The first message must be start;
// stdin messages feed the command's standard input (with start.stdin) and
// stdin_close or the end of the caller's stream closes it. Output comes as
// stdout and stderr chunks of at most 32 KiB, then exit_code last. The
// caller cancelling kills the command.
func (a *agentAPI) Exec(stream corralpb.AgentAPI_ExecServer) error {
	ctx := stream.Context()
	first, err := stream.Recv()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return status.Error(codes.InvalidArgument, "exec: the stream ended before its start message")
		}
		return err
	}
	start := first.GetStart()
	if start == nil {
		return status.Error(codes.InvalidArgument, "exec: the first message must be start")
	}
	if len(start.GetCommand()) == 0 {
		return status.Error(codes.InvalidArgument, "you must specify at least one command for the container")
	}
	ns, pod := namespaceOrDefault(start.GetNamespace()), start.GetPod()
	ctr, err := a.container(ns, pod, start.GetContainer())
	if err != nil {
		return err
	}
	var stdin io.Reader
	if start.GetStdin() {
		pr, pw := io.Pipe()
		defer pr.Close() // unblocks the receiver once the command is done
		go pipeStdin(stream, pw)
		stdin = pr
	}
	out := &execSender{stream: stream}
	code, err := a.c.Exec(ctx, ns, pod, ctr, start.GetCommand(), stdin,
		out.writer(func(b []byte) *corralpb.ExecOutput {
			return &corralpb.ExecOutput{Msg: &corralpb.ExecOutput_Stdout{Stdout: b}}
		}),
		out.writer(func(b []byte) *corralpb.ExecOutput {
			return &corralpb.ExecOutput{Msg: &corralpb.ExecOutput_Stderr{Stderr: b}}
		}),
		start.GetTty())
	if err != nil {
		if ctx.Err() != nil {
			return status.FromContextError(ctx.Err()).Err()
		}
		a.log.Debug("exec", "pod", ns+"/"+pod, "container", ctr, "err", err)
		return agentAPIStatus(err, pod, ctr)
	}
	if err := out.send(&corralpb.ExecOutput{Msg: &corralpb.ExecOutput_ExitCode{ExitCode: int32(code)}}); err != nil {
		return fmt.Errorf("send exit code: %w", err)
	}
	return nil
}

// pipeStdin copies the caller's stdin messages into w until stdin_close,
// the end of the caller's stream, or a write to a pipe nobody reads.
func pipeStdin(stream corralpb.AgentAPI_ExecServer, w *io.PipeWriter) {
	for {
		in, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			w.CloseWithError(err) // nil closes with io.EOF
			return
		}
		switch m := in.GetMsg().(type) {
		case *corralpb.ExecInput_Stdin:
			if _, err := w.Write(m.Stdin); err != nil {
				return // the command is done with stdin
			}
		case *corralpb.ExecInput_StdinClose:
			if m.StdinClose {
				w.Close() // io.PipeWriter.Close never fails
			}
		}
	}
}

// execSender serializes output messages: stdout and stderr are written
// from different goroutines.
type execSender struct {
	mu     sync.Mutex
	stream corralpb.AgentAPI_ExecServer
}

func (s *execSender) send(m *corralpb.ExecOutput) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stream.Send(m)
}

// writer returns a writer that sends chunks wrapped by msg.
func (s *execSender) writer(msg func([]byte) *corralpb.ExecOutput) io.Writer {
	return &chunkSender{send: func(b []byte) error { return s.send(msg(b)) }}
}

// PortForward carries one TCP connection to a port of a pod: the first
// frame must be start; data frames are written to the connection, and
// close_write or the end of the caller's stream half-closes it; what the
// pod sends comes back as data frames, then close_write once it has sent
// all, and the call ends when both directions are done. The caller
// cancelling closes the connection.
func (a *agentAPI) PortForward(stream corralpb.AgentAPI_PortForwardServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	first, err := stream.Recv()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return status.Error(codes.InvalidArgument, "port-forward: the stream ended before its start message")
		}
		return err
	}
	start := first.GetStart()
	if start == nil {
		return status.Error(codes.InvalidArgument, "port-forward: the first message must be start")
	}
	port := int(start.GetPort())
	if port < 1 || port > 65535 {
		return status.Errorf(codes.InvalidArgument, "port-forward: port: Invalid value: %d: must be between 1 and 65535, inclusive", port)
	}
	ns, pod := namespaceOrDefault(start.GetNamespace()), start.GetPod()
	conn, err := a.c.DialPod(ctx, ns, pod, port)
	if err != nil {
		if errors.Is(err, ErrPodNotFound) {
			return agentAPIStatus(err, pod, "")
		}
		// kubelet's words for a port nothing listens on; not Unavailable,
		// which the servers read as this agent being unreachable.
		return status.Errorf(codes.FailedPrecondition, "error forwarding port %d to pod %s: %v", port, pod, err)
	}
	defer conn.Close()
	go func() {
		<-ctx.Done()
		conn.Close() // unblocks the reads and writes below
	}()
	upDone := make(chan error, 1)
	go func() {
		err := forwardUp(stream, conn)
		if err != nil {
			conn.Close() // ends the read below too
		}
		upDone <- err
	}()
	buf := make([]byte, logChunkSize)
	for {
		n, rerr := conn.Read(buf)
		if n > 0 {
			if err := stream.Send(&corralpb.PortForwardFrame{Msg: &corralpb.PortForwardFrame_Data{Data: bytes.Clone(buf[:n])}}); err != nil {
				return fmt.Errorf("send to caller: %w", err)
			}
		}
		if rerr != nil {
			if !errors.Is(rerr, io.EOF) {
				select {
				case err := <-upDone:
					if err != nil {
						return err // the write to the pod failed first
					}
				default:
				}
				if ctx.Err() != nil {
					return status.FromContextError(ctx.Err()).Err()
				}
				return status.Errorf(codes.Internal, "read from port %d of pod %s: %v", port, pod, rerr)
			}
			break
		}
	}
	// The pod has sent all: say so, and end once the caller has too.
	if err := stream.Send(&corralpb.PortForwardFrame{Msg: &corralpb.PortForwardFrame_CloseWrite{CloseWrite: true}}); err != nil {
		return fmt.Errorf("send to caller: %w", err)
	}
	select {
	case err := <-upDone:
		return err
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	}
}

// forwardUp writes the caller's data frames to conn until close_write or
// the end of the caller's stream, then half-closes conn.
func forwardUp(stream corralpb.AgentAPI_PortForwardServer, conn net.Conn) error {
	for {
		in, err := stream.Recv()
		if errors.Is(err, io.EOF) || (err == nil && in.GetCloseWrite()) {
			if cw, ok := conn.(interface{ CloseWrite() error }); ok {
				_ = cw.CloseWrite() // fails only on a connection already closed
			}
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := conn.Write(in.GetData()); err != nil {
			return status.Errorf(codes.Internal, "write to the pod: %v", err)
		}
	}
}
