package server

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	corralpb "github.com/corral-dev/corral/proto"
	"github.com/corral-dev/corral/raftstore/state"
)

// TestAssignHubRoutesChanges: a pod's change reaches only its node's
// streams, a ConfigMap's every stream, a Node's only the streams that
// asked for routes.
func TestAssignHubRoutesChanges(t *testing.T) {
	h := newAssignHub(nil, slog.New(slog.DiscardHandler))
	w1 := h.register("w1", false)
	w2 := h.register("w2", true)
	defer h.unregister(w1)
	defer h.unregister(w2)
	pod := &corralpb.Object{Kind: &corralpb.Object_Pod{Pod: &corralpb.Pod{Metadata: &corralpb.ObjectMeta{Name: "p"}, Spec: &corralpb.PodSpec{NodeName: "w1"}}}}
	cm := &corralpb.Object{Kind: &corralpb.Object_ConfigMap{ConfigMap: &corralpb.ConfigMap{Metadata: &corralpb.ObjectMeta{Name: "c"}}}}
	node := &corralpb.Object{Kind: &corralpb.Object_Node{Node: &corralpb.Node{Metadata: &corralpb.ObjectMeta{Name: "w3"}}}}
	ds := &corralpb.Object{Kind: &corralpb.Object_DaemonSet{DaemonSet: &corralpb.DaemonSet{Metadata: &corralpb.ObjectMeta{Name: "d"}}}}
	h.deliver([]state.Event{
		{Type: state.EventAdded, Index: 1, Object: pod},
		{Type: state.EventAdded, Index: 2, Object: cm},
		{Type: state.EventAdded, Index: 3, Object: node},
		{Type: state.EventAdded, Index: 4, Object: ds},
	})
	queued := func(s *hubStream) []uint64 {
		s.mu.Lock()
		defer s.mu.Unlock()
		var out []uint64
		for _, ev := range s.queue {
			out = append(out, ev.Index)
		}
		return out
	}
	if got := queued(w1); len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Errorf("w1 (no routes) got changes %v, want [1 2]: its pod and the ConfigMap", got)
	}
	if got := queued(w2); len(got) != 2 || got[0] != 2 || got[1] != 3 {
		t.Errorf("w2 (routes) got changes %v, want [2 3]: the ConfigMap and the Node", got)
	}
}

// TestAssignHubDeliversRouteChangesOnly: a Node change reaches the routed
// streams only when the node's route (pod CIDR via InternalIP) changed
// since the last one delivered; its condition flapping wakes no stream.
func TestAssignHubDeliversRouteChangesOnly(t *testing.T) {
	h := newAssignHub(nil, slog.New(slog.DiscardHandler))
	s := h.register("w1", true)
	defer h.unregister(s)
	node := func(cidr, ip, ready string) *corralpb.Object {
		n := &corralpb.Node{Metadata: &corralpb.ObjectMeta{Name: "w2"}, Spec: &corralpb.NodeSpec{PodCidr: cidr},
			Status: &corralpb.NodeStatus{Conditions: []*corralpb.NodeCondition{{Type: "Ready", Status: ready}}}}
		if ip != "" {
			n.Status.Addresses = []*corralpb.NodeAddress{{Type: "InternalIP", Address: ip}}
		}
		return &corralpb.Object{Kind: &corralpb.Object_Node{Node: n}}
	}
	h.deliver([]state.Event{
		{Type: state.EventAdded, Index: 1, Object: node("", "", "True")},                        // first seen: delivered
		{Type: state.EventModified, Index: 2, Object: node("", "", "False")},                    // still no route
		{Type: state.EventModified, Index: 3, Object: node("10.1.2.0/24", "", "False")},         // still no route (no IP)
		{Type: state.EventModified, Index: 4, Object: node("10.1.2.0/24", "192.0.2.2", "True")}, // a route
		{Type: state.EventModified, Index: 5, Object: node("10.1.2.0/24", "192.0.2.2", "Unknown")},
		{Type: state.EventModified, Index: 6, Object: node("10.1.2.0/24", "192.0.2.2", "True")},
		{Type: state.EventModified, Index: 7, Object: node("10.1.2.0/24", "192.0.2.9", "True")}, // a new IP
		{Type: state.EventDeleted, Index: 8, Object: node("10.1.2.0/24", "192.0.2.9", "True")},  // gone
		{Type: state.EventAdded, Index: 9, Object: node("10.1.2.0/24", "192.0.2.9", "True")},    // back
		{Type: state.EventDeleted, Index: 10, Object: node("10.1.2.0/24", "192.0.2.9", "True")}, // gone again
	})
	s.mu.Lock()
	var got []uint64
	for _, ev := range s.queue {
		got = append(got, ev.Index)
	}
	s.mu.Unlock()
	want := []uint64{1, 4, 7, 8, 9, 10}
	if len(got) != len(want) {
		t.Fatalf("delivered changes %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("delivered changes %v, want %v", got, want)
		}
	}
	// Deleted nodes are forgotten: churn does not grow the hub.
	if len(h.routes) != 0 {
		t.Fatalf("the hub still holds routes %v after the node was deleted", h.routes)
	}
}

// TestAssignHubEncodersAreBounded: however many streams encode at once,
// no more than the hub's slots do so together; the others wait their
// turn (or their stream's end) and then all get one.
func TestAssignHubEncodersAreBounded(t *testing.T) {
	h := newAssignHub(nil, slog.New(slog.DiscardHandler))
	slots := cap(h.encoders)
	streams := make([]*hubStream, 4*slots)
	for i := range streams {
		streams[i] = h.register(fmt.Sprintf("n%d", i), false)
		defer h.unregister(streams[i])
	}
	var mu sync.Mutex
	inside, most, done := 0, 0, 0
	release := make(chan struct{})
	full := make(chan struct{})
	var fullOnce sync.Once
	var wg sync.WaitGroup
	for _, s := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.encoding(context.Background(), func() error {
				mu.Lock()
				inside++
				most = max(most, inside)
				if inside == slots {
					fullOnce.Do(func() { close(full) })
				}
				mu.Unlock()
				<-release
				mu.Lock()
				inside--
				done++
				mu.Unlock()
				return nil
			})
			if err != nil {
				t.Errorf("encoding: %v", err)
			}
		}()
	}
	select {
	case <-full:
	case <-time.After(10 * time.Second):
		t.Fatalf("%d streams never encoded together", slots)
	}
	// Every slot is held: a stream that comes now waits, and leaves when
	// its context ends.
	ctx, cancel := context.WithCancel(context.Background())
	waited := make(chan error, 1)
	go func() {
		waited <- streams[0].encoding(ctx, func() error {
			t.Error("encoded with every slot held")
			return nil
		})
	}()
	cancel()
	if err := <-waited; status.Code(err) != codes.Canceled {
		t.Errorf("a stream whose context ended while waiting got %v, want Canceled", err)
	}
	close(release)
	wg.Wait()
	if most != slots || done != len(streams) {
		t.Errorf("%d streams: at most %d encoded together, %d in all; want %d together and all of them", len(streams), most, done, slots)
	}
}
