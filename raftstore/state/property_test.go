package state

import (
	"bytes"
	"context"
	"slices"
	"strconv"
	"testing"

	"pgregory.net/rapid"

	corralpb "github.com/corral-dev/corral/proto"
)

// The generators draw from small universes of names so that random entries
// collide: creates of existing objects, deletes of namespaces with
// contents, stale guards and resourceVersion conflicts all happen often.

var (
	genNamespace = rapid.SampledFrom([]string{"default", "a", "b"})
	genName      = rapid.SampledFrom([]string{"x", "y", "z"})
	genNode      = rapid.SampledFrom([]string{"", "n1", "n2"})
	genUID       = rapid.SampledFrom([]string{"", "u1", "u2"})
)

func genObject(t *rapid.T) *corralpb.Object {
	ns, name := genNamespace.Draw(t, "ns"), genName.Draw(t, "name")
	switch rapid.IntRange(0, 4).Draw(t, "kind") {
	case 0:
		return nsObj(ns)
	case 1:
		return nodeObj(name)
	case 2:
		return dsObj(ns, name)
	case 3:
		return withOwner(cmObj(ns, name), genUID.Draw(t, "owner"))
	default:
		return podObj(ns, name, genNode.Draw(t, "node"), genUID.Draw(t, "owner"))
	}
}

func genOp(t *rapid.T) *corralpb.Op {
	o := genObject(t)
	op := &corralpb.Op{
		Type:         corralpb.Op_PUT,
		Object:       o,
		Precondition: corralpb.Op_Precondition(rapid.IntRange(0, 3).Draw(t, "pre")),
	}
	if op.Precondition == corralpb.Op_RESOURCE_VERSION {
		op.ResourceVersion = rapid.SampledFrom([]string{"1", "2", "3", "4"}).Draw(t, "rv")
	}
	if rapid.IntRange(0, 9).Draw(t, "uidcheck") == 0 {
		op.Uid = metaOf(o).GetUid()
	}
	if rapid.IntRange(0, 2).Draw(t, "delete") == 0 {
		m := metaOf(o)
		op.Type, op.Object = corralpb.Op_DELETE, nil
		op.Key = &corralpb.ObjectKey{Kind: kindOf(o).name, Namespace: m.GetNamespace(), Name: m.GetName()}
		if op.Precondition == corralpb.Op_MUST_NOT_EXIST {
			op.Precondition = corralpb.Op_NONE
		}
	}
	return op
}

func genEntry(t *rapid.T, index uint64) *corralpb.LogEntry {
	e := &corralpb.LogEntry{}
	if rapid.IntRange(0, 9).Draw(t, "config") == 0 {
		e.ClusterConfig = testConfig()
	}
	if rapid.IntRange(0, 9).Draw(t, "member") == 0 {
		e.PutMembers = []*corralpb.Member{{Name: genName.Draw(t, "member")}}
	}
	for range rapid.IntRange(0, 4).Draw(t, "batches") {
		b := &corralpb.Batch{}
		for range rapid.IntRange(0, 4).Draw(t, "ops") {
			b.Ops = append(b.Ops, genOp(t))
		}
		if index > 1 && rapid.Bool().Draw(t, "guard") {
			b.GuardIndex = rapid.Uint64Range(1, index-1).Draw(t, "guardIndex")
			b.GuardKinds = []string{rapid.SampledFrom([]string{"Pod", "DaemonSet", "Namespace"}).Draw(t, "guardKind")}
		}
		e.Batches = append(e.Batches, b)
	}
	return e
}

// TestApplyIsDeterministic applies the same random entries to two stores
// and checks that they give the same results and persist to the same
// bytes, that a restore persists to them too, and that the store's
// invariants hold. A third store gets each entry without its failed
// batches: failed batches must leave no trace, so it must end up identical,
// with the same events.
func TestApplyIsDeterministic(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b, c := New(WithEventBuffer(8)), New(), New()
		subB, _ := b.Subscribe(0)
		subC, _ := c.Subscribe(0)
		n := rapid.IntRange(1, 30).Draw(t, "entries")
		for i := 1; i <= n; i++ {
			e := genEntry(t, uint64(i))
			ra, rb := a.Apply(uint64(i), e), b.Apply(uint64(i), e)
			ok := &corralpb.LogEntry{ClusterConfig: e.ClusterConfig, PutMembers: e.PutMembers}
			for j := range ra.GetResults() {
				x, y := ra.GetResults()[j], rb.GetResults()[j]
				if x.GetCode() != y.GetCode() || x.GetMessage() != y.GetMessage() {
					t.Fatalf("entry %d batch %d: %s %q vs %s %q", i, j, x.GetCode(), x.GetMessage(), y.GetCode(), y.GetMessage())
				}
				if x.GetCode() == corralpb.ErrorCode_OK {
					ok.Batches = append(ok.Batches, e.Batches[j])
				}
			}
			for j, r := range c.Apply(uint64(i), ok).GetResults() {
				if r.GetCode() != corralpb.ErrorCode_OK {
					t.Fatalf("entry %d: batch %d failed without the failed batches: %s", i, j, r.GetMessage())
				}
			}
		}
		pa := persist(t, a)
		if !bytes.Equal(pa, persist(t, b)) || !bytes.Equal(pa, persist(t, c)) {
			t.Fatalf("stores persisted different bytes")
		}
		r, err := Restore(bytes.NewReader(pa))
		if err != nil {
			t.Fatalf("restore: %v", err)
		}
		if !bytes.Equal(persist(t, r), pa) {
			t.Fatalf("restored store persisted different bytes")
		}
		if eb, ec := pending(subB), pending(subC); !slices.Equal(eb, ec) {
			t.Fatalf("events differ:\n%q\n%q", eb, ec)
		}
		checkInvariants(t, a, uint64(n))
		checkLinks(t, a)
		checkLinks(t, r)
	})
}

// checkLinks: the links table holds exactly the relations of the stored
// objects, and the queries over it answer what a scan of every object
// would, in the same order.
func checkLinks(t *rapid.T, s *Store) {
	want := map[relation][]string{}
	rows := 0
	for _, k := range kinds {
		objs, err := s.List(nil, k.name, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			for _, r := range relationsOf(k, o) {
				want[r] = append(want[r], k.name+" "+describeKey(o))
				rows++
			}
		}
	}
	it, err := s.db.Txn(false).Get(tableLinks, indexID)
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for raw := it.Next(); raw != nil; raw = it.Next() {
		got++
	}
	if got != rows {
		t.Fatalf("links table has %d rows, the objects %d relations", got, rows)
	}
	for _, v := range []string{"n1", "n2", "n3", "u1", "u2", "ds-1"} {
		for _, rel := range []string{relNode, relOwner} {
			var objs []*corralpb.Object
			if rel == relNode {
				objs, err = s.PodsByNode(nil, v)
			} else {
				objs, err = s.ByOwner(nil, v)
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, o := range objs {
				names = append(names, kindOf(o).name+" "+describeKey(o))
			}
			if w := want[relation{rel, v}]; !slices.Equal(names, w) {
				t.Fatalf("%s %s: got %q, want %q", rel, v, names, w)
			}
		}
	}
}

func describeKey(o *corralpb.Object) string {
	m := metaOf(o)
	return m.GetNamespace() + "/" + m.GetName()
}

// pending returns the events sub has not read yet, described.
func pending(sub *Subscription) []string {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	evs, _ := sub.Next(ctx)
	return describe(evs)
}

// checkInvariants: every namespaced object's namespace exists; no object's
// resourceVersion is past its kind's index or the latest index.
func checkInvariants(t *rapid.T, s *Store, latest uint64) {
	if s.LatestIndex() != latest {
		t.Fatalf("latest %d, want %d", s.LatestIndex(), latest)
	}
	for _, k := range kinds {
		objs, err := s.List(nil, k.name, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			m := metaOf(o)
			if k.namespaced {
				if ns, _ := s.Get(nil, "Namespace", "", m.GetNamespace()); ns == nil {
					t.Fatalf("%s %s/%s outlived its namespace", k.name, m.GetNamespace(), m.GetName())
				}
			}
			rv, err := strconv.ParseUint(m.GetResourceVersion(), 10, 64)
			if err != nil || rv == 0 || rv > s.KindIndex(k.name) {
				t.Fatalf("%s %s/%s rv %q, kind index %d", k.name, m.GetNamespace(), m.GetName(), m.GetResourceVersion(), s.KindIndex(k.name))
			}
		}
	}
}
