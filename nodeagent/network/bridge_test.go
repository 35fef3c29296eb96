package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/corral-dev/corral/internal/netnstest"
	"github.com/corral-dev/corral/internal/roottest"
)

func TestAttachGivesPodAddressAndDefaultRoute(t *testing.T) {
	roottest.Require(t, "network namespaces, netlink, nftables")
	n := newSingleNode(t)
	p := n.addPod(t, "a")
	if !n.podCIDR.Contains(p.ip) || p.ip == gateway(n.podCIDR) {
		t.Fatalf("pod address %s, want a host address of %s other than the gateway", p.ip, n.podCIDR)
	}
	withHandle(t, p.ns, func(h *netlink.Handle) {
		eth, err := h.LinkByName("eth0")
		if err != nil {
			t.Fatal(err)
		}
		if eth.Attrs().Flags&net.FlagUp == 0 {
			t.Error("eth0 is down")
		}
		addrs, err := h.AddrList(eth, unix.AF_INET)
		if err != nil || len(addrs) != 1 || addrs[0].IPNet.String() != netip.PrefixFrom(p.ip, 24).String() {
			t.Errorf("eth0 addresses %v (%v), want %s/24", addrs, err, p.ip)
		}
		routes, err := h.RouteList(eth, unix.AF_INET)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, r := range routes {
			if r.Dst == nil || r.Dst.IP.IsUnspecified() {
				found = r.Gw.String() == "10.42.3.1"
			}
		}
		if !found {
			t.Errorf("no default route via 10.42.3.1 in %v", routes)
		}
	})
	withHandle(t, n.ns, func(h *netlink.Handle) {
		br, err := h.LinkByName("corral0")
		if err != nil {
			t.Fatal(err)
		}
		addrs, _ := h.AddrList(br, unix.AF_INET)
		if len(addrs) != 1 || addrs[0].IPNet.String() != "10.42.3.1/24" {
			t.Errorf("bridge addresses %v, want 10.42.3.1/24", addrs)
		}
		veth, err := h.LinkByName(hostVethName("corral0", p.uid))
		if err != nil {
			t.Fatal(err)
		}
		if veth.Attrs().MasterIndex != br.Attrs().Index || veth.Attrs().Flags&net.FlagUp == 0 {
			t.Errorf("host veth %s: master %d up %v, want on the bridge (%d) and up", veth.Attrs().Name, veth.Attrs().MasterIndex, veth.Attrs().Flags&net.FlagUp != 0, br.Attrs().Index)
		}
	})
	var fwd string
	if err := inNSPath(n.ns, func() error {
		b, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
		fwd = strings.TrimSpace(string(b))
		return err
	}); err != nil || fwd != "1" {
		t.Errorf("ip_forward in the node namespace %q (%v), want 1", fwd, err)
	}
	again, err := n.b.Attach(context.Background(), Attachment{PodUID: p.uid, Namespace: "default", Name: "a", NetNSPath: p.ns})
	if err != nil || again != p.ip {
		t.Errorf("second attach: %s, %v; want %s", again, err, p.ip)
	}
	// Init again (an agent restart, a new Bridge on the same state) keeps
	// the pod.
	b2, err := New(n.b.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b2.Init(context.Background(), n.podCIDR); err != nil {
		t.Fatalf("second init: %v", err)
	}
	if again, err := b2.Attach(context.Background(), Attachment{PodUID: p.uid, Namespace: "default", Name: "a", NetNSPath: p.ns}); err != nil || again != p.ip {
		t.Errorf("attach after restart: %s, %v; want %s", again, err, p.ip)
	}
}

func TestPodToPodNodeToPodAndHostPort(t *testing.T) {
	roottest.Require(t, "network namespaces, netlink, nftables")
	n := newSingleNode(t)
	a := n.addPod(t, "a", PortMapping{HostPort: 30080, ContainerPort: 8080, Protocol: "TCP"})
	b := n.addPod(t, "b", PortMapping{HostPort: 30081, ContainerPort: 8080, Protocol: "TCP", HostIP: n.nodeIP})
	serve(t, a.ns, ":8080", "a")
	serve(t, b.ns, ":8080", "b")
	urlA := fmt.Sprintf("http://%s:8080/", a.ip)
	body := waitFetch(t, b.ns, urlA, "a ")
	if !strings.Contains(body, b.ip.String()+":") {
		t.Errorf("pod a saw %q, want pod b's address %s (no NAT between pods)", body, b.ip)
	}
	waitFetch(t, n.ns, urlA, "a ")
	// hostPort from the node itself, via the node's address.
	waitFetch(t, n.ns, fmt.Sprintf("http://%s:30080/", n.nodeIP), "a ")
	waitFetch(t, n.ns, fmt.Sprintf("http://%s:30081/", n.nodeIP), "b ")
	// From a pod to a hostPort of another pod, and to its own (hairpin).
	waitFetch(t, b.ns, fmt.Sprintf("http://%s:30080/", n.nodeIP), "a ")
	waitFetch(t, a.ns, fmt.Sprintf("http://%s:30080/", n.nodeIP), "a ")
}

func TestPortConflictLeavesNothing(t *testing.T) {
	roottest.Require(t, "network namespaces, netlink, nftables")
	n := newSingleNode(t)
	n.addPod(t, "a", PortMapping{HostPort: 30080, ContainerPort: 80, Protocol: "TCP"})
	ns := newNetNS(t, "pod")
	_, err := n.b.Attach(context.Background(), Attachment{PodUID: "uid-c", Namespace: "default", Name: "c", NetNSPath: ns,
		Ports: []PortMapping{{HostPort: 30080, ContainerPort: 80, Protocol: "tcp", HostIP: n.nodeIP}}})
	if !errors.Is(err, ErrPortConflict) || !strings.Contains(err.Error(), "30080/TCP") || !strings.Contains(err.Error(), "default/a") {
		t.Fatalf("conflicting attach: %v, want ErrPortConflict naming 30080/TCP and default/a", err)
	}
	if recs := dirEntries(t, filepath.Join(n.dir, podsDir)); len(recs) != 1 {
		t.Errorf("records %v, want only pod a's", recs)
	}
	if res := dirEntries(t, filepath.Join(n.dir, ipamDir), lastReservedFile); len(res) != 1 {
		t.Errorf("reservations %v, want only pod a's", res)
	}
	if v := vethsOnBridge(t, n); len(v) != 1 {
		t.Errorf("links on the bridge %v, want only pod a's", v)
	}
	// Another protocol on the same port is no conflict.
	if _, err := n.b.Attach(context.Background(), Attachment{PodUID: "uid-c", Namespace: "default", Name: "c", NetNSPath: ns,
		Ports: []PortMapping{{HostPort: 30080, ContainerPort: 80, Protocol: "UDP"}}}); err != nil {
		t.Fatal(err)
	}
	if r := hostportRules(t, n); len(r) != 2 {
		t.Errorf("%d hostport rules, want 2", len(r))
	}
}

func TestTwoNodesHostGWAndMasquerade(t *testing.T) {
	roottest.Require(t, "network namespaces, netlink, nftables")
	ns1, ns2 := newNetNS(t, "node1"), newNetNS(t, "node2")
	linkNodes(t, ns1, ns2, netip.MustParsePrefix("10.99.0.1/24"), netip.MustParsePrefix("10.99.0.2/24"))
	n1 := newTestNode(t, ns1, netip.MustParseAddr("10.99.0.1"), "10.42.1.0/24")
	n2 := newTestNode(t, ns2, netip.MustParseAddr("10.99.0.2"), "10.42.2.0/24")
	peers := []Peer{
		{Name: "node1", PodCIDR: n1.podCIDR, NodeIP: n1.nodeIP},
		{Name: "node2", PodCIDR: n2.podCIDR, NodeIP: n2.nodeIP},
		{Name: "broken", PodCIDR: netip.MustParsePrefix("10.42.9.0/24")},
	}
	for _, n := range []*testNode{n1, n2} {
		if err := n.b.SetPeers(context.Background(), peers); err != nil {
			t.Fatal(err)
		}
	}
	p1, p2 := n1.addPod(t, "p1"), n2.addPod(t, "p2")
	serve(t, p2.ns, ":8080", "p2")
	body := waitFetch(t, p1.ns, fmt.Sprintf("http://%s:8080/", p2.ip), "p2 ")
	if !strings.Contains(body, p1.ip.String()+":") {
		t.Errorf("pod on node2 saw %q, want pod p1's own address %s (no NAT inside the cluster CIDR)", body, p1.ip)
	}
	// Outside the cluster CIDR: masqueraded to node1's address.
	serve(t, ns2, "10.99.0.2:9090", "node2")
	body = waitFetch(t, p1.ns, "http://10.99.0.2:9090/", "node2 ")
	if !strings.Contains(body, " 10.99.0.1:") {
		t.Errorf("node2 saw %q, want the connection from node1's 10.99.0.1 (masquerade)", body)
	}
	if got := peerRoutes(t, n1); len(got) != 1 || got[0] != "10.42.2.0/24 via 10.99.0.2" {
		t.Errorf("node1's peer routes %v, want only 10.42.2.0/24 via 10.99.0.2", got)
	}
	if err := n1.b.SetPeers(context.Background(), peers[:1]); err != nil { // only itself: skipped
		t.Fatal(err)
	}
	if got := peerRoutes(t, n1); len(got) != 0 {
		t.Errorf("node1's peer routes after removing node2: %v, want none", got)
	}
	if _, err := fetch(p1.ns, fmt.Sprintf("http://%s:8080/", p2.ip)); err == nil {
		t.Error("pod p2 still reachable from node1 without the peer route")
	}
}

// peerRoutes lists the node's routes with RouteProtocol.
func peerRoutes(t testing.TB, n *testNode) []string {
	t.Helper()
	var out []string
	withHandle(t, n.ns, func(h *netlink.Handle) {
		routes, err := h.RouteListFiltered(unix.AF_INET, &netlink.Route{Protocol: RouteProtocol}, netlink.RT_FILTER_PROTOCOL)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range routes {
			out = append(out, fmt.Sprintf("%s via %s", r.Dst, r.Gw))
		}
	})
	return out
}

func TestAttachDetachCycles(t *testing.T) {
	roottest.Require(t, "network namespaces, netlink, nftables")
	n := newSingleNode(t)
	ctx := context.Background()
	inUse := map[netip.Addr]string{}
	var kept []*testPod
	for i := 0; i < 3; i++ {
		p := n.addPod(t, fmt.Sprintf("kept%d", i), PortMapping{HostPort: uint16(31000 + i), ContainerPort: 80})
		inUse[p.ip] = p.name
		kept = append(kept, p)
	}
	for i := 0; i < 50; i++ {
		ns := newNetNS(t, "cycle")
		uid := fmt.Sprintf("uid-cycle%d", i)
		ip, err := n.b.Attach(ctx, Attachment{PodUID: uid, Namespace: "default", Name: uid, NetNSPath: ns,
			Ports: []PortMapping{{HostPort: 32000, ContainerPort: 80, Protocol: "UDP"}}})
		if err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
		if other, dup := inUse[ip]; dup {
			t.Fatalf("cycle %d: %s handed out while %s holds it", i, ip, other)
		}
		if r := hostportRules(t, n); len(r) != 4 {
			t.Fatalf("cycle %d: %d hostport rules, want 4", i, len(r))
		}
		if err := n.b.Detach(ctx, uid); err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
		deleteNetNS(t, ns)
	}
	if v := vethsOnBridge(t, n); len(v) != 3 {
		t.Errorf("links on the bridge %v, want the 3 kept pods'", v)
	}
	if r := hostportRules(t, n); len(r) != 3 {
		t.Errorf("%d hostport rules, want the 3 kept pods'", len(r))
	}
	for _, p := range kept {
		if err := n.b.Detach(ctx, p.uid); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.b.Detach(ctx, "uid-unknown"); err != nil {
		t.Errorf("detach of an unknown pod: %v", err)
	}
	if v := vethsOnBridge(t, n); len(v) != 0 {
		t.Errorf("links on the bridge %v, want none", v)
	}
	if r := hostportRules(t, n); len(r) != 0 {
		t.Errorf("%d hostport rules, want none", len(r))
	}
	if recs := dirEntries(t, filepath.Join(n.dir, podsDir)); len(recs) != 0 {
		t.Errorf("records left: %v", recs)
	}
	if res := dirEntries(t, filepath.Join(n.dir, ipamDir), lastReservedFile); len(res) != 0 {
		t.Errorf("reservations left: %v", res)
	}
}

// deleteNetNS deletes a namespace from newNetNS before the test ends.
func deleteNetNS(t *testing.T, path string) {
	t.Helper()
	if err := netnstest.Remove(path); err != nil {
		t.Fatalf("delete netns %s: %v", path, err)
	}
}

func TestDetachAfterNetNSDeleted(t *testing.T) {
	roottest.Require(t, "network namespaces, netlink, nftables")
	n := newSingleNode(t)
	p := n.addPod(t, "gone", PortMapping{HostPort: 30090, ContainerPort: 80})
	deleteNetNS(t, p.ns)
	if err := n.b.Detach(context.Background(), p.uid); err != nil {
		t.Fatalf("detach after the namespace was deleted: %v", err)
	}
	if v := vethsOnBridge(t, n); len(v) != 0 {
		t.Errorf("links on the bridge %v, want none", v)
	}
	if r := hostportRules(t, n); len(r) != 0 {
		t.Errorf("%d hostport rules left", len(r))
	}
	if rec, err := n.b.store.pod(p.uid); err != nil || rec != nil {
		t.Errorf("record left: %+v, %v", rec, err)
	}
}

func TestReconcileAfterCrash(t *testing.T) {
	roottest.Require(t, "network namespaces, netlink, nftables")
	n := newSingleNode(t)
	keep := n.addPod(t, "keep", PortMapping{HostPort: 30100, ContainerPort: 8080})
	n.addPod(t, "gone1", PortMapping{HostPort: 30101, ContainerPort: 8080})
	n.addPod(t, "gone2")
	// What a crash in the middle of an Attach leaves: a reservation
	// without a record, a veth on the bridge without a record.
	orphanIP := netip.MustParseAddr("10.42.3.200")
	if err := os.WriteFile(filepath.Join(n.dir, ipamDir, orphanIP.String()), []byte("uid-crashed"), 0o600); err != nil {
		t.Fatal(err)
	}
	orphanVeth := hostVethName("corral0", "uid-crashed")
	withHandle(t, n.ns, func(h *netlink.Handle) {
		br, err := h.LinkByName("corral0")
		if err != nil {
			t.Fatal(err)
		}
		attrs := netlink.NewLinkAttrs()
		attrs.Name, attrs.MasterIndex = orphanVeth, br.Attrs().Index
		if err := h.LinkAdd(&netlink.Veth{LinkAttrs: attrs, PeerName: "orphanpeer", PeerTxQLen: -1}); err != nil {
			t.Fatal(err)
		}
	})
	// The agent restarts: a new Bridge on the same state.
	b2, err := New(n.b.cfg)
	if err != nil {
		t.Fatal(err)
	}
	n.b = b2
	if err := b2.Init(context.Background(), n.podCIDR); err != nil {
		t.Fatal(err)
	}
	if err := b2.Reconcile(context.Background(), map[string]bool{keep.uid: true}); err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	if v := vethsOnBridge(t, n); len(v) != 1 || v[0] != hostVethName("corral0", keep.uid) {
		t.Errorf("links on the bridge %v, want only the kept pod's", v)
	}
	if recs := dirEntries(t, filepath.Join(n.dir, podsDir)); len(recs) != 1 || recs[0] != keep.uid+".json" {
		t.Errorf("records %v, want only the kept pod's", recs)
	}
	if res := dirEntries(t, filepath.Join(n.dir, ipamDir), lastReservedFile); len(res) != 1 || res[0] != keep.ip.String() {
		t.Errorf("reservations %v, want only %s", res, keep.ip)
	}
	if r := hostportRules(t, n); len(r) != 1 {
		t.Errorf("%d hostport rules, want the kept pod's one", len(r))
	}
	serve(t, keep.ns, ":8080", "keep")
	waitFetch(t, n.ns, fmt.Sprintf("http://%s:30100/", n.nodeIP), "keep ")
}

func TestDestroyLeavesNothing(t *testing.T) {
	roottest.Require(t, "network namespaces, netlink, nftables")
	ns := newNetNS(t, "node")
	addDummy(t, ns, netip.MustParsePrefix("10.99.0.1/24"))
	dir := filepath.Join(t.TempDir(), "net")
	b, err := New(Config{StateDir: dir, Bridge: "cbr0", Table: "ctest", ClusterCIDR: netip.MustParsePrefix("10.42.0.0/16"),
		NodeIP: netip.MustParseAddr("10.99.0.1"), HostNetNS: ns, MTU: 1400})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := b.Init(ctx, netip.MustParsePrefix("10.42.5.0/24")); err != nil {
		t.Fatal(err)
	}
	pod := newNetNS(t, "pod")
	if _, err := b.Attach(ctx, Attachment{PodUID: "uid-x", Namespace: "default", Name: "x", NetNSPath: pod,
		Ports: []PortMapping{{HostPort: 30200, ContainerPort: 80}}}); err != nil {
		t.Fatal(err)
	}
	withHandle(t, pod, func(h *netlink.Handle) {
		if l, err := h.LinkByName("eth0"); err != nil || l.Attrs().MTU != 1400 {
			t.Errorf("pod eth0 %v, %v; want MTU 1400", l, err)
		}
	})
	if err := b.SetPeers(ctx, []Peer{{Name: "n2", PodCIDR: netip.MustParsePrefix("10.42.6.0/24"), NodeIP: netip.MustParseAddr("10.99.0.2")}}); err != nil {
		t.Fatal(err)
	}
	if err := b.Destroy(ctx); err != nil {
		t.Fatal(err)
	}
	withHandle(t, ns, func(h *netlink.Handle) {
		if _, err := h.LinkByName("cbr0"); err == nil {
			t.Error("bridge left")
		}
		if _, err := h.LinkByName(hostVethName("cbr0", "uid-x")); err == nil {
			t.Error("veth left")
		}
		routes, _ := h.RouteListFiltered(unix.AF_INET, &netlink.Route{Protocol: RouteProtocol}, netlink.RT_FILTER_PROTOCOL)
		if len(routes) != 0 {
			t.Errorf("routes left: %v", routes)
		}
	})
	nsh, err := netns.GetFromPath(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer nsh.Close()
	conn, err := nftables.New(nftables.WithNetNSFd(int(nsh)))
	if err != nil {
		t.Fatal(err)
	}
	if tbl, err := conn.ListTableOfFamily("ctest", nftables.TableFamilyIPv4); err == nil {
		t.Errorf("table left: %+v", tbl)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("state dir left: %v", err)
	}
}

func TestInitCIDRChange(t *testing.T) {
	roottest.Require(t, "network namespaces, netlink, nftables")
	n := newSingleNode(t)
	p := n.addPod(t, "a")
	ctx := context.Background()
	if err := n.b.Init(ctx, n.podCIDR); err != nil {
		t.Fatalf("init again: %v", err)
	}
	other := netip.MustParsePrefix("10.42.4.0/24")
	if err := n.b.Init(ctx, other); !errors.Is(err, ErrCIDRChanged) {
		t.Fatalf("init with another CIDR while a pod is attached: %v, want ErrCIDRChanged", err)
	}
	if err := n.b.Detach(ctx, p.uid); err != nil {
		t.Fatal(err)
	}
	if err := n.b.Init(ctx, other); err != nil {
		t.Fatalf("init with another CIDR and no pods: %v", err)
	}
	withHandle(t, n.ns, func(h *netlink.Handle) {
		br, err := h.LinkByName("corral0")
		if err != nil {
			t.Fatal(err)
		}
		addrs, _ := h.AddrList(br, unix.AF_INET)
		if len(addrs) != 1 || addrs[0].IPNet.String() != "10.42.4.1/24" {
			t.Errorf("bridge addresses %v, want only 10.42.4.1/24", addrs)
		}
	})
	q := n.addPod(t, "b")
	if !other.Contains(q.ip) {
		t.Errorf("pod address %s not in the new CIDR %s", q.ip, other)
	}
	if _, err := New(Config{StateDir: t.TempDir(), ClusterCIDR: netip.MustParsePrefix("10.42.0.0/16")}); err != nil {
		t.Fatal(err)
	}
	b, _ := New(Config{StateDir: t.TempDir(), ClusterCIDR: netip.MustParsePrefix("10.42.0.0/16"), HostNetNS: n.ns})
	if _, err := b.Attach(ctx, Attachment{PodUID: "u", NetNSPath: q.ns}); !errors.Is(err, ErrNotReady) {
		t.Errorf("attach before init: %v, want ErrNotReady", err)
	}
}

// A recorded pod whose veth is gone (a crash between record and links) or
// whose sandbox was made again in a new namespace (a reboot) is plumbed
// again on Attach, with the same address.
func TestAttachReplumbsLostLinks(t *testing.T) {
	roottest.Require(t, "network namespaces, netlink, nftables")
	n := newSingleNode(t)
	p := n.addPod(t, "lost", PortMapping{HostPort: 30110, ContainerPort: 80})
	withHandle(t, n.ns, func(h *netlink.Handle) {
		l, err := h.LinkByName(hostVethName("corral0", p.uid))
		if err != nil {
			t.Fatal(err)
		}
		if err := h.LinkDel(l); err != nil {
			t.Fatal(err)
		}
	})
	ip, err := n.b.Attach(context.Background(), Attachment{PodUID: p.uid, Namespace: "default", Name: "lost", NetNSPath: p.ns,
		Ports: []PortMapping{{HostPort: 30110, ContainerPort: 80}}})
	if err != nil || ip != p.ip {
		t.Fatalf("attach after the veth was lost: %s, %v; want %s", ip, err, p.ip)
	}
	serve(t, p.ns, p.ip.String()+":80", "lost")
	waitFetch(t, n.ns, "http://"+p.ip.String()+":80/", "lost")
	// The sandbox made again: a new namespace for the same pod.
	fresh := newNetNS(t, "pod")
	ip, err = n.b.Attach(context.Background(), Attachment{PodUID: p.uid, Namespace: "default", Name: "lost", NetNSPath: fresh,
		Ports: []PortMapping{{HostPort: 30110, ContainerPort: 80}}})
	if err != nil || ip != p.ip {
		t.Fatalf("attach in a new namespace: %s, %v; want %s", ip, err, p.ip)
	}
	serve(t, fresh, p.ip.String()+":80", "fresh")
	waitFetch(t, n.ns, "http://"+p.ip.String()+":80/", "fresh")
	if v := vethsOnBridge(t, n); len(v) != 1 {
		t.Fatalf("veths on the bridge %v, want one", v)
	}
	if r := hostportRules(t, n); len(r) != 1 {
		t.Fatalf("%d hostport rules, want 1", len(r))
	}
}
