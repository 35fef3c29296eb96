package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"
)

// initGrace is how long the container init gets, once its child was killed, to write
// exit.json and exit before it is killed too.
const initGrace = 2 * time.Second

// StopContainer stops a container: SIGTERM to its init (which forwards it to the
// command), up to grace for it to end, then SIGKILL; it returns once the container's
// init has ended. After the grace period the command is killed first so that the init
// still records its exit. Stopping a stopped container is not an error.
func (r *Runtime) StopContainer(ctx context.Context, id string, grace time.Duration) error {
	ctr, err := r.load(id)
	if errors.Is(err, ErrNotFound) {
		if _, merr := r.loadMeta(id); merr == nil {
			return nil // never bootstrapped: nothing runs
		}
	}
	if err != nil {
		return fmt.Errorf("stop container %s: %w", id, err)
	}
	start := time.Now()
	killed, err := r.stop(ctx, ctr, grace)
	if err != nil {
		return fmt.Errorf("stop container %s: %w", id, err)
	}
	r.log.Info("container stopped", "container_id", id, "killed", killed, "duration", time.Since(start))
	return nil
}

// stop signals and waits; it reports whether SIGKILL was needed.
func (r *Runtime) stop(ctx context.Context, ctr *libcontainer.Container, grace time.Duration) (killed bool, err error) {
	st, err := ctr.State()
	if err != nil {
		return false, err
	}
	status, err := ctr.Status()
	if err != nil || status == libcontainer.Stopped {
		return false, err
	}
	pidfd, err := unix.PidfdOpen(st.InitProcessPid, 0)
	if errors.Is(err, unix.ESRCH) {
		return false, nil // ended meanwhile
	}
	if err != nil {
		return false, fmt.Errorf("pidfd of init %d: %w", st.InitProcessPid, err)
	}
	defer unix.Close(pidfd)
	// The pidfd could name a reused PID if the init ended before it was opened.
	if status, err = ctr.Status(); err != nil || status == libcontainer.Stopped {
		return false, err
	}
	if grace > 0 {
		if err := signal(ctr, unix.SIGTERM); err != nil {
			return false, err
		}
		if ended, err := waitPidfd(ctx, pidfd, grace); ended || err != nil {
			return false, err
		}
	}
	if status == libcontainer.Running && r.usesInit(ctr.ID()) {
		// Kill the command, not the init, so that the init writes exit.json.
		if err := killAllBut(ctr, st.InitProcessPid); err != nil {
			return true, err
		}
		if ended, err := waitPidfd(ctx, pidfd, initGrace); ended || err != nil {
			return true, err
		}
	}
	if err := signal(ctr, unix.SIGKILL); err != nil {
		return true, err
	}
	_, err = waitPidfd(ctx, pidfd, -1)
	return true, err
}

func (r *Runtime) usesInit(id string) bool {
	m, err := r.loadMeta(id)
	return err == nil && m.UsesInit
}

func signal(ctr *libcontainer.Container, sig unix.Signal) error {
	if err := ctr.Signal(sig); err != nil && !errors.Is(err, libcontainer.ErrNotRunning) {
		return fmt.Errorf("send %s: %w", unix.SignalName(sig), err)
	}
	return nil
}

// killAllBut sends SIGKILL to every process of the container except its init.
func killAllBut(ctr *libcontainer.Container, initPid int) error {
	pids, err := ctr.Processes()
	if err != nil {
		return fmt.Errorf("list container processes: %w", err)
	}
	for _, pid := range pids {
		if pid == initPid {
			continue
		}
		if err := unix.Kill(pid, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("kill %d: %w", pid, err)
		}
	}
	return nil
}

// waitPidfd waits until the process behind pidfd has ended (true), timeout has passed
// (false; a negative timeout waits forever) or ctx is done (its error).
func waitPidfd(ctx context.Context, pidfd int, timeout time.Duration) (bool, error) {
	deadline := time.Now().Add(timeout)
	for {
		step := 100 * time.Millisecond
		if left := time.Until(deadline); timeout >= 0 && left < step {
			step = max(left, 0)
		}
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(step.Milliseconds()))
		if err != nil && !errors.Is(err, unix.EINTR) {
			return false, fmt.Errorf("poll pidfd: %w", err)
		}
		if n > 0 {
			return true, nil
		}
		if err := ctx.Err(); err != nil {
			return false, err
		}
		if timeout >= 0 && !time.Now().Before(deadline) {
			return false, nil
		}
	}
}

// RemoveContainer removes a container: it kills it if it still runs, records its final
// status, destroys libcontainer's state, removes its cgroups (and the pod's cgroup
// directory once empty) and its metadata. The attempt directory (logs, exit.json) is
// kept: it belongs to the pod's directory, which the agent removes with the pod.
// Removing a container that does not exist is not an error.
func (r *Runtime) RemoveContainer(ctx context.Context, id string) error {
	if !validName(id) {
		return fmt.Errorf("remove container: ID %q: %w", id, ErrInvalid)
	}
	if ctr, err := r.load(id); err == nil {
		if _, err := r.stop(ctx, ctr, 0); err != nil {
			return fmt.Errorf("remove container %s: %w", id, err)
		}
		if st, err := r.status(id); err == nil {
			r.log.Info("container removed", "container_id", id, "exit_code", st.ExitCode, "reason", st.Reason)
		}
	}
	if err := r.remove(id); err != nil {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	return nil
}

// remove deletes a stopped (or never bootstrapped) container's state, cgroups and
// metadata, whichever exist.
func (r *Runtime) remove(id string) error {
	if !validName(id) { // never let an empty ID name the state root
		return fmt.Errorf("container ID %q: %w", id, ErrInvalid)
	}
	paths := map[string]string{}
	if ctr, err := libcontainer.Load(r.containersRoot(), id); err == nil {
		if st, err := ctr.State(); err == nil {
			for k, p := range st.CgroupPaths {
				paths[k] = p
			}
		}
		if err := ctr.Destroy(); err != nil {
			return fmt.Errorf("destroy: %w", err)
		}
	}
	// A creation that failed half-way leaves a state directory without state.json.
	if err := os.RemoveAll(filepath.Join(r.containersRoot(), id)); err != nil {
		return fmt.Errorf("remove state: %w", err)
	}
	if m, err := r.loadMeta(id); err == nil {
		leaf := CgroupPath(r.cfg.CgroupParent, m.PodUID, m.Name, m.Attempt)
		if mounts, err := cgroupMounts(); err == nil {
			for _, mnt := range mounts {
				paths[mnt] = filepath.Join(mnt, leaf)
			}
		}
	}
	if err := removeContainerCgroups(paths); err != nil {
		return err
	}
	return r.removeMeta(id)
}
