package framework

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/corral-dev/corral/pki"
	corralpb "github.com/corral-dev/corral/proto"
)

// SimFleet is a set of simulated node agents (SimAgent), thousands of which
// cost a connection and a goroutine each rather than a process each. Each
// has its own node certificate, issued from the cluster CA the fleet is
// given (as Certify would, without the round trip), so the servers see
// every agent as the node it is: the real mutual-TLS path and node
// authorization.
type SimFleet struct {
	ca    *pki.CA
	addrs []string

	mu     sync.Mutex
	agents []*SimAgent
	seq    int
}

// NewSimFleet makes a fleet whose agents talk to the servers at addrs
// with node certificates from ca (which must hold its key). When the test
// ends it stops every agent started from it; create it after the cluster
// so that this happens before the servers stop.
func NewSimFleet(t testing.TB, ca *pki.CA, addrs []string) *SimFleet {
	t.Helper()
	f, err := DialSimFleet(ca, addrs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

// DialSimFleet is NewSimFleet outside a test (a process that only runs
// simulated agents); the caller closes the fleet.
func DialSimFleet(ca *pki.CA, addrs []string) (*SimFleet, error) {
	if len(addrs) == 0 {
		return nil, errors.New("sim fleet: no server addresses")
	}
	if ca == nil || ca.Key == nil {
		return nil, errors.New("sim fleet: the cluster CA and its key are needed to issue node certificates")
	}
	return &SimFleet{ca: ca, addrs: addrs}, nil
}

// credentials issues a node certificate for name.
func (f *SimFleet) credentials(name string) (*pki.Credentials, error) {
	return f.ca.IssueCredentials(pki.Identity{Role: pki.RoleNode, Name: name}, time.Now(), pki.DefaultCertValidity)
}

// dial connects (lazily, as gRPC does) to server i with creds.
func (f *SimFleet) dial(i int, creds *pki.Credentials) (*grpc.ClientConn, error) {
	addr := f.addrs[i%len(f.addrs)]
	// As the real agent dials (nodeagent.DialServers), but to one server.
	conn, err := grpc.NewClient(addr, append(corralpb.FlowWindowDialOptions(), grpc.WithTransportCredentials(
		credentials.NewTLS(creds.ClientConfig(pki.ServerName, pki.OnlyRole(pki.RoleServer)))))...)
	if err != nil {
		return nil, fmt.Errorf("sim fleet: dial %s: %w", addr, err)
	}
	return conn, nil
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

// Following returns how many of the fleet's agents follow their
// assignments (SimAgent.Following).
func (f *SimFleet) Following() int {
	n := 0
	for _, a := range f.Agents() {
		if a.Following() {
			n++
		}
	}
	return n
}

// size is the number of servers.
func (f *SimFleet) size() int { return len(f.addrs) }

// Close stops every agent (all at once: each stop only waits for its own
// calls to return, then closes its connections).
func (f *SimFleet) Close() {
	agents := f.Agents()
	for _, a := range agents {
		a.halt()
	}
	for _, a := range agents {
		a.Stop()
	}
}

// simAddr returns a distinct IPv4 address in net.0.0.0/8 for a sequence
// number (up to 2^24 of them).
func simAddr(net, seq int) string {
	return fmt.Sprintf("%d.%d.%d.%d", net, (seq>>16)&255, (seq>>8)&255, seq&255)
}
