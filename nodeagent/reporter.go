package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	corralpb "github.com/corral-dev/corral/proto"
)

// Reporter coalesces pod status updates: workers report as often as they
// like, the latest status per pod wins, and the reporter sends what changed
// in one report at most every flushInterval, on a ReportStatus stream it
// keeps open. Updates that fail are kept and sent again; pods the server
// says are gone are dropped.
type Reporter struct {
	api  corralpb.NodeAPIClient
	node string
	log  *slog.Logger

	mu      sync.Mutex
	pending map[string]*corralpb.PodStatusUpdate
	sent    map[string]*corralpb.PodStatus
	kick    chan struct{}

	// stream is the open status stream (nil: none), opened when run
	// starts and again by the next report after one fails; only run's
	// goroutine uses it.
	stream      corralpb.NodeAPI_ReportStatusClient
	closeStream context.CancelFunc
}

const (
	flushInterval = 500 * time.Millisecond
	// reportTimeout bounds the wait for a report's answer: past it the
	// stream is closed and the report sent again on a new one.
	reportTimeout = 10 * time.Second
)

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
	defer r.drop()
	// Open the stream now, so that the first reports do not wait for it;
	// if that fails, the first flush tries again.
	if err := r.open(ctx); err != nil {
		r.log.Debug("open the status stream", "err", err)
	}
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
	resp, err := r.send(ctx, &corralpb.UpdateStatusRequest{NodeName: r.node, Pods: batch})
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

// send reports req on the status stream, opening one when none is open,
// and waits at most reportTimeout for the server's answer. On an error it
// drops the stream: the next report opens another, on whichever server
// the connection reaches by then.
func (r *Reporter) send(ctx context.Context, req *corralpb.UpdateStatusRequest) (*corralpb.UpdateStatusResponse, error) {
	if r.stream == nil {
		if err := r.open(ctx); err != nil {
			return nil, err
		}
	}
	timer := time.AfterFunc(reportTimeout, r.closeStream)
	err := r.stream.Send(req)
	var resp *corralpb.UpdateStatusResponse
	if err == nil || errors.Is(err, io.EOF) { // EOF: the stream ended, and Recv says why
		resp, err = r.stream.Recv()
	}
	if !timer.Stop() && err != nil {
		err = fmt.Errorf("no answer within %v: %w", reportTimeout, err)
	}
	if err != nil {
		r.drop()
		return nil, err
	}
	return resp, nil
}

// open opens a status stream.
func (r *Reporter) open(ctx context.Context) error {
	sctx, cancel := context.WithCancel(ctx)
	st, err := r.api.ReportStatus(sctx)
	if err != nil {
		cancel()
		return err
	}
	r.stream, r.closeStream = st, cancel
	return nil
}

// drop closes the status stream, if one is open.
func (r *Reporter) drop() {
	if r.stream != nil {
		r.closeStream()
		r.stream, r.closeStream = nil, nil
	}
}

func goarch() string { return runtime.GOARCH }
