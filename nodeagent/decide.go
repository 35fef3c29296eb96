package nodeagent

import (
	"time"

	"github.com/corral-dev/corral/nodeagent/runtime"
)

// step is what a pod worker does next for one container.
type step int

const (
	// stepNone: the container is as it should be.
	stepNone step = iota
	// stepStart: create and start the next attempt.
	stepStart
	// stepStartCreated: start an attempt that was created but never
	// started (the agent died in between).
	stepStartCreated
	// stepKill: stop the running attempt (failed liveness or startup probe);
	// the next step restarts it.
	stepKill
	// stepBackOff: the container must restart but its back-off runs until
	// the returned time (CrashLoopBackOff).
	stepBackOff
	// stepReplace: remove a half-made attempt and start a new one.
	stepReplace
)

// Crash-loop back-off as the kubelet does it: the first restart is
// immediate, then 10 s doubling up to 5 min, reset after 10 min of running.
const (
	backOffInitial = 10 * time.Second
	backOffMax     = 5 * time.Minute
	backOffReset   = 10 * time.Minute
)

// containerBackOff is one container's restart back-off.
type containerBackOff struct {
	delay time.Duration // 0: next restart is immediate
}

// shouldRestart applies the pod's restartPolicy to an exited container.
func shouldRestart(policy string, exitCode int) bool {
	switch policy {
	case "Never":
		return false
	case "OnFailure":
		return exitCode != 0
	default:
		return true
	}
}

// decide is the pure per-container decision of a pod worker:
//
//	no attempt yet ──────────────────────────▶ start
//	created, never started ──────────────────▶ start it
//	running ──liveness/startup failed──▶ kill ─▶ (exited)
//	exited ──policy says restart──▶ back-off over? ─yes─▶ start next attempt
//	                                              └─no──▶ wait (CrashLoopBackOff)
//	unknown (half made/removed) ─────────────▶ replace
func decide(policy string, cur *runtime.ContainerStatus, probeFailed bool, bo containerBackOff, now time.Time) (step, time.Time) {
	if cur == nil {
		return stepStart, time.Time{}
	}
	switch cur.State {
	case runtime.StateCreated:
		return stepStartCreated, time.Time{}
	case runtime.StateRunning:
		if probeFailed {
			return stepKill, time.Time{}
		}
		return stepNone, time.Time{}
	case runtime.StateExited:
		if !shouldRestart(policy, cur.ExitCode) {
			return stepNone, time.Time{}
		}
		if until := cur.FinishedAt.Add(bo.delay); bo.delay > 0 && now.Before(until) {
			return stepBackOff, until
		}
		return stepStart, time.Time{}
	default:
		return stepReplace, time.Time{}
	}
}

// nextBackOff is the delay to apply after a restart of a container whose
// attempt ran from started to finished.
func nextBackOff(bo containerBackOff, started, finished time.Time) containerBackOff {
	if !started.IsZero() && finished.Sub(started) >= backOffReset {
		return containerBackOff{delay: backOffInitial}
	}
	if bo.delay == 0 {
		return containerBackOff{delay: backOffInitial}
	}
	return containerBackOff{delay: min(bo.delay*2, backOffMax)}
}
