package cli

import (
	"testing"

	corralpb "github.com/corral-dev/corral/proto"
)

func TestRolloutMessage(t *testing.T) {
	ds := func(strategy string, gen, observed int64, desired, updated, available int32) *corralpb.DaemonSet {
		return &corralpb.DaemonSet{
			Metadata: &corralpb.ObjectMeta{Name: "nginx-daemonset", Generation: gen},
			Spec:     &corralpb.DaemonSetSpec{UpdateStrategy: &corralpb.DaemonSetUpdateStrategy{Type: strategy}},
			Status: &corralpb.DaemonSetStatus{ObservedGeneration: observed, DesiredNumberScheduled: desired,
				UpdatedNumberScheduled: updated, NumberAvailable: available},
		}
	}
	for _, tc := range []struct {
		ds   *corralpb.DaemonSet
		msg  string
		done bool
		err  string
	}{
		{ds("RollingUpdate", 2, 1, 3, 3, 3), "Waiting for daemon set spec update to be observed...\n", false, ""},
		{ds("RollingUpdate", 2, 2, 3, 1, 1), "Waiting for daemon set \"nginx-daemonset\" rollout to finish: 1 out of 3 new pods have been updated...\n", false, ""},
		{ds("RollingUpdate", 2, 2, 3, 3, 2), "Waiting for daemon set \"nginx-daemonset\" rollout to finish: 2 of 3 updated pods are available...\n", false, ""},
		{ds("RollingUpdate", 2, 2, 3, 3, 3), "daemon set \"nginx-daemonset\" successfully rolled out\n", true, ""},
		{ds("OnDelete", 2, 2, 3, 3, 3), "", true, "rollout status is only available for RollingUpdate strategy type"},
	} {
		msg, done, err := rolloutMessage(tc.ds)
		if msg != tc.msg || done != tc.done || (err == nil) != (tc.err == "") || (err != nil && err.Error() != tc.err) {
			t.Errorf("rolloutMessage = %q, %v, %v; want %q, %v, %q", msg, done, err, tc.msg, tc.done, tc.err)
		}
	}
}
