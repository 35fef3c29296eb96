package bench

import (
	"context"
	"sync"
	"testing"
	"time"

	corralpb "github.com/corral-dev/corral/proto"
	"github.com/corral-dev/corral/raftstore/state"
)

// benchRollingUpdate changes the fleet DaemonSet's image and follows the
// rolling update (maxUnavailable updatePercent %) in the leader's state
// store until the DaemonSet's status counts all n pods updated and
// available. Every Raft entry that deletes old pods or creates new ones is
// a step of the controller; its latency is the time from the change that
// let it happen (the last pod becoming ready, or the step before it, or
// the apply) to the entry being applied on the leader: the controller
// noticing, planning and committing through Raft. Their sum over the
// waves is controller-ms-per-wave; the rest of a wave is the agents
// reporting their pods ready.
func benchRollingUpdate(b *testing.B, st *state.Store, cl corralpb.ClusterClient, ds string, n int) {
	u := &updateWatch{ds: ds, want: n, image: "nginx:1.26", done: make(chan struct{})}
	sub, err := st.Subscribe(st.LatestIndex())
	if err != nil {
		b.Fatalf("subscribe: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		defer sub.Close()
		for {
			events, err := sub.Next(ctx)
			if err != nil {
				return
			}
			now := time.Now()
			for _, ev := range events {
				u.event(ev, now)
			}
		}
	}()
	defer func() { cancel(); <-stopped }()
	u.mu.Lock()
	u.last = time.Now()
	start := u.last
	u.mu.Unlock()
	if _, err := cl.Apply(context.Background(), &corralpb.ApplyRequest{Objects: []*corralpb.Object{fleetDaemonSet(b, ds, u.image)}}); err != nil {
		b.Fatalf("apply the new template: %v", err)
	}
	select {
	case <-u.done:
	case <-time.After(5 * time.Minute):
		u.mu.Lock()
		defer u.mu.Unlock()
		b.Fatalf("rolling update of %d nodes not done after 5 minutes: %d steps so far", n, u.steps)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	waves := float64(100 / updatePercent)
	total := u.doneAt.Sub(start)
	b.ReportMetric(ms(total), "update-ms")
	b.ReportMetric(ms(total)/waves, "update-ms-per-wave")
	b.ReportMetric(ms(u.latency)/waves, "controller-ms-per-wave")
	b.ReportMetric(float64(u.steps), "update-steps")
}

// updateWatch follows a rolling update in state events.
type updateWatch struct {
	ds, image string
	want      int
	done      chan struct{}

	mu      sync.Mutex
	last    time.Time     // the latest change a controller step may answer
	latency time.Duration // summed over steps
	steps   int
	step    uint64 // the Raft index of the step being counted
	doneAt  time.Time
	once    sync.Once
}

func (u *updateWatch) event(ev state.Event, now time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if ds := ev.Object.GetDaemonSet(); ds != nil {
		s := ds.GetStatus()
		if ds.GetMetadata().GetName() == u.ds && ds.GetSpec().GetTemplate().GetSpec().GetContainers()[0].GetImage() == u.image &&
			s.GetObservedGeneration() == ds.GetMetadata().GetGeneration() && s.GetUpdatedNumberScheduled() == int32(u.want) &&
			s.GetNumberAvailable() == int32(u.want) && s.GetDesiredNumberScheduled() == int32(u.want) {
			u.once.Do(func() { u.doneAt = now; close(u.done) })
		}
		return
	}
	p := ev.Object.GetPod()
	if p == nil || p.GetMetadata().GetLabels()["app"] != u.ds {
		return
	}
	newPod := p.GetSpec().GetContainers()[0].GetImage() == u.image
	switch {
	case ev.Type == state.EventDeleted && !newPod, ev.Type == state.EventAdded && newPod:
		// A controller step: one Raft entry deletes or creates many pods.
		if ev.Index != u.step {
			u.step = ev.Index
			u.steps++
			u.latency += now.Sub(u.last)
			u.last = now
		}
	case newPod && p.GetStatus().GetPhase() == "Running" && podReady(p):
		u.last = now
	}
}
