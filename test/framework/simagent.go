package framework

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/corral-dev/corral/pki"
	corralpb "github.com/corral-dev/corral/proto"
)

// PodOutcome is what a simulated agent reports for a pod assigned to it.
type PodOutcome int

const (
	// PodReady reports the pod Running with every container running and
	// ready (Ready=True).
	PodReady PodOutcome = iota
	// PodUnready reports the pod Running with its containers running but
	// not ready (Ready=False), as a failing readiness probe would.
	PodUnready
	// PodFailed reports the pod Failed, its containers exited with code 1.
	PodFailed
)

// SimAgentConfig describes a simulated node.
type SimAgentConfig struct {
	// Name is the node's name (required).
	Name string
	// Labels are added to the well-known ones a real agent sets
	// (kubernetes.io/hostname, kubernetes.io/os, kubernetes.io/arch).
	Labels map[string]string
	// Taints are the node's taints at registration.
	Taints []*corralpb.Taint
	// CPU and Memory are the node's capacity and allocatable (default "4"
	// and "8Gi"); Pods is how many pods it takes (default 110).
	CPU, Memory string
	Pods        int
	// StatusDelay is how long after a pod is assigned its status is
	// reported (zero: at once).
	StatusDelay time.Duration
	// Outcome is what the agent reports for its pods (default PodReady);
	// SetOutcome changes it for pods assigned afterwards.
	Outcome PodOutcome
}

// SimAgent is a simulated node agent: it speaks the real node API over
// real gRPC (register, heartbeats at the period the server asks, the
// assignments stream, batched status reports on a status stream) but runs
// nothing. Every pod assigned to it is reported with the configured outcome
// after the configured delay. It costs one goroutine (the assignments
// stream) and the one gRPC keeps for an open status stream; its heartbeats
// and status reports run from timers. On any error it moves to the next
// server.
type SimAgent struct {
	fleet  *SimFleet
	creds  *pki.Credentials
	conns  []*grpc.ClientConn // by server index, dialled on first use
	cfg    SimAgentConfig
	seq    int
	ip     string
	cancel context.CancelFunc // ends the context run was given
	done   chan struct{}      // closed when run returns
	busy   sync.WaitGroup     // timer callbacks running

	mu         sync.Mutex
	server     int // index of the server it talks to
	stopped    bool
	registered bool
	following  bool // the current assignments stream delivered its full set
	silent     bool // heartbeats stopped
	period     time.Duration
	outcome    PodOutcome
	pods       map[string]*simPod // current assignments by namespace/name
	assigned   []string           // every pod ever assigned, namespace/name
	hbTimer    *time.Timer
	flushTimer *time.Timer
	flushAt    time.Time // when flushTimer fires; zero when idle
	flushing   bool
	flushAgain bool

	// The status stream: opened once registered, as a real agent's is, and
	// again by the next report after one fails.
	statusMu     sync.Mutex
	status       corralpb.NodeAPI_ReportStatusClient
	statusCancel context.CancelFunc
	statusServer int
}

// simPod is one assigned pod and where its report stands:
//
//	assigned ──(due)──▶ report sent ──(call succeeds)──▶ reported
//	                        │
//	                        └──(call fails)──▶ sent again 200 ms later
//
// A pod removed from the assignments is forgotten in any state; one
// assigned again with another uid starts over.
type simPod struct {
	pod      *corralpb.Pod
	assigned time.Time
	due      time.Time // when its status is to be reported
	outcome  PodOutcome
	reported bool // the server has its status
}

func newSimAgent(f *SimFleet, cfg SimAgentConfig, seq int, cancel context.CancelFunc) *SimAgent {
	return &SimAgent{fleet: f, cfg: cfg, seq: seq, ip: simAddr(10, seq), cancel: cancel,
		done: make(chan struct{}), server: seq % f.size(), period: 5 * time.Second,
		outcome: cfg.Outcome, pods: map[string]*simPod{}, conns: make([]*grpc.ClientConn, f.size())}
}

// Name is the node's name.
func (a *SimAgent) Name() string { return a.cfg.Name }

// Registered reports whether the node has registered.
func (a *SimAgent) Registered() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.registered
}

// Following reports whether the agent follows its assignments: its
// current stream has delivered the full set, so a change reaches it now.
func (a *SimAgent) Following() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.following
}

// Pods returns the pods assigned to the node now, sorted by
// namespace/name, with what the agent reads of them: namespace, name,
// uid, node name, hostNetwork, and the containers' names and images (see
// assignmentsCodec). They are shared: do not modify them.
func (a *SimAgent) Pods() []*corralpb.Pod {
	a.mu.Lock()
	defer a.mu.Unlock()
	keys := make([]string, 0, len(a.pods))
	for k := range a.pods {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]*corralpb.Pod, 0, len(keys))
	for _, k := range keys {
		out = append(out, a.pods[k].pod)
	}
	return out
}

// Assigned returns every pod ever assigned to the node (namespace/name),
// in the order they first arrived.
func (a *SimAgent) Assigned() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.assigned...)
}

// Reported returns how many of the node's current pods the server has a
// status for.
func (a *SimAgent) Reported() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, p := range a.pods {
		if p.reported {
			n++
		}
	}
	return n
}

// SetOutcome sets what is reported for pods assigned from now on.
func (a *SimAgent) SetOutcome(o PodOutcome) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.outcome = o
}

// SetHeartbeats stops (false) or resumes (true) the node's heartbeats; the
// assignments stream and status reports go on.
func (a *SimAgent) SetHeartbeats(on bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.silent = !on
}

// Stop ends the agent as a killed process would end: its stream closes,
// heartbeats and reports stop. It waits for its calls to return, then
// closes its connections.
func (a *SimAgent) Stop() {
	a.halt()
	<-a.done
	a.busy.Wait()
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, c := range a.conns {
		if c != nil {
			_ = c.Close() // only fails for a connection already closed
			a.conns[i] = nil
		}
	}
}

// halt stops the agent without waiting.
func (a *SimAgent) halt() {
	a.mu.Lock()
	a.stopped = true
	for _, t := range []*time.Timer{a.hbTimer, a.flushTimer} {
		if t != nil {
			t.Stop()
		}
	}
	a.mu.Unlock()
	a.cancel()
}

// enter marks a timer callback as running; it fails once the agent stops.
// Stop waits for every callback that entered.
func (a *SimAgent) enter() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopped {
		return false
	}
	a.busy.Add(1)
	return true
}

// client returns the node API client of the server the agent talks to,
// and that server's index; nil once the agent stopped.
func (a *SimAgent) client() (corralpb.NodeAPIClient, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	i := a.server
	if a.stopped {
		return failingClient{status.Error(codes.Canceled, "the simulated agent stopped")}, i
	}
	if a.conns[i] == nil {
		if a.creds == nil {
			creds, err := a.fleet.credentials(a.cfg.Name)
			if err != nil {
				return failingClient{err}, i
			}
			a.creds = creds
		}
		conn, err := a.fleet.dial(i, a.creds)
		if err != nil {
			return failingClient{err}, i
		}
		a.conns[i] = conn
	}
	return corralpb.NewNodeAPIClient(a.conns[i]), i
}

// failed moves the agent to the next server after a call to server i
// failed, unless another call already moved it.
func (a *SimAgent) failed(i int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.server == i {
		a.server = (i + 1) % a.fleet.size()
	}
}

// wait waits about d (with jitter, so that a fleet does not retry in step)
// and reports false if ctx ended first.
func wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d/2 + rand.N(d/2+1))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// run registers, starts the heartbeats and follows the assignments until
// ctx ends (Stop ends it). Timer callbacks get ctx through their closures.
func (a *SimAgent) run(ctx context.Context) {
	defer close(a.done)
	if !a.register(ctx) {
		return
	}
	a.statusMu.Lock()
	if a.status == nil {
		_ = a.openStatus(ctx) // if it fails, the first report tries again
	}
	a.statusMu.Unlock()
	a.mu.Lock()
	if !a.stopped {
		a.hbTimer = time.AfterFunc(a.period, func() { a.heartbeat(ctx) })
	}
	a.mu.Unlock()
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		got, err := a.follow(ctx)
		if ctx.Err() != nil {
			return
		}
		if got {
			backoff = 50 * time.Millisecond
		}
		if c := status.Code(err); c == codes.NotFound || c == codes.Unauthenticated {
			if !a.register(ctx) {
				return
			}
		}
		if !wait(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// register creates or updates the node, retrying (on the next server each
// time) until it succeeds or ctx ends.
func (a *SimAgent) register(ctx context.Context) bool {
	backoff := 100 * time.Millisecond
	for {
		cl, i := a.client()
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		resp, err := cl.Register(rctx, &corralpb.RegisterRequest{Node: a.node()})
		cancel()
		if err == nil {
			a.mu.Lock()
			a.registered = true
			if p := time.Duration(resp.GetHeartbeatPeriodMs()) * time.Millisecond; p > 0 {
				a.period = p
			}
			a.mu.Unlock()
			return true
		}
		a.failed(i)
		if !wait(ctx, backoff) {
			return false
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// node is the Node the agent registers.
func (a *SimAgent) node() *corralpb.Node {
	labels := map[string]string{
		"kubernetes.io/hostname": a.cfg.Name,
		"kubernetes.io/os":       "linux",
		"kubernetes.io/arch":     runtime.GOARCH,
	}
	for k, v := range a.cfg.Labels {
		labels[k] = v
	}
	resources := map[string]string{"cpu": "4", "memory": "8Gi", "pods": "110"}
	if a.cfg.CPU != "" {
		resources["cpu"] = a.cfg.CPU
	}
	if a.cfg.Memory != "" {
		resources["memory"] = a.cfg.Memory
	}
	if a.cfg.Pods > 0 {
		resources["pods"] = strconv.Itoa(a.cfg.Pods)
	}
	allocatable := map[string]string{}
	for k, v := range resources {
		allocatable[k] = v
	}
	now := timestamppb.New(time.Now().UTC().Truncate(time.Second))
	return &corralpb.Node{
		Metadata: &corralpb.ObjectMeta{Name: a.cfg.Name, Labels: labels},
		Spec:     &corralpb.NodeSpec{Taints: a.cfg.Taints},
		Status: &corralpb.NodeStatus{
			Capacity: resources, Allocatable: allocatable,
			Addresses: []*corralpb.NodeAddress{{Type: "InternalIP", Address: a.ip}, {Type: "Hostname", Address: a.cfg.Name}},
			NodeInfo: &corralpb.NodeSystemInfo{KubeletVersion: "corral-sim", ContainerRuntimeVersion: "sim://1",
				OperatingSystem: "linux", Architecture: runtime.GOARCH, OsImage: "simulated"},
			Conditions: []*corralpb.NodeCondition{{Type: "Ready", Status: "True", Reason: "KubeletReady",
				Message: "kubelet is posting ready status", LastHeartbeatTime: now, LastTransitionTime: now}},
		},
	}
}

// follow reads one assignments stream until it fails; it reports whether
// any message arrived.
func (a *SimAgent) follow(ctx context.Context) (bool, error) {
	cl, i := a.client()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := cl.Assignments(sctx, &corralpb.AssignmentsRequest{NodeName: a.cfg.Name}, grpc.ForceCodecV2(newAssignmentsCodec()))
	if err != nil {
		a.failed(i)
		return false, err
	}
	for got := false; ; got = true {
		msg, err := stream.Recv()
		if err != nil {
			a.mu.Lock()
			a.following = false
			a.mu.Unlock()
			a.failed(i)
			return got, err
		}
		a.apply(ctx, msg, time.Now())
	}
}

// apply takes one assignments message: a complete set replaces what the
// agent had; otherwise pods are added, updated or removed one by one.
func (a *SimAgent) apply(ctx context.Context, msg *corralpb.AssignmentsMessage, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if msg.GetComplete() {
		a.following = true
		keep := map[string]bool{}
		for _, it := range msg.GetItems() {
			if p := it.GetPod(); p != nil {
				keep[podKey(p)] = true
			}
		}
		for k := range a.pods {
			if !keep[k] {
				delete(a.pods, k)
			}
		}
	}
	for _, it := range msg.GetItems() {
		switch {
		case it.GetPod() != nil:
			a.assign(ctx, it.GetPod(), now)
		case it.GetRemoved().GetKind() == "Pod":
			r := it.GetRemoved()
			delete(a.pods, r.GetNamespace()+"/"+r.GetName())
		}
	}
}

// assign records a pod (a new one, or a new version of one it has) and
// schedules its report. Callers hold mu.
func (a *SimAgent) assign(ctx context.Context, p *corralpb.Pod, now time.Time) {
	k := podKey(p)
	if cur, ok := a.pods[k]; ok && cur.pod.GetMetadata().GetUid() == p.GetMetadata().GetUid() {
		cur.pod = p
		return
	}
	sp := &simPod{pod: p, assigned: now, due: now.Add(a.cfg.StatusDelay), outcome: a.outcome}
	a.pods[k] = sp
	a.assigned = append(a.assigned, k)
	a.scheduleFlush(ctx, sp.due)
}

func podKey(p *corralpb.Pod) string {
	return p.GetMetadata().GetNamespace() + "/" + p.GetMetadata().GetName()
}

// scheduleFlush makes sure a flush runs no later than at: flushAt is when
// the timer is armed to fire, zero once it fired. Callers hold mu.
func (a *SimAgent) scheduleFlush(ctx context.Context, at time.Time) {
	if a.stopped || (!a.flushAt.IsZero() && !at.Before(a.flushAt)) {
		return
	}
	a.flushAt = at
	d := time.Until(at)
	if a.flushTimer == nil {
		a.flushTimer = time.AfterFunc(d, func() { a.flush(ctx) })
		return
	}
	a.flushTimer.Reset(d)
}

// heartbeat sends one heartbeat (unless stopped with SetHeartbeats) and
// schedules the next at the period the server answered.
func (a *SimAgent) heartbeat(ctx context.Context) {
	if !a.enter() {
		return
	}
	defer a.busy.Done()
	a.mu.Lock()
	next, silent := a.period, a.silent
	a.mu.Unlock()
	if !silent {
		cl, i := a.client()
		hctx, cancel := context.WithTimeout(ctx, next)
		resp, err := cl.Heartbeat(hctx, &corralpb.HeartbeatRequest{NodeName: a.cfg.Name})
		cancel()
		if err != nil {
			a.failed(i)
			next = min(next, time.Second)
		} else if p := time.Duration(resp.GetPeriodMs()) * time.Millisecond; p > 0 {
			a.mu.Lock()
			a.period = p
			a.mu.Unlock()
			next = p
		}
	}
	a.mu.Lock()
	if !a.stopped {
		a.hbTimer.Reset(next)
	}
	a.mu.Unlock()
}

// flush reports, in one call, the status of every pod whose report is due,
// then schedules itself for the next due report (or a retry). One flush
// runs at a time; a flush asked for meanwhile runs right after.
func (a *SimAgent) flush(ctx context.Context) {
	if !a.enter() {
		return
	}
	defer a.busy.Done()
	a.mu.Lock()
	a.flushAt = time.Time{} // the timer fired: it is no longer armed
	if a.flushing {
		a.flushAgain = true
		a.mu.Unlock()
		return
	}
	a.flushing = true
	a.mu.Unlock()
	for {
		now := time.Now()
		batch, next := a.due(now)
		if len(batch) > 0 && !a.send(ctx, batch) {
			if retry := now.Add(200 * time.Millisecond); next.IsZero() || retry.Before(next) {
				next = retry
			}
		}
		a.mu.Lock()
		if a.flushAgain && !a.stopped {
			a.flushAgain = false
			a.mu.Unlock()
			continue
		}
		a.flushing = false
		if !next.IsZero() {
			a.scheduleFlush(ctx, next)
		}
		a.mu.Unlock()
		return
	}
}

// due returns the status updates due at now and when the next one falls
// due (zero if none).
func (a *SimAgent) due(now time.Time) ([]*corralpb.PodStatusUpdate, time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var batch []*corralpb.PodStatusUpdate
	var next time.Time
	for _, p := range a.pods {
		switch {
		case p.reported:
		case p.due.After(now):
			if next.IsZero() || p.due.Before(next) {
				next = p.due
			}
		default:
			m := p.pod.GetMetadata()
			batch = append(batch, &corralpb.PodStatusUpdate{Namespace: m.GetNamespace(), Name: m.GetName(),
				Uid: m.GetUid(), Status: a.podStatus(p, now)})
		}
	}
	return batch, next
}

// send reports batch in one request on the status stream; pods the
// server took or says are gone count as reported.
func (a *SimAgent) send(ctx context.Context, batch []*corralpb.PodStatusUpdate) bool {
	if err := a.report(ctx, &corralpb.UpdateStatusRequest{NodeName: a.cfg.Name, Pods: batch}); err != nil {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, u := range batch {
		if p, ok := a.pods[u.GetNamespace()+"/"+u.GetName()]; ok && p.pod.GetMetadata().GetUid() == u.GetUid() {
			p.reported = true
		}
	}
	return true
}

// report sends req on the agent's ReportStatus stream, opening one to the
// server it talks to when it has none, and waits at most 10 s for the
// answer, as a real agent does. On an error it drops the stream and moves
// to the next server.
func (a *SimAgent) report(ctx context.Context, req *corralpb.UpdateStatusRequest) error {
	a.statusMu.Lock()
	defer a.statusMu.Unlock()
	if a.status == nil {
		if err := a.openStatus(ctx); err != nil {
			return err
		}
	}
	t := time.AfterFunc(10*time.Second, a.statusCancel)
	err := a.status.Send(req)
	if err == nil || errors.Is(err, io.EOF) { // EOF: the stream ended; Recv says why
		_, err = a.status.Recv()
	}
	t.Stop()
	if err != nil {
		a.statusCancel()
		a.failed(a.statusServer)
		a.status = nil
	}
	return err
}

// openStatus opens a status stream to the server the agent talks to,
// moving to the next server if that fails. The caller holds statusMu.
func (a *SimAgent) openStatus(ctx context.Context) error {
	cl, i := a.client()
	sctx, cancel := context.WithCancel(ctx)
	st, err := cl.ReportStatus(sctx)
	if err != nil {
		cancel()
		a.failed(i)
		return err
	}
	a.status, a.statusCancel, a.statusServer = st, cancel, i
	return nil
}

// podStatus is the status reported for p at now, as a kubelet reports a
// pod whose containers started at once.
func (a *SimAgent) podStatus(p *simPod, now time.Time) *corralpb.PodStatus {
	at := timestamppb.New(now.UTC().Truncate(time.Second))
	spec := p.pod.GetSpec()
	podIP := simAddr(11, a.seq)
	if spec.GetHostNetwork() {
		podIP = a.ip
	}
	st := &corralpb.PodStatus{Phase: "Running", HostIp: a.ip, PodIp: podIP, PodIps: []*corralpb.PodIP{{Ip: podIP}},
		StartTime: timestamppb.New(p.assigned.UTC().Truncate(time.Second))}
	ready := p.outcome == PodReady
	started := p.outcome != PodFailed
	for _, c := range spec.GetContainers() {
		cs := &corralpb.ContainerStatus{Name: c.GetName(), Image: c.GetImage(), ImageId: "sim://" + c.GetImage(),
			ContainerId: "sim://" + p.pod.GetMetadata().GetUid() + "/" + c.GetName(), Ready: ready, Started: &started,
			State: &corralpb.ContainerState{Running: &corralpb.ContainerStateRunning{StartedAt: at}}}
		if p.outcome == PodFailed {
			cs.State = &corralpb.ContainerState{Terminated: &corralpb.ContainerStateTerminated{ExitCode: 1, Reason: "Error",
				StartedAt: at, FinishedAt: at, ContainerId: cs.ContainerId}}
		}
		st.ContainerStatuses = append(st.ContainerStatuses, cs)
	}
	readyStatus := "False"
	if ready {
		readyStatus = "True"
	}
	if p.outcome == PodFailed {
		st.Phase = "Failed"
	}
	st.Conditions = []*corralpb.PodCondition{
		{Type: "Initialized", Status: "True", LastTransitionTime: at},
		{Type: "Ready", Status: readyStatus, LastTransitionTime: at},
		{Type: "ContainersReady", Status: readyStatus, LastTransitionTime: at},
		{Type: "PodScheduled", Status: "True", LastTransitionTime: at},
	}
	return st
}

// failingClient answers every call with the error that kept the agent
// from connecting (a certificate it could not be issued).
type failingClient struct{ err error }

var _ corralpb.NodeAPIClient = failingClient{}

func (f failingClient) Register(context.Context, *corralpb.RegisterRequest, ...grpc.CallOption) (*corralpb.RegisterResponse, error) {
	return nil, f.err
}

func (f failingClient) Heartbeat(context.Context, *corralpb.HeartbeatRequest, ...grpc.CallOption) (*corralpb.HeartbeatResponse, error) {
	return nil, f.err
}

func (f failingClient) Assignments(context.Context, *corralpb.AssignmentsRequest, ...grpc.CallOption) (grpc.ServerStreamingClient[corralpb.AssignmentsMessage], error) {
	return nil, f.err
}

func (f failingClient) UpdateStatus(context.Context, *corralpb.UpdateStatusRequest, ...grpc.CallOption) (*corralpb.UpdateStatusResponse, error) {
	return nil, f.err
}

func (f failingClient) ReportStatus(context.Context, ...grpc.CallOption) (grpc.BidiStreamingClient[corralpb.UpdateStatusRequest, corralpb.UpdateStatusResponse], error) {
	return nil, f.err
}

func (f failingClient) RecordEvents(context.Context, *corralpb.RecordEventsRequest, ...grpc.CallOption) (*corralpb.RecordEventsResponse, error) {
	return nil, f.err
}
