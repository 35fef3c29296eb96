package server

import (
	"fmt"
	"net/netip"
	"sync/atomic"

	"github.com/corral-dev/corral/raftstore"
	"github.com/corral-dev/corral/raftstore/state"
)

// Pod CIDRs: every node gets a /24 of the cluster CIDR when it first
// registers, as Kubernetes' node IPAM controller does with
// --allocate-node-cidrs. The allocation is the node's spec.podCIDR, so it
// is replicated with the node and released when the node is deleted; the
// FSM refuses a second node with the same CIDR, so two registrations that
// raced for one retry with a fresh view.

// podCIDRBits is the size of each node's pod CIDR.
const podCIDRBits = 24

// clusterCIDR is the cluster's pod network: the one stored at bootstrap,
// or the default for clusters made before pod networking.
func clusterCIDR(st *state.Store) (netip.Prefix, error) {
	cc, err := st.ClusterConfig(nil)
	if err != nil {
		return netip.Prefix{}, err
	}
	s := cc.GetClusterCidr()
	if s == "" {
		s = raftstore.DefaultClusterCIDR
	}
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() || p.Bits() > podCIDRBits {
		return netip.Prefix{}, fmt.Errorf("cluster CIDR %q in the cluster configuration is not an IPv4 network of /%d or larger", s, podCIDRBits)
	}
	return p.Masked(), nil
}

// cidrAllocator hands out node pod CIDRs, starting each search where the
// last one ended so that a fleet joining costs O(1) lookups per node.
type cidrAllocator struct {
	next atomic.Uint64
}

// allocate returns the first /24 of cluster, from the hint on and
// wrapping around, that no node in st holds.
func (a *cidrAllocator) allocate(st *state.Store, cluster netip.Prefix) (netip.Prefix, error) {
	n := uint64(1) << (podCIDRBits - cluster.Bits())
	start := a.next.Load() % n
	base := cluster.Addr().As4()
	for i := uint64(0); i < n; i++ {
		k := (start + i) % n
		p := nthSubnet(base, k)
		holder, err := st.NodeByPodCIDR(nil, p.String())
		if err != nil {
			return netip.Prefix{}, err
		}
		if holder == nil {
			a.next.Store(k + 1)
			return p, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("every /%d of the cluster CIDR %s is allocated to a node: delete unused nodes", podCIDRBits, cluster)
}

// nthSubnet is the k-th /24 of the network starting at base.
func nthSubnet(base [4]byte, k uint64) netip.Prefix {
	v := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	v += uint32(k) << (32 - podCIDRBits)
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), podCIDRBits)
}
