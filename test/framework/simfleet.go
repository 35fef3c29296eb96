package framework

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	corralpb "github.com/corral-dev/corral/proto"
)

// SimFleet is a set of simulated node agents (SimAgent) that share one gRPC
// connection per server, so that thousands of them cost a few connections
// and a goroutine each rather than a process each.
type SimFleet struct {
	token   string
	conns   []*grpc.ClientConn
	clients []corralpb.NodeAPIClient

	mu     sync.Mutex
	agents []*SimAgent
	seq    int
}

// NewSimFleet dials every server address once (lazily, as gRPC does) for
// agents that authenticate with the join token. When the test ends it stops
// every agent started from it, then closes the connections; create it after
// the cluster so that this happens before the servers stop.
func NewSimFleet(t testing.TB, token string, addrs []string) *SimFleet {
	t.Helper()
	f, err := DialSimFleet(token, addrs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

// DialSimFleet is NewSimFleet outside a test (a process that only runs
// simulated agents); the caller closes the fleet.
func DialSimFleet(token string, addrs []string) (*SimFleet, error) {
	if len(addrs) == 0 {
		return nil, errors.New("sim fleet: no server addresses")
	}
	f := &SimFleet{token: token}
	for _, addr := range addrs {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("sim fleet: dial %s: %w", addr, err)
		}
		f.conns = append(f.conns, conn)
		f.clients = append(f.clients, corralpb.NewNodeAPIClient(conn))
	}
	return f, nil
}

// Start starts a simulated agent: it registers its node and then follows
// its assignments until it is stopped (Stop, or Close of the fleet). A
// config without a name gets sim-<n>.
func (f *SimFleet) Start(cfg SimAgentConfig) *SimAgent {
	f.mu.Lock()
	seq := f.seq
	f.seq++
	if cfg.Name == "" {
		cfg.Name = fmt.Sprintf("sim-%d", seq)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a := newSimAgent(f, cfg, seq, cancel)
	f.agents = append(f.agents, a)
	f.mu.Unlock()
	go a.run(ctx)
	return a
}

// Agents returns every agent started from the fleet, in start order.
func (f *SimFleet) Agents() []*SimAgent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*SimAgent(nil), f.agents...)
}

// client returns the node API client of server i (modulo their number).
func (f *SimFleet) client(i int) corralpb.NodeAPIClient { return f.clients[i%len(f.clients)] }

// size is the number of servers.
func (f *SimFleet) size() int { return len(f.clients) }

// Close stops every agent (all at once: each stop only waits for its own
// calls to return) and closes the connections.
func (f *SimFleet) Close() {
	agents := f.Agents()
	for _, a := range agents {
		a.halt()
	}
	for _, a := range agents {
		a.Stop()
	}
	for _, c := range f.conns {
		_ = c.Close()
	}
}

// simAddr returns a distinct IPv4 address in net.0.0.0/8 for a sequence
// number (up to 2^24 of them).
func simAddr(net, seq int) string {
	return fmt.Sprintf("%d.%d.%d.%d", net, (seq>>16)&255, (seq>>8)&255, seq&255)
}
