package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"
)

// Exec runs cmd in the running container id, with the container's environment, user,
// working directory and limits, and returns its exit code (128+signal when killed).
// stdin may be nil. With tty, the process gets a terminal: stdin feeds it and stdout
// receives its output (stderr is unused; no resize). Cancelling ctx kills the process.
func (r *Runtime) Exec(ctx context.Context, id string, cmd []string, stdin io.Reader, stdout, stderr io.Writer, tty bool) (int, error) {
	if len(cmd) == 0 {
		return -1, fmt.Errorf("exec in %s: empty command: %w", id, ErrInvalid)
	}
	m, err := r.loadMeta(id)
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", id, notFound(err))
	}
	ctr, err := r.load(id)
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", id, err)
	}
	if status, err := ctr.Status(); err != nil || status != libcontainer.Running {
		return -1, fmt.Errorf("exec in %s: container is not running (%v): %w", id, status, errors.Join(err, libcontainer.ErrNotRunning))
	}
	p, err := initProcess(m)
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", id, err)
	}
	p.Args, p.Init = cmd, false
	sio := &execIO{stdin: stdin, stdout: stdout, stderr: stderr}
	if err := sio.prepare(p, tty); err != nil {
		return -1, fmt.Errorf("exec in %s: %w", id, err)
	}
	defer sio.close()
	if err := ctr.Run(p); err != nil {
		return -1, fmt.Errorf("exec in %s: %w", id, err)
	}
	if err := sio.started(); err != nil {
		_ = p.Signal(unix.SIGKILL)
		_, _ = p.Wait()
		return -1, fmt.Errorf("exec in %s: %w", id, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = p.Signal(unix.SIGKILL) })
	defer stop()
	ps, err := p.Wait()
	if ps == nil {
		return -1, fmt.Errorf("exec in %s: wait: %w", id, err)
	}
	sio.finish()
	if err := ctx.Err(); err != nil {
		return exitCode(ps), fmt.Errorf("exec in %s: %w", id, err)
	}
	r.log.Debug("exec finished", "container_id", id, "exit_code", exitCode(ps))
	return exitCode(ps), nil
}

func notFound(err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return ErrNotFound
	}
	return err
}

// execIO connects an exec'd process to the caller's streams. stdin goes through a
// pipe this code owns: os/exec would otherwise wait for a Reader that never ends.
type execIO struct {
	stdin          io.Reader
	stdout, stderr io.Writer

	childEnds []*os.File // what the process holds once started: closed then
	consoleR  *os.File   // our end of the console socket (tty)
	pty       *os.File   // the terminal's master, once received
	copied    chan struct{}
}

func (x *execIO) prepare(p *libcontainer.Process, tty bool) error {
	if tty {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("console socket: %w", err)
		}
		x.consoleR = os.NewFile(uintptr(fds[0]), "console")
		p.ConsoleSocket = os.NewFile(uintptr(fds[1]), "console")
		x.childEnds = append(x.childEnds, p.ConsoleSocket)
		return nil
	}
	p.Stdout, p.Stderr = x.stdout, x.stderr
	if x.stdin != nil {
		rd, wr, err := os.Pipe()
		if err != nil {
			return fmt.Errorf("stdin pipe: %w", err)
		}
		p.Stdin = rd
		x.childEnds = append(x.childEnds, rd)
		// The copier ends when the caller's stdin does; it closes our end then.
		go func() {
			_, _ = io.Copy(wr, x.stdin)
			wr.Close()
		}()
	}
	return nil
}

// started is called once the process runs: it drops the ends the process now holds
// and, with a terminal, receives its master and starts copying.
func (x *execIO) started() error {
	for _, f := range x.childEnds {
		f.Close()
	}
	x.childEnds = nil
	if x.consoleR == nil {
		return nil
	}
	pty, err := recvFd(x.consoleR)
	if err != nil {
		return fmt.Errorf("receive terminal: %w", err)
	}
	x.pty = pty
	x.copied = make(chan struct{})
	if x.stdin != nil {
		go func() { _, _ = io.Copy(pty, x.stdin) }()
	}
	go func() {
		defer close(x.copied)
		if x.stdout != nil {
			_, _ = io.Copy(x.stdout, pty) // ends with EIO once the process has exited
		}
	}()
	return nil
}

// finish waits for the terminal's output to be copied.
func (x *execIO) finish() {
	if x.copied != nil {
		<-x.copied
	}
}

func (x *execIO) close() {
	for _, f := range append(x.childEnds, x.consoleR, x.pty) {
		if f != nil {
			f.Close()
		}
	}
}

// recvFd receives one file descriptor sent with SCM_RIGHTS over a unix socket.
func recvFd(sock *os.File) (*os.File, error) {
	name := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), name, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("recvmsg: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("parse control message: %w", errors.Join(err, errors.New("want one message")))
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return nil, fmt.Errorf("parse fds: %w", errors.Join(err, errors.New("want one fd")))
	}
	return os.NewFile(uintptr(fds[0]), string(name[:n])), nil
}
