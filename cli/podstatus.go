package cli

import (
	"fmt"
	"strconv"
	"time"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

// Pod phases and the node-lifecycle reason kubectl special-cases.
const (
	phaseSucceeded        = "Succeeded"
	phaseFailed           = "Failed"
	nodeUnreachableReason = "NodeLost"
)

// podSummary is what kubectl's pod row shows about a pod's containers.
type podSummary struct {
	ready, total int
	status       string
	restarts     string
}

// summarizePod computes READY, STATUS and RESTARTS the way kubectl does:
// the phase (or the pod's reason), overridden by the first failing init
// container ("Init:1/2", "Init:CrashLoopBackOff"), then by any app
// container that is waiting or terminated with a reason, and finally
// "Terminating" once a deletion timestamp is set on a pod still running.
func summarizePod(pod *corralpb.Pod, now time.Time) podSummary {
	st := pod.GetStatus()
	s := podSummary{total: len(pod.GetSpec().GetContainers()), status: st.GetPhase()}
	if st.GetReason() != "" {
		s.status = st.GetReason()
	}
	for _, c := range st.GetConditions() {
		if c.GetType() == "PodScheduled" && c.GetReason() == "SchedulingGated" {
			s.status = "SchedulingGated"
		}
	}
	restarts := 0
	var lastRestart time.Time
	noteRestart := func(cs *corralpb.ContainerStatus) {
		restarts += int(cs.GetRestartCount())
		if t := cs.GetLastState().GetTerminated().GetFinishedAt(); !isZeroTime(t) && t.AsTime().After(lastRestart) {
			lastRestart = t.AsTime()
		}
	}
	initializing := false
	inits := st.GetInitContainerStatuses()
	for i, cs := range inits {
		noteRestart(cs)
		if reason, failing := initContainerReason(cs, i, len(pod.GetSpec().GetInitContainers())); failing {
			s.status, initializing = reason, true
			break
		}
	}
	if !initializing || podInitialized(st) {
		restarts, lastRestart = 0, time.Time{}
		s.status, s.ready = appContainersReason(st, s.status, noteRestart)
	}
	phase := st.GetPhase()
	if !isZeroTime(pod.GetMetadata().GetDeletionTimestamp()) {
		if st.GetReason() == nodeUnreachableReason {
			s.status = "Unknown"
		} else if phase != phaseSucceeded && phase != phaseFailed {
			s.status = "Terminating"
		}
	}
	s.restarts = strconv.Itoa(restarts)
	if restarts != 0 && !lastRestart.IsZero() {
		s.restarts = fmt.Sprintf("%d (%s ago)", restarts, humanDuration(now.Sub(lastRestart)))
	}
	return s
}

// initContainerReason reports the status an init container imposes on the
// pod, and whether it is still initializing or has failed.
func initContainerReason(cs *corralpb.ContainerStatus, i, total int) (string, bool) {
	state := cs.GetState()
	switch {
	case state.GetTerminated() != nil && state.GetTerminated().GetExitCode() == 0:
		return "", false
	case state.GetTerminated() != nil:
		t := state.GetTerminated()
		switch {
		case t.GetReason() != "":
			return "Init:" + t.GetReason(), true
		case t.GetSignal() != 0:
			return fmt.Sprintf("Init:Signal:%d", t.GetSignal()), true
		default:
			return fmt.Sprintf("Init:ExitCode:%d", t.GetExitCode()), true
		}
	case state.GetWaiting() != nil && state.GetWaiting().GetReason() != "" && state.GetWaiting().GetReason() != "PodInitializing":
		return "Init:" + state.GetWaiting().GetReason(), true
	default:
		return fmt.Sprintf("Init:%d/%d", i, total), true
	}
}

// appContainersReason walks the app containers from last to first, as
// kubectl does, and returns the resulting status and ready count.
func appContainersReason(st *corralpb.PodStatus, reason string, noteRestart func(*corralpb.ContainerStatus)) (string, int) {
	ready := 0
	hasRunning := false
	css := st.GetContainerStatuses()
	for i := len(css) - 1; i >= 0; i-- {
		cs := css[i]
		noteRestart(cs)
		state := cs.GetState()
		switch {
		case state.GetWaiting() != nil && state.GetWaiting().GetReason() != "":
			reason = state.GetWaiting().GetReason()
		case state.GetTerminated() != nil && state.GetTerminated().GetReason() != "":
			reason = state.GetTerminated().GetReason()
		case state.GetTerminated() != nil:
			if sig := state.GetTerminated().GetSignal(); sig != 0 {
				reason = fmt.Sprintf("Signal:%d", sig)
			} else {
				reason = fmt.Sprintf("ExitCode:%d", state.GetTerminated().GetExitCode())
			}
		case cs.GetReady() && state.GetRunning() != nil:
			hasRunning = true
			ready++
		}
	}
	if reason == "Completed" && hasRunning {
		if podConditionTrue(st, "Ready") {
			reason = "Running"
		} else {
			reason = "NotReady"
		}
	}
	return reason, ready
}

// podInitialized reports whether the Initialized condition is True.
func podInitialized(st *corralpb.PodStatus) bool { return podConditionTrue(st, "Initialized") }

// podConditionTrue reports whether the pod condition of a type is True.
func podConditionTrue(st *corralpb.PodStatus, typ string) bool {
	return api.PodCondition(st, typ).GetStatus() == "True"
}
