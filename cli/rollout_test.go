package cli

import (
	"slices"
	"strings"
	"testing"

	"github.com/corral-dev/corral/api"
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

func TestRolloutStatusResumesWhenItsServerGoes(t *testing.T) {
	fake := newFakeCluster()
	h := newHarness(t, fake)
	rolling := func(updated, available int32, rv string) *corralpb.DaemonSet {
		ds := seedDaemonSet()
		ds.Metadata.Generation, ds.Metadata.ResourceVersion = 2, rv
		ds.Status.ObservedGeneration = 2
		ds.Status.UpdatedNumberScheduled, ds.Status.NumberAvailable = updated, available
		return ds
	}
	first := fake.put(objs(rolling(1, 2, ""))[0])
	fake.watch <- &corralpb.WatchEvent{Type: "MODIFIED", Object: objs(rolling(2, 2, "40"))[0]}
	fake.watch <- &corralpb.WatchEvent{Type: "LOST"} // the server dies
	fake.watch <- &corralpb.WatchEvent{Type: "MODIFIED", Object: objs(rolling(3, 3, "42"))[0]}
	out, errOut, code := h.run("rollout", "status", "ds/nginx-daemonset")
	if code != 0 || !strings.HasSuffix(out, "daemon set \"nginx-daemonset\" successfully rolled out\n") ||
		!strings.Contains(out, "2 out of 3 new pods have been updated") {
		t.Fatalf("rollout status across a lost server: exit %d\n%s%s", code, out, errOut)
	}
	fake.mu.Lock()
	rvs := fake.watchRVs
	fake.mu.Unlock()
	if want := []string{api.Meta(first).GetResourceVersion(), "40"}; !slices.Equal(rvs, want) {
		t.Fatalf("watch calls from resourceVersions %q, want %q", rvs, want)
	}
	// A watch the server ends before the rollout is done is an error, not success.
	fake2 := newFakeCluster()
	h2 := newHarness(t, fake2)
	fake2.put(objs(rolling(1, 2, ""))[0])
	close(fake2.watch)
	if _, errOut, code := h2.run("rollout", "status", "ds/nginx-daemonset"); code == 0 || !strings.Contains(errOut, "before its rollout finished") {
		t.Fatalf("a watch ended early: exit %d %q", code, errOut)
	}
}
