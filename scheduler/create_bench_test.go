package scheduler

import (
	"fmt"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

// BenchmarkCreatePods: 5,000 pods from the planner to their ops' encoding,
// whole (as before bases) and through a base.
func BenchmarkCreatePods(b *testing.B) {
	ds := dsAsking(res(mem("64Mi"), nil), "")
	hash := TemplateHash(ds)
	b.Run("whole", func(b *testing.B) {
		pl := newPlacer(DaemonPlanInput{DaemonSet: ds}, nil)
		for n := 0; n < b.N; n++ {
			size := 0
			for i := 0; i < 5000; i++ {
				p := NewDaemonPod(ds, fmt.Sprintf("node-%05d", i), hash)
				pl.adm.apply(p.Spec)
				p = proto.Clone(p).(*corralpb.Pod)
				p.Status = &corralpb.PodStatus{Phase: "Pending"}
				size += proto.Size(&corralpb.Op{Object: api.Wrap(p)})
			}
			b.ReportMetric(float64(size)/(1<<20), "MiB")
		}
	})
	b.Run("base", func(b *testing.B) {
		for n := 0; n < b.N; n++ {
			pl := newPlacer(DaemonPlanInput{DaemonSet: ds}, nil)
			var base *corralpb.Object
			size := 0
			for i := 0; i < 5000; i++ {
				p := pl.newPod(fmt.Sprintf("node-%05d", i), hash)
				c := &corralpb.Pod{Metadata: &corralpb.ObjectMeta{}, Status: &corralpb.PodStatus{}}
				api.Fill(c, p)
				c.Status.Phase = "Pending"
				if base == nil {
					base = podBase(c)
					size += proto.Size(base)
				}
				t, ok := api.Thin(api.Wrap(c), base)
				if !ok {
					b.Fatal("refused")
				}
				size += proto.Size(&corralpb.Op{Object: t.(*corralpb.Object), Base: 1})
			}
			b.ReportMetric(float64(size)/(1<<20), "MiB")
		}
	})
}
