package state

import (
	"testing"

	"google.golang.org/protobuf/proto"

	corralpb "github.com/corral-dev/corral/proto"
)

func TestStatusOpReplacesOnlyStatus(t *testing.T) {
	s := newStoreWithNamespaces(t, "default")
	applyOK(t, s, 2, createOp(dsObj("default", "nginx")))
	// The writer's copy has a stale spec and labels: only its status counts.
	w := dsObj("default", "nginx")
	w.GetDaemonSet().Metadata.Labels = map[string]string{"stale": "yes"}
	w.GetDaemonSet().Status = &corralpb.DaemonSetStatus{DesiredNumberScheduled: 3, NumberReady: 2}
	applyOK(t, s, 3, &corralpb.Op{Type: corralpb.Op_STATUS, Object: w, Uid: "uid-default-nginx"})
	got, err := s.Get(nil, "DaemonSet", "default", "nginx")
	if err != nil {
		t.Fatal(err)
	}
	if got.GetDaemonSet().GetStatus().GetNumberReady() != 2 || got.GetDaemonSet().GetMetadata().GetLabels()["stale"] != "" {
		t.Fatalf("after STATUS: %v", got)
	}
	if rv := got.GetDaemonSet().GetMetadata().GetResourceVersion(); rv != "3" {
		t.Fatalf("resourceVersion %s, want 3", rv)
	}
	// The same status again writes nothing: no new version, no event.
	sub, err := s.Subscribe(3)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	applyOK(t, s, 4, &corralpb.Op{Type: corralpb.Op_STATUS, Object: w})
	again, _ := s.Get(nil, "DaemonSet", "default", "nginx")
	if !proto.Equal(again, got) {
		t.Fatalf("unchanged status rewrote the object: %v", again)
	}
	if evs, _, _ := sub.poll(); len(evs) != 0 {
		t.Fatalf("unchanged status produced events: %v", evs)
	}
	for _, tc := range []struct {
		name string
		op   *corralpb.Op
		code corralpb.ErrorCode
	}{
		{"missing", &corralpb.Op{Type: corralpb.Op_STATUS, Object: dsObj("default", "gone")}, corralpb.ErrorCode_NOT_FOUND},
		{"other uid", &corralpb.Op{Type: corralpb.Op_STATUS, Object: w, Uid: "recreated"}, corralpb.ErrorCode_CONFLICT},
		{"stale rv", &corralpb.Op{Type: corralpb.Op_STATUS, Object: w, Precondition: corralpb.Op_RESOURCE_VERSION, ResourceVersion: "2"}, corralpb.ErrorCode_CONFLICT},
	} {
		res := s.Apply(5, entry(batch(tc.op)))
		if c := res.GetResults()[0].GetCode(); c != tc.code {
			t.Errorf("%s: code %v, want %v (%s)", tc.name, c, tc.code, res.GetResults()[0].GetMessage())
		}
	}
}

func TestStatusOpLeavesThePreviousVersionAlone(t *testing.T) {
	s := newStoreWithNamespaces(t, "default")
	applyOK(t, s, 2, createOp(podObj("default", "web", "node-1")))
	before, err := s.Get(nil, "Pod", "default", "web")
	if err != nil {
		t.Fatal(err)
	}
	snapshot := proto.Clone(before)
	report := podObj("default", "web", "node-1")
	report.GetPod().Spec = nil // an agent's report carries the status
	report.GetPod().Status = &corralpb.PodStatus{Phase: "Running", PodIp: "10.42.0.7"}
	applyOK(t, s, 3, &corralpb.Op{Type: corralpb.Op_STATUS, Object: report})
	after, err := s.Get(nil, "Pod", "default", "web")
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(before, snapshot) {
		t.Fatalf("the status update changed the version readers already hold:\n%v\nwas\n%v", before, snapshot)
	}
	if p := after.GetPod(); p.GetStatus().GetPhase() != "Running" || p.GetMetadata().GetResourceVersion() != "3" ||
		!proto.Equal(p.GetSpec(), snapshot.(*corralpb.Object).GetPod().GetSpec()) {
		t.Fatalf("after the status update: %v", after)
	}
	// A later change to the new version's status does not reach the old one.
	report.GetPod().Status = &corralpb.PodStatus{Phase: "Failed"}
	applyOK(t, s, 4, &corralpb.Op{Type: corralpb.Op_STATUS, Object: report})
	if after.GetPod().GetStatus().GetPhase() != "Running" || !proto.Equal(before, snapshot) {
		t.Fatalf("older versions changed: %v / %v", after, before)
	}
}

// ApplyOwned (the FSM's, for entries it decoded) stores what Apply would.
func TestApplyOwnedStoresWhatApplyStores(t *testing.T) {
	copied, owned := newStoreWithNamespaces(t, "default"), newStoreWithNamespaces(t, "default")
	report := podObj("default", "web", "node-1")
	report.GetPod().Status = &corralpb.PodStatus{Phase: "Running"}
	entries := func() []*corralpb.LogEntry {
		return []*corralpb.LogEntry{
			entry(batch(createOp(podObj("default", "web", "node-1")), createOp(dsObj("default", "ds")))),
			entry(batch(&corralpb.Op{Type: corralpb.Op_STATUS, Object: proto.Clone(report).(*corralpb.Object)})),
		}
	}
	for i, e := range entries() {
		copied.Apply(uint64(10+i), e)
	}
	for i, e := range entries() {
		owned.ApplyOwned(uint64(10+i), e)
	}
	for _, k := range [][2]string{{"Pod", "web"}, {"DaemonSet", "ds"}} {
		a, _ := copied.Get(nil, k[0], "default", k[1])
		b, _ := owned.Get(nil, k[0], "default", k[1])
		if a == nil || !proto.Equal(a, b) {
			t.Errorf("%s: Apply stored\n%v\nApplyOwned stored\n%v", k[0], a, b)
		}
	}
}

// A status report replaces the whole status: fields it leaves zero are
// zero afterwards, and a report without a status clears it, while the
// metadata stays the stored object's and the next version shares nothing
// that the report could change.
func TestStatusOpReplacesTheWholeStatus(t *testing.T) {
	s := newStoreWithNamespaces(t, "default")
	applyOK(t, s, 2, createOp(dsObj("default", "nginx")))
	report := func(st *corralpb.DaemonSetStatus) *corralpb.Op {
		w := dsObj("default", "nginx")
		w.GetDaemonSet().Status = st
		return &corralpb.Op{Type: corralpb.Op_STATUS, Object: w}
	}
	applyOK(t, s, 3, report(&corralpb.DaemonSetStatus{DesiredNumberScheduled: 3, NumberReady: 2, ObservedGeneration: 1}))
	applyOK(t, s, 4, report(&corralpb.DaemonSetStatus{DesiredNumberScheduled: 3}))
	got, _ := s.Get(nil, "DaemonSet", "default", "nginx")
	if st := got.GetDaemonSet().GetStatus(); st.GetNumberReady() != 0 || st.GetObservedGeneration() != 0 || st.GetDesiredNumberScheduled() != 3 {
		t.Fatalf("status after a report with zero fields: %v", st)
	}
	if m := got.GetDaemonSet().GetMetadata(); m.GetResourceVersion() != "4" || m.GetUid() != "uid-default-nginx" || m.GetName() != "nginx" {
		t.Fatalf("metadata after the report: %v", m)
	}
	applyOK(t, s, 5, report(nil))
	got, _ = s.Get(nil, "DaemonSet", "default", "nginx")
	if got.GetDaemonSet().GetStatus() != nil || got.GetDaemonSet().GetSpec() == nil {
		t.Fatalf("after a report without a status: %v", got)
	}
}
