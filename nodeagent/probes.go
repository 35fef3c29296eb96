package nodeagent

import (
	"bytes"
	"context"
	"sync"
	"time"

	"github.com/corral-dev/corral/api"
	"github.com/corral-dev/corral/nodeagent/probe"
	corralpb "github.com/corral-dev/corral/proto"
)

// ProbeRunner adapts nodeagent/probe's Manager to the pod workers: it runs
// each started container's probes, records Unhealthy events, remembers a
// liveness or startup failure until the worker restarts the container, and
// wakes the pod's worker when a verdict changes.
type ProbeRunner struct {
	mgr    *probe.Manager
	rt     ContainerRuntime
	events EventRecorder

	mu      sync.Mutex
	targets map[string]*probeTarget // by container id
	onWake  func(podUID string)
}

type probeTarget struct {
	pod    *corralpb.Pod
	name   string
	failed bool
	why    string
}

var _ Probes = (*ProbeRunner)(nil)

// NewProbeRunner returns a runner whose exec probes run through rt.
func NewProbeRunner(rt ContainerRuntime, events EventRecorder) *ProbeRunner {
	r := &ProbeRunner{rt: rt, events: events, targets: map[string]*probeTarget{}}
	r.mgr = probe.NewManager(r.report)
	return r
}

// OnChange sets the function called with a pod's uid when one of its
// containers' probe verdicts changes.
func (r *ProbeRunner) OnChange(fn func(podUID string)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.onWake = fn
}

// Close stops every probe.
func (r *ProbeRunner) Close() { r.mgr.Close() }

// Watch implements Probes.
func (r *ProbeRunner) Watch(pod *corralpb.Pod, c *corralpb.Container, containerID, podIP, netns string) {
	env := probe.Env{PodIP: podIP, Exec: &containerExec{rt: r.rt, id: containerID}}
	if netns != "" {
		env.Dialer = &probe.NetNSDialer{Path: netns}
	}
	r.mu.Lock()
	r.targets[containerID] = &probeTarget{pod: pod, name: c.GetName()}
	r.mu.Unlock()
	if err := r.mgr.Add(probe.Target{PodUID: pod.GetMetadata().GetUid(), Container: c, ContainerID: containerID,
		StartedAt: time.Now(), Env: env}); err != nil && r.events != nil {
		r.events.Event(api.Wrap(pod), "Warning", "Unhealthy", err.Error())
	}
}

// Forget implements Probes.
func (r *ProbeRunner) Forget(containerID string) {
	r.mu.Lock()
	t, ok := r.targets[containerID]
	delete(r.targets, containerID)
	r.mu.Unlock()
	if !ok {
		return
	}
	uid := t.pod.GetMetadata().GetUid()
	if st, ok := r.mgr.Status(uid, t.name); ok && st.ContainerID == containerID {
		r.mgr.Remove(uid, t.name)
	}
}

func (r *ProbeRunner) status(containerID string) (probe.Status, bool) {
	r.mu.Lock()
	t, ok := r.targets[containerID]
	r.mu.Unlock()
	if !ok {
		return probe.Status{}, false
	}
	st, ok := r.mgr.Status(t.pod.GetMetadata().GetUid(), t.name)
	if !ok || st.ContainerID != containerID {
		return probe.Status{}, false
	}
	return st, true
}

// Ready implements Probes: true for a container without probes.
func (r *ProbeRunner) Ready(containerID string) bool {
	st, ok := r.status(containerID)
	return !ok || st.Ready
}

// Started implements Probes: true for a container without probes.
func (r *ProbeRunner) Started(containerID string) bool {
	st, ok := r.status(containerID)
	return !ok || st.Started
}

// Failed implements Probes.
func (r *ProbeRunner) Failed(containerID string) (bool, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t, ok := r.targets[containerID]; ok && t.failed {
		return true, t.why
	}
	return false, ""
}

func (r *ProbeRunner) report(rep probe.Report) {
	r.mu.Lock()
	t, ok := r.targets[rep.ContainerID]
	var wake func(string)
	if ok {
		if rep.Outcome.Restart {
			t.failed = true
			t.why = "failed " + kindName(rep.Kind) + " probe"
		}
		if rep.Outcome.Restart || rep.Outcome.Changed {
			wake = r.onWake
		}
	}
	r.mu.Unlock()
	if !ok {
		return
	}
	if rep.Message != "" && r.events != nil {
		r.events.Event(api.Wrap(t.pod), "Warning", "Unhealthy", rep.Message)
	}
	if wake != nil {
		wake(rep.PodUID)
	}
}

func kindName(k probe.Kind) string {
	switch k {
	case probe.Liveness:
		return "liveness"
	case probe.Startup:
		return "startup"
	default:
		return "readiness"
	}
}

// containerExec runs exec probes in one container.
type containerExec struct {
	rt ContainerRuntime
	id string
}

func (e *containerExec) Exec(ctx context.Context, cmd []string) (int, []byte, error) {
	var out bytes.Buffer
	code, err := e.rt.Exec(ctx, e.id, cmd, nil, &out, &out, false)
	return code, out.Bytes(), err
}
