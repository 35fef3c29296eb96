package state

import (
	"errors"
	"slices"
	"testing"

	"github.com/hashicorp/go-memdb"

	corralpb "github.com/corral-dev/corral/proto"
)

func TestSchemaIsValid(t *testing.T) {
	if err := schema().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestList(t *testing.T) {
	s := newStoreWithNamespaces(t, "b", "a", "ab")
	applyOK(t, s, 2,
		createOp(podObj("b", "y", "")), createOp(podObj("ab", "x", "")), createOp(podObj("a", "z", "")),
		createOp(podObj("a", "b", "")), createOp(podObj("b", "a", "")),
		createOp(nodeObj("n2")), createOp(nodeObj("n1")),
	)
	tests := []struct {
		kind, ns string
		want     []string
	}{
		{"Pod", "", []string{"a/b", "a/z", "ab/x", "b/a", "b/y"}},
		{"Pod", "a", []string{"a/b", "a/z"}},
		{"Pod", "ab", []string{"ab/x"}},
		{"Pod", "c", nil},
		{"Node", "", []string{"/n1", "/n2"}},
		{"Node", "a", []string{"/n1", "/n2"}},
		{"Namespace", "", []string{"/a", "/ab", "/b"}},
		{"DaemonSet", "", nil},
	}
	for _, tt := range tests {
		got, err := s.List(nil, tt.kind, tt.ns)
		if err != nil {
			t.Fatalf("List(%s, %q): %v", tt.kind, tt.ns, err)
		}
		if !slices.Equal(names(got), tt.want) && !(len(got) == 0 && len(tt.want) == 0) {
			t.Errorf("List(%s, %q) = %v, want %v", tt.kind, tt.ns, names(got), tt.want)
		}
	}
}

func TestPodsByNodeAndByOwner(t *testing.T) {
	s := newStoreWithNamespaces(t, "default", "kube-system")
	pod := podObj("kube-system", "dup", "n1", "ds-1", "ds-1")
	applyOK(t, s, 2,
		createOp(podObj("default", "b", "n1", "ds-1")),
		createOp(podObj("default", "a", "n1", "ds-2")),
		createOp(podObj("default", "c", "n2", "ds-1", "ds-2")),
		createOp(podObj("default", "unbound", "", "ds-1")),
		createOp(pod),
		createOp(withOwner(cmObj("default", "rev"), "ds-1")),
	)
	byNode := map[string][]string{
		"n1": {"default/a", "default/b", "kube-system/dup"},
		"n2": {"default/c"},
		"n3": {},
		"":   {},
	}
	for node, want := range byNode {
		got, err := s.PodsByNode(nil, node)
		if err != nil || !slices.Equal(names(got), want) {
			t.Errorf("PodsByNode(%q) = %v, %v; want %v", node, names(got), err, want)
		}
	}
	got, err := s.ByOwner(nil, "ds-1")
	want := []string{"default/b", "default/c", "default/unbound", "kube-system/dup", "default/rev"}
	if err != nil || !slices.Equal(names(got), want) {
		t.Errorf("ByOwner(ds-1) = %v, %v; want %v", names(got), err, want)
	}
	if got, _ := s.ByOwner(nil, ""); len(got) != 0 {
		t.Errorf("ByOwner(\"\") = %v", names(got))
	}
}

func withOwner(o *corralpb.Object, uid string) *corralpb.Object {
	m := metaOf(o)
	m.OwnerReferences = append(m.OwnerReferences, &corralpb.OwnerReference{Kind: "DaemonSet", Name: "o", Uid: uid})
	return o
}

func TestUnknownKind(t *testing.T) {
	s := New()
	if _, err := s.Get(nil, "Deployment", "default", "x"); !errors.Is(err, ErrUnknownKind) {
		t.Errorf("Get: %v", err)
	}
	if _, err := s.List(nil, "pods", ""); !errors.Is(err, ErrUnknownKind) {
		t.Errorf("List: %v", err)
	}
}

func TestWatchSetFires(t *testing.T) {
	type query func(s *Store, ws memdb.WatchSet) error
	get := func(kind, ns, name string) query {
		return func(s *Store, ws memdb.WatchSet) error { _, err := s.Get(ws, kind, ns, name); return err }
	}
	list := func(kind, ns string) query {
		return func(s *Store, ws memdb.WatchSet) error { _, err := s.List(ws, kind, ns); return err }
	}
	tests := []struct {
		name  string
		query query
		entry *corralpb.LogEntry
		fire  bool
	}{
		{"get changed", get("Pod", "default", "p"), entry(batch(putOp(podObj("default", "p", "n2")))), true},
		{"get created", get("Pod", "default", "new"), entry(batch(putOp(podObj("default", "new", "")))), true},
		{"get other kind", get("Pod", "default", "p"), entry(batch(putOp(cmObj("default", "p")))), false},
		{"list namespace", list("Pod", "default"), entry(batch(putOp(podObj("default", "q", "")))), true},
		{"list other namespace", list("Pod", "default"), entry(batch(putOp(podObj("other", "q", "")))), false},
		{"list all", list("Pod", ""), entry(batch(deleteOp("Pod", "other", "o"))), true},
		{"pods by node", func(s *Store, ws memdb.WatchSet) error { _, err := s.PodsByNode(ws, "n1"); return err },
			entry(batch(putOp(podObj("default", "p", "n2")))), true},
		{"pods by node other", func(s *Store, ws memdb.WatchSet) error { _, err := s.PodsByNode(ws, "n1"); return err },
			entry(batch(putOp(podObj("default", "x", "n3")))), false},
		{"by owner", func(s *Store, ws memdb.WatchSet) error { _, err := s.ByOwner(ws, "ds-1"); return err },
			entry(batch(putOp(withOwner(cmObj("default", "c"), "ds-1")))), true},
		{"members", func(s *Store, ws memdb.WatchSet) error { _, err := s.Members(ws); return err },
			&corralpb.LogEntry{PutMembers: []*corralpb.Member{{Name: "s1"}}}, true},
		{"config", func(s *Store, ws memdb.WatchSet) error { _, err := s.ClusterConfig(ws); return err },
			&corralpb.LogEntry{ClusterConfig: testConfig()}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStoreWithNamespaces(t, "default", "other")
			applyOK(t, s, 2, createOp(podObj("default", "p", "n1", "ds-1")), createOp(podObj("other", "o", "n2")))
			ws := memdb.NewWatchSet()
			if err := tt.query(s, ws); err != nil {
				t.Fatal(err)
			}
			if fired(ws) {
				t.Fatalf("fired before any change")
			}
			s.Apply(3, tt.entry)
			if got := fired(ws); got != tt.fire {
				t.Fatalf("fired = %v, want %v", got, tt.fire)
			}
		})
	}
}

func TestSnapshotView(t *testing.T) {
	s := newStoreWithNamespaces(t, "default")
	applyOK(t, s, 2, createOp(podObj("default", "p", "n1")))
	view := s.Snapshot()
	applyOK(t, s, 3, deleteOp("Pod", "default", "p"), createOp(podObj("default", "q", "n1")))
	if got, _ := view.PodsByNode(nil, "n1"); !slices.Equal(names(got), []string{"default/p"}) {
		t.Errorf("view sees %v, want default/p", names(got))
	}
	if view.LatestIndex() != 2 || view.KindIndex("Pod") != 2 {
		t.Errorf("view indexes: latest %d, Pod %d; want 2, 2", view.LatestIndex(), view.KindIndex("Pod"))
	}
	view.Abandon()
	select {
	case <-s.AbandonCh():
		t.Fatalf("Abandon on a view abandoned the store")
	default:
	}
	defer func() {
		if recover() == nil {
			t.Errorf("Apply on a view did not panic")
		}
	}()
	view.Apply(4, nil)
}
