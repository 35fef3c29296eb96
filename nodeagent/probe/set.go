package probe

import (
	"time"

	corralpb "github.com/corral-dev/corral/proto"
)

// Set is the probes of one container. Until its startup probe (if any)
// succeeds, liveness and readiness probes do not run and the container is
// neither started nor ready. Pure: time is passed in.
type Set struct {
	states [len(kinds)]*State // indexed by Kind-1; nil when the container has no such probe
}

// NewSet returns the probe states of container c, started at startedAt.
func NewSet(c *corralpb.Container, startedAt time.Time) *Set {
	s := &Set{}
	for _, k := range kinds {
		if p := specOf(c, k); p != nil {
			s.states[k-1] = NewState(k, TimingOf(p), startedAt)
		}
	}
	return s
}

// specOf returns c's probe of kind k, or nil.
func specOf(c *corralpb.Container, k Kind) *corralpb.Probe {
	switch k {
	case Liveness:
		return c.GetLivenessProbe()
	case Readiness:
		return c.GetReadinessProbe()
	case Startup:
		return c.GetStartupProbe()
	default:
		return nil
	}
}

// State returns the state of the probe of kind k, or nil.
func (s *Set) State(k Kind) *State {
	if k < Liveness || k > Startup {
		return nil
	}
	return s.states[k-1]
}

// Reset starts every probe over for a new container started at startedAt.
func (s *Set) Reset(startedAt time.Time) {
	for _, st := range s.states {
		if st != nil {
			st.Reset(startedAt)
		}
	}
}

// Started reports whether the container has started: it has no startup
// probe, or that probe succeeded.
func (s *Set) Started() bool {
	st := s.State(Startup)
	return st == nil || st.Value() == Success
}

// Ready reports whether the container is ready: started, and its readiness
// probe (if any) reports Success.
func (s *Set) Ready() bool {
	if !s.Started() {
		return false
	}
	st := s.State(Readiness)
	return st == nil || st.Value() == Success
}

// gated reports a probe that must wait for the startup probe.
func (s *Set) gated(k Kind) bool { return k != Startup && !s.Started() }

// Next returns when the probe of kind k is next due; false when it has
// none, is gated by the startup probe, or has finished.
func (s *Set) Next(k Kind) (time.Time, bool) {
	st := s.State(k)
	if st == nil || s.gated(k) {
		return time.Time{}, false
	}
	return st.Next()
}

// Due reports whether the probe of kind k is due at now.
func (s *Set) Due(now time.Time, k Kind) bool {
	next, ok := s.Next(k)
	return ok && !now.Before(next)
}

// Step records the result of a run of the probe of kind k started at now.
// A result for a missing or gated probe is Ignored.
func (s *Set) Step(now time.Time, k Kind, r Result) Outcome {
	st := s.State(k)
	if st == nil || s.gated(k) {
		out := Outcome{Kind: k, Result: r, Ignored: true}
		if st != nil {
			out.Value = st.Value()
		}
		return out
	}
	return st.Step(now, r)
}
