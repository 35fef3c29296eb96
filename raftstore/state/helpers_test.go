package state

import (
	"bytes"
	"testing"

	"github.com/hashicorp/go-memdb"
	"google.golang.org/protobuf/proto"

	corralpb "github.com/corral-dev/corral/proto"
)

// Object builders. Each returns a fresh object the caller may change.

func meta(ns, name string) *corralpb.ObjectMeta {
	return &corralpb.ObjectMeta{Namespace: ns, Name: name, Uid: "uid-" + ns + "-" + name}
}

func nsObj(name string) *corralpb.Object {
	return &corralpb.Object{Kind: &corralpb.Object_Namespace{Namespace: &corralpb.Namespace{
		ApiVersion: "v1", Kind: "Namespace", Metadata: meta("", name),
	}}}
}

func nodeObj(name string) *corralpb.Object {
	return &corralpb.Object{Kind: &corralpb.Object_Node{Node: &corralpb.Node{
		ApiVersion: "v1", Kind: "Node", Metadata: meta("", name),
	}}}
}

func dsObj(ns, name string) *corralpb.Object {
	return &corralpb.Object{Kind: &corralpb.Object_DaemonSet{DaemonSet: &corralpb.DaemonSet{
		ApiVersion: "apps/v1", Kind: "DaemonSet", Metadata: meta(ns, name),
		Spec: &corralpb.DaemonSetSpec{Selector: &corralpb.LabelSelector{MatchLabels: map[string]string{"app": name}}},
	}}}
}

func cmObj(ns, name string) *corralpb.Object {
	return &corralpb.Object{Kind: &corralpb.Object_ConfigMap{ConfigMap: &corralpb.ConfigMap{
		ApiVersion: "v1", Kind: "ConfigMap", Metadata: meta(ns, name),
		Data: map[string]string{"a": "1", "b": "2", "c": "3"},
	}}}
}

func pcObj(name string) *corralpb.Object {
	return &corralpb.Object{Kind: &corralpb.Object_PriorityClass{PriorityClass: &corralpb.PriorityClass{
		ApiVersion: "scheduling.k8s.io/v1", Kind: "PriorityClass", Metadata: meta("", name), Value: 1000,
	}}}
}

// podObj is a pod bound to node (unbound when node is empty) and owned by
// the owners' uids.
func podObj(ns, name, node string, owners ...string) *corralpb.Object {
	m := meta(ns, name)
	m.Labels = map[string]string{"app": "x", "pod-template-generation": "1", "controller-revision-hash": "abc"}
	for _, uid := range owners {
		m.OwnerReferences = append(m.OwnerReferences, &corralpb.OwnerReference{
			ApiVersion: "apps/v1", Kind: "DaemonSet", Name: "owner", Uid: uid, Controller: proto.Bool(true),
		})
	}
	return &corralpb.Object{Kind: &corralpb.Object_Pod{Pod: &corralpb.Pod{
		ApiVersion: "v1", Kind: "Pod", Metadata: m,
		Spec: &corralpb.PodSpec{
			NodeName: node,
			Containers: []*corralpb.Container{{
				Name: "app", Image: "nginx:1.27",
				Ports: []*corralpb.ContainerPort{{ContainerPort: 80, Protocol: "TCP"}},
			}},
		},
		Status: &corralpb.PodStatus{Phase: "Pending"},
	}}}
}

// Op and entry builders.

func putOp(o *corralpb.Object) *corralpb.Op {
	return &corralpb.Op{Type: corralpb.Op_PUT, Object: o}
}

func createOp(o *corralpb.Object) *corralpb.Op {
	return &corralpb.Op{Type: corralpb.Op_PUT, Object: o, Precondition: corralpb.Op_MUST_NOT_EXIST}
}

func deleteOp(kind, ns, name string) *corralpb.Op {
	return &corralpb.Op{Type: corralpb.Op_DELETE, Key: &corralpb.ObjectKey{Kind: kind, Namespace: ns, Name: name}}
}

func batch(ops ...*corralpb.Op) *corralpb.Batch {
	return &corralpb.Batch{Ops: ops}
}

func entry(batches ...*corralpb.Batch) *corralpb.LogEntry {
	return &corralpb.LogEntry{Batches: batches}
}

// applyOK applies ops as one batch at index and fails the test unless it
// succeeds.
func applyOK(t testing.TB, s *Store, index uint64, ops ...*corralpb.Op) *corralpb.BatchResult {
	t.Helper()
	res := s.Apply(index, entry(batch(ops...)))
	if len(res.GetResults()) != 1 {
		t.Fatalf("apply at %d: got %d results, want 1", index, len(res.GetResults()))
	}
	r := res.GetResults()[0]
	if r.GetCode() != corralpb.ErrorCode_OK {
		t.Fatalf("apply at %d: %s: %s", index, r.GetCode(), r.GetMessage())
	}
	return r
}

// applyOne applies ops as one batch at index and returns its result.
func applyOne(t testing.TB, s *Store, index uint64, ops ...*corralpb.Op) *corralpb.BatchResult {
	t.Helper()
	res := s.Apply(index, entry(batch(ops...)))
	if len(res.GetResults()) != 1 {
		t.Fatalf("apply at %d: got %d results, want 1", index, len(res.GetResults()))
	}
	return res.GetResults()[0]
}

// newStoreWithNamespaces returns a store holding the namespaces, created at
// index 1.
func newStoreWithNamespaces(t testing.TB, names ...string) *Store {
	t.Helper()
	s := New()
	var ops []*corralpb.Op
	for _, n := range names {
		ops = append(ops, createOp(nsObj(n)))
	}
	applyOK(t, s, 1, ops...)
	return s
}

// mustGet returns the stored object, failing the test if the query fails.
func mustGet(t testing.TB, s *Store, kind, ns, name string) *corralpb.Object {
	t.Helper()
	o, err := s.Get(nil, kind, ns, name)
	if err != nil {
		t.Fatalf("get %s %s/%s: %v", kind, ns, name, err)
	}
	return o
}

// names returns "ns/name" of each object.
func names(objs []*corralpb.Object) []string {
	out := make([]string, 0, len(objs))
	for _, o := range objs {
		m := metaOf(o)
		out = append(out, m.GetNamespace()+"/"+m.GetName())
	}
	return out
}

// fataler is what helpers need of a *testing.T, *testing.B or *rapid.T.
type fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

// persist returns the store's snapshot bytes.
func persist(t fataler, s *Store) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := s.Persist(&buf); err != nil {
		t.Fatalf("persist: %v", err)
	}
	return buf.Bytes()
}

// fired reports whether any channel of ws is closed, without blocking.
func fired(ws memdb.WatchSet) bool {
	for ch := range ws {
		select {
		case <-ch:
			return true
		default:
		}
	}
	return false
}
