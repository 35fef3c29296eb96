package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	corralpb "github.com/corral-dev/corral/proto"
)

// execOptions are the flags of `corral exec`.
type execOptions struct {
	g         *globals
	stdin     bool
	tty       bool
	container string
}

// exitCodeError is a remote command's non-zero exit code, which becomes
// the CLI's own (see ExitCode).
type exitCodeError struct{ code int }

func (e *exitCodeError) Error() string {
	return fmt.Sprintf("command terminated with exit code %d", e.code)
}

// execChunk bounds the stdin bytes sent in one message.
const execChunk = 32 << 10

// newExecCommand returns `corral exec`.
func newExecCommand(g *globals) *cobra.Command {
	o := &execOptions{g: g}
	cmd := &cobra.Command{
		Use:   "exec (POD | TYPE/NAME) [-c CONTAINER] [flags] -- COMMAND [args...]",
		Short: "Execute a command in a container",
		Example: `  # Get output from running the 'date' command in pod mypod, using the first container by default
  corral exec mypod -- date

  # Get output from running the 'date' command in ruby-container from pod mypod
  corral exec mypod -c ruby-container -- date

  # Switch to raw terminal mode; sends stdin to 'bash' in ruby-container from pod mypod
  corral exec mypod -c ruby-container -i -t -- bash -il

  # Get output from running 'date' in one pod of DaemonSet fluentd-elasticsearch
  corral exec ds/fluentd-elasticsearch -n kube-system -- date`,
	}
	cmd.RunE = g.runE(func(ctx context.Context, args []string) error {
		start, target, err := o.start(args, cmd.ArgsLenAtDash())
		if err != nil {
			return err
		}
		if target.kind == "DaemonSet" {
			p, err := g.daemonSetPod(ctx, start.GetNamespace(), target.name)
			if err != nil {
				return err
			}
			start.Pod = p.GetMetadata().GetName()
		}
		return o.run(ctx, start)
	})
	fs := cmd.Flags()
	fs.BoolVarP(&o.stdin, "stdin", "i", false, "Pass stdin to the container")
	fs.BoolVarP(&o.tty, "tty", "t", false, "Stdin is a TTY")
	fs.StringVarP(&o.container, "container", "c", "", "Container name. If omitted, the pod's only container is chosen")
	return cmd
}

// start checks the arguments (dash is where "--" was, -1 if absent) and
// builds the start message. A TTY needs stdin (-i) and a terminal to read
// from; without them -t is dropped, as kubectl does.
func (o *execOptions) start(args []string, dash int) (*corralpb.ExecStart, podTarget, error) {
	podArgs, command := args, []string(nil)
	if dash >= 0 {
		podArgs, command = args[:dash], args[dash:]
	}
	switch {
	case len(podArgs) == 0:
		return nil, podTarget{}, errors.New("pod, type/name or --filename must be specified")
	case len(podArgs) > 1:
		return nil, podTarget{}, errors.New("exec [POD] [COMMAND] is not supported anymore. Use exec [POD] -- [COMMAND] instead\nSee 'corral exec -h' for help and examples")
	case len(command) == 0:
		return nil, podTarget{}, errors.New("you must specify at least one command for the container")
	}
	target, err := podTargetArg(podArgs[0], "exec into")
	if err != nil {
		return nil, target, err
	}
	pod := ""
	if target.kind == "Pod" {
		pod = target.name
	}
	tty := o.tty && o.stdin
	if tty && !o.stdinTerminal() {
		o.g.warnf("Unable to use a TTY - input is not a terminal or the right kind of file\n")
		tty = false
	}
	return &corralpb.ExecStart{
		Namespace: o.g.ns(),
		Pod:       pod,
		Container: o.container,
		Command:   command,
		Tty:       tty,
		Stdin:     o.stdin,
	}, target, nil
}

// stdinTerminal reports whether the CLI's input is a terminal.
func (o *execOptions) stdinTerminal() bool {
	f, ok := o.g.in.(*os.File)
	return ok && isTerminal(f.Fd())
}

// run executes the command remotely: stdin (with -i) goes up, output comes
// down, and the remote exit code ends it. A non-zero code is printed as
// kubectl prints it and becomes the CLI's exit code.
func (o *execOptions) run(ctx context.Context, start *corralpb.ExecStart) error {
	c, err := o.g.cluster()
	if err != nil {
		return err
	}
	restore := func() {}
	if start.GetTty() {
		f := o.g.in.(*os.File) // start set Tty only for a terminal
		if restore, err = makeRaw(f.Fd()); err != nil {
			return err
		}
	}
	code, err := execStream(ctx, c, start, o.g.in, o.g.out, o.g.errOut)
	restore()
	if err != nil {
		return err
	}
	if code == 0 {
		return nil
	}
	// kubectl's words, without its "error: " prefix.
	ec := &exitCodeError{code: code}
	o.g.warnf("%s\n", ec)
	return &reportedError{err: ec}
}

// execStream runs start's command in its container: in (with start.stdin)
// goes up, the output comes down to out and errOut, and the remote exit
// code, the last message, is returned.
func execStream(ctx context.Context, c corralpb.ClusterClient, start *corralpb.ExecStart, in io.Reader, out, errOut io.Writer) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := c.Exec(ctx)
	if err != nil {
		return 0, fmt.Errorf("exec in pod %s: %w", start.GetPod(), err)
	}
	if err := st.Send(&corralpb.ExecInput{Msg: &corralpb.ExecInput_Start{Start: start}}); err != nil && !errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("exec in pod %s: %w", start.GetPod(), err)
	}
	if start.GetStdin() {
		go sendStdin(st, in)
	} else if err := st.CloseSend(); err != nil {
		return 0, fmt.Errorf("exec in pod %s: %w", start.GetPod(), err)
	}
	code, err := receive(st, out, errOut)
	if err != nil {
		return 0, fmt.Errorf("exec in pod %s: %w", start.GetPod(), asBadRequest(err))
	}
	return code, nil
}

// receive writes the remote output to out and errOut and returns the exit
// code, the last message.
func receive(st grpc.BidiStreamingClient[corralpb.ExecInput, corralpb.ExecOutput], out, errOut io.Writer) (int, error) {
	code, exited := 0, false
	for {
		m, err := st.Recv()
		if errors.Is(err, io.EOF) {
			if !exited {
				return 0, errors.New("the server ended the stream without the command's exit code")
			}
			return code, nil
		}
		if err != nil {
			return 0, err
		}
		switch m := m.GetMsg().(type) {
		case *corralpb.ExecOutput_Stdout:
			_, err = out.Write(m.Stdout)
		case *corralpb.ExecOutput_Stderr:
			_, err = errOut.Write(m.Stderr)
		case *corralpb.ExecOutput_ExitCode:
			code, exited = int(m.ExitCode), true
		}
		if err != nil {
			return 0, fmt.Errorf("write output: %w", err)
		}
	}
}

// sendStdin sends in to the command in chunks, then stdin_close and the
// end of the stream. It stops when the stream fails (the command ended);
// a read blocked on a terminal is abandoned when the CLI exits.
func sendStdin(st grpc.BidiStreamingClient[corralpb.ExecInput, corralpb.ExecOutput], in io.Reader) {
	buf := make([]byte, execChunk)
	for {
		n, err := in.Read(buf)
		if n > 0 {
			data := append([]byte(nil), buf[:n]...)
			if st.Send(&corralpb.ExecInput{Msg: &corralpb.ExecInput_Stdin{Stdin: data}}) != nil {
				return
			}
		}
		if err != nil {
			// A read error other than EOF ends stdin as EOF does: the
			// command sees its input closed.
			if st.Send(&corralpb.ExecInput{Msg: &corralpb.ExecInput_StdinClose{StdinClose: true}}) == nil {
				_ = st.CloseSend() // the command's output still comes
			}
			return
		}
	}
}
