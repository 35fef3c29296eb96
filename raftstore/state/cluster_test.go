package state

import (
	"bytes"
	"regexp"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	corralpb "github.com/corral-dev/corral/proto"
)

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func testConfig() *corralpb.ClusterConfig {
	return &corralpb.ClusterConfig{ClusterId: "c-1", ServerSecret: "server", AgentSecret: "agent", CreatedUnix: 1764331200}
}

func TestClusterConfigCreatesSystemNamespaces(t *testing.T) {
	s := New()
	sub, err := s.Subscribe(0)
	if err != nil {
		t.Fatal(err)
	}
	res := s.Apply(1, &corralpb.LogEntry{ClusterConfig: testConfig()})
	if len(res.GetResults()) != 0 {
		t.Fatalf("got %d batch results for an entry without batches", len(res.GetResults()))
	}
	cfg, err := s.ClusterConfig(nil)
	if err != nil || !proto.Equal(cfg, testConfig()) {
		t.Fatalf("ClusterConfig() = %v, %v", cfg, err)
	}
	nss, _ := s.List(nil, "Namespace", "")
	if got := names(nss); !slices.Equal(got, []string{"/default", "/kube-public", "/kube-system"}) {
		t.Fatalf("namespaces %v", got)
	}
	uids := map[string]bool{}
	for _, o := range nss {
		ns := o.GetNamespace()
		m := ns.GetMetadata()
		if ns.GetApiVersion() != "v1" || ns.GetKind() != "Namespace" || ns.GetStatus().GetPhase() != "Active" {
			t.Errorf("namespace %s: %v", m.GetName(), ns)
		}
		if m.GetResourceVersion() != "1" || m.GetCreationTimestamp().GetSeconds() != 1764331200 {
			t.Errorf("namespace %s: rv %q, created %v", m.GetName(), m.GetResourceVersion(), m.GetCreationTimestamp())
		}
		if !uuidRE.MatchString(m.GetUid()) || uids[m.GetUid()] {
			t.Errorf("namespace %s: uid %q is not a fresh UUID", m.GetName(), m.GetUid())
		}
		uids[m.GetUid()] = true
	}
	if got := nextN(t, sub, 3); got[0].Type != EventAdded || got[0].Index != 1 {
		t.Errorf("first event %s at %d, want ADDED at 1", got[0].Type, got[0].Index)
	}
	if s.KindIndex("Namespace") != 1 || s.KindIndex(indexKeyMeta) != 1 || s.LatestIndex() != 1 {
		t.Errorf("indexes: Namespace %d, meta %d, latest %d", s.KindIndex("Namespace"), s.KindIndex(indexKeyMeta), s.LatestIndex())
	}

	other := New()
	other.Apply(1, &corralpb.LogEntry{ClusterConfig: testConfig()})
	if a, b := mustGet(t, s, "Namespace", "", "default"), mustGet(t, other, "Namespace", "", "default"); !proto.Equal(a, b) {
		t.Errorf("two stores made different namespaces:\n%v\n%v", a, b)
	}
}

func TestClusterConfigKeepsExistingNamespaces(t *testing.T) {
	s := newStoreWithNamespaces(t, "default")
	before := mustGet(t, s, "Namespace", "", "default")
	cfg := testConfig()
	s.Apply(2, &corralpb.LogEntry{ClusterConfig: cfg, Batches: []*corralpb.Batch{batch(createOp(podObj("kube-system", "p", "")))}})
	if got := mustGet(t, s, "Namespace", "", "default"); got != before {
		t.Errorf("existing namespace default was replaced")
	}
	if mustGet(t, s, "Pod", "kube-system", "p") == nil {
		t.Errorf("a batch in the config's entry cannot use the namespaces it creates")
	}
	cfg.AgentSecret = "rotated"
	s.Apply(3, &corralpb.LogEntry{ClusterConfig: cfg})
	if got, _ := s.ClusterConfig(nil); got.GetAgentSecret() != "rotated" {
		t.Errorf("config not replaced: %v", got)
	}
	if m := metaOf(mustGet(t, s, "Namespace", "", "kube-system")); m.GetResourceVersion() != "2" {
		t.Errorf("kube-system rewritten by a second config: rv %s", m.GetResourceVersion())
	}
	cfg.AgentSecret = "mutated after apply"
	if got, _ := s.ClusterConfig(nil); got.GetAgentSecret() != "rotated" {
		t.Errorf("stored config shares memory with the entry")
	}
}

func TestMembers(t *testing.T) {
	s := New()
	member := func(name, addr string) *corralpb.Member {
		return &corralpb.Member{Name: name, RaftAddr: addr + ":7000", ApiAddr: addr + ":6443"}
	}
	s.Apply(1, &corralpb.LogEntry{PutMembers: []*corralpb.Member{member("s3", "c"), member("s1", "a"), member("", "x"), member("s2", "b")}})
	s.Apply(2, &corralpb.LogEntry{PutMembers: []*corralpb.Member{member("s1", "z")}, DeleteMembers: []string{"s2", "missing"}})
	ms, err := s.Members(nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range ms {
		got = append(got, m.GetName()+"@"+m.GetRaftAddr())
	}
	if want := []string{"s1@z:7000", "s3@c:7000"}; !slices.Equal(got, want) {
		t.Fatalf("members %v, want %v", got, want)
	}
	if s.KindIndex(indexKeyMembers) != 2 {
		t.Errorf("members index %d, want 2", s.KindIndex(indexKeyMembers))
	}
}

func TestLatestIndex(t *testing.T) {
	s := New()
	if s.LatestIndex() != 0 {
		t.Fatalf("empty store latest %d", s.LatestIndex())
	}
	s.Apply(3, nil)
	if s.LatestIndex() != 3 {
		t.Errorf("latest after nil entry %d, want 3", s.LatestIndex())
	}
	r := applyOne(t, s, 4, createOp(podObj("nowhere", "p", "")))
	if r.GetCode() != corralpb.ErrorCode_NOT_FOUND || s.LatestIndex() != 4 {
		t.Errorf("after failed entry: %s, latest %d, want 4", r.GetCode(), s.LatestIndex())
	}
	if s.KindIndex("Pod") != 0 || s.KindIndex("Bogus") != 0 {
		t.Errorf("kind indexes changed by a failed batch")
	}
}

func TestNamespaceUID(t *testing.T) {
	a, b := namespaceUID("c-1", "default"), namespaceUID("c-1", "default")
	if a != b || !uuidRE.MatchString(a) {
		t.Fatalf("namespaceUID = %q, %q", a, b)
	}
	if namespaceUID("c-2", "default") == a || namespaceUID("c-1", "kube-system") == a {
		t.Fatalf("namespaceUID ignores its inputs")
	}
}

// Identities bind a name to one key: another key is refused unless it
// names the key it replaces (renewal), deleting frees the name, and
// snapshots carry the bindings.
func TestIdentityBindings(t *testing.T) {
	s := New()
	put := func(index uint64, ids ...*corralpb.Identity) []string {
		t.Helper()
		return s.Apply(index, &corralpb.LogEntry{PutIdentities: ids}).GetIdentityConflicts()
	}
	if c := put(1, &corralpb.Identity{Name: "node:a", PublicKeySha256: "k1"}); len(c) != 0 {
		t.Fatalf("first binding: conflicts %v", c)
	}
	if c := put(2, &corralpb.Identity{Name: "node:a", PublicKeySha256: "k1"}); len(c) != 0 {
		t.Fatalf("same key again: conflicts %v", c)
	}
	if c := put(3, &corralpb.Identity{Name: "node:a", PublicKeySha256: "k2"}, &corralpb.Identity{Name: "node:b", PublicKeySha256: "k3"}); len(c) != 1 || c[0] != "node:a" {
		t.Fatalf("takeover: conflicts %v, want [node:a]", c)
	}
	if got, _ := s.Identity("node:b"); got.GetPublicKeySha256() != "k3" {
		t.Fatalf("node:b = %v: the conflict of node:a must not stop node:b", got)
	}
	if c := put(4, &corralpb.Identity{Name: "node:a", PublicKeySha256: "k2", Replaces: "k1"}); len(c) != 0 {
		t.Fatalf("renewal: conflicts %v", c)
	}
	got, _ := s.Identity("node:a")
	if got.GetPublicKeySha256() != "k2" || got.GetCreateIndex() != 1 || got.GetModifyIndex() != 4 || got.GetReplaces() != "" {
		t.Fatalf("after renewal node:a = %v", got)
	}
	var buf bytes.Buffer
	if err := s.Persist(&buf); err != nil {
		t.Fatal(err)
	}
	restored, err := Restore(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := restored.Identity("node:a"); got.GetPublicKeySha256() != "k2" {
		t.Fatalf("restored node:a = %v", got)
	}
	s.Apply(5, &corralpb.LogEntry{DeleteIdentities: []string{"node:a"}})
	if got, _ := s.Identity("node:a"); got != nil {
		t.Fatalf("deleted node:a = %v", got)
	}
	if c := put(6, &corralpb.Identity{Name: "node:a", PublicKeySha256: "k3", Replaces: "k2"}); len(c) != 1 {
		t.Fatalf("renewing a freed name: conflicts %v, want [node:a]", c)
	}
	if c := put(7, &corralpb.Identity{Name: "node:a", PublicKeySha256: "k9"}); len(c) != 0 {
		t.Fatalf("a freed name: conflicts %v", c)
	}
}
