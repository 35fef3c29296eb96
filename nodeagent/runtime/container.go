package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moby/sys/devices"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/corral-dev/corral/nodeagent/runtime/containerinit"
)

// CreateContainer creates container c in sandbox sb and returns its ID,
// "<podUID>-<name>-<attempt>". Like `runc create`, it spawns the container's
// bootstrap, which sets up namespaces, mounts and cgroups and then waits:
// StartContainer lets it exec the container's command. On error nothing is left.
func (r *Runtime) CreateContainer(ctx context.Context, sb *Sandbox, c *ContainerConfig) (string, error) {
	if err := validateContainer(sb, c); err != nil {
		return "", err
	}
	id := ContainerID(c.PodUID, c.Name, c.Attempt)
	if !validName(id) {
		return "", fmt.Errorf("create container %s: %w", id, ErrInvalid)
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("create container %s: %w", id, err)
	}
	start := time.Now()
	spec, err := Spec(sb, &sb.Config, c, CgroupPath(r.cfg.CgroupParent, c.PodUID, c.Name, c.Attempt), r.cfg.InitBinary)
	if err != nil {
		return "", fmt.Errorf("create container %s: %w", id, err)
	}
	if dropped := r.host.fit(spec.Process); len(dropped) > 0 {
		r.log.Debug("container gets less than its spec: the agent lacks it", "container_id", id, "dropped", dropped)
	}
	config, err := libcontainerConfig(id, spec, c.Privileged)
	if err != nil {
		return "", fmt.Errorf("create container %s: %w", id, err)
	}
	m := &containerMeta{
		ID: id, PodUID: c.PodUID, Name: c.Name, Attempt: c.Attempt, Image: c.Image, ImageID: c.ImageID,
		LogDir: r.attemptDir(c.PodUID, c.Name, c.Attempt), CreatedAt: time.Now().UTC(),
		Process: spec.Process, UsesInit: r.cfg.InitBinary != "",
	}
	// The metadata first: a crash from here on leaves a container ListContainers reports.
	if err := r.createMeta(m); err != nil {
		return "", fmt.Errorf("create container %s: %w", id, err)
	}
	if err := r.bootstrap(m, config, c.User); err != nil {
		if rerr := r.remove(id); rerr != nil {
			err = errors.Join(err, fmt.Errorf("clean up: %w", rerr))
		}
		return "", fmt.Errorf("create container %s: %w", id, err)
	}
	r.log.Info("container created", "container_id", id, "pod_uid", c.PodUID, "container", c.Name,
		"attempt", c.Attempt, "duration", time.Since(start))
	return id, nil
}

func validateContainer(sb *Sandbox, c *ContainerConfig) error {
	switch {
	case sb == nil || c == nil:
		return fmt.Errorf("create container: sandbox and config are required: %w", ErrInvalid)
	case !validName(c.PodUID) || c.PodUID != sb.PodUID:
		return fmt.Errorf("create container: pod UID %q (sandbox %q): %w", c.PodUID, sb.PodUID, ErrInvalid)
	case !validName(c.Name) || c.Attempt < 0:
		return fmt.Errorf("create container: name %q attempt %d: %w", c.Name, c.Attempt, ErrInvalid)
	}
	return nil
}

// libcontainerConfig converts spec. The device cgroup gets exactly the spec's rules:
// specconv appends runc's own allow-list (mknod of any device, /dev/net/tun), which
// corral does not want. Privileged containers get every host device node.
func libcontainerConfig(id string, spec *specs.Spec, privileged bool) (*configs.Config, error) {
	config, err := specconv.CreateLibcontainerConfig(&specconv.CreateOpts{
		CgroupName: id, UseSystemdCgroup: false, Spec: spec,
	})
	if err != nil {
		return nil, fmt.Errorf("convert spec: %w", err)
	}
	n := len(spec.Linux.Resources.Devices)
	if len(config.Cgroups.Resources.Devices) < n {
		return nil, fmt.Errorf("convert spec: %d device rules, want at least %d", len(config.Cgroups.Resources.Devices), n)
	}
	config.Cgroups.Resources.Devices = config.Cgroups.Resources.Devices[:n]
	if privileged {
		host, err := devices.HostDevices()
		if err != nil {
			return nil, fmt.Errorf("list host devices: %w", err)
		}
		have := map[string]bool{}
		for _, d := range config.Devices {
			have[d.Path] = true
		}
		for _, d := range host {
			if !have[d.Path] {
				config.Devices = append(config.Devices, d)
			}
		}
	}
	return config, nil
}

// prepareAttemptDir creates the attempt directory, owned by the container's user: the
// container init runs as that user and writes the logs and exit.json there. A stale
// exit.json (the same attempt created again after a removal) would be mistaken for
// this container's exit.
func prepareAttemptDir(dir string, u *User) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create attempt dir: %w", err)
	}
	if u != nil {
		if err := os.Chown(dir, int(u.UID), int(u.GID)); err != nil {
			return fmt.Errorf("give attempt dir to %d:%d: %w", u.UID, u.GID, err)
		}
	}
	if err := os.Remove(filepath.Join(dir, containerinit.ExitFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale exit record: %w", err)
	}
	return nil
}

// bootstrap prepares the attempt directory, creates the libcontainer container and
// starts its bootstrap up to the point where it waits for StartContainer. The spawning
// Runtime reaps it.
func (r *Runtime) bootstrap(m *containerMeta, config *configs.Config, u *User) error {
	id := m.ID
	if err := prepareAttemptDir(m.LogDir, u); err != nil {
		return err
	}
	ctr, err := libcontainer.Create(r.containersRoot(), id, config)
	if err != nil {
		return fmt.Errorf("libcontainer create: %w", err)
	}
	p, err := initProcess(m)
	if err != nil {
		return err
	}
	if m.UsesInit {
		dir, err := os.OpenFile(m.LogDir, os.O_RDONLY|unix.O_DIRECTORY, 0)
		if err != nil {
			return fmt.Errorf("open attempt dir: %w", err)
		}
		defer dir.Close()
		p.ExtraFiles = []*os.File{dir} // fd 3 in the container
	}
	if err := ctr.Start(p); err != nil {
		return fmt.Errorf("start container init: %w", err)
	}
	done := make(chan struct{})
	r.reapMu.Lock()
	r.reapers[id] = done
	r.reapMu.Unlock()
	go r.reap(id, p, done)
	return nil
}

// initProcess is the container's first process; stdio is /dev/null (the init writes
// the logs).
func initProcess(m *containerMeta) (*libcontainer.Process, error) {
	rl, err := rlimits(m.Process.Rlimits)
	if err != nil {
		return nil, err
	}
	u := m.Process.User
	gids := make([]int, len(u.AdditionalGids))
	for i, g := range u.AdditionalGids {
		gids[i] = int(g)
	}
	return &libcontainer.Process{
		Args: m.Process.Args, Env: m.Process.Env, Cwd: m.Process.Cwd,
		UID: int(u.UID), GID: int(u.GID), AdditionalGroups: gids,
		Rlimits: rl, Init: true,
	}, nil
}

// reap waits for a process this Runtime spawned, so it does not stay a zombie, and
// records the init's exit code as a fallback for a missing exit.json.
func (r *Runtime) reap(id string, p *libcontainer.Process, done chan struct{}) {
	defer func() {
		r.reapMu.Lock()
		delete(r.reapers, id)
		r.reapMu.Unlock()
		close(done)
	}()
	ps, err := p.Wait()
	if ps == nil {
		r.log.Debug("wait for container init", "container_id", id, "err", err)
		return
	}
	code := exitCode(ps)
	if err := r.updateMeta(id, func(m *containerMeta) { m.InitExit = &code }); err != nil && !errors.Is(err, os.ErrNotExist) {
		r.log.Warn("record container init exit", "container_id", id, "err", err)
	}
	r.log.Debug("container init exited", "container_id", id, "exit_code", code)
}

// exitCode is a process's exit code, 128+signal when a signal killed it.
func exitCode(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// waitReaped waits a little for this Runtime's reaper of id, if any, to record the
// init's exit code: the container can look stopped before its reaper has run.
func (r *Runtime) waitReaped(id string) {
	r.reapMu.Lock()
	done, ok := r.reapers[id]
	r.reapMu.Unlock()
	if !ok {
		return
	}
	select {
	case <-done:
	case <-time.After(2 * time.Second):
	}
}

// StartContainer lets a created container exec its command. It works on containers
// created by another Runtime value (an agent restarted between create and start).
func (r *Runtime) StartContainer(ctx context.Context, id string) error {
	ctr, err := r.load(id)
	if err != nil {
		return fmt.Errorf("start container %s: %w", id, err)
	}
	status, err := ctr.Status()
	if err != nil {
		return fmt.Errorf("start container %s: %w", id, err)
	}
	if status != libcontainer.Created {
		return fmt.Errorf("start container %s: it is %s: %w", id, status, ErrAlreadyStarted)
	}
	startedAt := time.Now().UTC()
	if err := ctr.Exec(); err != nil {
		if uerr := r.updateMeta(id, func(m *containerMeta) { m.StartError = err.Error() }); uerr != nil {
			err = errors.Join(err, uerr)
		}
		return fmt.Errorf("start container %s: %w", id, err)
	}
	if err := r.updateMeta(id, func(m *containerMeta) { m.StartedAt = startedAt }); err != nil {
		return fmt.Errorf("start container %s: %w", id, err)
	}
	if st, err := ctr.State(); err == nil {
		if err := waitReady(st.InitProcessPid, r.usesInit(id), 5*time.Second); err != nil {
			r.log.Warn("container init not seen ready", "container_id", id, "err", err)
		}
	}
	r.log.Info("container started", "container_id", id, "duration", time.Since(startedAt))
	return nil
}

// waitReady waits until the container's PID 1 has replaced libcontainer's bootstrap
// and, for the container init, takes SIGTERM (blocked for its signalfd, or caught).
// Before that a SIGTERM would be lost: the kernel drops signals a PID namespace's init
// leaves at their default action, and the bootstrap would die of it with exit code 2.
func waitReady(pid int, usesInit bool, timeout time.Duration) error {
	const sigterm = 1 << (unix.SIGTERM - 1)
	deadline := time.Now().Add(timeout)
	for delay := 200 * time.Microsecond; ; delay = min(2*delay, 5*time.Millisecond) {
		st, err := readProcStatus(pid)
		if err != nil || st.state == "Z" {
			return nil // already ended: nothing to wait for
		}
		if st.name != "runc:[2:INIT]" && (!usesInit || (st.sigBlk|st.sigCgt)&sigterm != 0) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pid %d is %q after %v", pid, st.name, timeout)
		}
		time.Sleep(delay)
	}
}

type procStatus struct {
	name, state    string
	sigBlk, sigCgt uint64
}

func readProcStatus(pid int) (procStatus, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procStatus{}, err
	}
	var st procStatus
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		v = strings.TrimSpace(v)
		switch k {
		case "Name":
			st.name = v
		case "State":
			st.state, _, _ = strings.Cut(v, " ")
		case "SigBlk":
			st.sigBlk, _ = strconv.ParseUint(v, 16, 64)
		case "SigCgt":
			st.sigCgt, _ = strconv.ParseUint(v, 16, 64)
		}
	}
	return st, nil
}

// load opens libcontainer's view of container id; ErrNotFound when it has no state.
func (r *Runtime) load(id string) (*libcontainer.Container, error) {
	if !validName(id) {
		return nil, fmt.Errorf("container ID %q: %w", id, ErrInvalid)
	}
	ctr, err := libcontainer.Load(r.containersRoot(), id)
	if errors.Is(err, libcontainer.ErrNotExist) || errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("container %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("load container %s: %w", id, err)
	}
	return ctr, nil
}

// rlimits converts the spec's rlimits for libcontainer.
func rlimits(in []specs.POSIXRlimit) ([]configs.Rlimit, error) {
	types := map[string]int{
		"RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC,
		"RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK,
		"RLIMIT_STACK": unix.RLIMIT_STACK,
	}
	out := make([]configs.Rlimit, 0, len(in))
	for _, l := range in {
		t, ok := types[l.Type]
		if !ok {
			return nil, fmt.Errorf("rlimit %s: %w", l.Type, ErrInvalid)
		}
		out = append(out, configs.Rlimit{Type: t, Soft: l.Soft, Hard: l.Hard})
	}
	return out, nil
}
