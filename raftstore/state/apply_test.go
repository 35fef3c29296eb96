package state

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

// opFixture is the state every TestApplyOp case starts from: namespace
// default (index 1); DaemonSet default/nginx, Node n1 and PriorityClass high
// (index 2).
func opFixture(t *testing.T) *Store {
	t.Helper()
	s := newStoreWithNamespaces(t, "default")
	applyOK(t, s, 2, createOp(dsObj("default", "nginx")), createOp(nodeObj("n1")), createOp(pcObj("high")))
	return s
}

// applyOpCase is one op applied to opFixture's state.
type applyOpCase struct {
	name    string
	op      *corralpb.Op
	code    corralpb.ErrorCode
	msg     string
	present bool // after the op, DaemonSet default/nginx exists
}

func applyOpCases() []applyOpCase {
	const conflictMsg = `Operation cannot be fulfilled on daemonsets.apps "nginx": the object has been modified; please apply your changes to the latest version and try again`
	withPre := func(op *corralpb.Op, pre corralpb.Op_Precondition, rv, uid string) *corralpb.Op {
		op.Precondition, op.ResourceVersion, op.Uid = pre, rv, uid
		return op
	}
	return []applyOpCase{
		{"put none replaces", putOp(dsObj("default", "nginx")), corralpb.ErrorCode_OK, "", true},
		{"put none creates", putOp(dsObj("default", "other")), corralpb.ErrorCode_OK, "", true},
		{"create existing", createOp(dsObj("default", "nginx")), corralpb.ErrorCode_ALREADY_EXISTS,
			`daemonsets.apps "nginx" already exists`, true},
		{"create existing cluster-scoped", createOp(pcObj("high")), corralpb.ErrorCode_ALREADY_EXISTS,
			`priorityclasses.scheduling.k8s.io "high" already exists`, true},
		{"create new", createOp(dsObj("default", "other")), corralpb.ErrorCode_OK, "", true},
		{"must exist missing", withPre(putOp(dsObj("default", "gone")), corralpb.Op_MUST_EXIST, "", ""),
			corralpb.ErrorCode_NOT_FOUND, `daemonsets.apps "gone" not found`, true},
		{"must exist present", withPre(putOp(dsObj("default", "nginx")), corralpb.Op_MUST_EXIST, "", ""),
			corralpb.ErrorCode_OK, "", true},
		{"rv matches", withPre(putOp(dsObj("default", "nginx")), corralpb.Op_RESOURCE_VERSION, "2", ""),
			corralpb.ErrorCode_OK, "", true},
		{"rv differs", withPre(putOp(dsObj("default", "nginx")), corralpb.Op_RESOURCE_VERSION, "1", ""),
			corralpb.ErrorCode_CONFLICT, conflictMsg, true},
		{"rv missing object", withPre(putOp(dsObj("default", "gone")), corralpb.Op_RESOURCE_VERSION, "2", ""),
			corralpb.ErrorCode_NOT_FOUND, `daemonsets.apps "gone" not found`, true},
		{"uid matches", withPre(putOp(dsObj("default", "nginx")), corralpb.Op_NONE, "", "uid-default-nginx"),
			corralpb.ErrorCode_OK, "", true},
		{"uid differs", withPre(putOp(dsObj("default", "nginx")), corralpb.Op_NONE, "", "other-uid"),
			corralpb.ErrorCode_CONFLICT,
			`Operation cannot be fulfilled on daemonsets.apps "nginx": Precondition failed: UID in precondition: other-uid, UID in object meta: uid-default-nginx`, true},
		{"uid missing object", withPre(putOp(dsObj("default", "gone")), corralpb.Op_NONE, "", "u"),
			corralpb.ErrorCode_NOT_FOUND, `daemonsets.apps "gone" not found`, true},
		{"namespace missing", putOp(dsObj("monitoring", "nginx")), corralpb.ErrorCode_NOT_FOUND,
			`namespaces "monitoring" not found`, true},
		{"namespace missing before exists check", createOp(podObj("monitoring", "p", "")), corralpb.ErrorCode_NOT_FOUND,
			`namespaces "monitoring" not found`, true},
		{"no kind", putOp(&corralpb.Object{}), corralpb.ErrorCode_INVALID, "put: object has no kind", true},
		{"nil object", putOp(nil), corralpb.ErrorCode_INVALID, "put: object has no kind", true},
		{"no name", putOp(dsObj("default", "")), corralpb.ErrorCode_INVALID,
			"daemonsets.apps: resource name may not be empty", true},
		{"no namespace", putOp(dsObj("", "x")), corralpb.ErrorCode_INVALID,
			`daemonsets.apps "x": namespace may not be empty`, true},
		{"cluster-scoped with namespace", putOp(withNamespace(nodeObj("n2"), "default")), corralpb.ErrorCode_INVALID,
			`nodes "n2": cluster-scoped objects have no namespace (got "default")`, true},
		{"key mismatch", &corralpb.Op{Type: corralpb.Op_PUT, Object: dsObj("default", "nginx"),
			Key: &corralpb.ObjectKey{Kind: "DaemonSet", Namespace: "default", Name: "x"}}, corralpb.ErrorCode_INVALID,
			`put daemonsets.apps "nginx": key DaemonSet "default"/"x" does not name the object`, true},
		{"unknown precondition", withPre(putOp(dsObj("default", "nginx")), 99, "", ""), corralpb.ErrorCode_INVALID,
			`daemonsets.apps "nginx": unknown precondition 99`, true},
		{"unspecified op", &corralpb.Op{Object: dsObj("default", "nginx")}, corralpb.ErrorCode_INVALID,
			"unknown op type TYPE_UNSPECIFIED", true},
		{"delete", deleteOp("DaemonSet", "default", "nginx"), corralpb.ErrorCode_OK, "", false},
		{"delete by object", &corralpb.Op{Type: corralpb.Op_DELETE, Object: dsObj("default", "nginx")},
			corralpb.ErrorCode_OK, "", false},
		{"delete missing", deleteOp("DaemonSet", "default", "gone"), corralpb.ErrorCode_NOT_FOUND,
			`daemonsets.apps "gone" not found`, true},
		{"delete missing node", deleteOp("Node", "", "n9"), corralpb.ErrorCode_NOT_FOUND, `nodes "n9" not found`, true},
		{"delete must exist missing", withPre(deleteOp("Pod", "default", "p"), corralpb.Op_MUST_EXIST, "", ""),
			corralpb.ErrorCode_NOT_FOUND, `pods "p" not found`, true},
		{"delete rv matches", withPre(deleteOp("DaemonSet", "default", "nginx"), corralpb.Op_RESOURCE_VERSION, "2", ""),
			corralpb.ErrorCode_OK, "", false},
		{"delete rv differs", withPre(deleteOp("DaemonSet", "default", "nginx"), corralpb.Op_RESOURCE_VERSION, "3", ""),
			corralpb.ErrorCode_CONFLICT, conflictMsg, true},
		{"delete uid differs", withPre(deleteOp("DaemonSet", "default", "nginx"), corralpb.Op_NONE, "", "x"),
			corralpb.ErrorCode_CONFLICT,
			`Operation cannot be fulfilled on daemonsets.apps "nginx": Precondition failed: UID in precondition: x, UID in object meta: uid-default-nginx`, true},
		{"delete uid matches", withPre(deleteOp("DaemonSet", "default", "nginx"), corralpb.Op_NONE, "", "uid-default-nginx"),
			corralpb.ErrorCode_OK, "", false},
		{"delete must not exist", withPre(deleteOp("DaemonSet", "default", "nginx"), corralpb.Op_MUST_NOT_EXIST, "", ""),
			corralpb.ErrorCode_INVALID, `delete daemonsets.apps "nginx": precondition MUST_NOT_EXIST is not valid for a delete`, true},
		{"delete unknown kind", deleteOp("Deployment", "default", "nginx"), corralpb.ErrorCode_INVALID,
			`delete: unknown kind "Deployment"`, true},
		{"delete without key or object", &corralpb.Op{Type: corralpb.Op_DELETE}, corralpb.ErrorCode_INVALID,
			"delete: op has neither key nor object", true},
	}
}

func TestApplyOp(t *testing.T) {
	for _, tt := range applyOpCases() {
		t.Run(tt.name, func(t *testing.T) {
			s := opFixture(t)
			before := mustGet(t, s, "DaemonSet", "default", "nginx")
			r := applyOne(t, s, 10, tt.op)
			if r.GetCode() != tt.code || r.GetMessage() != tt.msg {
				t.Fatalf("got %s %q, want %s %q", r.GetCode(), r.GetMessage(), tt.code, tt.msg)
			}
			if r.GetIndex() != 10 {
				t.Errorf("result index %d, want 10", r.GetIndex())
			}
			after := mustGet(t, s, "DaemonSet", "default", "nginx")
			if (after != nil) != tt.present {
				t.Fatalf("default/nginx present=%v, want %v", after != nil, tt.present)
			}
			if tt.code != corralpb.ErrorCode_OK {
				if after != before {
					t.Errorf("failed op changed the stored object")
				}
				if len(r.GetObjects()) != 0 {
					t.Errorf("failed op returned %d objects", len(r.GetObjects()))
				}
				if got := s.LatestIndex(); got != 10 {
					t.Errorf("latest index %d, want 10", got)
				}
				return
			}
			checkOpResult(t, s, tt.op, r)
		})
	}
}

// checkOpResult checks a successful single-op result: a PUT returns the
// stored object stamped with the index, a DELETE the removed object.
func checkOpResult(t *testing.T, s *Store, op *corralpb.Op, r *corralpb.BatchResult) {
	t.Helper()
	if len(r.GetObjects()) != 1 {
		t.Fatalf("got %d objects, want 1", len(r.GetObjects()))
	}
	got := r.GetObjects()[0]
	m := metaOf(got)
	stored := mustGet(t, s, kindOf(got).name, m.GetNamespace(), m.GetName())
	if op.GetType() == corralpb.Op_DELETE {
		if stored != nil {
			t.Fatalf("deleted object still stored")
		}
		if m.GetResourceVersion() != "2" {
			t.Errorf("removed object rv %q, want the last stored one, 2", m.GetResourceVersion())
		}
		return
	}
	if stored != got {
		t.Errorf("result object is not the stored object")
	}
	if m.GetResourceVersion() != "10" {
		t.Errorf("rv %q, want 10", m.GetResourceVersion())
	}
	if k := kindOf(got); s.KindIndex(k.name) != 10 {
		t.Errorf("KindIndex(%s) = %d, want 10", k.name, s.KindIndex(k.name))
	}
}

func withNamespace(o *corralpb.Object, ns string) *corralpb.Object {
	metaOf(o).Namespace = ns
	return o
}

func TestPutClonesAndStamps(t *testing.T) {
	s := newStoreWithNamespaces(t, "default")
	in := dsObj("default", "nginx")
	orig := proto.Clone(in)
	r := applyOK(t, s, 7, putOp(in))
	if !proto.Equal(in, orig) {
		t.Fatalf("Apply mutated the proposed object")
	}
	metaOf(in).Labels = map[string]string{"changed": "yes"}
	got := mustGet(t, s, "DaemonSet", "default", "nginx")
	if got != r.GetObjects()[0] {
		t.Fatalf("result object is not the stored one")
	}
	if len(metaOf(got).GetLabels()) != 0 {
		t.Fatalf("stored object shares memory with the proposed one")
	}
	want := proto.Clone(orig).(*corralpb.Object)
	metaOf(want).ResourceVersion = "7"
	if !proto.Equal(got, want) {
		t.Fatalf("stored %v, want %v", got, want)
	}
}

func TestBatchAtomicity(t *testing.T) {
	s := newStoreWithNamespaces(t, "default")
	res := s.Apply(5, entry(
		batch(createOp(dsObj("default", "a")), createOp(podObj("monitoring", "p", "n1"))),
		batch(createOp(cmObj("default", "cm"))),
		batch(createOp(dsObj("default", "b")), createOp(dsObj("default", "b"))),
	))
	codes := []corralpb.ErrorCode{}
	for _, r := range res.GetResults() {
		codes = append(codes, r.GetCode())
	}
	want := []corralpb.ErrorCode{corralpb.ErrorCode_NOT_FOUND, corralpb.ErrorCode_OK, corralpb.ErrorCode_ALREADY_EXISTS}
	if !slices.Equal(codes, want) {
		t.Fatalf("codes %v, want %v", codes, want)
	}
	if msg := res.GetResults()[2].GetMessage(); msg != `daemonsets.apps "b" already exists` {
		t.Errorf("message %q", msg)
	}
	for _, name := range []string{"a", "b"} {
		if mustGet(t, s, "DaemonSet", "default", name) != nil {
			t.Errorf("daemonset %s of a failed batch is visible", name)
		}
	}
	if mustGet(t, s, "ConfigMap", "default", "cm") == nil {
		t.Errorf("configmap of the successful batch is missing")
	}
	if got := s.KindIndex("DaemonSet"); got != 0 {
		t.Errorf("KindIndex(DaemonSet) = %d after failed batches, want 0", got)
	}
	if got := s.KindIndex("ConfigMap"); got != 5 {
		t.Errorf("KindIndex(ConfigMap) = %d, want 5", got)
	}
}

// A batch that omits its objects is applied all the same; only its result
// is leaner.
func TestBatchOmitObjects(t *testing.T) {
	s := newStoreWithNamespaces(t, "default")
	b := batch(createOp(cmObj("default", "a")), createOp(cmObj("default", "b")))
	b.OmitObjects = true
	res := s.Apply(5, entry(b, batch(createOp(cmObj("default", "c")))))
	omitted, kept := res.GetResults()[0], res.GetResults()[1]
	if omitted.GetCode() != corralpb.ErrorCode_OK || omitted.GetIndex() != 5 || len(omitted.GetObjects()) != 0 {
		t.Errorf("omitting batch: %v, want OK at 5 without objects", omitted)
	}
	if kept.GetCode() != corralpb.ErrorCode_OK || len(kept.GetObjects()) != 1 || metaOf(kept.GetObjects()[0]).GetName() != "c" {
		t.Errorf("other batch: %v, want OK with configmap c", kept)
	}
	for _, name := range []string{"a", "b", "c"} {
		if got := mustGet(t, s, "ConfigMap", "default", name); got == nil || metaOf(got).GetResourceVersion() != "5" {
			t.Errorf("configmap %s = %v, want it stored at 5", name, got)
		}
	}
}

func TestBatchOpsSeeEarlierOps(t *testing.T) {
	s := New()
	r := applyOK(t, s, 3,
		createOp(nsObj("monitoring")),
		createOp(podObj("monitoring", "p", "n1")),
		&corralpb.Op{Type: corralpb.Op_PUT, Object: podObj("monitoring", "p", "n2"),
			Precondition: corralpb.Op_RESOURCE_VERSION, ResourceVersion: "3"},
		deleteOp("Pod", "monitoring", "p"),
		createOp(podObj("monitoring", "p", "n3")),
	)
	if len(r.GetObjects()) != 5 {
		t.Fatalf("got %d objects, want 5", len(r.GetObjects()))
	}
	if node := metaOf(r.GetObjects()[3]); node.GetName() != "p" || r.GetObjects()[3].GetPod().GetSpec().GetNodeName() != "n2" {
		t.Errorf("delete returned %v, want the pod on n2", r.GetObjects()[3])
	}
	pods, err := s.PodsByNode(nil, "n3")
	if err != nil || len(pods) != 1 {
		t.Fatalf("PodsByNode(n3) = %v, %v", names(pods), err)
	}
	for _, n := range []string{"n1", "n2"} {
		if pods, _ := s.PodsByNode(nil, n); len(pods) != 0 {
			t.Errorf("PodsByNode(%s) = %v, want none", n, names(pods))
		}
	}
}

func TestNamespaceDeleteCascades(t *testing.T) {
	s := newStoreWithNamespaces(t, "monitoring", "monitoring-2", "default")
	applyOK(t, s, 2,
		createOp(dsObj("monitoring", "agent")),
		createOp(podObj("monitoring", "agent-b", "n1", "ds-uid")),
		createOp(podObj("monitoring", "agent-a", "n1", "ds-uid")),
		createOp(cmObj("monitoring", "cfg")),
		createOp(podObj("monitoring-2", "keep", "n1", "ds-uid")),
		createOp(cmObj("default", "keep")),
		createOp(nodeObj("n1")),
	)
	sub, err := s.Subscribe(2)
	if err != nil {
		t.Fatal(err)
	}
	r := applyOK(t, s, 3, deleteOp("Namespace", "", "monitoring"))
	if got := metaOf(r.GetObjects()[0]).GetName(); got != "monitoring" || kindOf(r.GetObjects()[0]) != kindNamespace {
		t.Fatalf("result object %v, want namespace monitoring", r.GetObjects()[0])
	}
	var got []string
	for _, e := range nextN(t, sub, 5) {
		if e.Type != EventDeleted || e.Index != 3 {
			t.Errorf("event %s at %d, want DELETED at 3", e.Type, e.Index)
		}
		got = append(got, kindOf(e.Object).name+" "+names([]*corralpb.Object{e.Object})[0])
	}
	want := []string{
		"Pod monitoring/agent-a", "Pod monitoring/agent-b", "DaemonSet monitoring/agent",
		"ConfigMap monitoring/cfg", "Namespace /monitoring",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
	for _, kind := range []string{"Pod", "DaemonSet", "ConfigMap"} {
		if objs, _ := s.List(nil, kind, "monitoring"); len(objs) != 0 {
			t.Errorf("%s left in deleted namespace: %v", kind, names(objs))
		}
		if got := s.KindIndex(kind); got != 3 {
			t.Errorf("KindIndex(%s) = %d, want 3", kind, got)
		}
	}
	if objs, _ := s.ByOwner(nil, "ds-uid"); !slices.Equal(names(objs), []string{"monitoring-2/keep"}) {
		t.Errorf("ByOwner after cascade = %v", names(objs))
	}
	if mustGet(t, s, "ConfigMap", "default", "keep") == nil || mustGet(t, s, "Node", "", "n1") == nil {
		t.Errorf("cascade removed objects outside the namespace")
	}
	if r := applyOne(t, s, 4, createOp(podObj("monitoring", "late", ""))); r.GetMessage() != `namespaces "monitoring" not found` {
		t.Errorf("put into deleted namespace: %s %q", r.GetCode(), r.GetMessage())
	}
}

func TestGuard(t *testing.T) {
	s := newStoreWithNamespaces(t, "default")
	applyOK(t, s, 5, createOp(dsObj("default", "a")))
	guarded := func(index uint64, kinds ...string) *corralpb.Batch {
		b := batch(putOp(podObj("default", "p", "n1")))
		b.GuardIndex, b.GuardKinds = index, kinds
		return b
	}
	tests := []struct {
		name  string
		batch *corralpb.Batch
		code  corralpb.ErrorCode
		msg   string
	}{
		{"stale", guarded(4, "Pod", "DaemonSet"), corralpb.ErrorCode_STALE, "stale plan: daemonsets changed after index 4"},
		{"current", guarded(5, "DaemonSet"), corralpb.ErrorCode_OK, ""},
		{"other kind", guarded(4, "Node", "Pod"), corralpb.ErrorCode_OK, ""},
		{"no guard", guarded(0, "DaemonSet"), corralpb.ErrorCode_OK, ""},
		{"unknown kind", guarded(4, "Deployment"), corralpb.ErrorCode_INVALID, `guard: unknown kind "Deployment"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := cloneStore(t, s).Apply(6, entry(tt.batch)).GetResults()[0]
			if r.GetCode() != tt.code || r.GetMessage() != tt.msg {
				t.Fatalf("got %s %q, want %s %q", r.GetCode(), r.GetMessage(), tt.code, tt.msg)
			}
		})
	}
	t.Run("earlier batch of the same entry", func(t *testing.T) {
		c := cloneStore(t, s)
		res := c.Apply(6, entry(batch(putOp(dsObj("default", "a"))), guarded(5, "DaemonSet")))
		if r := res.GetResults()[1]; r.GetCode() != corralpb.ErrorCode_STALE {
			t.Fatalf("got %s %q, want STALE", r.GetCode(), r.GetMessage())
		}
		if mustGet(t, c, "Pod", "default", "p") != nil {
			t.Fatalf("stale batch was applied")
		}
		if got := c.KindIndex("DaemonSet"); got != 6 {
			t.Fatalf("DaemonSet kind index %d after the entry, want 6", got)
		}
	})
	t.Run("earlier batch of the same entry that failed", func(t *testing.T) {
		c := cloneStore(t, s)
		failing := batch(putOp(dsObj("default", "b")), createOp(dsObj("default", "a"))) // a exists: the batch fails whole
		res := c.Apply(6, entry(failing, guarded(5, "DaemonSet")))
		if r := res.GetResults()[0]; r.GetCode() != corralpb.ErrorCode_ALREADY_EXISTS {
			t.Fatalf("failing batch: got %s %q", r.GetCode(), r.GetMessage())
		}
		if r := res.GetResults()[1]; r.GetCode() != corralpb.ErrorCode_OK {
			t.Fatalf("got %s %q, want OK: a failed batch changed nothing", r.GetCode(), r.GetMessage())
		}
		if got := c.KindIndex("DaemonSet"); got != 5 {
			t.Fatalf("DaemonSet kind index %d after the entry, want 5", got)
		}
		if got := c.KindIndex("Pod"); got != 6 {
			t.Fatalf("Pod kind index %d after the entry, want 6", got)
		}
	})
}

// cloneStore returns an independent copy of s, through Persist and Restore.
func cloneStore(t *testing.T, s *Store) *Store {
	t.Helper()
	c, err := Restore(bytes.NewReader(persist(t, s)))
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	return c
}

// A status change bumps the kind's status guard, not the kind's: a plan
// that depends only on which objects exist and what they specify is not
// refused for a status report.
func TestStatusGuard(t *testing.T) {
	s := newStoreWithNamespaces(t, "default")
	applyOK(t, s, 5, createOp(podObj("default", "p", "n1")))
	st := podObj("default", "p", "n1")
	st.GetPod().Status = &corralpb.PodStatus{Phase: "Running"}
	applyOK(t, s, 6, &corralpb.Op{Type: corralpb.Op_STATUS, Object: st})
	guarded := func(kinds ...string) *corralpb.Batch {
		b := batch(createOp(podObj("default", "q", "n2")))
		b.GuardIndex, b.GuardKinds = 5, kinds
		return b
	}
	// A status change earlier in the same entry counts too.
	again := podObj("default", "p", "n1")
	again.GetPod().Status = &corralpb.PodStatus{Phase: "Failed"}
	res := cloneStore(t, s).Apply(7, entry(batch(&corralpb.Op{Type: corralpb.Op_STATUS, Object: again}), func() *corralpb.Batch {
		b := guarded("Pod/status")
		b.GuardIndex = 6
		return b
	}()))
	if r := res.GetResults()[1]; r.GetCode() != corralpb.ErrorCode_STALE {
		t.Fatalf("status changed by an earlier batch of the entry: got %s %q, want STALE", r.GetCode(), r.GetMessage())
	}
	for _, tt := range []struct {
		kinds []string
		code  corralpb.ErrorCode
		msg   string
	}{
		{[]string{"Pod"}, corralpb.ErrorCode_OK, ""},
		{[]string{"Pod", "Pod/status"}, corralpb.ErrorCode_STALE, "stale plan: pods' status changed after index 5"},
		{[]string{"Node/status"}, corralpb.ErrorCode_OK, ""},
		{[]string{"Nope/status"}, corralpb.ErrorCode_INVALID, `guard: unknown kind "Nope/status"`},
	} {
		r := cloneStore(t, s).Apply(7, entry(guarded(tt.kinds...))).GetResults()[0]
		if r.GetCode() != tt.code || r.GetMessage() != tt.msg {
			t.Errorf("guard %v: got %s %q, want %s %q", tt.kinds, r.GetCode(), r.GetMessage(), tt.code, tt.msg)
		}
	}
}

// The readiness guard refuses a plan only when a pod lost readiness after
// it: not when pods became ready, nor on other status changes.
func TestReadinessGuard(t *testing.T) {
	at := func(sec int64) *timestamppb.Timestamp { return &timestamppb.Timestamp{Seconds: sec} }
	report := func(name, phase, ready string, since int64) *corralpb.Op {
		o := podObj("default", name, "n1")
		o.GetPod().Spec = nil
		o.GetPod().Status = &corralpb.PodStatus{Phase: phase}
		if ready != "" {
			o.GetPod().Status.Conditions = []*corralpb.PodCondition{{Type: "Ready", Status: ready, LastTransitionTime: at(since)}}
		}
		return &corralpb.Op{Type: corralpb.Op_STATUS, Object: o}
	}
	guarded := func(index uint64) *corralpb.Batch {
		b := batch(createOp(cmObj("default", "plan")))
		b.GuardIndex, b.GuardKinds = index, []string{"Pod/readiness"}
		return b
	}
	const stale = "stale plan: pods' readiness changed after index 3"
	for _, tt := range []struct {
		name   string
		change *corralpb.Op
		msg    string
	}{
		{"another pod became ready", report("q", "Running", "True", 100), ""},
		{"a ready pod reported again", report("p", "Running", "True", 50), ""},
		{"a pod not ready changed phase", report("q", "Failed", "False", 100), ""},
		{"a ready pod became unready", report("p", "Running", "False", 100), stale},
		{"a ready pod lost its condition", report("p", "Failed", "", 0), stale},
		{"a ready pod ready since later", report("p", "Running", "True", 60), stale},
		{"a ready pod deleted", deleteOp("Pod", "default", "p"), stale},
		{"a pod not ready deleted", deleteOp("Pod", "default", "q"), ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newStoreWithNamespaces(t, "default")
			applyOK(t, s, 2, createOp(podObj("default", "p", "n1")), createOp(podObj("default", "q", "n1")))
			applyOK(t, s, 3, report("p", "Running", "True", 50))
			code := corralpb.ErrorCode_OK
			if tt.msg != "" {
				code = corralpb.ErrorCode_STALE
			}
			// A change stored by an earlier entry, and one made by an
			// earlier batch of the same entry.
			later := cloneStore(t, s)
			applyOK(t, later, 4, tt.change)
			if r := later.Apply(5, entry(guarded(3))).GetResults()[0]; r.GetCode() != code || r.GetMessage() != tt.msg {
				t.Errorf("after the change: got %s %q, want %s %q", r.GetCode(), r.GetMessage(), code, tt.msg)
			}
			r := s.Apply(4, entry(batch(tt.change), guarded(3))).GetResults()[1]
			if r.GetCode() != code || r.GetMessage() != tt.msg {
				t.Errorf("in the same entry: got %s %q, want %s %q", r.GetCode(), r.GetMessage(), code, tt.msg)
			}
		})
	}
	s := newStoreWithNamespaces(t, "default")
	b := batch(createOp(cmObj("default", "plan")))
	b.GuardIndex, b.GuardKinds = 1, []string{"Node/readiness"}
	if r := s.Apply(2, entry(b)).GetResults()[0]; r.GetCode() != corralpb.ErrorCode_INVALID {
		t.Errorf("a readiness guard on nodes: got %s %q, want INVALID", r.GetCode(), r.GetMessage())
	}
}

func TestBatchOpsCompletedFromBases(t *testing.T) {
	s := newStoreWithNamespaces(t, "default")
	base := podObj("default", "", "", "ds-uid")
	var whole, ops []*corralpb.Op
	for i, node := range []string{"n1", "n2", "n3"} {
		pod := podObj("default", fmt.Sprintf("p%d", i), node, "ds-uid")
		thin, ok := api.Thin(pod, base)
		if !ok {
			t.Fatalf("pod %d cannot be thinned", i)
		}
		whole = append(whole, createOp(pod))
		ops = append(ops, &corralpb.Op{Type: corralpb.Op_PUT, Object: thin.(*corralpb.Object), Base: 1, Precondition: corralpb.Op_MUST_NOT_EXIST})
	}
	b := &corralpb.Batch{Ops: ops, Bases: []*corralpb.Object{base}}
	sent := proto.Clone(b)
	res := s.Apply(2, entry(b))
	if r := res.GetResults()[0]; r.GetCode() != corralpb.ErrorCode_OK {
		t.Fatalf("%s: %s", r.GetCode(), r.GetMessage())
	}
	if !proto.Equal(b, sent) {
		t.Error("Apply changed the caller's batch")
	}
	for i, op := range whole {
		want := proto.Clone(op.GetObject()).(*corralpb.Object)
		want.GetPod().Metadata.ResourceVersion = "2"
		if got := mustGet(t, s, "Pod", "default", fmt.Sprintf("p%d", i)); !proto.Equal(got, want) {
			t.Errorf("pod %d:\n got %v\nwant %v", i, got, want)
		}
	}

	// Applied as the FSM does, from an entry decoded for it, the pods
	// share what they took from the base.
	owned := &corralpb.Batch{Bases: []*corralpb.Object{proto.Clone(base).(*corralpb.Object)}}
	for _, name := range []string{"r0", "r1"} {
		thin, _ := api.Thin(podObj("default", name, "n1", "ds-uid"), base)
		owned.Ops = append(owned.Ops, &corralpb.Op{Type: corralpb.Op_PUT, Object: thin.(*corralpb.Object), Base: 1})
	}
	if r := s.ApplyOwned(3, entry(owned)).GetResults()[0]; r.GetCode() != corralpb.ErrorCode_OK {
		t.Fatalf("%s: %s", r.GetCode(), r.GetMessage())
	}
	r0, r1 := mustGet(t, s, "Pod", "default", "r0").GetPod(), mustGet(t, s, "Pod", "default", "r1").GetPod()
	if r0.GetSpec().GetContainers()[0] != r1.GetSpec().GetContainers()[0] || r0.GetSpec() == r1.GetSpec() {
		t.Error("pods stored from one base do not share its containers, or share one spec")
	}

	// A base the batch does not have fails the whole batch.
	bad := &corralpb.Batch{Bases: []*corralpb.Object{base}, Ops: []*corralpb.Op{
		createOp(podObj("default", "q0", "n1", "ds-uid")),
		{Type: corralpb.Op_PUT, Object: podObj("default", "q1", "n2"), Base: 2},
	}}
	r := s.Apply(4, entry(bad)).GetResults()[0]
	if r.GetCode() != corralpb.ErrorCode_INVALID || r.GetMessage() != "op 1: base 2: the batch has 1" {
		t.Errorf("got %s %q, want INVALID for the missing base", r.GetCode(), r.GetMessage())
	}
	if mustGet(t, s, "Pod", "default", "q0") != nil {
		t.Error("a pod of the refused batch is stored")
	}
}
