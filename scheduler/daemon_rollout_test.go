package scheduler

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"
	"pgregory.net/rapid"

	corralpb "github.com/corral-dev/corral/proto"
)

// changedTemplate returns ds with a new image: its pods become old.
func changedTemplate(ds *corralpb.DaemonSet, image string) *corralpb.DaemonSet {
	out := dsFor(nil)
	out.Spec.UpdateStrategy = ds.GetSpec().GetUpdateStrategy()
	out.Spec.Template.Spec.Containers[0].Image = image
	out.Metadata.Generation = 2
	return out
}

func TestPlanRollsOutNewTemplate(t *testing.T) {
	v1 := rollingDS(ios(1), ios(0))
	var nodes []*corralpb.Node
	var pods []*corralpb.Pod
	for i := 0; i < 3; i++ {
		n := fmt.Sprintf("n%d", i)
		nodes = append(nodes, nodeWith(n, nil))
		pods = append(pods, daemonPod(v1, "old-"+n, n, time.Hour, "Running", true))
	}
	v2 := changedTemplate(v1, "nginx:1.26")
	plan := PlanDaemonSet(DaemonPlanInput{DaemonSet: v2, Nodes: nodes, Pods: pods, Now: planNow})
	// One old pod goes, and its replacement is created in the same plan on
	// the same node (the agent starts it once the old one has terminated).
	if len(plan.Delete) != 1 || len(plan.Create) != 1 || plan.Status.GetUpdatedNumberScheduled() != 0 ||
		targetNode(plan.Create[0]) != targetNode(plan.Delete[0]) || plan.Create[0].GetMetadata().GetLabels()[LabelRevisionHash] != TemplateHash(v2) {
		t.Fatalf("rolling update, maxUnavailable 1: delete %v create %v status %v", names(plan.Delete), names(plan.Create), plan.Status)
	}
	// OnDelete: nothing is replaced.
	onDelete := changedTemplate(v1, "nginx:1.26")
	onDelete.Spec.UpdateStrategy = &corralpb.DaemonSetUpdateStrategy{Type: "OnDelete"}
	plan = PlanDaemonSet(DaemonPlanInput{DaemonSet: onDelete, Nodes: nodes, Pods: pods, Now: planNow})
	if len(plan.Delete)+len(plan.Create) != 0 {
		t.Fatalf("OnDelete replaced pods: delete %v create %v", names(plan.Delete), names(plan.Create))
	}
	// ...but a deleted pod comes back with the new template, and a new node
	// gets it too.
	plan = PlanDaemonSet(DaemonPlanInput{DaemonSet: onDelete, Nodes: append(nodes, nodeWith("n9", nil)), Pods: pods[1:], Now: planNow})
	if len(plan.Create) != 2 || plan.Create[0].GetMetadata().GetLabels()[LabelRevisionHash] != TemplateHash(onDelete) {
		t.Fatalf("OnDelete creates %v", names(plan.Create))
	}
}

// TestRollingUpdateProperties simulates rollouts step by step: pods the
// controller creates become ready one step later, and deletions take effect
// at once. Without surge, never more than maxUnavailable eligible nodes lack
// an available pod (beyond those already unavailable at the start); with
// surge, never more than two pods of the DaemonSet on a node; and the
// rollout always finishes with every node updated.
func TestRollingUpdateProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 12).Draw(t, "nodes")
		surge := rapid.Bool().Draw(t, "surge")
		budget := int32(rapid.IntRange(1, 3).Draw(t, "budget"))
		v1 := rollingDS(ios(budget), ios(0))
		if surge {
			v1 = rollingDS(ios(0), ios(budget))
		}
		var nodes []*corralpb.Node
		var pods []*corralpb.Pod
		unavailableAtStart := 0
		for i := 0; i < n; i++ {
			name := fmt.Sprintf("n%02d", i)
			nodes = append(nodes, nodeWith(name, nil))
			ready := rapid.IntRange(0, 4).Draw(t, "ready") > 0
			if !ready {
				unavailableAtStart++
			}
			pods = append(pods, daemonPod(v1, "old-"+name, name, time.Hour, "Running", ready))
		}
		v2 := changedTemplate(v1, "nginx:1.26")
		hash := TemplateHash(v2)
		now := planNow
		for step := 0; step < 10*n+10; step++ {
			now = now.Add(time.Second)
			plan := PlanDaemonSet(DaemonPlanInput{DaemonSet: v2, Nodes: nodes, Pods: pods, Now: now})
			pods = applyRollout(pods, plan, now)
			perNode := map[string]int{}
			withAvailable := map[string]bool{}
			for _, p := range pods {
				perNode[p.GetSpec().GetNodeName()]++
				if ok, _ := podReady(p); ok {
					withAvailable[p.GetSpec().GetNodeName()] = true
				}
			}
			for node, c := range perNode {
				if c > 2 || (!surge && c > 1) {
					t.Fatalf("step %d: node %s has %d pods", step, node, c)
				}
			}
			if !surge && n-len(withAvailable) > int(budget)+unavailableAtStart {
				t.Fatalf("step %d: %d nodes without an available pod, budget %d (+%d unavailable at start)", step, n-len(withAvailable), budget, unavailableAtStart)
			}
			done := len(pods) == n
			for _, p := range pods {
				ready, _ := podReady(p)
				done = done && p.GetMetadata().GetLabels()[LabelRevisionHash] == hash && ready
			}
			if done {
				return
			}
		}
		t.Fatalf("rollout did not finish: %v", names(pods))
	})
}

// applyRollout applies a plan: deletions now; every pod that exists
// becomes ready, then new pods are added not ready yet (they become ready
// at the next step).
func applyRollout(pods []*corralpb.Pod, plan *DaemonPlan, now time.Time) []*corralpb.Pod {
	gone := map[*corralpb.Pod]bool{}
	for _, p := range plan.Delete {
		gone[p] = true
	}
	var out []*corralpb.Pod
	for _, p := range pods {
		if gone[p] {
			continue
		}
		p.Status = &corralpb.PodStatus{Phase: "Running", Conditions: []*corralpb.PodCondition{{Type: "Ready", Status: "True",
			LastTransitionTime: timestamppb.New(now.Add(-time.Hour))}}}
		out = append(out, p)
	}
	for i, p := range plan.Create {
		p.Metadata.Name = fmt.Sprintf("new-%d-%d-%s", now.Unix(), i, p.GetSpec().GetNodeName())
		p.Metadata.Uid = p.Metadata.Name
		p.Metadata.CreationTimestamp = timestamppb.New(now)
		p.Status = &corralpb.PodStatus{Phase: "Running", Conditions: []*corralpb.PodCondition{{Type: "Ready", Status: "False"}}}
		out = append(out, p)
	}
	return out
}
