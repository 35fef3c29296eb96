package nodeagent

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/corral-dev/corral/api"
	"github.com/corral-dev/corral/nodeagent/runtime"
	corralpb "github.com/corral-dev/corral/proto"
)

// containerView is what a pod worker knows of one container when it
// computes the pod's status.
type containerView struct {
	name string
	// cur is the latest attempt, prev the one before it (lastState).
	cur, prev *runtime.ContainerStatus
	// waiting, when set, is why the container is not running yet
	// (ContainerCreating, ErrImagePull, ImagePullBackOff, CrashLoopBackOff,
	// CreateContainerConfigError, ...).
	waitingReason, waitingMessage string
	ready                         bool
	started                       bool
	image                         string
}

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t.UTC().Truncate(time.Second))
}

func terminated(s *runtime.ContainerStatus) *corralpb.ContainerState {
	return &corralpb.ContainerState{Terminated: &corralpb.ContainerStateTerminated{
		ExitCode: int32(s.ExitCode), Reason: s.Reason, Message: s.Message,
		StartedAt: ts(s.StartedAt), FinishedAt: ts(s.FinishedAt), ContainerId: "corral://" + s.ID,
	}}
}

// toContainerStatus is one container's status as Kubernetes reports it.
func toContainerStatus(v containerView) *corralpb.ContainerStatus {
	cs := &corralpb.ContainerStatus{Name: v.name, Image: v.image, Ready: v.ready}
	started := v.started
	cs.Started = &started
	if v.prev != nil && v.prev.State == runtime.StateExited {
		cs.LastState = terminated(v.prev)
	}
	cur := v.cur
	if cur != nil {
		cs.RestartCount = int32(cur.Attempt)
		cs.ContainerId = "corral://" + cur.ID
		cs.ImageId = cur.ImageID
	}
	switch {
	case v.waitingReason != "":
		cs.State = &corralpb.ContainerState{Waiting: &corralpb.ContainerStateWaiting{Reason: v.waitingReason, Message: v.waitingMessage}}
		if cur != nil && cur.State == runtime.StateExited && v.prev == nil {
			cs.LastState = terminated(cur)
		}
	case cur == nil || cur.State == runtime.StateCreated || cur.State == runtime.StateUnknown:
		cs.State = &corralpb.ContainerState{Waiting: &corralpb.ContainerStateWaiting{Reason: "ContainerCreating"}}
	case cur.State == runtime.StateRunning:
		cs.State = &corralpb.ContainerState{Running: &corralpb.ContainerStateRunning{StartedAt: ts(cur.StartedAt)}}
	default:
		cs.State = terminated(cur)
	}
	return cs
}

// podPhase follows Kubernetes: Pending until every container has started
// once; Running while any runs or will restart; Succeeded or Failed once
// all have ended for good.
func podPhase(policy string, views []containerView) string {
	running, ended, failed, waiting := 0, 0, 0, 0
	for _, v := range views {
		switch {
		case v.cur == nil || v.cur.State == runtime.StateCreated || v.cur.State == runtime.StateUnknown:
			waiting++
		case v.cur.State == runtime.StateRunning:
			running++
		case v.cur.State == runtime.StateExited && shouldRestart(policy, v.cur.ExitCode):
			running++ // restarting
		default:
			ended++
			if v.cur.ExitCode != 0 {
				failed++
			}
		}
	}
	switch {
	case waiting > 0:
		return "Pending"
	case running > 0:
		return "Running"
	case failed > 0:
		return "Failed"
	default:
		return "Succeeded"
	}
}

// podStatus computes a pod's status from its containers.
func podStatus(pod *corralpb.Pod, views []containerView, hostIP, podIP string, startTime time.Time) *corralpb.PodStatus {
	st := &corralpb.PodStatus{
		Phase:     podPhase(pod.GetSpec().GetRestartPolicy(), views),
		HostIp:    hostIP,
		PodIp:     podIP,
		StartTime: ts(startTime),
		QosClass:  api.QOSClass(pod),
	}
	if podIP != "" {
		st.PodIps = []*corralpb.PodIP{{Ip: podIP}}
	}
	allReady := len(views) > 0
	for _, v := range views {
		st.ContainerStatuses = append(st.ContainerStatuses, toContainerStatus(v))
		allReady = allReady && v.ready
	}
	ready := "False"
	if allReady {
		ready = "True"
	}
	st.Conditions = []*corralpb.PodCondition{
		{Type: "PodScheduled", Status: "True"},
		{Type: "Initialized", Status: "True"},
		{Type: "ContainersReady", Status: ready},
		{Type: "Ready", Status: ready},
	}
	return st
}

// carryTransitions stamps each condition of cur with when it last changed:
// the time from prev when its status is the same, now when it flipped or is
// new. Pods' Ready transition times drive minReadySeconds.
func carryTransitions(prev, cur *corralpb.PodStatus, now time.Time) {
	old := map[string]*corralpb.PodCondition{}
	for _, c := range prev.GetConditions() {
		old[c.GetType()] = c
	}
	for _, c := range cur.GetConditions() {
		if o, ok := old[c.GetType()]; ok && o.GetStatus() == c.GetStatus() && o.GetLastTransitionTime() != nil {
			c.LastTransitionTime = o.GetLastTransitionTime()
		} else {
			c.LastTransitionTime = ts(now)
		}
	}
}
