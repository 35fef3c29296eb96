package network

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func mustIPAM(t *testing.T, dir, cidr string) *ipam {
	t.Helper()
	m, err := openIPAM(dir, netip.MustParsePrefix(cidr))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func reserve(t *testing.T, m *ipam, owner string) netip.Addr {
	t.Helper()
	a, err := m.Reserve(owner)
	if err != nil {
		t.Fatalf("reserve for %s: %v", owner, err)
	}
	return a
}

func TestIPAMAllocatesAfterGatewayRoundRobin(t *testing.T) {
	dir := t.TempDir()
	m := mustIPAM(t, dir, "10.42.3.0/24")
	if a := reserve(t, m, "a"); a != netip.MustParseAddr("10.42.3.2") {
		t.Fatalf("first address %s, want 10.42.3.2 (after the gateway)", a)
	}
	b := reserve(t, m, "b")
	if b != netip.MustParseAddr("10.42.3.3") {
		t.Fatalf("second address %s, want 10.42.3.3", b)
	}
	if err := m.Release(b); err != nil {
		t.Fatal(err)
	}
	// Round robin: the just-released address is not the next one.
	if c := reserve(t, m, "c"); c != netip.MustParseAddr("10.42.3.4") {
		t.Fatalf("after releasing %s got %s, want 10.42.3.4", b, c)
	}
}

func TestIPAMSameOwnerSameAddress(t *testing.T) {
	m := mustIPAM(t, t.TempDir(), "10.42.3.0/24")
	a := reserve(t, m, "pod-a")
	reserve(t, m, "pod-b")
	if again := reserve(t, m, "pod-a"); again != a {
		t.Fatalf("second reservation for pod-a %s, want %s", again, a)
	}
}

func TestIPAMPersistsAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	m := mustIPAM(t, dir, "10.42.3.0/24")
	a := reserve(t, m, "a")
	b := reserve(t, m, "b")
	if err := m.Release(b); err != nil {
		t.Fatal(err)
	}
	m2 := mustIPAM(t, dir, "10.42.3.0/24")
	held, err := m2.Reserved()
	if err != nil {
		t.Fatal(err)
	}
	if len(held) != 1 || held[a] != "a" {
		t.Fatalf("reservations after reopen %v, want only %s=a", held, a)
	}
	// The round robin's position survives too.
	if c := reserve(t, m2, "c"); c != b.Next() {
		t.Fatalf("after reopen got %s, want %s", c, b.Next())
	}
}

func TestIPAMExhausted(t *testing.T) {
	m := mustIPAM(t, t.TempDir(), "10.42.3.0/29") // .2 to .6: five
	seen := map[netip.Addr]bool{}
	for i := 0; i < 5; i++ {
		a := reserve(t, m, string(rune('a'+i)))
		if seen[a] || a == netip.MustParseAddr("10.42.3.0") || a == netip.MustParseAddr("10.42.3.1") || a == netip.MustParseAddr("10.42.3.7") {
			t.Fatalf("got %s (seen %v): network, gateway, broadcast or twice", a, seen)
		}
		seen[a] = true
	}
	_, err := m.Reserve("z")
	if !errors.Is(err, ErrExhausted) || !strings.Contains(err.Error(), "10.42.3.0/29") {
		t.Fatalf("sixth reservation: %v, want ErrExhausted naming 10.42.3.0/29", err)
	}
	if err := m.Release(netip.MustParseAddr("10.42.3.4")); err != nil {
		t.Fatal(err)
	}
	if a := reserve(t, m, "z"); a != netip.MustParseAddr("10.42.3.4") {
		t.Fatalf("after a release got %s, want the freed 10.42.3.4", a)
	}
}

func TestIPAMSlash30HasOneAddress(t *testing.T) {
	m := mustIPAM(t, t.TempDir(), "10.42.3.0/30")
	if a := reserve(t, m, "a"); a != netip.MustParseAddr("10.42.3.2") {
		t.Fatalf("got %s, want 10.42.3.2", a)
	}
	if _, err := m.Reserve("b"); !errors.Is(err, ErrExhausted) {
		t.Fatalf("second reservation in a /30: %v, want ErrExhausted", err)
	}
	if _, err := openIPAM(t.TempDir(), netip.MustParsePrefix("10.42.3.0/31")); err == nil {
		t.Fatal("a /31 was accepted")
	}
}

func TestIPAMNeverHandsOutAReservedAddress(t *testing.T) {
	dir := t.TempDir()
	m := mustIPAM(t, dir, "10.42.3.0/29")
	// Reserved behind the ipam's back (another process, a crash): the file
	// alone must keep the address taken, even when it is the round robin's
	// next.
	if err := os.WriteFile(filepath.Join(dir, "10.42.3.2"), []byte("other"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "10.42.3.5"), []byte("other"), 0o600); err != nil {
		t.Fatal(err)
	}
	got := map[netip.Addr]bool{}
	for i := 0; i < 3; i++ {
		got[reserve(t, m, string(rune('a'+i)))] = true
	}
	for _, a := range []string{"10.42.3.2", "10.42.3.5"} {
		if got[netip.MustParseAddr(a)] {
			t.Fatalf("handed out the reserved %s: %v", a, got)
		}
	}
	if _, err := m.Reserve("d"); !errors.Is(err, ErrExhausted) {
		t.Fatalf("with every address taken: %v, want ErrExhausted", err)
	}
	// Many rounds of reserve/release never give out an address twice.
	held := map[netip.Addr]string{}
	m2 := mustIPAM(t, t.TempDir(), "10.42.3.0/28")
	for i := 0; i < 200; i++ {
		owner := fmt.Sprintf("pod-%d", i)
		a := reserve(t, m2, owner)
		if o, dup := held[a]; dup {
			t.Fatalf("round %d: %s handed out while %s holds it", i, a, o)
		}
		held[a] = owner
		if len(held) > 8 {
			for x := range held {
				if err := m2.Release(x); err != nil {
					t.Fatal(err)
				}
				delete(held, x)
				break
			}
		}
	}
}

func TestGatewayAndBroadcast(t *testing.T) {
	for _, c := range []struct{ cidr, gw, bc string }{
		{"10.42.3.0/24", "10.42.3.1", "10.42.3.255"},
		{"10.42.0.0/16", "10.42.0.1", "10.42.255.255"},
		{"10.42.3.8/29", "10.42.3.9", "10.42.3.15"},
		{"10.42.3.9/29", "10.42.3.9", "10.42.3.15"}, // not masked
	} {
		p := netip.MustParsePrefix(c.cidr)
		if g := gateway(p); g.String() != c.gw {
			t.Errorf("gateway(%s) = %s, want %s", c.cidr, g, c.gw)
		}
		if b := broadcast(p); b.String() != c.bc {
			t.Errorf("broadcast(%s) = %s, want %s", c.cidr, b, c.bc)
		}
	}
}
