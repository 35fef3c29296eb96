package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/corral-dev/corral/nodeagent/network"
	"github.com/corral-dev/corral/nodeagent/runtime"
	corralpb "github.com/corral-dev/corral/proto"
)

// fakeNetwork records what the agent asks of the pod network.
type fakeNetwork struct {
	mu       sync.Mutex
	inits    []netip.Prefix
	attached map[string]network.Attachment
	addrs    map[string]netip.Addr
	next     byte
	detached []string
	peers    [][]network.Peer
	kept     []map[string]bool
}

var _ network.Network = (*fakeNetwork)(nil)

func newFakeNetwork() *fakeNetwork {
	return &fakeNetwork{attached: map[string]network.Attachment{}, addrs: map[string]netip.Addr{}, next: 2}
}

func (f *fakeNetwork) Init(_ context.Context, p netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inits = append(f.inits, p)
	return nil
}

func (f *fakeNetwork) Attach(_ context.Context, a network.Attachment) (netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ip, ok := f.addrs[a.PodUID]; ok {
		return ip, nil
	}
	ip := netip.AddrFrom4([4]byte{10, 42, 7, f.next})
	f.next++
	f.attached[a.PodUID], f.addrs[a.PodUID] = a, ip
	return ip, nil
}

func (f *fakeNetwork) Detach(_ context.Context, uid string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.detached = append(f.detached, uid)
	delete(f.attached, uid)
	delete(f.addrs, uid)
	return nil
}

func (f *fakeNetwork) SetPeers(_ context.Context, p []network.Peer) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.peers = append(f.peers, p)
	return nil
}

func (f *fakeNetwork) Reconcile(_ context.Context, keep map[string]bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.kept = append(f.kept, keep)
	return nil
}

func (f *fakeNetwork) Destroy(context.Context) error { return nil }

func (f *fakeNetwork) isAttached(uid string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.attached[uid]
	return ok
}

func TestPodNetConfiguresSavesAndRoutes(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "network.json")
	var made []netip.Prefix
	fn := newFakeNetwork()
	newNet := func(cluster netip.Prefix) (network.Network, error) {
		made = append(made, cluster)
		return fn, nil
	}
	p, err := NewPodNet(ctx, path, newNet, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Attach(ctx, network.Attachment{PodUID: "u1"}); !errors.Is(err, network.ErrNotReady) {
		t.Fatalf("attach before the node has a CIDR: %v, want ErrNotReady", err)
	}
	if err := p.Detach(ctx, "u1"); err != nil {
		t.Fatalf("detach with no network: %v", err)
	}
	if err := p.Configure(ctx, "10.42.0.0/16", "bogus"); err == nil {
		t.Fatal("a malformed pod CIDR was accepted")
	}
	for range 2 {
		if err := p.Configure(ctx, "10.42.0.0/16", "10.42.7.0/24"); err != nil {
			t.Fatal(err)
		}
	}
	if len(made) != 1 || len(fn.inits) != 1 || fn.inits[0].String() != "10.42.7.0/24" {
		t.Fatalf("networks made %v, inits %v: want one of each", made, fn.inits)
	}
	routes := []*corralpb.NodeRoute{{NodeName: "b", PodCidr: "10.42.8.0/24", NodeIp: "192.0.2.8"},
		{NodeName: "bad", PodCidr: "nope", NodeIp: "192.0.2.9"}}
	for range 2 {
		if err := p.SetRoutes(ctx, routes); err != nil {
			t.Fatal(err)
		}
	}
	if len(fn.peers) != 1 || len(fn.peers[0]) != 1 || fn.peers[0][0].PodCIDR.String() != "10.42.8.0/24" || fn.peers[0][0].NodeIP.String() != "192.0.2.8" {
		t.Fatalf("peers set: %v (want one set, malformed route skipped, unchanged set not re-applied)", fn.peers)
	}
	// A restarted agent readies the network before any server answers.
	made = nil
	p2, err := NewPodNet(ctx, path, newNet, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(made) != 1 || made[0].String() != "10.42.0.0/16" || fn.inits[len(fn.inits)-1].String() != "10.42.7.0/24" {
		t.Fatalf("after a restart: made %v, inits %v", made, fn.inits)
	}
	if ip, err := p2.Attach(ctx, network.Attachment{PodUID: "u1"}); err != nil || !ip.IsValid() {
		t.Fatalf("attach after restart: %v %v", ip, err)
	}
}

func TestDesiredKeepsRoutes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "assignments.pb")
	d, err := OpenDesired(path)
	if err != nil {
		t.Fatal(err)
	}
	route := func(n string) *corralpb.Assignment {
		return &corralpb.Assignment{Item: &corralpb.Assignment_Route{Route: &corralpb.NodeRoute{NodeName: n, PodCidr: "10.42.1.0/24", NodeIp: "192.0.2.1"}}}
	}
	pod := &corralpb.Assignment{Item: &corralpb.Assignment_Pod{Pod: testPod("web", "u1")}}
	if err := d.Apply(&corralpb.AssignmentsMessage{Complete: true, Items: []*corralpb.Assignment{pod, route("a"), route("b")}}); err != nil {
		t.Fatal(err)
	}
	// Removing node "web" must not remove pod default/web.
	if err := d.Apply(&corralpb.AssignmentsMessage{Items: []*corralpb.Assignment{{Item: &corralpb.Assignment_Removed{Removed: &corralpb.ObjectKey{Kind: "Node", Name: "a"}}}}}); err != nil {
		t.Fatal(err)
	}
	d2, err := OpenDesired(path)
	if err != nil {
		t.Fatal(err)
	}
	if r := d2.Routes(); len(r) != 1 || r[0].GetNodeName() != "b" || len(d2.Pods()) != 1 {
		t.Fatalf("after reload: routes %v, pods %d", r, len(d2.Pods()))
	}
}

// A pod that is not hostNetwork is attached once its sandbox exists, its
// address is its pod IP (status, env), its hostPorts are mapped, and it is
// detached when it goes; a hostNetwork pod is never attached.
func TestPodManagerAttachesPodsToTheNetwork(t *testing.T) {
	rt, s := newFakeRuntime(), &sink{last: map[string]*corralpb.PodStatus{}}
	fn := newFakeNetwork()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := NewPodManager(PodManagerConfig{NodeName: "n1", NodeIP: "10.0.0.1", Runtime: rt, Images: fakeImages{},
		Volumes: fakeVolumes{}, Network: fn, Reporter: s, SyncPeriod: 10 * time.Millisecond})
	web := testPod("web", "u1")
	web.Spec.Containers[0].Ports = []*corralpb.ContainerPort{{ContainerPort: 80, HostPort: 8080, Protocol: "TCP"},
		{ContainerPort: 53, HostPort: 5353, Protocol: "UDP", HostIp: "10.0.0.1"}, {ContainerPort: 9090}}
	host := testPod("host", "u2")
	host.Spec.HostNetwork = true
	m.Sync(ctx, map[string]*corralpb.Pod{"default/web": web, "default/host": host}, nil)
	waitUntil(t, "both running with their IPs", func() bool {
		return s.get("web").GetPodIp() == "10.42.7.2" && s.get("host").GetPodIp() == "10.0.0.1" &&
			len(s.get("web").GetPodIps()) == 1 && s.get("web").GetHostIp() == "10.0.0.1"
	})
	fn.mu.Lock()
	a := fn.attached["u1"]
	_, hostAttached := fn.attached["u2"]
	keep := fn.kept
	fn.mu.Unlock()
	if hostAttached {
		t.Fatal("a hostNetwork pod was attached to the pod network")
	}
	want := fmt.Sprint([]network.PortMapping{{HostPort: 8080, ContainerPort: 80, Protocol: "TCP"},
		{HostPort: 5353, ContainerPort: 53, Protocol: "UDP", HostIP: netip.MustParseAddr("10.0.0.1")}})
	if got := fmt.Sprint(a.Ports); got != want || a.NetNSPath != "/run/netns/u1" || a.Name != "web" {
		t.Fatalf("attachment %+v, want ports %s in /run/netns/u1", a, want)
	}
	if len(keep) != 1 || !keep[0]["u1"] || !keep[0]["u2"] {
		t.Fatalf("reconcile at start kept %v, want the desired pods", keep)
	}
	m.Sync(ctx, map[string]*corralpb.Pod{"default/host": host}, nil)
	waitUntil(t, "web detached and its sandbox removed", func() bool {
		_, sb, _ := rt.count()
		return !fn.isAttached("u1") && sb == 1
	})
	fn.mu.Lock()
	defer fn.mu.Unlock()
	if len(fn.detached) != 1 || fn.detached[0] != "u1" {
		t.Fatalf("detached %v, want [u1]", fn.detached)
	}
}

// A sandbox made afresh (a reboot took the old one) drops the pod's old
// attachment before attaching again.
func TestFreshSandboxIsReattached(t *testing.T) {
	fn := newFakeNetwork()
	m := NewPodManager(PodManagerConfig{NodeName: "n1", NodeIP: "10.0.0.1", Network: fn})
	w := newPodWorker(m, "u1", testPod("web", "u1"), nil)
	ctx := context.Background()
	sb := &runtime.Sandbox{PodUID: "u1", NetNSPath: "/run/netns/x", Created: time.Unix(1, 0), Fresh: true}
	if err := w.attachNetwork(ctx, w.pod, sb); err != nil {
		t.Fatal(err)
	}
	if err := w.attachNetwork(ctx, w.pod, &runtime.Sandbox{PodUID: "u1", Created: time.Unix(1, 0)}); err != nil {
		t.Fatal(err)
	}
	if len(fn.detached) != 1 {
		t.Fatalf("detaches %v: want one, before the first attach only", fn.detached)
	}
	first := w.netIP
	if err := w.attachNetwork(ctx, w.pod, &runtime.Sandbox{PodUID: "u1", Created: time.Unix(2, 0), Fresh: true}); err != nil {
		t.Fatal(err)
	}
	if len(fn.detached) != 2 || w.netIP == "" || w.netIP == first {
		t.Fatalf("after a fresh sandbox: detached %v, ip %s (was %s)", fn.detached, w.netIP, first)
	}
}
