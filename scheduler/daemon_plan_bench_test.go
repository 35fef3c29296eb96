package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/corral-dev/corral/api"
	"github.com/corral-dev/corral/events"
	corralpb "github.com/corral-dev/corral/proto"
	"github.com/corral-dev/corral/raftstore/state"
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
	// The controller keeps its pods' facts from one plan to the next.
	in := DaemonPlanInput{DaemonSet: v2, Nodes: nodes, Pods: pods, Now: planNow, Facts: &PodFacts{}}
	PlanDaemonSet(in) // the step before: make bench runs one iteration
	in.Facts.Rotate()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		plan := PlanDaemonSet(in)
		in.Facts.Rotate()
		if len(plan.Delete) != n/10 {
			b.Fatalf("deleted %d pods, want %d", len(plan.Delete), n/10)
		}
	}
}

// BenchmarkDaemonSetSync is one whole sync of a settled DaemonSet over
// 5,000 nodes in a real state store, each node running a ready pod of the
// current template: the snapshot, the plan's inputs, the plan, the
// history, and no write. The controller does this for every change of
// its pods' status.
func BenchmarkDaemonSetSync(b *testing.B) {
	const n = 5000
	c := &storeCluster{st: state.New()}
	c.apply(b, put(&corralpb.Namespace{Metadata: &corralpb.ObjectMeta{Name: "default", Uid: "ns-default"}}))
	ds := dsFor(nil)
	ds.Kind, ds.ApiVersion = "DaemonSet", "apps/v1"
	c.apply(b, put(ds))
	c.apply(b, benchNodes(n)...)
	ctl := NewDaemonSetController(c, events.Discard, slog.New(slog.DiscardHandler))
	key := dsKey(ds)
	ctx := context.Background()
	if err := ctl.sync(ctx, key); err != nil {
		b.Fatal(err)
	}
	// Every pod Running and Ready, then the status that counts them.
	pods, err := c.st.List(nil, "Pod", "default")
	if err != nil || len(pods) != n {
		b.Fatalf("%d pods (%v), want %d", len(pods), err, n)
	}
	var ops []*corralpb.Op
	for _, o := range pods {
		p := proto.Clone(o.GetPod()).(*corralpb.Pod)
		p.Status = &corralpb.PodStatus{Phase: "Running", Conditions: []*corralpb.PodCondition{{Type: "Ready", Status: "True",
			LastTransitionTime: timestamppb.New(time.Now().Add(-time.Minute))}}}
		ops = append(ops, &corralpb.Op{Type: corralpb.Op_STATUS, Uid: p.GetMetadata().GetUid(), Object: api.Wrap(p)})
	}
	c.apply(b, ops...)
	if err := ctl.sync(ctx, key); err != nil {
		b.Fatal(err)
	}
	writes := c.writes
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := ctl.syncOnce(ctx, key); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if c.writes != writes {
		b.Fatalf("a settled DaemonSet's sync wrote %d batches", c.writes-writes)
	}
}

// benchNodes are the ops creating n ready nodes named node-00000 on.
func benchNodes(n int) []*corralpb.Op {
	ops := make([]*corralpb.Op, 0, n)
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("node-%05d", i)
		node := nodeWith(name, map[string]string{"kubernetes.io/hostname": name})
		node.Kind, node.ApiVersion, node.Metadata.Uid = "Node", "v1", "uid-"+name
		ops = append(ops, put(node))
	}
	return ops
}

// BenchmarkDaemonSetCreate is a new DaemonSet's first sync over 5,000
// nodes in a real state store, up to its write: the snapshot, the plan
// creating 5,000 pods and the batch that carries them (thinned against a
// base). The write itself, applying it to the store, is not timed.
func BenchmarkDaemonSetCreate(b *testing.B) {
	const n = 5000
	ds := dsFor(nil)
	ds.Kind, ds.ApiVersion = "DaemonSet", "apps/v1"
	nodes := benchNodes(n)
	ctx := context.Background()
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		c := &storeCluster{st: state.New()}
		c.apply(b, put(&corralpb.Namespace{Metadata: &corralpb.ObjectMeta{Name: "default", Uid: "ns-default"}}))
		c.apply(b, put(proto.Clone(ds).(*corralpb.DaemonSet)))
		c.apply(b, nodes...)
		c.beforeWrite = func(*storeCluster, int) { b.StopTimer() }
		ctl := NewDaemonSetController(c, events.Discard, slog.New(slog.DiscardHandler))
		b.StartTimer()
		if err := ctl.syncOnce(ctx, dsKey(ds)); err != nil {
			b.Fatal(err)
		}
		if pods, err := c.st.List(nil, "Pod", "default"); err != nil || len(pods) != n {
			b.Fatalf("%d pods (%v), want %d", len(pods), err, n)
		}
	}
}
