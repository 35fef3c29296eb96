package scheduler

import (
	"testing"
	"time"

	corralpb "github.com/corral-dev/corral/proto"
)

func node(name, ready string, taints ...*corralpb.Taint) *corralpb.Node {
	n := &corralpb.Node{Metadata: &corralpb.ObjectMeta{Name: name}, Spec: &corralpb.NodeSpec{Taints: taints}}
	if ready != "" {
		n.Status = &corralpb.NodeStatus{Conditions: []*corralpb.NodeCondition{{Type: "Ready", Status: ready}}}
	}
	return n
}

func TestPlanNodeLifecycle(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	grace := 40 * time.Second
	unreachable := &corralpb.Taint{Key: TaintUnreachable, Effect: EffectNoExecute}
	other := &corralpb.Taint{Key: "dedicated", Value: "edge", Effect: EffectNoSchedule}
	for _, tc := range []struct {
		name       string
		node       *corralpb.Node
		seen       time.Duration // ago; <0 means never seen
		wantChange bool
		wantReady  string
		wantTaints int
	}{
		{"fresh ready node stays", node("a", "True"), 5 * time.Second, false, "", 0},
		{"at the grace boundary stays", node("a", "True"), grace, false, "", 0},
		{"stale ready node goes unknown", node("a", "True", other), grace + time.Second, true, "Unknown", 2},
		{"stale not-ready node goes unknown", node("a", "False"), time.Hour, true, "Unknown", 1},
		{"stale node without condition goes unknown", node("a", ""), time.Hour, true, "Unknown", 1},
		{"stale unknown node stays", node("a", "Unknown", unreachable), time.Hour, false, "", 0},
		{"unknown node heard from recovers", node("a", "Unknown", unreachable, other), time.Second, true, "True", 1},
		{"never seen is left alone", node("a", "True"), -1, false, "", 0},
		{"unknown taint not duplicated", node("a", "True", unreachable), time.Hour, true, "Unknown", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seen := map[string]time.Time{}
			if tc.seen >= 0 {
				seen["a"] = now.Add(-tc.seen)
			}
			out := PlanNodeLifecycle([]*corralpb.Node{tc.node}, seen, now, grace)
			if (len(out) == 1) != tc.wantChange {
				t.Fatalf("changes %v, want change=%v", out, tc.wantChange)
			}
			if !tc.wantChange {
				return
			}
			got := out[0]
			if c := readyCondition(got); c.GetStatus() != tc.wantReady || c.GetLastTransitionTime() == nil {
				t.Errorf("ready condition %v, want %s with a transition time", c, tc.wantReady)
			}
			if len(got.GetSpec().GetTaints()) != tc.wantTaints {
				t.Errorf("taints %v, want %d", got.GetSpec().GetTaints(), tc.wantTaints)
			}
			if tc.node == got {
				t.Error("planner mutated its input instead of copying")
			}
		})
	}
}
