package raftstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

// daemonPod is a pod as the DaemonSet controller creates it for node.
func daemonPod(ds, node string, i int) *corralpb.Object {
	tol := func(key, effect string) *corralpb.Toleration {
		return &corralpb.Toleration{Key: key, Operator: "Exists", Effect: effect}
	}
	yes := true
	return &corralpb.Object{Kind: &corralpb.Object_Pod{Pod: &corralpb.Pod{
		ApiVersion: "v1", Kind: "Pod",
		Metadata: &corralpb.ObjectMeta{Name: fmt.Sprintf("%s-%05d", ds, i), Namespace: "default", Uid: fmt.Sprintf("uid-%s-%d", ds, i),
			CreationTimestamp: timestamppb.New(time.Unix(1700000000, 0)),
			Labels:            map[string]string{"app": ds, "controller-revision-hash": "6d9f7c8b5", "pod-template-generation": "1"},
			OwnerReferences: []*corralpb.OwnerReference{{ApiVersion: "apps/v1", Kind: "DaemonSet", Name: ds, Uid: "uid-" + ds,
				Controller: &yes, BlockOwnerDeletion: &yes}}},
		Spec: &corralpb.PodSpec{NodeName: node, NodeSelector: map[string]string{"fleet": "bench"},
			Containers: []*corralpb.Container{{Name: "agent", Image: "nginx:1.25", ImagePullPolicy: "IfNotPresent"}},
			Tolerations: []*corralpb.Toleration{tol("node.kubernetes.io/not-ready", "NoExecute"), tol("node.kubernetes.io/unreachable", "NoExecute"),
				tol("node.kubernetes.io/disk-pressure", "NoSchedule"), tol("node.kubernetes.io/memory-pressure", "NoSchedule"),
				tol("node.kubernetes.io/pid-pressure", "NoSchedule"), tol("node.kubernetes.io/unschedulable", "NoSchedule")},
			RestartPolicy: "Always", DnsPolicy: "ClusterFirst", SchedulerName: "default-scheduler"},
	}}}
}

// BenchmarkLargeWrite writes one batch creating a DaemonSet's 5,000 pods
// through a three-server cluster, each pod whole in the entry (full) or as
// what differs from a base pod (thin, as the DaemonSet controller writes
// them): until the writer has its result, and until every server has
// applied it.
func BenchmarkLargeWrite(b *testing.B) {
	for _, thin := range []bool{false, true} {
		name := "ops=full"
		if thin {
			name = "ops=thin"
		}
		b.Run(name, func(b *testing.B) {
			c := newTestCluster(b, 3)
			c.startAll()
			l := c.leader()
			for n := 0; n < b.N; n++ {
				batch := &corralpb.Batch{}
				var base *corralpb.Object
				if thin {
					base = daemonPod(fmt.Sprintf("ds%d", n), "", 0)
					base.GetPod().Metadata.Name, base.GetPod().Metadata.Uid = "", ""
					batch.Bases = []*corralpb.Object{base}
				}
				for i := 0; i < 5000; i++ {
					pod := daemonPod(fmt.Sprintf("ds%d", n), fmt.Sprintf("node-%05d", i), i)
					op := &corralpb.Op{Type: corralpb.Op_PUT, Object: pod, Precondition: corralpb.Op_MUST_NOT_EXIST}
					if thin {
						t, ok := api.Thin(pod, base)
						if !ok {
							b.Fatal("pod cannot be thinned")
						}
						op.Object, op.Base = t.(*corralpb.Object), 1
					}
					batch.Ops = append(batch.Ops, op)
				}
				b.ReportMetric(float64(proto.Size(batch))/(1<<20), "entry-MiB")
				start := time.Now()
				res, err := l.srv.Write(context.Background(), batch)
				if err != nil || res.GetCode() != corralpb.ErrorCode_OK {
					b.Fatal(err, res)
				}
				written := time.Since(start)
				idx := l.srv.raft.AppliedIndex()
				for _, nd := range c.nodes {
					if err := nd.srv.WaitApplied(context.Background(), idx); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(written.Microseconds())/1000, "written-ms")
				b.ReportMetric(float64(time.Since(start).Microseconds())/1000, "all-applied-ms")
			}
		})
	}
}
