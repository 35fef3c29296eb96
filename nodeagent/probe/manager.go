package probe

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corralpb "github.com/corral-dev/corral/proto"
)

// ErrClosed is returned by Add after Close.
var ErrClosed = errors.New("probe manager closed")

// Target is one running container to probe.
type Target struct {
	// PodUID is the pod's metadata.uid.
	PodUID string
	// Container is the container's spec: its name, probes and ports.
	Container *corralpb.Container
	// ContainerID names the running instance. Adding the same container
	// with another ID (it restarted) starts its probes over.
	ContainerID string
	// StartedAt is when the instance started; initial delays count from it.
	StartedAt time.Time
	// Env says how to reach the container.
	Env Env
}

// Report is a probe outcome worth the agent's attention: every failed or
// errored run (an Unhealthy event) and every change of a probe's value.
type Report struct {
	// PodUID, Container and ContainerID name the probed instance.
	PodUID, Container, ContainerID string
	// Kind is the probe's kind.
	Kind Kind
	// Outcome is what the state machine decided.
	Outcome Outcome
	// Output is the prober's output for this run.
	Output string
	// Message is kubelet's Unhealthy event message for a failed run
	// ("Liveness probe failed: HTTP probe failed with statuscode: 500") or
	// one that could not run ("Readiness probe errored: ..."); "" otherwise.
	Message string
	// Time is when the run started.
	Time time.Time
}

// Status is a probed container's state.
type Status struct {
	// ContainerID is the instance being probed.
	ContainerID string
	// Started: no startup probe, or it succeeded.
	Started bool
	// Ready: started, and no readiness probe or it reports Success.
	Ready bool
}

// Manager runs the probes of many containers, one goroutine per probe.
// Reports go to a callback, called from those goroutines (concurrently for
// different probes); it should return quickly. It may call Add, Remove,
// RemovePod and Status, but not Close, which waits for those goroutines.
type Manager struct {
	report  func(Report)
	wg      sync.WaitGroup
	mu      sync.Mutex
	closed  bool
	entries map[entryKey]*entry
}

type entryKey struct{ pod, container string }

// entry is one container's probes. mu guards set; wake[k-1] nudges the
// goroutine of kind k when its schedule may have changed.
type entry struct {
	id     string
	cancel context.CancelFunc
	mu     sync.Mutex
	set    *Set
	wake   [len(kinds)]chan struct{}
}

// NewManager returns a Manager that sends reports to report.
func NewManager(report func(Report)) *Manager {
	return &Manager{report: report, entries: map[entryKey]*entry{}}
}

// Add starts probing a container. Adding it again with the same
// ContainerID does nothing; with another one the old probes stop and new
// ones start from the initial state. A probe that cannot be built (an
// unknown port name, a gRPC probe) runs anyway and reports every period
// that it errored, as kubelet does.
func (m *Manager) Add(t Target) error {
	if t.PodUID == "" || t.Container.GetName() == "" {
		return fmt.Errorf("add probes: pod uid and container name are required")
	}
	key := entryKey{t.PodUID, t.Container.GetName()}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return fmt.Errorf("add probes of %s/%s: %w", t.PodUID, key.container, ErrClosed)
	}
	if old, ok := m.entries[key]; ok {
		if old.id == t.ContainerID {
			return nil
		}
		old.cancel()
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &entry{id: t.ContainerID, cancel: cancel, set: NewSet(t.Container, t.StartedAt)}
	var probers [len(kinds)]Prober
	for _, k := range kinds {
		spec := specOf(t.Container, k)
		if spec == nil {
			continue
		}
		p, err := New(spec, t.Container, t.Env)
		if err != nil {
			p = broken{err}
		}
		probers[k-1] = p
		e.wake[k-1] = make(chan struct{}, 1)
	}
	// Every wake channel exists before any goroutine may nudge another.
	for _, k := range kinds {
		if p := probers[k-1]; p != nil {
			m.wg.Add(1)
			go m.run(ctx, t, e, k, p)
		}
	}
	m.entries[key] = e
	return nil
}

// Remove stops probing a container. It does not wait: a report already on
// its way may still arrive; its ContainerID tells it apart.
func (m *Manager) Remove(podUID, container string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := entryKey{podUID, container}
	if e, ok := m.entries[key]; ok {
		e.cancel()
		delete(m.entries, key)
	}
}

// RemovePod stops probing every container of a pod.
func (m *Manager) RemovePod(podUID string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for key, e := range m.entries {
		if key.pod == podUID {
			e.cancel()
			delete(m.entries, key)
		}
	}
}

// Status returns a probed container's state; false if it is not probed.
func (m *Manager) Status(podUID, container string) (Status, bool) {
	m.mu.Lock()
	e, ok := m.entries[entryKey{podUID, container}]
	m.mu.Unlock()
	if !ok {
		return Status{}, false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return Status{ContainerID: e.id, Started: e.set.Started(), Ready: e.set.Ready()}, true
}

// Close stops every probe and waits for their goroutines to end.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	for key, e := range m.entries {
		e.cancel()
		delete(m.entries, key)
	}
	m.mu.Unlock()
	m.wg.Wait()
}

// run is the goroutine of one probe: sleep until the probe is due (or
// woken because the startup probe finished), run it with its timeout,
// step the state and report.
func (m *Manager) run(ctx context.Context, t Target, e *entry, k Kind, p Prober) {
	defer m.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	timeout := TimingOf(specOf(t.Container, k)).Timeout
	for {
		e.mu.Lock()
		next, scheduled := e.set.Next(k)
		e.mu.Unlock()
		var fire <-chan time.Time
		if scheduled {
			timer.Reset(time.Until(next))
			fire = timer.C
		}
		select {
		case <-ctx.Done():
			return
		case <-e.wake[k-1]:
			continue
		case <-fire:
		}
		now := time.Now()
		e.mu.Lock()
		due := e.set.Due(now, k)
		e.mu.Unlock()
		if !due {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, timeout)
		res, output := p.Probe(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		e.mu.Lock()
		out := e.set.Step(now, k, res)
		e.mu.Unlock()
		if r, ok := report(t, k, now, out, output); ok && ctx.Err() == nil {
			m.report(r)
		}
		if k == Startup && out.Changed {
			// After the report, so "started" arrives before what it unlocks.
			e.nudge(Liveness, Readiness)
		}
	}
}

// nudge wakes the goroutines of the given kinds without blocking.
func (e *entry) nudge(ks ...Kind) {
	for _, k := range ks {
		if ch := e.wake[k-1]; ch != nil {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
}

// report builds the Report of a step, if it deserves one.
func report(t Target, k Kind, now time.Time, out Outcome, output string) (Report, bool) {
	r := Report{
		PodUID: t.PodUID, Container: t.Container.GetName(), ContainerID: t.ContainerID,
		Kind: k, Outcome: out, Output: output, Time: now,
	}
	switch {
	case out.Ignored:
		return r, false
	case out.Result == Failure:
		r.Message = fmt.Sprintf("%s probe failed: %s", k, output)
	case out.Result == Unknown:
		r.Message = fmt.Sprintf("%s probe errored: %s", k, output)
	case !out.Changed:
		return r, false
	}
	return r, true
}
