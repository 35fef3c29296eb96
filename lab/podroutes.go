package lab

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"

	"github.com/vishvananda/netlink"
)

// The lab's pod network: its servers get their own cluster CIDR (a /16 of
// 172.16.0.0/12 that no route of this machine overlaps), and the host
// routes every node's pod CIDR via the node's address on the lab bridge,
// so that pod IPs answer from the host as they do from every node. The
// routes go with the bridge at `lab down`.

// chooseClusterCIDR picks the lab's cluster CIDR: 172.x.0.0/16 with x from
// the hash, moved on while a route or address of this machine overlaps it.
func chooseClusterCIDR(n names) (string, error) {
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return "", fmt.Errorf("list routes: %w", err)
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return "", fmt.Errorf("list addresses: %w", err)
	}
	raw, _ := hex.DecodeString(n.hash)
	for try := 0; try < 16; try++ {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(16 + (int(raw[2])+try)%16), 0, 0}), 16)
		clash := false
		for _, r := range routes {
			if r.Dst != nil && r.Dst.IP.To4() != nil && !isDefault(r.Dst) && overlaps(p, r.Dst) {
				clash = true
			}
		}
		for _, a := range addrs {
			if a.IPNet != nil && overlaps(p, a.IPNet) {
				clash = true
			}
		}
		if !clash {
			return p.String(), nil
		}
	}
	return "", fmt.Errorf("no free /16 in 172.16.0.0/12 for the lab's pods")
}

func isDefault(n *net.IPNet) bool {
	ones, _ := n.Mask.Size()
	return ones == 0
}

func overlaps(p netip.Prefix, n *net.IPNet) bool {
	addr, ok := netip.AddrFromSlice(n.IP.To4())
	if !ok {
		return false
	}
	ones, _ := n.Mask.Size()
	return p.Overlaps(netip.PrefixFrom(addr, ones).Masked())
}

// routePods makes the host's routes to the nodes' pod CIDRs exactly those
// of the registered nodes.
func (l *Lab) routePods(ctx context.Context, st *State) error {
	nodes, err := l.nodes(ctx, st)
	if err != nil {
		return err
	}
	br, err := netlink.LinkByName(st.Bridge)
	if err != nil {
		return fmt.Errorf("look up bridge %s: %w", st.Bridge, err)
	}
	want := map[string]bool{}
	for _, n := range nodes {
		_, dst, err1 := net.ParseCIDR(n.PodCIDR)
		gw := net.ParseIP(n.InternalIP)
		if err1 != nil || gw == nil {
			continue
		}
		want[dst.String()] = true
		r := &netlink.Route{LinkIndex: br.Attrs().Index, Dst: dst, Gw: gw}
		if err := netlink.RouteReplace(r); err != nil {
			return fmt.Errorf("route %s via %s: %w", dst, gw, err)
		}
	}
	have, err := netlink.RouteList(br, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("list routes on %s: %w", st.Bridge, err)
	}
	for _, r := range have {
		if r.Gw != nil && r.Dst != nil && !want[r.Dst.String()] {
			if err := netlink.RouteDel(&r); err != nil {
				return fmt.Errorf("remove route %s: %w", r.Dst, err)
			}
		}
	}
	return nil
}

// NodeNetNS is the path of the network namespace of the lab node called
// node in the lab at dir (for tests and `nsenter --net=...`).
func NodeNetNS(dir, node string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	return netnsPath(namesFor(abs).netns(node)), nil
}
