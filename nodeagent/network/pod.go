package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// podIfName is the pod's side of its veth pair.
const podIfName = "eth0"

func (b *Bridge) ipam() (*ipam, error) {
	return openIPAM(filepath.Join(b.cfg.StateDir, ipamDir), b.podCIDR)
}

// Attach implements Network.
func (b *Bridge) Attach(ctx context.Context, a Attachment) (netip.Addr, error) {
	pod := a.Namespace + "/" + a.Name
	fail := func(err error) (netip.Addr, error) {
		return netip.Addr{}, fmt.Errorf("attach pod %s: %w", pod, err)
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	if err := validUID(a.PodUID); err != nil {
		return fail(err)
	}
	if a.NetNSPath == "" {
		return fail(errors.New("no network namespace"))
	}
	ports, err := normalizePorts(a.Ports)
	if err != nil {
		return fail(err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.podCIDR.IsValid() {
		return fail(ErrNotReady)
	}
	rec, err := b.store.pod(a.PodUID)
	if err != nil {
		return fail(err)
	}
	if rec != nil {
		if err := b.replumb(rec, a.NetNSPath); err != nil {
			return fail(err)
		}
		return rec.IP, nil
	}
	pods, err := b.store.pods()
	if err != nil {
		return fail(err)
	}
	if err := portConflict(pods, a.PodUID, pod, ports); err != nil {
		return fail(err)
	}
	m, err := b.ipam()
	if err != nil {
		return fail(err)
	}
	ip, err := m.Reserve(a.PodUID)
	if err != nil {
		return fail(fmt.Errorf("allocate address: %w", err))
	}
	rec = &podRecord{UID: a.PodUID, Namespace: a.Namespace, Name: a.Name, IP: ip,
		HostVeth: hostVethName(b.cfg.Bridge, a.PodUID), NetNSPath: a.NetNSPath, Ports: ports}
	if err := b.store.putPod(rec); err != nil {
		_ = m.Release(ip)
		return fail(err)
	}
	if err := b.connect(rec); err != nil {
		if uerr := b.undoAttach(rec, m); uerr != nil {
			b.log.Error("undo a failed attach", "pod_uid", rec.UID, "pod", pod, "err", uerr)
		}
		return fail(err)
	}
	b.log.Info("pod attached", "pod_uid", rec.UID, "pod", pod, "ip", ip, "veth", rec.HostVeth, "ports", len(ports))
	return ip, nil
}

// replumb makes sure an attached pod's links exist in netnsPath: a crash
// between the record and the links, or a sandbox made again (a reboot),
// leaves a record without its veth. The pod keeps its address.
func (b *Bridge) replumb(rec *podRecord, netnsPath string) error {
	h, err := openNS(b.cfg.HostNetNS)
	if err != nil {
		return err
	}
	_, lerr := h.nl.LinkByName(rec.HostVeth)
	h.close()
	if lerr == nil && rec.NetNSPath == netnsPath {
		return nil
	}
	if rec.NetNSPath != netnsPath {
		rec.NetNSPath = netnsPath
		if err := b.store.putPod(rec); err != nil {
			return err
		}
	}
	b.log.Info("pod attached again", "pod_uid", rec.UID, "pod", rec.pod(), "ip", rec.IP)
	return b.connect(rec)
}

// connect makes the links and the hostPort rules of rec.
func (b *Bridge) connect(rec *podRecord) error {
	h, err := openNS(b.cfg.HostNetNS)
	if err != nil {
		return err
	}
	defer h.close()
	pns, err := podNS(rec.NetNSPath)
	if err != nil {
		return err
	}
	defer pns.Close()
	if err := b.plumb(h, pns, rec); err != nil {
		return err
	}
	if len(rec.Ports) > 0 {
		return b.writePodRules(h, rec, false)
	}
	return nil
}

// plumb creates rec's veth pair into the bridge and configures the pod's
// side: address, up, default route via the gateway.
func (b *Bridge) plumb(h *hostNS, pns netns.NsHandle, rec *podRecord) error {
	br, err := h.nl.LinkByName(b.cfg.Bridge)
	if err != nil {
		return fmt.Errorf("find bridge %s: %w", b.cfg.Bridge, err)
	}
	if err := deleteLink(h.nl, rec.HostVeth); err != nil { // left by a crash
		return err
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name, attrs.MTU, attrs.MasterIndex, attrs.Flags = rec.HostVeth, b.mtu, br.Attrs().Index, net.FlagUp
	veth := &netlink.Veth{LinkAttrs: attrs, PeerName: podIfName, PeerNamespace: netlink.NsFd(int(pns)),
		PeerMTU: uint32(b.mtu), PeerTxQLen: -1}
	if err := h.nl.LinkAdd(veth); err != nil {
		return fmt.Errorf("create veth %s: %w", rec.HostVeth, err)
	}
	// Hairpin: with bridge-nf-call-iptables, a pod's packet to its own
	// hostPort is DNAT'd on the bridge and must leave by the port it came
	// in by.
	if err := h.nl.LinkSetHairpin(veth, true); err != nil {
		return fmt.Errorf("set hairpin mode on %s: %w", rec.HostVeth, err)
	}
	ph, err := netlink.NewHandleAt(pns)
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", rec.NetNSPath, err)
	}
	defer ph.Close()
	if lo, err := ph.LinkByName("lo"); err == nil && lo.Attrs().Flags&net.FlagUp == 0 {
		if err := ph.LinkSetUp(lo); err != nil {
			return fmt.Errorf("set lo up in %s: %w", rec.NetNSPath, err)
		}
	}
	eth, err := ph.LinkByName(podIfName)
	if err != nil {
		return fmt.Errorf("find %s in %s: %w", podIfName, rec.NetNSPath, err)
	}
	addr := &netlink.Addr{IPNet: prefixToIPNet(netip.PrefixFrom(rec.IP, b.podCIDR.Bits()))}
	if err := ph.AddrReplace(eth, addr); err != nil {
		return fmt.Errorf("set address %s on %s: %w", addr.IPNet, podIfName, err)
	}
	if err := ph.LinkSetUp(eth); err != nil {
		return fmt.Errorf("set %s up: %w", podIfName, err)
	}
	gw := gateway(b.podCIDR)
	route := &netlink.Route{LinkIndex: eth.Attrs().Index, Gw: net.IP(gw.AsSlice()), Scope: netlink.SCOPE_UNIVERSE}
	if err := ph.RouteReplace(route); err != nil {
		return fmt.Errorf("add default route via %s: %w", gw, err)
	}
	b.log.Debug("pod plumbed", "pod_uid", rec.UID, "pod", rec.pod(), "ip", rec.IP, "veth", rec.HostVeth)
	return nil
}

// undoAttach removes what a failed Attach made, the record last.
func (b *Bridge) undoAttach(rec *podRecord, m *ipam) error {
	var errs []error
	if h, err := openNS(b.cfg.HostNetNS); err != nil {
		errs = append(errs, err)
	} else {
		errs = append(errs, deleteLink(h.nl, rec.HostVeth))
		h.close()
	}
	errs = append(errs, m.Release(rec.IP))
	if err := errors.Join(errs...); err != nil {
		return err // keep the record: Reconcile retries
	}
	return b.store.deletePod(rec.UID)
}

// Detach implements Network.
func (b *Bridge) Detach(ctx context.Context, podUID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := validUID(podUID); err != nil {
		return fmt.Errorf("detach pod: %w", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	rec, err := b.store.pod(podUID)
	if err != nil || rec == nil {
		if err != nil {
			return fmt.Errorf("detach pod %s: %w", podUID, err)
		}
		return nil
	}
	h, err := openNS(b.cfg.HostNetNS)
	if err != nil {
		return fmt.Errorf("detach pod %s: %w", rec.pod(), err)
	}
	defer h.close()
	if err := b.detach(h, rec, true); err != nil {
		return fmt.Errorf("detach pod %s: %w", rec.pod(), err)
	}
	return nil
}

// detach undoes rec's Attach: veth, mappings (rewriting the table if
// rewrite and it had some), address, record (last).
func (b *Bridge) detach(h *hostNS, rec *podRecord, rewrite bool) error {
	if err := deleteLink(h.nl, rec.HostVeth); err != nil {
		return err
	}
	if rewrite && len(rec.Ports) > 0 && b.podCIDR.IsValid() {
		if err := b.writePodRules(h, rec, true); err != nil {
			return err
		}
	}
	if err := (&ipam{dir: filepath.Join(b.cfg.StateDir, ipamDir)}).Release(rec.IP); err != nil {
		return err
	}
	if err := b.store.deletePod(rec.UID); err != nil {
		return err
	}
	b.log.Info("pod detached", "pod_uid", rec.UID, "pod", rec.pod(), "ip", rec.IP)
	return nil
}

// Reconcile implements Network.
func (b *Bridge) Reconcile(ctx context.Context, keep map[string]bool) error {
	return b.overRecords(ctx, "reconcile network", func(h *hostNS, pods []*podRecord) error {
		return b.reconcile(h, pods, keep)
	})
}

func (b *Bridge) reconcile(h *hostNS, pods []*podRecord, keep map[string]bool) error {
	var errs []error
	kept := map[netip.Addr]bool{}
	veths := map[string]bool{}
	for _, p := range pods {
		if keep[p.UID] {
			kept[p.IP], veths[p.HostVeth] = true, true
			continue
		}
		if err := b.detach(h, p, false); err != nil {
			errs = append(errs, fmt.Errorf("detach pod %s: %w", p.pod(), err))
			kept[p.IP], veths[p.HostVeth] = true, true // still recorded
		}
	}
	if err := b.releaseOrphans(kept); err != nil {
		errs = append(errs, err)
	}
	if err := b.deleteOrphanVeths(h, veths); err != nil {
		errs = append(errs, err)
	}
	if b.podCIDR.IsValid() {
		if rest, err := b.store.pods(); err != nil {
			errs = append(errs, err)
		} else if err := b.writeRules(h, rest, false); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// releaseOrphans releases the reservations of addresses no record holds.
func (b *Bridge) releaseOrphans(recorded map[netip.Addr]bool) error {
	m := &ipam{dir: filepath.Join(b.cfg.StateDir, ipamDir)}
	held, err := m.Reserved()
	if err != nil {
		return err
	}
	for a, owner := range held {
		if !recorded[a] {
			if err := m.Release(a); err != nil {
				return err
			}
			b.log.Debug("released orphan reservation", "ip", a, "pod_uid", owner)
		}
	}
	return nil
}

// deleteOrphanVeths deletes the links on the bridge named like a pod's
// host veth but not recorded.
func (b *Bridge) deleteOrphanVeths(h *hostNS, recorded map[string]bool) error {
	br, err := h.nl.LinkByName(b.cfg.Bridge)
	if errors.As(err, new(netlink.LinkNotFoundError)) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("find bridge %s: %w", b.cfg.Bridge, err)
	}
	links, err := h.nl.LinkList()
	if err != nil {
		return fmt.Errorf("list links: %w", err)
	}
	for _, l := range links {
		a := l.Attrs()
		if a.MasterIndex != br.Attrs().Index || !isHostVethName(a.Name) || recorded[a.Name] {
			continue
		}
		if err := h.nl.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
			return fmt.Errorf("delete orphan veth %s: %w", a.Name, err)
		}
		b.log.Debug("deleted orphan veth", "veth", a.Name)
	}
	return nil
}
