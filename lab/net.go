package lab

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// netnsDir is where named network namespaces are bind-mounted.
const netnsDir = "/run/netns"

func netnsPath(name string) string { return filepath.Join(netnsDir, name) }

// choosePrefix picks the lab's /24: the hash's, moved on while any address
// of this machine (outside the lab's own bridge) lies in it.
func choosePrefix(n names) (string, error) {
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return "", fmt.Errorf("list addresses: %w", err)
	}
	a, b := n.defaultPrefix()
	for try := 0; try < 256; try++ {
		prefix := fmt.Sprintf("10.%d.%d", a, (b+try)%256)
		_, subnet, _ := net.ParseCIDR(prefix + ".0/24")
		clash := false
		for _, ad := range addrs {
			if ad.IP.IsLoopback() || ad.IPNet == nil {
				continue
			}
			if subnet.Contains(ad.IP) || ad.IPNet.Contains(subnet.IP) {
				clash = true
				break
			}
		}
		if !clash {
			return prefix, nil
		}
	}
	return "", fmt.Errorf("no free 10.%d.x.0/24 for the lab", a)
}

// ensureBridge creates the lab's bridge with the host's address, up.
func ensureBridge(s *State) error {
	br, err := netlink.LinkByName(s.Bridge)
	if err != nil {
		if !isNotFound(err) {
			return fmt.Errorf("look up bridge %s: %w", s.Bridge, err)
		}
		if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: s.Bridge}}); err != nil {
			return fmt.Errorf("create bridge %s: %w", s.Bridge, err)
		}
		if br, err = netlink.LinkByName(s.Bridge); err != nil {
			return fmt.Errorf("look up bridge %s: %w", s.Bridge, err)
		}
	}
	addr, err := netlink.ParseAddr(s.HostIP() + "/24")
	if err != nil {
		return fmt.Errorf("bridge address: %w", err)
	}
	if err := netlink.AddrReplace(br, addr); err != nil {
		return fmt.Errorf("address %s on %s: %w", addr, s.Bridge, err)
	}
	if err := netlink.LinkSetUp(br); err != nil {
		return fmt.Errorf("set %s up: %w", s.Bridge, err)
	}
	return nil
}

// nodeNetReady reports whether n's namespace and host-side veth exist.
func nodeNetReady(s *State, nm names, n *Node) bool {
	if _, err := os.Stat(netnsPath(nm.netns(n.Name))); err != nil {
		return false
	}
	_, err := netlink.LinkByName(nm.hostVeth(n.Index))
	return err == nil
}

// createNodeNet makes n's namespace and veth pair from scratch (removing
// any half-made leftovers first) and configures the inside: eth0 with n's
// address, lo up, default route via the bridge.
func createNodeNet(s *State, nm names, n *Node) error {
	removeNodeNet(nm, n.Name, n.Index)
	ns, err := newNamedNetns(nm.netns(n.Name))
	if err != nil {
		return err
	}
	defer ns.Close()
	br, err := netlink.LinkByName(s.Bridge)
	if err != nil {
		return fmt.Errorf("look up bridge %s: %w", s.Bridge, err)
	}
	host, peer := nm.hostVeth(n.Index), nm.peerVeth(n.Index)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: host, MasterIndex: br.Attrs().Index}, PeerName: peer}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("create veth %s for %s: %w", host, n.Name, err)
	}
	p, err := netlink.LinkByName(peer)
	if err != nil {
		return fmt.Errorf("look up veth %s: %w", peer, err)
	}
	if err := netlink.LinkSetNsFd(p, int(ns)); err != nil {
		return fmt.Errorf("move %s into %s: %w", peer, nm.netns(n.Name), err)
	}
	if err := configureInside(ns, peer, n.Address, s.HostIP()); err != nil {
		return fmt.Errorf("configure namespace of %s: %w", n.Name, err)
	}
	return setLinkUp(host, !n.Partitioned)
}

// configureInside names the veth eth0 inside ns, gives it addr/24, brings
// it and lo up and routes everything via gw.
func configureInside(ns netns.NsHandle, peer, addr, gw string) error {
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink handle: %w", err)
	}
	defer h.Close()
	l, err := h.LinkByName(peer)
	if err != nil {
		return fmt.Errorf("look up %s: %w", peer, err)
	}
	if err := h.LinkSetName(l, "eth0"); err != nil {
		return fmt.Errorf("rename %s to eth0: %w", peer, err)
	}
	a, err := netlink.ParseAddr(addr + "/24")
	if err != nil {
		return fmt.Errorf("address %s: %w", addr, err)
	}
	if err := h.AddrAdd(l, a); err != nil {
		return fmt.Errorf("add %s to eth0: %w", addr, err)
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("set eth0 up: %w", err)
	}
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("look up lo: %w", err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	route := &netlink.Route{LinkIndex: l.Attrs().Index, Gw: net.ParseIP(gw)}
	if err := h.RouteAdd(route); err != nil {
		return fmt.Errorf("default route via %s: %w", gw, err)
	}
	return nil
}

// newNamedNetns creates the named namespace /run/netns/name without
// leaving the calling thread in it.
func newNamedNetns(name string) (netns.NsHandle, error) {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return netns.None(), fmt.Errorf("current network namespace: %w", err)
	}
	defer orig.Close()
	ns, err := netns.NewNamed(name)
	if serr := netns.Set(orig); serr != nil {
		// This thread is in the wrong namespace: keep it locked, so that it
		// ends with its goroutine instead of serving others.
		return netns.None(), fmt.Errorf("return to the host network namespace: %w", serr)
	}
	runtime.UnlockOSThread()
	if err != nil {
		return netns.None(), fmt.Errorf("create network namespace %s: %w", name, err)
	}
	return ns, nil
}

// inNetns runs fn on a thread in the network namespace at path — only the
// network namespace — and returns the thread to the host's afterwards.
// A process fn starts (fork/exec) is born in that namespace.
func inNetns(path string, fn func() error) error {
	target, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("open network namespace %s: %w", path, err)
	}
	defer target.Close()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("current network namespace: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter network namespace %s: %w", path, err)
	}
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		return fmt.Errorf("return to the host network namespace: %w", err)
	}
	runtime.UnlockOSThread()
	return ferr
}

// removeNodeNet deletes a node's veth pair and namespace; missing parts
// are fine.
func removeNodeNet(nm names, node string, index int) {
	if l, err := netlink.LinkByName(nm.hostVeth(index)); err == nil {
		_ = netlink.LinkDel(l) // deleting one end deletes the pair
	}
	if l, err := netlink.LinkByName(nm.peerVeth(index)); err == nil {
		_ = netlink.LinkDel(l)
	}
	_ = netns.DeleteNamed(nm.netns(node))
	_ = os.Remove(netnsPath(nm.netns(node)))
}

// removeLabLinks deletes every link and namespace named after the lab,
// whether lab.json knows them or not.
func removeLabLinks(nm names) error {
	var errs []error
	links, err := netlink.LinkList()
	if err != nil {
		return fmt.Errorf("list links: %w", err)
	}
	for _, l := range links {
		name := l.Attrs().Name
		if strings.HasPrefix(name, "c"+nm.hash+"-") || strings.HasPrefix(name, "c"+nm.hash+"p") || name == nm.bridge() {
			if err := netlink.LinkDel(l); err != nil && !isNotFound(err) {
				errs = append(errs, fmt.Errorf("delete link %s: %w", name, err))
			}
		}
	}
	entries, _ := os.ReadDir(netnsDir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), nm.netnsPrefix()) {
			_ = netns.DeleteNamed(e.Name())
			if err := os.Remove(netnsPath(e.Name())); err != nil && !os.IsNotExist(err) {
				errs = append(errs, fmt.Errorf("remove namespace %s: %w", e.Name(), err))
			}
		}
	}
	return errors.Join(errs...)
}

// setLinkUp sets a host link up or down.
func setLinkUp(name string, up bool) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("look up %s: %w", name, err)
	}
	if up {
		err = netlink.LinkSetUp(l)
	} else {
		err = netlink.LinkSetDown(l)
	}
	if err != nil {
		return fmt.Errorf("set %s up=%v: %w", name, up, err)
	}
	return nil
}

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf)
}
