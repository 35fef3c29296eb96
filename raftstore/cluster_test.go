package raftstore

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/types/known/timestamppb"

	corralpb "github.com/corral-dev/corral/proto"
)

// testToken is the shared secret the test clusters bootstrap with.
const testToken = "0123456789abcdef0123456789abcdef"

// node is one in-process server: a raftstore.Server and the gRPC server
// that serves its Peer API on a real loopback port.
type node struct {
	name     string
	dir      string
	apiAddr  string
	raftAddr string // kept across restarts, as a real server's --raft-addr
	lis      net.Listener
	grpc     *grpc.Server
	srv      *Server
}

// testCluster runs servers on loopback with short Raft timeouts.
type testCluster struct {
	t     testing.TB
	nodes []*node
	// logs, when set, receives every server's log and Raft's (a test
	// prints it when it fails); applyTimeout, when set, replaces the
	// servers' default.
	logs         io.Writer
	applyTimeout time.Duration
}

func newTestCluster(t testing.TB, n int) *testCluster {
	t.Helper()
	c := &testCluster{t: t}
	for i := 0; i < n; i++ {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		c.nodes = append(c.nodes, &node{
			name: fmt.Sprintf("s%d", i+1), dir: filepath.Join(t.TempDir(), fmt.Sprintf("s%d", i+1)),
			apiAddr: lis.Addr().String(), lis: lis,
		})
	}
	t.Cleanup(func() {
		for _, nd := range c.nodes {
			c.stop(nd)
		}
	})
	return c
}

func (c *testCluster) config(nd *node, expect int, join []string) Config {
	raftAddr := nd.raftAddr
	if raftAddr == "" {
		raftAddr = "127.0.0.1:0"
	}
	cfg := Config{
		Name: nd.name, DataDir: nd.dir, RaftAddr: raftAddr, APIAddr: nd.apiAddr,
		BootstrapExpect: expect, Join: join, Token: testToken,
		// Short enough for quick failovers, long enough that a busy CI
		// machine (test binaries in parallel, the race detector) does not
		// miss heartbeats and hold spurious elections.
		HeartbeatTimeout: time.Second, ElectionTimeout: time.Second,
		LeaderLeaseTimeout: 500 * time.Millisecond, DiscoveryInterval: 50 * time.Millisecond,
		SnapshotThreshold: 1 << 20, TrailingLogs: 1 << 20,
		ApplyTimeout: c.applyTimeout,
	}
	if c.logs != nil {
		cfg.RaftLogOutput = c.logs
		cfg.Logger = slog.New(slog.NewTextHandler(c.logs, &slog.HandlerOptions{Level: slog.LevelDebug})).With("server", nd.name)
	}
	return cfg
}

// logBuffer is an io.Writer safe for the servers' concurrent logging.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// start starts nd with cfg, serving its Peer API on its fixed address.
func (c *testCluster) start(nd *node, cfg Config) {
	c.t.Helper()
	if nd.lis == nil {
		lis, err := net.Listen("tcp", nd.apiAddr)
		if err != nil {
			c.t.Fatalf("relisten %s: %v", nd.apiAddr, err)
		}
		nd.lis = lis
	}
	srv, err := New(cfg)
	if err != nil {
		c.t.Fatalf("start %s: %v", nd.name, err)
	}
	nd.srv = srv
	nd.raftAddr = srv.RaftAddr()
	nd.grpc = grpc.NewServer(grpc.Creds(credentials.NewTLS(srv.Credentials().ServerConfig(tls.VerifyClientCertIfGiven, nil, "h2"))))
	corralpb.RegisterPeerServer(nd.grpc, srv.PeerService())
	corralpb.RegisterCertificatesServer(nd.grpc, srv.CertificatesService())
	go func(g *grpc.Server, l net.Listener) { _ = g.Serve(l) }(nd.grpc, nd.lis)
}

// stop kills nd's server (its data dir stays).
func (c *testCluster) stop(nd *node) {
	if nd.grpc != nil {
		nd.grpc.Stop()
		nd.grpc = nil
	}
	nd.lis = nil
	if nd.srv != nil {
		_ = nd.srv.Shutdown()
		nd.srv = nil
	}
}

func (c *testCluster) addrs(except *node) []string {
	var out []string
	for _, nd := range c.nodes {
		if nd != except {
			out = append(out, nd.apiAddr)
		}
	}
	return out
}

// startAll starts every node with bootstrap-expect len(nodes), in the given
// order.
func (c *testCluster) startAll(order ...int) {
	c.t.Helper()
	if len(order) == 0 {
		for i := range c.nodes {
			order = append(order, i)
		}
	}
	for _, i := range order {
		nd := c.nodes[i]
		c.start(nd, c.config(nd, len(c.nodes), c.addrs(nd)))
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// leader waits for a single leader among the running nodes that has
// written the cluster configuration.
func (c *testCluster) leader() *node {
	c.t.Helper()
	var l *node
	waitFor(c.t, "a leader", 15*time.Second, func() bool {
		l = nil
		count := 0
		for _, nd := range c.nodes {
			if nd.srv != nil && nd.srv.IsLeader() {
				l = nd
				count++
			}
		}
		if count != 1 {
			return false
		}
		cc, err := l.srv.State().ClusterConfig(nil)
		return err == nil && cc != nil
	})
	return l
}

func configMap(name, value string) *corralpb.Object {
	return &corralpb.Object{Kind: &corralpb.Object_ConfigMap{ConfigMap: &corralpb.ConfigMap{
		ApiVersion: "v1", Kind: "ConfigMap",
		Metadata: &corralpb.ObjectMeta{Name: name, Namespace: "default", Uid: "uid-" + name,
			CreationTimestamp: timestamppb.New(time.Unix(1700000000, 0))},
		Data: map[string]string{"v": value},
	}}}
}

func put(o *corralpb.Object) *corralpb.Batch {
	return &corralpb.Batch{Ops: []*corralpb.Op{{Type: corralpb.Op_PUT, Object: o}}}
}

// mustWrite writes through nd and fails the test on any error or non-OK
// result.
func mustWrite(t testing.TB, nd *node, b *corralpb.Batch) *corralpb.BatchResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := nd.srv.Write(ctx, b)
	if err != nil {
		t.Fatalf("write through %s: %v", nd.name, err)
	}
	if res.GetCode() != corralpb.ErrorCode_OK {
		t.Fatalf("write through %s: %v %s", nd.name, res.GetCode(), res.GetMessage())
	}
	return res
}

// mustRead reads a config map's value through nd with a linearizable read.
func mustRead(t testing.TB, nd *node, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := nd.srv.ConsistentRead(ctx)
	if err != nil {
		t.Fatalf("read through %s: %v", nd.name, err)
	}
	o, err := st.Get(nil, "ConfigMap", "default", name)
	if err != nil {
		t.Fatalf("get %s through %s: %v", name, nd.name, err)
	}
	if o == nil {
		return ""
	}
	return o.GetConfigMap().GetData()["v"]
}
