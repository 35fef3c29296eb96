package network

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

var (
	testPodCIDR     = netip.MustParsePrefix("10.42.3.0/24")
	testClusterCIDR = netip.MustParsePrefix("10.42.0.0/16")
)

func chainByName(t *testing.T, chains []chainSpec, name string) chainSpec {
	t.Helper()
	for _, c := range chains {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no chain %s in %+v", name, chains)
	return chainSpec{}
}

func TestRulesetChains(t *testing.T) {
	chains := ruleset(testPodCIDR, testClusterCIDR, nil)
	for _, c := range []struct {
		name     string
		typ      nftables.ChainType
		hook     *nftables.ChainHook
		priority *nftables.ChainPriority
	}{
		{"postrouting", nftables.ChainTypeNAT, nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource},
		{"prerouting", nftables.ChainTypeNAT, nftables.ChainHookPrerouting, nftables.ChainPriorityNATDest},
		{"output", nftables.ChainTypeNAT, nftables.ChainHookOutput, nftables.ChainPriorityNATDest},
		{"forward", nftables.ChainTypeFilter, nftables.ChainHookForward, nftables.ChainPriorityFilter},
	} {
		got := chainByName(t, chains, c.name)
		if got.Type != c.typ || got.Hook == nil || *got.Hook != *c.hook || got.Priority == nil || *got.Priority != *c.priority {
			t.Errorf("chain %s: type %s hook %v priority %v, want %s %d %d", c.name, got.Type, got.Hook, got.Priority, c.typ, *c.hook, *c.priority)
		}
	}
	if fwd := chainByName(t, chains, "forward"); fwd.Policy == nil || *fwd.Policy != nftables.ChainPolicyAccept {
		t.Error("forward chain's policy is not accept")
	}
	hp := chainByName(t, chains, "hostports")
	if hp.Hook != nil || len(hp.Rules) != 0 {
		t.Errorf("hostports without mappings: %+v, want a regular empty chain", hp)
	}
	if chains[0].Name != "hostports" {
		t.Errorf("chain %s first: hostports must be added before the chains jumping to it", chains[0].Name)
	}
}

func TestRulesetMasqueradeAndForward(t *testing.T) {
	chains := ruleset(testPodCIDR, testClusterCIDR, nil)
	post := chainByName(t, chains, "postrouting").Rules
	want := []rule{
		{SrcIn: testPodCIDR, DstNotIn: testClusterCIDR, Action: actMasquerade},
		{CtDNAT: true, SrcIn: testPodCIDR, DstIn: testPodCIDR, Action: actMasquerade},
	}
	if !reflect.DeepEqual(post, want) {
		t.Errorf("postrouting %+v, want %+v", post, want)
	}
	fwd := chainByName(t, chains, "forward").Rules
	wantFwd := []rule{{SrcIn: testClusterCIDR, Action: actAccept}, {DstIn: testClusterCIDR, Action: actAccept}}
	if !reflect.DeepEqual(fwd, wantFwd) {
		t.Errorf("forward %+v, want %+v", fwd, wantFwd)
	}
	if pre := chainByName(t, chains, "prerouting").Rules; !reflect.DeepEqual(pre, []rule{{Action: actJump, Jump: "hostports"}}) {
		t.Errorf("prerouting %+v", pre)
	}
	if out := chainByName(t, chains, "output").Rules; !reflect.DeepEqual(out, []rule{{DstLocal: true, Action: actJump, Jump: "hostports"}}) {
		t.Errorf("output %+v", out)
	}
}

func TestRulesetHostPorts(t *testing.T) {
	podA, podB := netip.MustParseAddr("10.42.3.2"), netip.MustParseAddr("10.42.3.3")
	hostIP := netip.MustParseAddr("192.168.1.5")
	ports := []hostPortRule{
		{Owner: "uid-a", PodIP: podA, PortMapping: PortMapping{HostPort: 8080, ContainerPort: 80, Protocol: "TCP"}},
		{Owner: "uid-b", PodIP: podB, PortMapping: PortMapping{HostPort: 53, ContainerPort: 5353, Protocol: "UDP", HostIP: hostIP}},
		{Owner: "uid-b", PodIP: podB, PortMapping: PortMapping{HostPort: 9000, ContainerPort: 9000, Protocol: "SCTP", HostIP: netip.IPv4Unspecified()}},
	}
	got := chainByName(t, ruleset(testPodCIDR, testClusterCIDR, ports), "hostports").Rules
	want := []rule{
		{Proto: unix.IPPROTO_TCP, DPort: 8080, Action: actDNAT, DNATAddr: podA, DNATPort: 80, Owner: "uid-a"},
		{DstIn: netip.PrefixFrom(hostIP, 32), Proto: unix.IPPROTO_UDP, DPort: 53, Action: actDNAT, DNATAddr: podB, DNATPort: 5353, Owner: "uid-b"},
		{Proto: unix.IPPROTO_SCTP, DPort: 9000, Action: actDNAT, DNATAddr: podB, DNATPort: 9000, Owner: "uid-b"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("hostports\n got %+v\nwant %+v", got, want)
	}
}

func TestRuleExprs(t *testing.T) {
	dnat := rule{DstIn: netip.MustParsePrefix("192.168.1.5/32"), Proto: unix.IPPROTO_UDP, DPort: 53,
		Action: actDNAT, DNATAddr: netip.MustParseAddr("10.42.3.3"), DNATPort: 5353}
	want := []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{192, 168, 1, 5}},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_UDP}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0, 53}},
		&expr.Immediate{Register: 1, Data: []byte{10, 42, 3, 3}},
		&expr.Immediate{Register: 2, Data: []byte{5353 >> 8, 5353 & 0xff}},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
	}
	if got := dnat.exprs(); !reflect.DeepEqual(got, want) {
		t.Errorf("dnat exprs\n got %#v\nwant %#v", got, want)
	}

	masq := rule{SrcIn: testPodCIDR, DstNotIn: testClusterCIDR, Action: actMasquerade}
	want = []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: []byte{255, 255, 255, 0}, Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{10, 42, 3, 0}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: []byte{255, 255, 0, 0}, Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{10, 42, 0, 0}},
		&expr.Masq{},
	}
	if got := masq.exprs(); !reflect.DeepEqual(got, want) {
		t.Errorf("masquerade exprs\n got %#v\nwant %#v", got, want)
	}

	jump := rule{DstLocal: true, Action: actJump, Jump: "hostports"}
	got := jump.exprs()
	if len(got) != 3 {
		t.Fatalf("jump exprs %#v", got)
	}
	if f, ok := got[0].(*expr.Fib); !ok || !f.FlagDADDR || !f.ResultADDRTYPE {
		t.Errorf("first expr %#v, want fib daddr type", got[0])
	}
	if v, ok := got[2].(*expr.Verdict); !ok || v.Kind != expr.VerdictJump || v.Chain != "hostports" {
		t.Errorf("last expr %#v, want jump hostports", got[2])
	}
}
