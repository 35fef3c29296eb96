package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/runc/libcontainer"

	"github.com/corral-dev/corral/nodeagent/runtime/containerinit"
)

// ContainerStatus reports one container, from disk: it works the same in a Runtime
// that did not create the container (re-adoption after an agent restart). The first
// time it sees the container ended, it records the final status (exit code, OOM kill)
// in the runtime's metadata, while the container's cgroup still exists.
func (r *Runtime) ContainerStatus(ctx context.Context, id string) (*ContainerStatus, error) {
	if !validName(id) {
		return nil, fmt.Errorf("container status: ID %q: %w", id, ErrInvalid)
	}
	st, err := r.status(id)
	if err != nil {
		return nil, fmt.Errorf("container status %s: %w", id, err)
	}
	return st, nil
}

// ListContainers reports every container in the state directory, sorted by ID,
// including leftovers of interrupted creations and removals (StateUnknown, remove them).
func (r *Runtime) ListContainers(ctx context.Context) ([]*ContainerStatus, error) {
	ids, err := r.containerIDs()
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	out := make([]*ContainerStatus, 0, len(ids))
	for _, id := range ids {
		st, err := r.status(id)
		if errors.Is(err, ErrNotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			r.log.Warn("container status", "container_id", id, "err", err)
			st = &ContainerStatus{ID: id, State: StateUnknown, Message: err.Error()}
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (r *Runtime) status(id string) (*ContainerStatus, error) {
	m, merr := r.loadMeta(id)
	if merr != nil && !errors.Is(merr, os.ErrNotExist) {
		return nil, merr
	}
	ctr, lerr := r.load(id)
	if lerr != nil && !errors.Is(lerr, ErrNotFound) {
		return nil, lerr
	}
	if m == nil && ctr == nil {
		return nil, fmt.Errorf("container %s: %w", id, ErrNotFound)
	}
	s := &ContainerStatus{ID: id, State: StateUnknown}
	if m != nil {
		s.PodUID, s.Name, s.Attempt = m.PodUID, m.Name, m.Attempt
		s.Image, s.ImageID, s.LogDir = m.Image, m.ImageID, m.LogDir
		s.CreatedAt, s.StartedAt = m.CreatedAt, m.StartedAt
	}
	if ctr == nil { // never bootstrapped, or half removed
		if m.Final != nil {
			applyFinal(s, m.Final)
		}
		return s, nil
	}
	status, err := ctr.Status()
	if err != nil {
		return nil, fmt.Errorf("libcontainer status: %w", err)
	}
	state, err := ctr.State()
	if err != nil {
		return nil, fmt.Errorf("libcontainer state: %w", err)
	}
	switch {
	case status == libcontainer.Created:
		s.State, s.Pid = StateCreated, state.InitProcessPid
	case status != libcontainer.Stopped:
		s.State, s.Pid = StateRunning, state.InitProcessPid
		if s.StartedAt.IsZero() { // the agent died between exec and recording it
			s.StartedAt = state.Created
		}
	case m == nil:
		s.State = StateExited
	default:
		f := m.Final
		if f == nil {
			f = r.finalize(id, state.CgroupPaths)
		}
		applyFinal(s, f)
	}
	return s, nil
}

func applyFinal(s *ContainerStatus, f *finalStatus) {
	s.State = StateExited
	s.ExitCode, s.Reason, s.Message = f.ExitCode, f.Reason, f.Message
	s.FinishedAt = f.FinishedAt
	if !f.StartedAt.IsZero() {
		s.StartedAt = f.StartedAt
	}
}

// finalize works out an ended container's final status and records it.
func (r *Runtime) finalize(id string, cgroupPaths map[string]string) *finalStatus {
	r.waitReaped(id)
	var f *finalStatus
	err := r.updateMeta(id, func(m *containerMeta) {
		if m.Final == nil {
			m.Final = finalStatusOf(m, oomKills(cgroupPaths), time.Now().UTC())
		}
		f = m.Final
	})
	if err != nil {
		r.log.Warn("record final container status", "container_id", id, "err", err)
	}
	if f == nil {
		m, _ := r.loadMeta(id)
		if m == nil {
			return &finalStatus{ExitCode: 255, Reason: ReasonError, Message: "container metadata vanished"}
		}
		f = finalStatusOf(m, oomKills(cgroupPaths), time.Now().UTC())
	}
	return f
}

// finalStatusOf derives the final status from, in order: a start error, the init's
// exit.json, the exit code seen by the Runtime that spawned the init, and nothing.
func finalStatusOf(m *containerMeta, oomKills int, now time.Time) *finalStatus {
	f := &finalStatus{StartedAt: m.StartedAt, FinishedAt: now}
	var e *containerinit.Exit
	if m.UsesInit {
		e, _ = containerinit.ReadExit(m.LogDir)
	}
	switch {
	case m.StartError != "":
		f.ExitCode, f.Reason, f.Message = 128, ReasonStartError, m.StartError
		return f
	case e != nil:
		f.ExitCode, f.Reason, f.Message = e.ExitCode, e.Reason, e.Message
		if e.Signal > 0 && e.ExitCode == 0 {
			f.ExitCode = 128 + e.Signal
		}
		if !e.StartedAt.IsZero() {
			f.StartedAt = e.StartedAt
		}
		if !e.FinishedAt.IsZero() {
			f.FinishedAt = e.FinishedAt
		}
	case m.InitExit != nil:
		f.ExitCode = *m.InitExit
		if m.UsesInit {
			f.Message = "the container init ended without writing exit.json"
		}
	default:
		f.ExitCode = 255
		f.Message = "exit status unknown: the container ended unwatched and left no exit record"
	}
	if f.Reason == "" || f.Reason == ReasonCompleted || f.Reason == ReasonError {
		f.Reason = ReasonCompleted
		if f.ExitCode != 0 {
			f.Reason = ReasonError
		}
	}
	if oomKills > 0 && f.ExitCode != 0 && f.Reason != ReasonStartError {
		f.Reason = ReasonOOMKilled
		if f.ExitCode == 255 {
			f.ExitCode = 137
		}
	}
	return f
}

// ListPodContainers reports the containers of one pod, as ListContainers
// does, reading only their state: container IDs start with the pod's UID.
func (r *Runtime) ListPodContainers(ctx context.Context, podUID string) ([]*ContainerStatus, error) {
	ids, err := r.containerIDs()
	if err != nil {
		return nil, fmt.Errorf("list containers of pod %s: %w", podUID, err)
	}
	var out []*ContainerStatus
	for _, id := range ids {
		if !strings.HasPrefix(id, podUID+"-") {
			continue
		}
		st, err := r.status(id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			st = &ContainerStatus{ID: id, PodUID: podUID, State: StateUnknown, Message: err.Error()}
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}
