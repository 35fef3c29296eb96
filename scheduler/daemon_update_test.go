package scheduler

import (
	"fmt"
	"testing"
	"time"

	corralpb "github.com/corral-dev/corral/proto"
)

func rollingDS(maxUnavailable, maxSurge *corralpb.IntOrString) *corralpb.DaemonSet {
	ds := dsFor(nil)
	ds.Spec.UpdateStrategy = &corralpb.DaemonSetUpdateStrategy{Type: "RollingUpdate",
		RollingUpdate: &corralpb.RollingUpdateDaemonSet{MaxUnavailable: maxUnavailable, MaxSurge: maxSurge}}
	return ds
}

func ios(i int32) *corralpb.IntOrString { return &corralpb.IntOrString{IntVal: i} }

func pct(s string) *corralpb.IntOrString { return &corralpb.IntOrString{IsString: true, StrVal: s} }

// fleet builds n nodes each with an old available pod, then applies edits.
func fleet(ds *corralpb.DaemonSet, n int) []rolloutNode {
	var out []rolloutNode
	for i := 0; i < n; i++ {
		node := fmt.Sprintf("n%02d", i)
		out = append(out, rolloutNode{node: node, shouldRun: true, oldPod: daemonPod(ds, "old-"+node, node, time.Hour, "Running", true)})
	}
	return out
}

func TestRollingBudget(t *testing.T) {
	for _, tc := range []struct {
		unavailable, surge *corralpb.IntOrString
		desired            int
		wantSurge, wantUn  int
	}{
		{ios(1), ios(0), 3, 0, 1},
		{ios(0), ios(0), 3, 0, 1},
		{nil, nil, 3, 0, 1},
		{pct("10%"), nil, 5000, 0, 500},
		{pct("10%"), nil, 3, 0, 1},
		{pct("34%"), nil, 3, 0, 2},
		{ios(0), pct("20%"), 10, 2, 0},
		{ios(0), ios(1), 3, 1, 0},
	} {
		s, u := rollingBudget(rollingDS(tc.unavailable, tc.surge), tc.desired)
		if s != tc.wantSurge || u != tc.wantUn {
			t.Errorf("budget(%v, %v, %d) = surge %d unavailable %d, want %d %d", tc.unavailable, tc.surge, tc.desired, s, u, tc.wantSurge, tc.wantUn)
		}
	}
}

func TestRollingUpdateWithoutSurge(t *testing.T) {
	ds := rollingDS(ios(1), ios(0))
	// All old and available: one is replaced at a time.
	del, create := planRollingUpdate(ds, fleet(ds, 3), planNow, newPodFacts)
	if len(del) != 1 || len(create) != 0 {
		t.Fatalf("fresh rollout: delete %v create %v", names(del), create)
	}
	// A node whose new pod is not available yet uses the whole budget.
	nodes := fleet(ds, 3)
	nodes[0].oldPod, nodes[0].newPod = nil, daemonPod(ds, "new-n00", "n00", 0, "Running", false)
	if del, _ := planRollingUpdate(ds, nodes, planNow, newPodFacts); len(del) != 0 {
		t.Fatalf("budget exhausted but deleting %v", names(del))
	}
	// An unavailable old pod is always replaced, budget or not.
	nodes[1].oldPod = daemonPod(ds, "old-n01", "n01", time.Hour, "Running", false)
	if del, _ := planRollingUpdate(ds, nodes, planNow, newPodFacts); fmt.Sprint(names(del)) != "[old-n01@n01]" {
		t.Fatalf("unavailable old pod not replaced: %v", names(del))
	}
	// A larger budget replaces more at once.
	wide := rollingDS(ios(2), ios(0))
	if del, _ := planRollingUpdate(wide, fleet(wide, 5), planNow, newPodFacts); len(del) != 2 {
		t.Fatalf("maxUnavailable 2: deleting %v", names(del))
	}
	// minReadySeconds: a new pod ready for less than that is unavailable.
	slow := rollingDS(ios(1), ios(0))
	slow.Spec.MinReadySeconds = 60
	nodes = fleet(slow, 2)
	nodes[0].oldPod, nodes[0].newPod = nil, daemonPod(slow, "new-n00", "n00", 10*time.Second, "Running", true)
	if del, _ := planRollingUpdate(slow, nodes, planNow, newPodFacts); len(del) != 0 {
		t.Fatalf("new pod not yet available for minReadySeconds, but deleting %v", names(del))
	}
}

func TestRollingUpdateWithSurge(t *testing.T) {
	ds := rollingDS(ios(0), ios(1))
	del, create := planRollingUpdate(ds, fleet(ds, 3), planNow, newPodFacts)
	if len(del) != 0 || fmt.Sprint(create) != "[n00]" {
		t.Fatalf("surge start: delete %v create %v", names(del), create)
	}
	// The surge pod is not available yet: nothing more.
	nodes := fleet(ds, 3)
	nodes[0].newPod = daemonPod(ds, "new-n00", "n00", 0, "Running", false)
	if del, create := planRollingUpdate(ds, nodes, planNow, newPodFacts); len(del) != 0 || len(create) != 0 {
		t.Fatalf("surge in flight: delete %v create %v", names(del), create)
	}
	// Once it is available the old pod goes and the next node surges.
	nodes[0].newPod = daemonPod(ds, "new-n00", "n00", time.Minute, "Running", true)
	del, create = planRollingUpdate(ds, nodes, planNow, newPodFacts)
	if fmt.Sprint(names(del)) != "[old-n00@n00]" || fmt.Sprint(create) != "[n01]" {
		t.Fatalf("surge step: delete %v create %v", names(del), create)
	}
	// An unavailable old pod gets its new pod beyond the surge budget.
	nodes = fleet(ds, 3)
	nodes[0].newPod = daemonPod(ds, "new-n00", "n00", 0, "Running", false)
	nodes[2].oldPod = daemonPod(ds, "old-n02", "n02", time.Hour, "Running", false)
	if _, create := planRollingUpdate(ds, nodes, planNow, newPodFacts); fmt.Sprint(create) != "[n02]" {
		t.Fatalf("unavailable old pod: create %v", create)
	}
}
