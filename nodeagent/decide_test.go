package nodeagent

import (
	"testing"
	"time"

	"github.com/corral-dev/corral/nodeagent/runtime"
)

func TestDecide(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	exited := func(code int, ago time.Duration) *runtime.ContainerStatus {
		return &runtime.ContainerStatus{State: runtime.StateExited, ExitCode: code, FinishedAt: now.Add(-ago)}
	}
	for _, tc := range []struct {
		name      string
		policy    string
		cur       *runtime.ContainerStatus
		probeFail bool
		delay     time.Duration
		want      step
	}{
		{"no attempt starts", "Always", nil, false, 0, stepStart},
		{"created starts", "Always", &runtime.ContainerStatus{State: runtime.StateCreated}, false, 0, stepStartCreated},
		{"running stays", "Always", &runtime.ContainerStatus{State: runtime.StateRunning}, false, 0, stepNone},
		{"running with failed probe is killed", "Always", &runtime.ContainerStatus{State: runtime.StateRunning}, true, 0, stepKill},
		{"first crash restarts at once", "Always", exited(1, 0), false, 0, stepStart},
		{"crash inside back-off waits", "Always", exited(1, 5*time.Second), false, 10 * time.Second, stepBackOff},
		{"crash after back-off restarts", "Always", exited(1, 11*time.Second), false, 10 * time.Second, stepStart},
		{"Always restarts a clean exit", "Always", exited(0, time.Hour), false, 10 * time.Second, stepStart},
		{"OnFailure keeps a clean exit", "OnFailure", exited(0, time.Hour), false, 0, stepNone},
		{"OnFailure restarts a failure", "OnFailure", exited(2, time.Hour), false, 0, stepStart},
		{"Never keeps a failure", "Never", exited(2, time.Hour), false, 0, stepNone},
		{"unknown is replaced", "Always", &runtime.ContainerStatus{State: runtime.StateUnknown}, false, 0, stepReplace},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, until := decide(tc.policy, tc.cur, tc.probeFail, containerBackOff{delay: tc.delay}, now)
			if got != tc.want {
				t.Fatalf("decide = %v, want %v", got, tc.want)
			}
			if got == stepBackOff && !until.After(now) {
				t.Fatalf("back-off until %v is not in the future", until)
			}
		})
	}
}

func TestNextBackOff(t *testing.T) {
	start := time.Unix(1_800_000_000, 0)
	bo := containerBackOff{}
	var delays []time.Duration
	for i := 0; i < 7; i++ {
		bo = nextBackOff(bo, start, start.Add(time.Second))
		delays = append(delays, bo.delay)
	}
	want := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second, 300 * time.Second, 300 * time.Second}
	for i := range want {
		if delays[i] != want[i] {
			t.Fatalf("delays %v, want %v", delays, want)
		}
	}
	// A container that ran ten minutes starts over.
	if got := nextBackOff(containerBackOff{delay: backOffMax}, start, start.Add(backOffReset)); got.delay != backOffInitial {
		t.Fatalf("after a long run delay = %v, want %v", got.delay, backOffInitial)
	}
}
