package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/corral-dev/corral/pki"
	corralpb "github.com/corral-dev/corral/proto"
)

// PodSyncer runs pods: the agent hands it the desired set after every
// change (and periodically), and it reports observed status through the
// Reporter it was given.
type PodSyncer interface {
	// Sync makes the node run exactly pods (keyed namespace/name), using
	// configMaps for their volumes and environment. It must not block for
	// long: per-pod work belongs to workers.
	Sync(ctx context.Context, pods map[string]*corralpb.Pod, configMaps func(ns, name string) (*corralpb.ConfigMap, bool))
}

// Config configures an Agent.
type Config struct {
	// Name is the node's name.
	Name string
	// DataDir holds the saved assignments and everything pods need.
	DataDir string
	// Servers are API addresses of the servers; any one will do.
	Servers []string
	// Credentials are the node's TLS identity (LoadOrCertify): the agent
	// dials the servers with them, and renews their certificate while it
	// runs.
	Credentials *pki.Credentials
	// CertDir is where the certificate was loaded from: renewed ones are
	// saved there.
	CertDir pki.Dir
	// Labels and Taints come from the agent's flags; they win over values
	// set with the CLI for the same keys at every start.
	Labels map[string]string
	Taints []*corralpb.Taint
	// NodeIP is the node's InternalIP (default: the address of the default
	// route's interface).
	NodeIP string
	// AgentPort is the port of the agent API (logs, exec), 0 if none.
	AgentPort int
	// RuntimeVersion is reported as the node's container runtime version.
	RuntimeVersion string
	// Network, when set, is configured with the pod CIDR the servers
	// allocate and routes to the other nodes' pod CIDRs (nil: pods get no
	// network beyond loopback, e.g. a simulated agent).
	Network *PodNet
	// ResyncPeriod is how often pods are synced with no change (default 10s).
	ResyncPeriod time.Duration
	// Started, if set, is called once, when start-up is over: the node is
	// registered and the syncer has been handed the servers' first
	// assignments (ReleaseStartupText belongs there).
	Started func()
	Logger  *slog.Logger
}

// Agent is a node agent's session with the servers.
type Agent struct {
	cfg      Config
	log      *slog.Logger
	desired  *Desired
	syncer   PodSyncer
	reporter *Reporter
	conn     *grpc.ClientConn
	api      corralpb.NodeAPIClient

	mu         sync.Mutex
	registered bool
	period     time.Duration
}

// New opens the agent's saved state and connects (lazily) to the servers.
func New(cfg Config) (*Agent, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ResyncPeriod == 0 {
		cfg.ResyncPeriod = 10 * time.Second
	}
	if cfg.Name == "" || cfg.DataDir == "" {
		return nil, errors.New("agent: name and data dir are required")
	}
	if cfg.Credentials == nil || !cfg.Credentials.Ready() || cfg.CertDir == "" {
		return nil, errors.New("agent: a node certificate and its directory are required (LoadOrCertify)")
	}
	if cfg.NodeIP == "" {
		cfg.NodeIP = defaultIP()
	}
	desired, err := OpenDesired(filepath.Join(cfg.DataDir, "assignments.pb"))
	if err != nil {
		return nil, err
	}
	conn, err := DialServers(cfg.Servers, cfg.Credentials)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	a := &Agent{cfg: cfg, log: cfg.Logger, desired: desired, conn: conn,
		api: corralpb.NewNodeAPIClient(conn), period: 5 * time.Second}
	a.reporter = newReporter(a.api, cfg.Name, cfg.Logger)
	return a, nil
}

// Conn is the agent's connection to the servers (for other clients of the
// node API, such as the event recorder).
func (a *Agent) Conn() *grpc.ClientConn { return a.conn }

// NodeIP is the node's InternalIP.
func (a *Agent) NodeIP() string { return a.cfg.NodeIP }

// Reporter returns where pod workers report status.
func (a *Agent) Reporter() *Reporter { return a.reporter }

// Desired returns the agent's desired state.
func (a *Agent) Desired() *Desired { return a.desired }

// Run registers, then heartbeats, follows the assignments stream, has
// syncer run the pods and reports their status until ctx ends. Pods start
// from the saved assignments at once, before any server answers. The node
// certificate is renewed meanwhile (RenewCertificates).
func (a *Agent) Run(ctx context.Context, syncer PodSyncer) error {
	defer a.conn.Close()
	a.syncer = syncer
	var wg sync.WaitGroup
	run := func(fn func(context.Context)) {
		wg.Add(1)
		go func() { defer wg.Done(); fn(ctx) }()
	}
	run(a.syncLoop)
	run(a.reporter.run)
	run(func(ctx context.Context) {
		RenewCertificates(ctx, a.cfg.Servers, a.cfg.Credentials, a.cfg.CertDir, a.cfg.Name, a.log)
	})
	run(func(ctx context.Context) {
		if !a.register(ctx) {
			return
		}
		var inner sync.WaitGroup
		inner.Add(2)
		go func() { defer inner.Done(); a.heartbeatLoop(ctx) }()
		go func() { defer inner.Done(); a.assignmentsLoop(ctx) }()
		inner.Wait()
	})
	wg.Wait()
	return nil
}

// register creates or updates the Node, retrying with backoff until it
// succeeds or ctx ends.
func (a *Agent) register(ctx context.Context) bool {
	b := newBackoff(500*time.Millisecond, 30*time.Second)
	for {
		err := a.registerOnce(ctx)
		if err == nil {
			return true
		}
		a.log.Warn("register node", "node", a.cfg.Name, "err", err)
		if !b.wait(ctx) {
			return false
		}
	}
}

func (a *Agent) registerOnce(ctx context.Context) error {
	st, err := nodeStatus(a.cfg.Name, a.cfg.NodeIP, a.cfg.AgentPort, a.cfg.RuntimeVersion, time.Now())
	if err != nil {
		return err
	}
	node := &corralpb.Node{
		Metadata: &corralpb.ObjectMeta{Name: a.cfg.Name, Labels: a.nodeLabels()},
		Spec:     &corralpb.NodeSpec{Taints: a.cfg.Taints},
		Status:   st,
	}
	rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	resp, err := a.api.Register(rctx, &corralpb.RegisterRequest{Node: node})
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.registered = true
	if p := time.Duration(resp.GetHeartbeatPeriodMs()) * time.Millisecond; p > 0 {
		a.period = p
	}
	a.mu.Unlock()
	a.log.Info("node registered", "node", a.cfg.Name, "pod_cidr", resp.GetNode().GetSpec().GetPodCidr())
	if a.cfg.Network != nil {
		// A network that cannot be readied is logged, not fatal to the
		// session: pods then fail to start with the reason as an event.
		if err := a.cfg.Network.Configure(ctx, resp.GetClusterCidr(), resp.GetNode().GetSpec().GetPodCidr()); err != nil {
			a.log.Error("pod network", "node", a.cfg.Name, "err", err)
		}
	}
	return nil
}

// nodeLabels are the flag labels plus the well-known ones Kubernetes sets.
func (a *Agent) nodeLabels() map[string]string {
	l := map[string]string{
		"kubernetes.io/hostname": a.cfg.Name,
		"kubernetes.io/os":       "linux",
		"kubernetes.io/arch":     goarch(),
	}
	for k, v := range a.cfg.Labels {
		l[k] = v
	}
	return l
}

func (a *Agent) heartbeatPeriod() time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.period
}

func (a *Agent) heartbeatLoop(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		hctx, cancel := context.WithTimeout(ctx, a.heartbeatPeriod())
		resp, err := a.api.Heartbeat(hctx, &corralpb.HeartbeatRequest{NodeName: a.cfg.Name})
		cancel()
		next := a.heartbeatPeriod()
		if err != nil {
			a.log.Debug("heartbeat", "err", err)
			next = min(next, time.Second)
		} else if p := time.Duration(resp.GetPeriodMs()) * time.Millisecond; p > 0 {
			a.mu.Lock()
			a.period = p
			a.mu.Unlock()
			next = p
		}
		t.Reset(next)
	}
}

// assignmentsLoop keeps the assignments stream open, reconnecting (to any
// server) with backoff. Each message is applied to the desired state and
// saved before the next is read.
func (a *Agent) assignmentsLoop(ctx context.Context) {
	b := newBackoff(200*time.Millisecond, 10*time.Second)
	for ctx.Err() == nil {
		got, err := a.followAssignments(ctx)
		if ctx.Err() != nil {
			return
		}
		if got {
			b.reset()
		}
		a.log.Info("assignments stream ended; reconnecting", "node", a.cfg.Name, "err", err)
		if status.Code(err) == codes.NotFound || status.Code(err) == codes.Unauthenticated {
			// The node object may be gone (deleted): register again.
			if !a.register(ctx) {
				return
			}
		}
		if !b.wait(ctx) {
			return
		}
	}
}

func (a *Agent) followAssignments(ctx context.Context) (bool, error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := a.api.Assignments(sctx, &corralpb.AssignmentsRequest{NodeName: a.cfg.Name,
		Routes: a.cfg.Network != nil})
	if err != nil {
		return false, err
	}
	got := false
	for {
		msg, err := stream.Recv()
		if err != nil {
			return got, err
		}
		got = true
		if err := a.desired.Apply(msg); err != nil {
			a.log.Error("save assignments", "err", err)
		}
	}
}

// syncLoop hands the desired pods to the syncer after every change and
// every resync period.
func (a *Agent) syncLoop(ctx context.Context) {
	t := time.NewTicker(a.cfg.ResyncPeriod)
	defer t.Stop()
	started := a.cfg.Started == nil
	for {
		// Read before the sync: the sync that follows the first
		// assignments ends start-up, not one already under way.
		assigned := a.desired.FromServers()
		if a.cfg.Network != nil {
			if err := a.cfg.Network.SetRoutes(ctx, a.desired.Routes()); err != nil {
				a.log.Warn("pod network routes", "err", err)
			}
		}
		if a.syncer != nil {
			a.syncer.Sync(ctx, a.desired.Pods(), a.desired.ConfigMap)
		}
		a.reporter.forget(a.desired.Pods())
		if assigned && !started {
			started = true
			a.cfg.Started()
		}
		select {
		case <-ctx.Done():
			return
		case <-a.desired.Changed():
		case <-t.C:
		}
	}
}
