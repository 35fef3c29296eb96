package state

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	corralpb "github.com/corral-dev/corral/proto"
)

// populated returns a store with some of everything.
func populated(t testing.TB) *Store {
	t.Helper()
	s := New()
	s.Apply(1, &corralpb.LogEntry{
		ClusterConfig: testConfig(),
		PutMembers:    []*corralpb.Member{{Name: "s1", RaftAddr: "a:1"}, {Name: "s2", RaftAddr: "b:1"}},
	})
	applyOK(t, s, 2,
		createOp(nsObj("monitoring")), createOp(nodeObj("n1")), createOp(nodeObj("n2")),
		createOp(pcObj("high")), createOp(dsObj("monitoring", "agent")),
	)
	applyOK(t, s, 3,
		createOp(podObj("monitoring", "agent-1", "n1", "ds-uid")),
		createOp(podObj("monitoring", "agent-2", "n2", "ds-uid")),
		createOp(withOwner(cmObj("default", "c"), "x")),
		createOp(&corralpb.Object{Kind: &corralpb.Object_ControllerRevision{ControllerRevision: &corralpb.ControllerRevision{
			Metadata: meta("monitoring", "agent-abc"), Data: &corralpb.RawExtension{Raw: []byte(`{"spec":{}}`)}, Revision: 1,
		}}}),
		createOp(&corralpb.Object{Kind: &corralpb.Object_Event{Event: &corralpb.Event{
			Metadata: meta("monitoring", "agent.1"), Reason: "SuccessfulCreate", Count: 1,
		}}}),
	)
	return s
}

func TestPersistRestoreRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		name  string
		store func(testing.TB) *Store
	}{
		{"empty", func(testing.TB) *Store { return New() }},
		{"populated", populated},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.store(t)
			data := persist(t, s)
			r, err := Restore(bytes.NewReader(data))
			if err != nil {
				t.Fatalf("restore: %v", err)
			}
			if again := persist(t, r); !bytes.Equal(again, data) {
				t.Fatalf("persist of the restored store differs")
			}
			assertSameState(t, s, r)
		})
	}
}

// assertSameState compares two stores through the query API.
func assertSameState(t *testing.T, a, b *Store) {
	t.Helper()
	for _, k := range kinds {
		la, _ := a.List(nil, k.name, "")
		lb, _ := b.List(nil, k.name, "")
		if len(la) != len(lb) {
			t.Fatalf("%s: %d vs %d objects", k.name, len(la), len(lb))
		}
		for i := range la {
			if !proto.Equal(la[i], lb[i]) {
				t.Fatalf("%s[%d]: %v vs %v", k.name, i, la[i], lb[i])
			}
		}
		if a.KindIndex(k.name) != b.KindIndex(k.name) {
			t.Errorf("KindIndex(%s): %d vs %d", k.name, a.KindIndex(k.name), b.KindIndex(k.name))
		}
	}
	ma, _ := a.Members(nil)
	mb, _ := b.Members(nil)
	if len(ma) != len(mb) {
		t.Fatalf("members: %d vs %d", len(ma), len(mb))
	}
	for i := range ma {
		if !proto.Equal(ma[i], mb[i]) {
			t.Errorf("member %d: %v vs %v", i, ma[i], mb[i])
		}
	}
	ca, _ := a.ClusterConfig(nil)
	cb, _ := b.ClusterConfig(nil)
	if !proto.Equal(ca, cb) {
		t.Errorf("config: %v vs %v", ca, cb)
	}
	if a.LatestIndex() != b.LatestIndex() {
		t.Errorf("latest: %d vs %d", a.LatestIndex(), b.LatestIndex())
	}
	pa, _ := a.PodsByNode(nil, "n1")
	pb, _ := b.PodsByNode(nil, "n1")
	oa, _ := a.ByOwner(nil, "ds-uid")
	ob, _ := b.ByOwner(nil, "ds-uid")
	if len(pa) != len(pb) || len(oa) != len(ob) {
		t.Errorf("secondary indexes differ: node %d vs %d, owner %d vs %d", len(pa), len(pb), len(oa), len(ob))
	}
}

func TestPersistIsPointInTime(t *testing.T) {
	s := populated(t)
	want := persist(t, s)
	view := s.Snapshot()
	applyOK(t, s, 4, deleteOp("Namespace", "", "monitoring"), createOp(nodeObj("n3")))
	if got := persist(t, view); !bytes.Equal(got, want) {
		t.Fatalf("persist of a view changed after later writes")
	}
}

func TestRestoreRejectsGarbage(t *testing.T) {
	good := persist(t, populated(t))
	header := []byte(snapshotMagic + "\x01")
	rec := func(tag byte, payload []byte) []byte {
		b := append([]byte{tag}, binary.AppendUvarint(nil, uint64(len(payload)))...)
		return append(b, payload...)
	}
	end := func(n uint64) []byte { return rec(recEnd, binary.AppendUvarint(nil, n)) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	noKind, _ := proto.Marshal(&corralpb.Object{})
	noNS, _ := proto.Marshal(podObj("", "p", ""))
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "not a corral state snapshot: reading header: EOF"},
		{"bad magic", []byte("PK\x03\x04 zip file"), `not a corral state snapshot: bad magic "PK\x03\x04 zip"`},
		{"json", []byte(`{"kind":"List","items":[]}`), "not a corral state snapshot: bad magic"},
		{"future version", []byte(snapshotMagic + "\x02"), "unsupported snapshot format version 2"},
		{"no end record", header, "snapshot truncated: no end record"},
		{"truncated", good[:len(good)/2], "record"},
		{"truncated payload", cat(header, []byte{recObject, 100, 1, 2}), "reading 100-byte payload: unexpected EOF"},
		{"unknown record", cat(header, rec(9, nil), end(1)), "record 0: unknown record type 9"},
		{"huge record", cat(header, []byte{recObject}, binary.AppendUvarint(nil, 1<<40)), "exceeds the 67108864-byte limit"},
		{"object without kind", cat(header, rec(recObject, noKind), end(1)), "record 0: object has no kind"},
		{"object without namespace", cat(header, rec(recObject, noNS), end(1)), `record 0: object: pods "p": namespace may not be empty`},
		{"bad protobuf", cat(header, rec(recMember, []byte{0xff, 0xff}), end(1)), "record 0: member:"},
		{"bad index record", cat(header, rec(recIndex, []byte{5}), end(1)), "malformed index record"},
		{"count mismatch", cat(header, end(3)), "end record counts 3 records, read 0"},
		{"trailing data", cat(good, []byte{0}), "unexpected data after the end record"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Restore(bytes.NewReader(tt.data))
			if err == nil {
				t.Fatalf("Restore accepted %q", tt.data)
			}
			if s != nil {
				t.Errorf("Restore returned a store with its error")
			}
			if !strings.HasPrefix(err.Error(), "state: restore: ") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q, want it to contain %q", err, tt.want)
			}
		})
	}
}
