package nodeagent

import (
	"testing"
	"time"

	"github.com/corral-dev/corral/api"
	"github.com/corral-dev/corral/nodeagent/runtime"
	corralpb "github.com/corral-dev/corral/proto"
)

func TestPodStatus(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	running := &runtime.ContainerStatus{ID: "u-a-1", Attempt: 1, State: runtime.StateRunning, StartedAt: now}
	crashed := &runtime.ContainerStatus{ID: "u-a-0", Attempt: 0, State: runtime.StateExited, ExitCode: 2, Reason: "Error",
		StartedAt: now.Add(-time.Minute), FinishedAt: now.Add(-time.Second)}
	pod := &corralpb.Pod{Spec: &corralpb.PodSpec{RestartPolicy: "Always", Containers: []*corralpb.Container{{Name: "a"}}}}
	for _, tc := range []struct {
		name      string
		views     []containerView
		phase     string
		ready     string
		state     string // waiting reason, "running" or "terminated"
		restarts  int32
		lastState bool
	}{
		{"creating", []containerView{{name: "a", waitingReason: "ContainerCreating"}}, "Pending", "False", "ContainerCreating", 0, false},
		{"pull error", []containerView{{name: "a", waitingReason: "ErrImagePull", waitingMessage: "not found"}}, "Pending", "False", "ErrImagePull", 0, false},
		{"running and ready", []containerView{{name: "a", cur: running, prev: crashed, ready: true, started: true}}, "Running", "True", "running", 1, true},
		{"running not ready", []containerView{{name: "a", cur: running, started: true}}, "Running", "False", "running", 1, false},
		{"crash loop", []containerView{{name: "a", cur: crashed, waitingReason: "CrashLoopBackOff"}}, "Running", "False", "CrashLoopBackOff", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := podStatus(pod, tc.views, "10.0.0.1", "", now)
			if st.GetPhase() != tc.phase {
				t.Errorf("phase %s, want %s", st.GetPhase(), tc.phase)
			}
			if got := st.GetConditions()[3]; got.GetType() != "Ready" || got.GetStatus() != tc.ready {
				t.Errorf("Ready condition %v, want %s", got, tc.ready)
			}
			cs := st.GetContainerStatuses()[0]
			state := cs.GetState().GetWaiting().GetReason()
			if cs.GetState().GetRunning() != nil {
				state = "running"
			} else if cs.GetState().GetTerminated() != nil {
				state = "terminated"
			}
			if state != tc.state || cs.GetRestartCount() != tc.restarts || (cs.GetLastState().GetTerminated() != nil) != tc.lastState {
				t.Errorf("container status %v: want state %s restarts %d lastState %v", cs, tc.state, tc.restarts, tc.lastState)
			}
		})
	}
	done := &runtime.ContainerStatus{State: runtime.StateExited, ExitCode: 0}
	failed := &runtime.ContainerStatus{State: runtime.StateExited, ExitCode: 1}
	if p := podPhase("Never", []containerView{{cur: done}}); p != "Succeeded" {
		t.Errorf("all exited 0 with Never: %s", p)
	}
	if p := podPhase("Never", []containerView{{cur: done}, {cur: failed}}); p != "Failed" {
		t.Errorf("one failed with Never: %s", p)
	}
}

func TestQOSClass(t *testing.T) {
	mk := func(req, lim map[string]string) *corralpb.Pod {
		return &corralpb.Pod{Spec: &corralpb.PodSpec{Containers: []*corralpb.Container{{Resources: &corralpb.ResourceRequirements{Requests: req, Limits: lim}}}}}
	}
	for _, tc := range []struct {
		pod  *corralpb.Pod
		want string
	}{
		{mk(nil, nil), "BestEffort"},
		{mk(map[string]string{"cpu": "100m"}, nil), "Burstable"},
		{mk(map[string]string{"cpu": "100m", "memory": "1Gi"}, map[string]string{"cpu": "100m", "memory": "1Gi"}), "Guaranteed"},
		{mk(nil, map[string]string{"cpu": "1", "memory": "1Gi"}), "Guaranteed"},
		{mk(map[string]string{"memory": "100Mi"}, map[string]string{"memory": "200Mi"}), "Burstable"},
	} {
		if got := api.QOSClass(tc.pod); got != tc.want {
			t.Errorf("qos of %v = %s, want %s", tc.pod.GetSpec().GetContainers()[0].GetResources(), got, tc.want)
		}
	}
}

func TestCarryTransitions(t *testing.T) {
	t0, t1 := time.Unix(1_800_000_000, 0), time.Unix(1_800_000_100, 0)
	prev := &corralpb.PodStatus{Conditions: []*corralpb.PodCondition{
		{Type: "Ready", Status: "True", LastTransitionTime: ts(t0)},
		{Type: "PodScheduled", Status: "True", LastTransitionTime: ts(t0)},
	}}
	cur := &corralpb.PodStatus{Conditions: []*corralpb.PodCondition{
		{Type: "Ready", Status: "False"}, {Type: "PodScheduled", Status: "True"}, {Type: "Initialized", Status: "True"},
	}}
	carryTransitions(prev, cur, t1)
	got := map[string]int64{}
	for _, c := range cur.GetConditions() {
		got[c.GetType()] = c.GetLastTransitionTime().GetSeconds()
	}
	if got["Ready"] != t1.Unix() || got["PodScheduled"] != t0.Unix() || got["Initialized"] != t1.Unix() {
		t.Fatalf("transition times %v", got)
	}
}
