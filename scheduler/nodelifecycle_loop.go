package scheduler

import (
	"context"
	"log/slog"
	"sync"
	"time"

	corralpb "github.com/corral-dev/corral/proto"
)

// DefaultNodeGracePeriod is how long a node may go without a heartbeat
// before it is marked Ready=Unknown (Kubernetes' node-monitor-grace-period).
const DefaultNodeGracePeriod = 40 * time.Second

// NodeLifecycle is the leader-only loop that turns missing heartbeats into
// node condition transitions.
type NodeLifecycle struct {
	cluster Cluster
	log     *slog.Logger
	grace   time.Duration
	tick    time.Duration

	mu       sync.Mutex
	leading  bool
	lastSeen map[string]time.Time
}

// NewNodeLifecycle returns the loop; Run drives it.
func NewNodeLifecycle(c Cluster, grace time.Duration, log *slog.Logger) *NodeLifecycle {
	if grace <= 0 {
		grace = DefaultNodeGracePeriod
	}
	return &NodeLifecycle{cluster: c, log: log, grace: grace, tick: min(time.Second, grace/4), lastSeen: map[string]time.Time{}}
}

// Seen records heartbeats from nodes at now. Heartbeats that arrive while
// this server does not lead are dropped: the leader keeps the soft state.
func (l *NodeLifecycle) Seen(nodes []string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.leading {
		return
	}
	for _, n := range nodes {
		l.lastSeen[n] = now
	}
}

// Leading reports whether the loop runs (this server leads).
func (l *NodeLifecycle) Leading() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.leading
}

// Run follows leadership until ctx ends, checking nodes every tick while
// leading.
func (l *NodeLifecycle) Run(ctx context.Context) {
	leader := l.cluster.SubscribeLeadership()
	t := time.NewTicker(l.tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case v, ok := <-leader:
			if !ok {
				return
			}
			l.setLeading(v, time.Now())
		case <-t.C:
			if l.Leading() {
				l.check(ctx, time.Now())
			}
		}
	}
}

// setLeading starts every known node's clock afresh when leadership is
// gained, so that a leader change does not mark healthy nodes Unknown.
func (l *NodeLifecycle) setLeading(v bool, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.leading = v
	l.lastSeen = map[string]time.Time{}
	if !v {
		return
	}
	nodes, err := l.cluster.State().List(nil, "Node", "")
	if err != nil {
		l.log.Error("list nodes", "err", err)
		return
	}
	for _, o := range nodes {
		l.lastSeen[o.GetNode().GetMetadata().GetName()] = now
	}
}

func (l *NodeLifecycle) check(ctx context.Context, now time.Time) {
	objs, err := l.cluster.State().List(nil, "Node", "")
	if err != nil {
		l.log.Error("list nodes", "err", err)
		return
	}
	nodes := make([]*corralpb.Node, 0, len(objs))
	l.mu.Lock()
	for _, o := range objs {
		n := o.GetNode()
		nodes = append(nodes, n)
		// A node created (registered or applied) under this leader starts
		// its clock when first noticed.
		if _, ok := l.lastSeen[n.GetMetadata().GetName()]; !ok {
			l.lastSeen[n.GetMetadata().GetName()] = now
		}
	}
	seen := make(map[string]time.Time, len(l.lastSeen))
	for k, v := range l.lastSeen {
		seen[k] = v
	}
	l.mu.Unlock()
	changes := PlanNodeLifecycle(nodes, seen, now, l.grace)
	var wg sync.WaitGroup
	for _, n := range changes {
		wg.Add(1)
		go func(n *corralpb.Node) {
			defer wg.Done()
			l.write(ctx, n)
		}(n)
	}
	wg.Wait()
}

// write commits one transition with compare-and-set; a conflict is retried
// on the next tick from fresh state.
func (l *NodeLifecycle) write(ctx context.Context, n *corralpb.Node) {
	m := n.GetMetadata()
	op := &corralpb.Op{Type: corralpb.Op_PUT, Object: &corralpb.Object{Kind: &corralpb.Object_Node{Node: n}},
		Precondition: corralpb.Op_RESOURCE_VERSION, ResourceVersion: m.GetResourceVersion()}
	res, err := l.cluster.Write(ctx, &corralpb.Batch{Ops: []*corralpb.Op{op}, OmitObjects: true})
	if err != nil {
		l.log.Warn("node transition not written", "node", m.GetName(), "err", err)
		return
	}
	if res.GetCode() != corralpb.ErrorCode_OK {
		l.log.Debug("node transition refused; retrying next tick", "node", m.GetName(), "code", res.GetCode())
		return
	}
	status := "Unknown"
	if c := readyCondition(n); c != nil {
		status = c.GetStatus()
	}
	l.log.Info("node ready condition changed", "node", m.GetName(), "ready", status)
}
