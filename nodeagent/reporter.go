package nodeagent

import (
	"context"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	corralpb "github.com/corral-dev/corral/proto"
)

// Reporter coalesces pod status updates: workers report as often as they
// like, the latest status per pod wins, and the reporter sends what changed
// in one call at most every flushInterval. Updates that fail are kept and
// sent again; pods the server says are gone are dropped.
type Reporter struct {
	api  corralpb.NodeAPIClient
	node string
	log  *slog.Logger

	mu      sync.Mutex
	pending map[string]*corralpb.PodStatusUpdate
	sent    map[string]*corralpb.PodStatus
	kick    chan struct{}
}

const flushInterval = 500 * time.Millisecond

func newReporter(api corralpb.NodeAPIClient, node string, log *slog.Logger) *Reporter {
	return &Reporter{api: api, node: node, log: log,
		pending: map[string]*corralpb.PodStatusUpdate{}, sent: map[string]*corralpb.PodStatus{}, kick: make(chan struct{}, 1)}
}

// Report records pod's observed status. Unchanged statuses are not sent
// again.
func (r *Reporter) Report(pod *corralpb.Pod, st *corralpb.PodStatus) {
	m := pod.GetMetadata()
	k := podKey(m.GetNamespace(), m.GetName())
	r.mu.Lock()
	if prev, ok := r.sent[k]; ok && proto.Equal(prev, st) {
		delete(r.pending, k)
		r.mu.Unlock()
		return
	}
	r.pending[k] = &corralpb.PodStatusUpdate{Namespace: m.GetNamespace(), Name: m.GetName(), Uid: m.GetUid(),
		Status: proto.Clone(st).(*corralpb.PodStatus)}
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// forget drops what it holds for pods no longer desired.
func (r *Reporter) forget(desired map[string]*corralpb.Pod) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range r.pending {
		if _, ok := desired[k]; !ok {
			delete(r.pending, k)
		}
	}
	for k := range r.sent {
		if _, ok := desired[k]; !ok {
			delete(r.sent, k)
		}
	}
}

func (r *Reporter) run(ctx context.Context) {
	t := time.NewTicker(flushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
		}
		r.flush(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (r *Reporter) flush(ctx context.Context) {
	r.mu.Lock()
	batch := make([]*corralpb.PodStatusUpdate, 0, len(r.pending))
	for _, u := range r.pending {
		batch = append(batch, u)
	}
	r.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := r.api.UpdateStatus(fctx, &corralpb.UpdateStatusRequest{NodeName: r.node, Pods: batch})
	if err != nil {
		r.log.Debug("report pod status", "pods", len(batch), "err", err)
		select { // try again at the next tick
		case r.kick <- struct{}{}:
		default:
		}
		return
	}
	gone := map[string]bool{}
	for _, g := range resp.GetGone() {
		gone[podKey(g.GetNamespace(), g.GetName())] = true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, u := range batch {
		k := podKey(u.GetNamespace(), u.GetName())
		if cur, ok := r.pending[k]; ok && cur == u {
			delete(r.pending, k)
		}
		if !gone[k] {
			r.sent[k] = u.GetStatus()
		}
	}
}

func goarch() string { return runtime.GOARCH }
