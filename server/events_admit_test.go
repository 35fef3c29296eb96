package server

import (
	"slices"
	"testing"
	"time"

	corralpb "github.com/corral-dev/corral/proto"
)

// Identical events of a call are merged; each merged event remembers which
// of the call's events it stands for, so that a partial failure names
// exactly those.
func TestAdmitEventsRemembersWhereEachCameFrom(t *testing.T) {
	ev := func(pod, reason string) *corralpb.Event {
		return &corralpb.Event{InvolvedObject: &corralpb.ObjectReference{Kind: "Pod", Namespace: "default", Name: pod},
			Reason: reason, Message: reason + " " + pod, Source: &corralpb.EventSource{Component: "kubelet", Host: "w1"}}
	}
	evs := []*corralpb.Event{ev("a", "Pulled"), ev("b", "Pulled"), ev("a", "Pulled"), ev("c", "Started"), ev("b", "Pulled")}
	admitted, from, err := admitEvents(evs, "w1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(admitted) != 3 || admitted[0].GetCount() != 2 || admitted[1].GetCount() != 2 || admitted[2].GetCount() != 1 {
		t.Fatalf("admitted %v", admitted)
	}
	if want := [][]int{{0, 2}, {1, 4}, {3}}; !slices.EqualFunc(from, want, slices.Equal[[]int]) {
		t.Fatalf("from = %v, want %v", from, want)
	}
	if got := requestIndexes([]int{0, 2}, from); !slices.Equal(got, []int{0, 2, 3}) {
		t.Errorf("requestIndexes = %v, want [0 2 3]", got)
	}
	if evs[0].GetCount() != 0 {
		t.Error("admitEvents changed the caller's events")
	}
}
