package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/corral-dev/corral/internal/netnstest"
	"github.com/corral-dev/corral/internal/roottest"
	"github.com/corral-dev/corral/nodeagent/network"
)

// newBenchNetNS makes a named network namespace with lo up, removed when
// the benchmark ends (also if it fails), and returns its path.
func newBenchNetNS(b *testing.B, name string) string {
	b.Helper()
	path, err := netnstest.Create(name)
	b.Cleanup(func() { _ = netnstest.Remove(path) })
	if err != nil {
		b.Fatalf("create netns %s: %v", name, err)
	}
	return path
}

// BenchmarkPodNetworkSetUp measures what the built-in pod network adds to
// a pod's start and stop, per pod, over 50 pods in a throwaway node
// namespace: creating the pod's network namespace (with lo up), Attach
// (veth into the bridge, address, default route, nftables rewrite with one
// hostPort mapping per pod) and Detach. The target is at most 20 ms per
// pod start.
func BenchmarkPodNetworkSetUp(b *testing.B) {
	roottest.Require(b, "real containers")
	const pods = 50
	ctx := context.Background()
	var nsTime, attachTime, detachTime time.Duration
	for n := 0; n < b.N; n++ {
		prefix := fmt.Sprintf("corralbench-%d-%d", os.Getpid(), n)
		node := newBenchNetNS(b, prefix+"-node")
		nb, err := network.New(network.Config{StateDir: filepath.Join(b.TempDir(), "net"), ClusterCIDR: netip.MustParsePrefix("10.42.0.0/16"),
			NodeIP: netip.MustParseAddr("10.98.0.1"), HostNetNS: node, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			b.Fatal(err)
		}
		if err := nb.Init(ctx, netip.MustParsePrefix("10.42.3.0/24")); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			if err := nb.Destroy(ctx); err != nil {
				b.Error(err)
			}
		})
		paths := make([]string, pods)
		for i := range pods {
			start := time.Now()
			paths[i] = newBenchNetNS(b, fmt.Sprintf("%s-pod%d", prefix, i))
			nsTime += time.Since(start)
			start = time.Now()
			ip, err := nb.Attach(ctx, network.Attachment{PodUID: fmt.Sprintf("bench-%d", i), Namespace: "bench", Name: fmt.Sprint(i),
				NetNSPath: paths[i], Ports: []network.PortMapping{{HostPort: uint16(30000 + i), ContainerPort: 80, Protocol: "TCP"}}})
			attachTime += time.Since(start)
			if err != nil {
				b.Fatal(err)
			}
			if ip.Is4() && net.IP(ip.AsSlice()).IsUnspecified() {
				b.Fatalf("pod %d got %s", i, ip)
			}
		}
		for i := range pods {
			start := time.Now()
			if err := nb.Detach(ctx, fmt.Sprintf("bench-%d", i)); err != nil {
				b.Fatal(err)
			}
			detachTime += time.Since(start)
			_ = netnstest.Remove(paths[i])
		}
	}
	per := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) / float64(b.N*pods) }
	b.ReportMetric(per(nsTime), "netns-ms/pod")
	b.ReportMetric(per(attachTime), "attach-ms/pod")
	b.ReportMetric(per(detachTime), "detach-ms/pod")
}
