package network

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// The nftables table (family ip) a Bridge owns, rewritten whole in one
// transaction on Init and whenever the hostPort mappings change:
//
//	table ip corral {
//	  chain postrouting { type nat hook postrouting priority srcnat;
//	    ip saddr <podCIDR> ip daddr != <clusterCIDR> masquerade
//	    ct status dnat ip saddr <podCIDR> ip daddr <podCIDR> masquerade  # hairpin
//	  }
//	  chain prerouting { type nat hook prerouting priority dstnat;
//	    jump hostports
//	  }
//	  chain output { type nat hook output priority dstnat;
//	    fib daddr type local jump hostports
//	  }
//	  chain hostports {
//	    [ip daddr <hostIP>] meta l4proto tcp th dport <hostPort> dnat ip to <podIP>:<containerPort>
//	  }
//	  chain forward { type filter hook forward priority filter; policy accept;
//	    ip saddr <clusterCIDR> accept
//	    ip daddr <clusterCIDR> accept
//	  }
//	}

// ctStatusDNAT is IPS_DST_NAT, the conntrack status bit of a connection
// whose destination was translated.
const ctStatusDNAT = 1 << 5

// hostPortRule is one pod's mapping, with the pod's address and UID.
type hostPortRule struct {
	Owner string // pod UID
	PodIP netip.Addr
	PortMapping
}

// action is what a rule does with a matching packet.
type action int

const (
	actAccept action = iota
	actMasquerade
	actJump
	actDNAT
)

// rule is a rule in a form tests can read; exprs turns it into nftables
// expressions. The zero value of a match field does not match.
type rule struct {
	SrcIn    netip.Prefix // ip saddr in
	DstIn    netip.Prefix // ip daddr in
	DstNotIn netip.Prefix // ip daddr not in
	CtDNAT   bool         // ct status dnat
	DstLocal bool         // fib daddr type local
	Proto    uint8        // meta l4proto
	DPort    uint16       // th dport (with Proto)

	Action   action
	Jump     string     // actJump
	DNATAddr netip.Addr // actDNAT
	DNATPort uint16

	// Owner is the pod UID of a hostPort rule, kept as the rule's user
	// data so that a pod's rules can be found and deleted alone.
	Owner string
}

// chainSpec is a chain with its rules; Hook nil is a regular chain.
type chainSpec struct {
	Name     string
	Type     nftables.ChainType
	Hook     *nftables.ChainHook
	Priority *nftables.ChainPriority
	Policy   *nftables.ChainPolicy
	Rules    []rule
}

// ruleset is the table's content for a node with podCIDR in clusterCIDR
// and these mappings. Pure: no I/O.
func ruleset(podCIDR, clusterCIDR netip.Prefix, ports []hostPortRule) []chainSpec {
	accept := nftables.ChainPolicyAccept
	post := chainSpec{Name: "postrouting", Type: nftables.ChainTypeNAT, Hook: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource,
		Rules: []rule{
			{SrcIn: podCIDR, DstNotIn: clusterCIDR, Action: actMasquerade},
			// Hairpin: a pod reaching a hostPort that leads back into this
			// node's pods (possibly itself) must see the reply come from
			// where it sent to, so the gateway takes the source.
			{CtDNAT: true, SrcIn: podCIDR, DstIn: podCIDR, Action: actMasquerade},
		}}
	pre := chainSpec{Name: "prerouting", Type: nftables.ChainTypeNAT, Hook: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest,
		Rules: []rule{{Action: actJump, Jump: "hostports"}}}
	out := chainSpec{Name: "output", Type: nftables.ChainTypeNAT, Hook: nftables.ChainHookOutput, Priority: nftables.ChainPriorityNATDest,
		Rules: []rule{{DstLocal: true, Action: actJump, Jump: "hostports"}}}
	hp := chainSpec{Name: hostPortsChain, Rules: hostPortRules(ports)}
	// Accepting here only keeps this table from being the one that drops
	// pod traffic: a drop policy or rule in another table (a firewall's)
	// still wins, every base chain on the hook must accept.
	fwd := chainSpec{Name: "forward", Type: nftables.ChainTypeFilter, Hook: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept,
		Rules: []rule{
			{SrcIn: clusterCIDR, Action: actAccept},
			{DstIn: clusterCIDR, Action: actAccept},
		}}
	// hostports first: the base chains jump to it.
	return []chainSpec{hp, post, pre, out, fwd}
}

// ipMatch matches the IPv4 source (offset 12) or destination (16) address
// against prefix, equal or not.
func ipMatch(offset uint32, prefix netip.Prefix, op expr.CmpOp) []expr.Any {
	prefix = prefix.Masked()
	mask := net4Mask(prefix.Bits())
	addr := prefix.Addr().As4()
	e := []expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4}}
	if prefix.Bits() < 32 {
		e = append(e, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: []byte{0, 0, 0, 0}})
	}
	return append(e, &expr.Cmp{Op: op, Register: 1, Data: addr[:]})
}

func net4Mask(bits int) []byte {
	m := make([]byte, 4)
	binary.BigEndian.PutUint32(m, ^uint32(0)<<(32-bits))
	if bits == 0 {
		binary.BigEndian.PutUint32(m, 0)
	}
	return m
}

// hostPortsChain is the chain of the hostPort DNAT rules.
const hostPortsChain = "hostports"

// hostPortRules are the DNAT rules of mappings.
func hostPortRules(ports []hostPortRule) []rule {
	var out []rule
	for _, p := range ports {
		r := rule{Proto: protocols[p.Protocol], DPort: p.HostPort, Action: actDNAT, DNATAddr: p.PodIP, DNATPort: p.ContainerPort, Owner: p.Owner}
		if p.HostIP.IsValid() && !p.HostIP.IsUnspecified() {
			r.DstIn = netip.PrefixFrom(p.HostIP, 32)
		}
		out = append(out, r)
	}
	return out
}

// nftRule is r in chain ch of table t.
func (r rule) nftRule(t *nftables.Table, ch *nftables.Chain) *nftables.Rule {
	nr := &nftables.Rule{Table: t, Chain: ch, Exprs: r.exprs()}
	if r.Owner != "" {
		nr.UserData = []byte(r.Owner)
	}
	return nr
}

// exprs is r as nftables expressions.
func (r rule) exprs() []expr.Any {
	var e []expr.Any
	if r.CtDNAT {
		e = append(e,
			&expr.Ct{Register: 1, Key: expr.CtKeySTATUS},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
				Mask: binaryutil.NativeEndian.PutUint32(ctStatusDNAT), Xor: binaryutil.NativeEndian.PutUint32(0)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)})
	}
	if r.DstLocal {
		e = append(e,
			&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)})
	}
	if r.SrcIn.IsValid() {
		e = append(e, ipMatch(12, r.SrcIn, expr.CmpOpEq)...)
	}
	if r.DstIn.IsValid() {
		e = append(e, ipMatch(16, r.DstIn, expr.CmpOpEq)...)
	}
	if r.DstNotIn.IsValid() {
		e = append(e, ipMatch(16, r.DstNotIn, expr.CmpOpNeq)...)
	}
	if r.Proto != 0 {
		e = append(e,
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{r.Proto}})
		if r.DPort != 0 {
			e = append(e,
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(r.DPort)})
		}
	}
	switch r.Action {
	case actAccept:
		e = append(e, &expr.Verdict{Kind: expr.VerdictAccept})
	case actMasquerade:
		e = append(e, &expr.Masq{})
	case actJump:
		e = append(e, &expr.Verdict{Kind: expr.VerdictJump, Chain: r.Jump})
	case actDNAT:
		a := r.DNATAddr.As4()
		e = append(e,
			&expr.Immediate{Register: 1, Data: a[:]},
			&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(r.DNATPort)},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true})
	}
	return e
}

// writeTable replaces the table with chains in one transaction: either
// the old table or the new one is in force, never a mix or nothing.
//
// recreate deletes and re-adds the table, so that also chains' types,
// hooks and priorities are exactly chains' (Init does this). Without it the
// table's rules are flushed and re-added while its chains stay: the same
// whole rewrite in one transaction, without unregistering and registering
// the base chains' hooks, which costs the kernel an RCU grace period each
// (tens of milliseconds). Attach and Detach do this; the chain layout is
// the same for all rule sets.
func writeTable(conn *nftables.Conn, name string, chains []chainSpec, recreate bool) error {
	t := &nftables.Table{Name: name, Family: nftables.TableFamilyIPv4}
	conn.AddTable(t) // so that the delete or flush cannot fail on a missing table
	if recreate {
		conn.DelTable(t)
		conn.AddTable(t)
	} else {
		conn.FlushTable(t)
	}
	for _, c := range chains {
		ch := conn.AddChain(&nftables.Chain{Name: c.Name, Table: t, Type: c.Type, Hooknum: c.Hook, Priority: c.Priority, Policy: c.Policy})
		for _, r := range c.Rules {
			conn.AddRule(r.nftRule(t, ch))
		}
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("write nftables table ip %s: %w", name, err)
	}
	return nil
}

// replaceOwnerRules replaces, in one transaction, the hostPort rules of
// owner (a pod UID) with rules. Adding a pod's rules this way costs the
// kernel far less than rewriting the table: no rule is deleted, so the
// commit waits for no RCU grace period.
func replaceOwnerRules(conn *nftables.Conn, table, owner string, rules []rule) error {
	t := &nftables.Table{Name: table, Family: nftables.TableFamilyIPv4}
	ch := &nftables.Chain{Name: hostPortsChain, Table: t}
	have, err := conn.GetRules(t, ch)
	if err != nil {
		return fmt.Errorf("read nftables chain %s of table ip %s: %w", hostPortsChain, table, err)
	}
	changes := 0
	for _, r := range have {
		if string(r.UserData) == owner {
			if err := conn.DelRule(r); err != nil {
				return fmt.Errorf("delete a hostPort rule of pod %s: %w", owner, err)
			}
			changes++
		}
	}
	for _, r := range rules {
		conn.AddRule(r.nftRule(t, ch))
		changes++
	}
	if changes == 0 {
		return nil
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("write hostPort rules of pod %s in table ip %s: %w", owner, table, err)
	}
	return nil
}

// deleteTable removes the table if it exists.
func deleteTable(conn *nftables.Conn, name string) error {
	t := &nftables.Table{Name: name, Family: nftables.TableFamilyIPv4}
	conn.AddTable(t)
	conn.DelTable(t)
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("delete nftables table ip %s: %w", name, err)
	}
	return nil
}
