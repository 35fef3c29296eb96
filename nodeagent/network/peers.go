package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// SetPeers implements Network.
func (b *Bridge) SetPeers(ctx context.Context, peers []Peer) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var want []peerRoute
	seen := map[string]bool{}
	for _, p := range peers {
		switch {
		case !p.PodCIDR.IsValid() || !p.PodCIDR.Addr().Is4() || !p.NodeIP.IsValid() || !p.NodeIP.Is4():
			b.log.Debug("skip invalid peer", "peer", p.Name, "pod_cidr", p.PodCIDR, "node_ip", p.NodeIP)
		case p.NodeIP == b.cfg.NodeIP:
			b.log.Debug("skip peer on this host", "peer", p.Name, "node_ip", p.NodeIP)
		case b.podCIDR.IsValid() && b.podCIDR.Overlaps(p.PodCIDR):
			b.log.Debug("skip peer with this node's pod CIDR", "peer", p.Name, "pod_cidr", p.PodCIDR)
		case seen[p.PodCIDR.Masked().String()]:
			b.log.Debug("skip peer with a pod CIDR listed before", "peer", p.Name, "pod_cidr", p.PodCIDR)
		default:
			seen[p.PodCIDR.Masked().String()] = true
			want = append(want, peerRoute{Name: p.Name, Dst: p.PodCIDR.Masked(), Gw: p.NodeIP})
		}
	}
	sort.Slice(want, func(i, j int) bool { return want[i].Dst.String() < want[j].Dst.String() })
	h, err := openNS(b.cfg.HostNetNS)
	if err != nil {
		return fmt.Errorf("set peers: %w", err)
	}
	defer h.close()
	if err := b.setPeerRoutes(h, want); err != nil {
		return fmt.Errorf("set peers: %w", err)
	}
	return nil
}

// setPeerRoutes makes the recorded peer routes want: it records the union
// of the old and new routes first (so that a crash leaves none
// unrecorded), replaces the wanted ones, removes the others, and records
// want.
func (b *Bridge) setPeerRoutes(h *hostNS, want []peerRoute) error {
	old, err := b.store.peers()
	if err != nil {
		return err
	}
	if err := b.store.putPeers(append(append([]peerRoute(nil), old...), want...)); err != nil {
		return err
	}
	var errs []error
	wanted := map[peerRoute]bool{}
	for _, r := range want {
		wanted[peerRoute{Dst: r.Dst, Gw: r.Gw}] = true
		route := &netlink.Route{Dst: prefixToIPNet(r.Dst), Gw: net.IP(r.Gw.AsSlice()), Protocol: RouteProtocol}
		if err := h.nl.RouteReplace(route); err != nil {
			errs = append(errs, fmt.Errorf("route %s via %s (peer %s): %w", r.Dst, r.Gw, r.Name, err))
			continue
		}
		b.log.Debug("peer route", "peer", r.Name, "pod_cidr", r.Dst, "via", r.Gw)
	}
	for _, r := range old {
		if wanted[peerRoute{Dst: r.Dst, Gw: r.Gw}] {
			continue
		}
		route := &netlink.Route{Dst: prefixToIPNet(r.Dst), Gw: net.IP(r.Gw.AsSlice()), Protocol: RouteProtocol}
		if err := h.nl.RouteDel(route); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("remove route %s via %s (peer %s): %w", r.Dst, r.Gw, r.Name, err))
			continue
		}
		b.log.Debug("removed peer route", "peer", r.Name, "pod_cidr", r.Dst, "via", r.Gw)
	}
	if err := errors.Join(errs...); err != nil {
		// Keep every route on record that may still exist.
		_ = b.store.putPeers(append(append([]peerRoute(nil), old...), want...))
		return err
	}
	return b.store.putPeers(want)
}
