package framework

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/corral-dev/corral/pki"
	corralpb "github.com/corral-dev/corral/proto"
	"github.com/corral-dev/corral/server"
)

// InProcess is a cluster of server.Server values in the test process, on
// real loopback TCP, with real Raft state on disk and short Raft timeouts.
type InProcess struct {
	mu      sync.Mutex
	cfgs    []server.Config
	servers []*server.Server
	clients map[int]corralpb.ClusterClient
}

var _ Cluster = (*InProcess)(nil)

// NewInProcess starts n servers with bootstrap-expect n and waits until
// the cluster has written admin.conf. Options adjust every server's config.
func NewInProcess(t testing.TB, n int, options ...func(*server.Config)) *InProcess {
	t.Helper()
	addrs := freeAddrs(t, 2*n) // one call: the ports are distinct
	api, raft := addrs[:n:n], addrs[n:]
	c := &InProcess{servers: make([]*server.Server, n), clients: map[int]corralpb.ClusterClient{}}
	root := t.TempDir()
	secret := BootstrapSecret()
	for i := 0; i < n; i++ {
		var join []string
		for j, a := range api {
			if j != i {
				join = append(join, a)
			}
		}
		c.cfgs = append(c.cfgs, server.Config{
			Name: serverName(i), DataDir: filepath.Join(root, serverName(i)),
			APIAddr: api[i], RaftAddr: raft[i], BootstrapExpect: n, Join: join, Token: secret,
			// Long enough that a busy CI machine (test binaries in
			// parallel, the race detector) holds no spurious elections.
			HeartbeatTimeout: time.Second, ElectionTimeout: time.Second,
			LeaderLeaseTimeout: 500 * time.Millisecond,
		})
		for _, o := range options {
			o(&c.cfgs[i])
		}
	}
	t.Cleanup(func() {
		for i := range c.servers {
			c.stop(i)
		}
	})
	for i := 0; i < n; i++ {
		c.Restart(t, i)
	}
	WaitFor(t, "admin.conf", 20*time.Second, func() bool {
		_, err := os.Stat(c.AdminConf())
		return err == nil
	})
	return c
}

// Size implements Cluster.
func (c *InProcess) Size() int { return len(c.cfgs) }

// Server returns server i (nil when stopped).
func (c *InProcess) Server(i int) *server.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.servers[i]
}

// Client implements Cluster.
func (c *InProcess) Client(t testing.TB, i int) corralpb.ClusterClient {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.clients[i]; ok {
		return cl
	}
	cl := dial(t, c.cfgs[i].APIAddr, c.AdminConf())
	c.clients[i] = cl
	return cl
}

// Kill implements Cluster.
func (c *InProcess) Kill(t testing.TB, i int) { c.stop(i) }

func (c *InProcess) stop(i int) {
	c.mu.Lock()
	s := c.servers[i]
	c.servers[i] = nil
	c.mu.Unlock()
	if s != nil {
		_ = s.Stop()
	}
}

// Restart implements Cluster.
func (c *InProcess) Restart(t testing.TB, i int) {
	t.Helper()
	s, err := server.Start(c.cfgs[i])
	if err != nil {
		t.Fatalf("start %s: %v", c.cfgs[i].Name, err)
	}
	c.mu.Lock()
	c.servers[i] = s
	c.mu.Unlock()
}

// Running implements Cluster.
func (c *InProcess) Running(i int) bool { return c.Server(i) != nil }

// JoinToken returns the cluster's join token (DATA_DIR/token), waiting
// for the file: a server writes it just after admin.conf.
func (c *InProcess) JoinToken(t testing.TB) string {
	t.Helper()
	var token string
	WaitFor(t, "the join token file", 20*time.Second, func() bool {
		data, err := os.ReadFile(filepath.Join(c.cfgs[0].DataDir, "token"))
		token = strings.TrimSpace(string(data))
		return err == nil && token != ""
	})
	return token
}

// APIAddr returns server i's API address.
func (c *InProcess) APIAddr(i int) string { return c.cfgs[i].APIAddr }

// APIAddrs returns every server's API address, in server order.
func (c *InProcess) APIAddrs() []string {
	out := make([]string, len(c.cfgs))
	for i := range c.cfgs {
		out[i] = c.cfgs[i].APIAddr
	}
	return out
}

// RaftLastIndex returns the index of the last entry in running server i's
// Raft log.
func (c *InProcess) RaftLastIndex(t testing.TB, i int) uint64 {
	t.Helper()
	s := c.Server(i)
	if s == nil {
		t.Fatalf("raft last index: %s is not running", serverName(i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	members, err := s.Raft().Members(ctx)
	if err != nil {
		t.Fatalf("raft last index of %s: %v", serverName(i), err)
	}
	for _, m := range members {
		if m.GetName() == serverName(i) {
			return m.GetLastIndex()
		}
	}
	t.Fatalf("raft last index: %s is not in its own configuration", serverName(i))
	return 0
}

// AdminConf implements Cluster: the first server's admin.conf.
func (c *InProcess) AdminConf() string { return filepath.Join(c.cfgs[0].DataDir, "admin.conf") }

// CA returns the cluster CA with its key (from server 1's data dir), for
// issuing node certificates to simulated agents.
func (c *InProcess) CA(t testing.TB) *pki.CA { return ClusterCA(t, c.cfgs[0].DataDir) }

// String names the cluster in test output.
func (c *InProcess) String() string { return fmt.Sprintf("in-process cluster of %d", len(c.cfgs)) }

// Config returns server i's configuration.
func (c *InProcess) Config(i int) server.Config { return c.cfgs[i] }
