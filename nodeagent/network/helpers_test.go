package network

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/corral-dev/corral/internal/netnstest"
)

// newNetNS makes a throwaway named network namespace with lo up and
// returns its path; it is deleted when the test ends.
func newNetNS(t testing.TB, role string) string {
	t.Helper()
	return netnstest.New(t, role)
}

// withHandle runs fn with a netlink handle in the namespace at path.
func withHandle(t testing.TB, path string, fn func(h *netlink.Handle)) {
	t.Helper()
	ns, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	fn(h)
}

// inNSPath runs fn in the namespace at path.
func inNSPath(path string, fn func() error) error { return netnstest.Run(path, fn) }

// addDummy gives the namespace a link with addr, as a node's address: a
// veth pair (the dummy driver is not built into every kernel).
func addDummy(t testing.TB, path string, addr netip.Prefix) {
	t.Helper()
	withHandle(t, path, func(h *netlink.Handle) {
		d := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "node0"}, PeerName: "node0p", PeerTxQLen: -1}
		if err := h.LinkAdd(d); err != nil {
			t.Fatal(err)
		}
		if err := h.AddrAdd(d, &netlink.Addr{IPNet: prefixToIPNet(addr)}); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"node0", "node0p"} {
			l, err := h.LinkByName(name)
			if err == nil {
				err = h.LinkSetUp(l)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	})
}

// linkNodes connects two node namespaces with a veth pair, addr1 on the
// first's end, addr2 on the second's.
func linkNodes(t testing.TB, ns1, ns2 string, addr1, addr2 netip.Prefix) {
	t.Helper()
	peer, err := netns.GetFromPath(ns2)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	withHandle(t, ns1, func(h *netlink.Handle) {
		v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "lan0"}, PeerName: "lan0", PeerNamespace: netlink.NsFd(int(peer)), PeerTxQLen: -1}
		if err := h.LinkAdd(v); err != nil {
			t.Fatal(err)
		}
	})
	for _, side := range []struct {
		ns   string
		addr netip.Prefix
	}{{ns1, addr1}, {ns2, addr2}} {
		withHandle(t, side.ns, func(h *netlink.Handle) {
			l, err := h.LinkByName("lan0")
			if err == nil {
				err = h.AddrAdd(l, &netlink.Addr{IPNet: prefixToIPNet(side.addr)})
			}
			if err == nil {
				err = h.LinkSetUp(l)
			}
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// testNode is a node namespace with a Bridge, destroyed when the test ends.
type testNode struct {
	ns      string
	b       *Bridge
	dir     string
	nodeIP  netip.Addr
	podCIDR netip.Prefix
}

func newTestNode(t testing.TB, ns string, nodeIP netip.Addr, podCIDR string) *testNode {
	t.Helper()
	n := &testNode{ns: ns, dir: filepath.Join(t.TempDir(), "net"), nodeIP: nodeIP, podCIDR: netip.MustParsePrefix(podCIDR)}
	var out io.Writer = testWriter{t}
	if !testing.Verbose() {
		out = io.Discard
	}
	b, err := New(Config{StateDir: n.dir, ClusterCIDR: netip.MustParsePrefix("10.42.0.0/16"), NodeIP: nodeIP, HostNetNS: ns,
		Logger: slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	n.b = b
	if err := b.Init(context.Background(), n.podCIDR); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.b.Destroy(context.Background()); err != nil {
			t.Errorf("destroy: %v", err)
		}
	})
	return n
}

// newSingleNode is a node namespace with a dummy link holding 10.98.0.1.
func newSingleNode(t testing.TB) *testNode {
	ns := newNetNS(t, "node")
	addDummy(t, ns, netip.MustParsePrefix("10.98.0.1/24"))
	return newTestNode(t, ns, netip.MustParseAddr("10.98.0.1"), "10.42.3.0/24")
}

type testPod struct {
	uid, name, ns string
	ip            netip.Addr
}

// addPod makes a pod namespace and attaches it.
func (n *testNode) addPod(t testing.TB, name string, ports ...PortMapping) *testPod {
	t.Helper()
	p := &testPod{uid: "uid-" + name, name: name, ns: newNetNS(t, "pod")}
	ip, err := n.b.Attach(context.Background(), Attachment{PodUID: p.uid, Namespace: "default", Name: name, NetNSPath: p.ns, Ports: ports})
	if err != nil {
		t.Fatalf("attach %s: %v", name, err)
	}
	p.ip = ip
	return p
}

// serve answers HTTP on port in the pod's (or any) namespace with the
// name and the client's address, until the test ends.
func serve(t testing.TB, nsPath, addr, name string) {
	t.Helper()
	var ln net.Listener
	err := inNSPath(nsPath, func() (err error) {
		ln, err = net.Listen("tcp4", addr)
		return err
	})
	if err != nil {
		t.Fatalf("listen on %s in %s: %v", addr, nsPath, err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", name, r.RemoteAddr)
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
}

// fetch GETs url from the namespace at nsPath, returning the body.
func fetch(nsPath, url string) (string, error) {
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := inNSPath(nsPath, func() (err error) {
			c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
	cl := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true}}
	resp, err := cl.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// waitFetch fetches until the body starts with want or the deadline.
func waitFetch(t testing.TB, nsPath, url, want string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		body, err := fetch(nsPath, url)
		if err == nil && strings.HasPrefix(body, want) {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s from %s: %q, %v; want %q", url, filepath.Base(nsPath), body, err, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// hostportRules reads the hostports chain back from the node's table.
func hostportRules(t testing.TB, n *testNode) []*nftables.Rule {
	t.Helper()
	ns, err := netns.GetFromPath(n.ns)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	conn, err := nftables.New(nftables.WithNetNSFd(int(ns)))
	if err != nil {
		t.Fatal(err)
	}
	tbl := &nftables.Table{Name: n.b.cfg.Table, Family: nftables.TableFamilyIPv4}
	rules, err := conn.GetRules(tbl, &nftables.Chain{Name: "hostports", Table: tbl})
	if err != nil {
		t.Fatalf("read hostports rules: %v", err)
	}
	return rules
}

// vethsOnBridge lists the links whose master is the node's bridge.
func vethsOnBridge(t testing.TB, n *testNode) []string {
	t.Helper()
	var names []string
	withHandle(t, n.ns, func(h *netlink.Handle) {
		br, err := h.LinkByName(n.b.cfg.Bridge)
		if err != nil {
			t.Fatal(err)
		}
		links, err := h.LinkList()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range links {
			if l.Attrs().MasterIndex == br.Attrs().Index {
				names = append(names, l.Attrs().Name)
			}
		}
	})
	return names
}

// dirEntries counts the files in dir (not starting with a dot).
func dirEntries(t testing.TB, dir string, skip ...string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
next:
	for _, e := range entries {
		for _, s := range skip {
			if e.Name() == s {
				continue next
			}
		}
		out = append(out, e.Name())
	}
	return out
}
