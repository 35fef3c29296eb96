package scheduler

import (
	"fmt"
	"testing"
	"time"

	corralpb "github.com/corral-dev/corral/proto"
)

// BenchmarkPlanDaemonSet plans one step of a rolling update (10 %
// unavailable) of a DaemonSet over 5,000 nodes, each with a ready pod of
// the old template: the controller's work for every step of a wave.
func BenchmarkPlanDaemonSet(b *testing.B) {
	const n = 5000
	v1 := rollingDS(pct("10%"), ios(0))
	nodes := make([]*corralpb.Node, n)
	pods := make([]*corralpb.Pod, n)
	for i := range nodes {
		name := fmt.Sprintf("node-%05d", i)
		nodes[i] = nodeWith(name, map[string]string{"kubernetes.io/hostname": name})
		pods[i] = daemonPod(v1, "old-"+name, name, time.Hour, "Running", true)
	}
	v2 := changedTemplate(v1, "nginx:1.26")
	in := DaemonPlanInput{DaemonSet: v2, Nodes: nodes, Pods: pods, Now: planNow}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		plan := PlanDaemonSet(in)
		if len(plan.Delete) != n/10 {
			b.Fatalf("deleted %d pods, want %d", len(plan.Delete), n/10)
		}
	}
}
