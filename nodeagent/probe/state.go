package probe

import (
	"time"

	corralpb "github.com/corral-dev/corral/proto"
)

// Kind is a probe's type.
type Kind int

// The probe kinds.
const (
	Liveness Kind = iota + 1
	Readiness
	Startup
)

// kinds lists every Kind, in the order Set keeps them.
var kinds = [...]Kind{Liveness, Readiness, Startup}

// String returns kubelet's name for the kind, as events print it.
func (k Kind) String() string {
	switch k {
	case Liveness:
		return "Liveness"
	case Readiness:
		return "Readiness"
	case Startup:
		return "Startup"
	default:
		return "Unknown"
	}
}

// Result is the result of one probe run, or a probe's reported value.
type Result int

// The results. Unknown is the result of a probe that could not run (it
// changes nothing) and the initial value of a startup probe.
const (
	Unknown Result = iota
	Success
	Failure
)

// String returns the result's name.
func (r Result) String() string {
	switch r {
	case Success:
		return "Success"
	case Failure:
		return "Failure"
	default:
		return "Unknown"
	}
}

// Kubernetes' probe defaults.
const (
	defaultTimeout          = time.Second
	defaultPeriod           = 10 * time.Second
	defaultSuccessThreshold = 1
	defaultFailureThreshold = 3
)

// Timing is a probe's schedule and thresholds.
type Timing struct {
	InitialDelay     time.Duration
	Period           time.Duration
	Timeout          time.Duration
	SuccessThreshold int
	FailureThreshold int
}

// TimingOf returns p's timing, with Kubernetes' defaults for fields left
// zero: timeout 1 s, period 10 s, success threshold 1, failure threshold 3.
func TimingOf(p *corralpb.Probe) Timing {
	t := Timing{
		InitialDelay:     time.Duration(p.GetInitialDelaySeconds()) * time.Second,
		Period:           time.Duration(p.GetPeriodSeconds()) * time.Second,
		Timeout:          time.Duration(p.GetTimeoutSeconds()) * time.Second,
		SuccessThreshold: int(p.GetSuccessThreshold()),
		FailureThreshold: int(p.GetFailureThreshold()),
	}
	if t.InitialDelay < 0 {
		t.InitialDelay = 0
	}
	if t.Period <= 0 {
		t.Period = defaultPeriod
	}
	if t.Timeout <= 0 {
		t.Timeout = defaultTimeout
	}
	if t.SuccessThreshold <= 0 {
		t.SuccessThreshold = defaultSuccessThreshold
	}
	if t.FailureThreshold <= 0 {
		t.FailureThreshold = defaultFailureThreshold
	}
	return t
}

// Outcome is what one Step decided.
type Outcome struct {
	// Kind is the probe's kind.
	Kind Kind
	// Result is the result of this run.
	Result Result
	// Value is the probe's reported value after the step: for readiness
	// Success means ready, for startup started, for liveness healthy.
	Value Result
	// Changed is set when Value flipped on this step.
	Changed bool
	// Restart asks for the container to be restarted: a liveness or
	// startup probe reached its failure threshold.
	Restart bool
	// Ignored is set when no result was expected (the probe is on hold
	// after a restart signal, finished, or gated by the startup probe);
	// nothing changed.
	Ignored bool
}

// State is one probe's state machine for one container, kubelet's
// semantics. The reported value starts at the kind's initial value
// (Liveness: Success, Readiness: Failure, Startup: Unknown) and moves only
// when a run of equal results reaches the threshold for it:
//
//	                 successThreshold successes in a row
//	          ┌──────────────────────────────────────────────┐
//	          │                                              ▼
//	   Failure / Unknown                                  Success
//	          ▲                                              │
//	          └──────────────────────────────────────────────┘
//	                 failureThreshold failures in a row
//
//	Liveness, Startup reaching Failure ──▶ Restart, then on hold (no runs)
//	Startup reaching Success          ──▶ finished (no more runs)
//	Reset (the container restarted)   ──▶ initial value, counts cleared
//
// Runs are due initialDelay after the container started and then every
// period after the previous run. Unknown results count for nothing.
type State struct {
	kind      Kind
	timing    Timing
	startedAt time.Time
	lastRun   time.Time
	ran       bool
	last      Result // result of the current run of equal results
	run       int    // length of that run
	value     Result
	onHold    bool
}

// NewState returns the state of a probe of a container started at
// startedAt.
func NewState(kind Kind, timing Timing, startedAt time.Time) *State {
	s := &State{kind: kind, timing: timing}
	s.Reset(startedAt)
	return s
}

// initialValue is kubelet's value before any result.
func initialValue(k Kind) Result {
	switch k {
	case Liveness:
		return Success
	case Readiness:
		return Failure
	default:
		return Unknown
	}
}

// Reset starts over for a new container (a restart) started at startedAt.
func (s *State) Reset(startedAt time.Time) {
	s.startedAt = startedAt
	s.lastRun, s.ran = time.Time{}, false
	s.last, s.run = Unknown, 0
	s.value = initialValue(s.kind)
	s.onHold = false
}

// Value returns the probe's reported value.
func (s *State) Value() Result { return s.value }

// Timing returns the probe's timing.
func (s *State) Timing() Timing { return s.timing }

// finished reports a probe that runs no more until Reset.
func (s *State) finished() bool {
	return s.onHold || (s.kind == Startup && s.value == Success)
}

// Next returns when the next run is due; false when none is until Reset.
func (s *State) Next() (time.Time, bool) {
	if s.finished() {
		return time.Time{}, false
	}
	next := s.startedAt.Add(s.timing.InitialDelay)
	if s.ran {
		if after := s.lastRun.Add(s.timing.Period); after.After(next) {
			next = after
		}
	}
	return next, true
}

// Due reports whether a run is due at now.
func (s *State) Due(now time.Time) bool {
	next, ok := s.Next()
	return ok && !now.Before(next)
}

// Step records the result of a run started at now.
func (s *State) Step(now time.Time, r Result) Outcome {
	out := Outcome{Kind: s.kind, Result: r, Value: s.value}
	if s.finished() {
		out.Ignored = true
		return out
	}
	s.lastRun, s.ran = now, true
	if r == Unknown {
		return out
	}
	if r == s.last {
		s.run++
	} else {
		s.last, s.run = r, 1
	}
	threshold := s.timing.SuccessThreshold
	if r == Failure {
		threshold = s.timing.FailureThreshold
	}
	if s.run < threshold {
		return out
	}
	out.Changed = s.value != r
	s.value = r
	out.Value = r
	if r == Failure && (s.kind == Liveness || s.kind == Startup) {
		out.Restart = true
		s.onHold = true
		s.run = 0
	}
	return out
}
