// Package framework runs corral clusters for tests behind one small
// interface, so that a test body is written once and runs both against
// in-process servers (fast, layer 3) and against real `corral server`
// processes (layer 4), as etcd's tests/framework does.
package framework

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	corralpb "github.com/corral-dev/corral/proto"
)

// Cluster is a running corral cluster under test.
type Cluster interface {
	// Size is the number of servers, running or not.
	Size() int
	// Client returns a cluster API client talking to server i only.
	Client(t testing.TB, i int) corralpb.ClusterClient
	// Kill stops server i abruptly (kill -9 for processes).
	Kill(t testing.TB, i int)
	// Restart starts server i again from its data dir with the same flags.
	Restart(t testing.TB, i int)
	// Running reports whether server i runs.
	Running(i int) bool
	// AdminConf is the path of an admin.conf a CLI can use.
	AdminConf() string
}

// Leader returns the index of the running server that leads, asking the
// running servers until one reports a leader that is running.
func Leader(t testing.TB, c Cluster) int {
	t.Helper()
	leader := -1
	WaitFor(t, "a leader", 20*time.Second, func() bool {
		for i := 0; i < c.Size(); i++ {
			if !c.Running(i) {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			resp, err := c.Client(t, i).Members(ctx, &corralpb.MembersRequest{})
			cancel()
			if err != nil {
				continue
			}
			for _, m := range resp.GetMembers() {
				if m.GetRaftState() != "Leader" {
					continue
				}
				for j := 0; j < c.Size(); j++ {
					if c.Running(j) && serverName(j) == m.GetName() {
						leader = j
						return true
					}
				}
			}
		}
		return false
	})
	return leader
}

// serverName is the name the frameworks give server i.
func serverName(i int) string { return fmt.Sprintf("server-%d", i+1) }

// WaitFor polls cond every 20 ms until it holds or timeout passes.
func WaitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freeAddrs reserves n loopback addresses with distinct ports.
func freeAddrs(t testing.TB, n int) []string {
	t.Helper()
	var out []string
	var ls []net.Listener
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		out = append(out, l.Addr().String())
	}
	for _, l := range ls {
		_ = l.Close()
	}
	return out
}

// dial returns a client for addr that sends token as a bearer token.
func dial(t testing.TB, addr, token string) corralpb.ClusterClient {
	t.Helper()
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			return invoker(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token), method, req, reply, cc, opts...)
		}),
		grpc.WithStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			return streamer(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token), desc, cc, method, opts...)
		}),
	)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return corralpb.NewClusterClient(conn)
}
