package bench

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
	"github.com/corral-dev/corral/raftstore/state"
	"github.com/corral-dev/corral/server"
	"github.com/corral-dev/corral/test/framework"
)

// BenchmarkFleet rolls one DaemonSet onto N simulated nodes (N = 100, 1000,
// 5000): three real Raft servers in this process with the default Raft
// timeouts, and N simulated agents (framework.SimAgent) in a child process,
// over real gRPC, spread across the servers, each reporting its pod Running
// and Ready as soon as it is assigned. The clock runs from the apply until
// every pod is Running in the leader's store. Reported:
//
//   - created-ms: until every pod exists in the leader's store;
//   - running-ms: until every pod's status is Running and Ready there;
//   - ds-ready-ms: until the DaemonSet's status counts every pod ready;
//   - raft-entries: the leader's Raft log growth from the apply to all
//     Running (raft-entries-settled: to the DaemonSet's final status);
//   - servers-rss-MiB: this process's resident memory with every pod
//     Running: all three servers together (idle: before the apply);
//   - servers-live-heap-MiB: their live heap after a full collection, at
//     the end (what they retain, without the garbage RSS also holds);
//   - agents-rss-MiB: the agents' process, for scale;
//   - servers-cpu-s, agents-cpu-s: CPU time the servers (this process)
//     and the agents used from the apply to all Running;
//   - servers-gcs, agents-gcs: the garbage collections each process
//     completed meanwhile (the agents' process collects just before the
//     apply: it stands in for machines of their own, see
//     serveFleetCommands);
//   - servers-sched-p99-ms, servers-sched-max-ms: how long the servers'
//     goroutines waited to run once runnable meanwhile (runtime/metrics'
//     /sched/latencies, to its buckets' precision): Raft's heartbeats
//     wait too, and a leader that hears no quorum for its lease steps
//     down;
//   - create-events: SuccessfulCreate events stored within 5 s of the end;
//   - then a rolling update of the DaemonSet to a new image with
//     maxUnavailable 10% (ten waves): update-ms until the DaemonSet's
//     status counts every pod updated and available, update-ms-per-wave,
//     and controller-ms-per-wave, the controller's and Raft's share of a
//     wave (benchRollingUpdate explains how it is measured).
//
// Run it with -benchtime 1x: each size sets up its own cluster and fleet.
// A CPU profile (-cpuprofile) shows the servers alone; with
// CORRAL_FLEET_CPU_PROFILE=DIR each size writes the servers' CPU profile
// from the apply to the DaemonSet's ready status to DIR/fleet-N.cpu and of
// the rolling update to DIR/fleet-N-update.cpu (and the agents' process's
// from the apply to the ready status to DIR/fleet-N-agents.cpu), with
// CORRAL_FLEET_HEAP_PROFILE=DIR their heap profile just before the apply
// to DIR/fleet-N-before.heap and at the end to DIR/fleet-N.heap (with
// -diff_base, what the rollout allocated; each follows a full collection,
// so compare timings from runs without it), and with CORRAL_FLEET_LOG_DIR=DIR
// their logs to DIR/fleet-N.log. Benchmarks have no test timeout:
// a size that takes over 8 minutes panics with every goroutine's stack.
func BenchmarkFleet(b *testing.B) {
	for _, n := range []int{100, 1000, 5000} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) { benchFleet(b, n) })
	}
}

func benchFleet(b *testing.B, n int) {
	b.StopTimer()
	watchdog(b, 8*time.Minute)
	// Zero Raft timings take the servers' defaults, as deployed, rather
	// than the framework's short test timeouts. The default cluster CIDR
	// (a /16) holds 256 nodes' /24s; a fleet this size needs a /8.
	c := framework.NewInProcess(b, 3, func(cfg *server.Config) {
		cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 0, 0, 0
		cfg.ClusterCIDR = "10.0.0.0/8"
	}, serverLog(b, n))
	ca := c.CA(b)
	t0 := time.Now()
	agents := startFleetProcess(b, fleetSpec{CACert: ca.CertPEM, CAKey: ca.KeyPEM, Addrs: c.APIAddrs(), Nodes: n, Prefix: "sim",
		Labels: map[string]string{"fleet": "bench"}})
	leader := framework.Leader(b, c)
	framework.WaitFor(b, fmt.Sprintf("%d nodes registered", n), time.Minute+time.Duration(n)*20*time.Millisecond, func() bool {
		nodes, err := c.Server(leader).Raft().State().List(nil, "Node", "")
		return err == nil && len(nodes) == n
	})
	b.Logf("%d nodes registered in %v", n, time.Since(t0).Round(time.Millisecond))
	// A node is registered before its agent opens its assignments stream:
	// the rollout starts once every agent follows, as it would on a
	// fleet that has joined.
	framework.WaitFor(b, fmt.Sprintf("%d agents following their assignments", n), time.Minute, func() bool {
		return agents.following(b) == n
	})
	b.Logf("%d agents following in %v", n, time.Since(t0).Round(time.Millisecond))
	via := (leader + 1) % c.Size() // apply through a follower, as a CLI may
	cl := c.Client(b, via)
	idle := statusKiB(b, os.Getpid(), "VmRSS:")
	for i := 0; i < b.N; i++ {
		name := fmt.Sprintf("fleet-%d", i)
		obj := fleetDaemonSet(b, name, "nginx:1.25")
		r := watchRollout(c.Server(leader).Raft().State(), name, n)
		index0 := c.RaftLastIndex(b, leader)
		writeHeapProfile(b, fmt.Sprintf("fleet-%d-before.heap", n))
		agents.do(b, "gc")
		stopProfile := cpuProfile(b, fmt.Sprintf("fleet-%d.cpu", n), agents)
		serversCPU0, agentsCPU0 := cpuTime(b, os.Getpid()), cpuTime(b, agents.Pid)
		serversGC0, agentsGC0 := numGC(), agents.numGC(b)
		sched0 := schedLatencies()
		start := time.Now()
		b.StartTimer()
		if _, err := cl.Apply(context.Background(), &corralpb.ApplyRequest{Objects: []*corralpb.Object{obj}}); err != nil {
			b.Fatalf("apply: %v", err)
		}
		r.wait(b, r.running, "every pod Running", 3*time.Minute)
		b.StopTimer()
		serversCPU, agentsCPU := cpuTime(b, os.Getpid())-serversCPU0, cpuTime(b, agents.Pid)-agentsCPU0
		serversGC, agentsGC := numGC()-serversGC0, agents.numGC(b)-agentsGC0
		sched := schedLatencies().since(sched0)
		running := c.RaftLastIndex(b, leader)
		rss := statusKiB(b, os.Getpid(), "VmRSS:")
		agentsRSS := statusKiB(b, agents.Pid, "VmRSS:")
		r.wait(b, r.dsReady, "the DaemonSet's status to count every pod ready", 3*time.Minute)
		stopProfile()
		settled := c.RaftLastIndex(b, leader)
		r.stop()
		if l := framework.Leader(b, c); l != leader {
			b.Logf("leadership moved from server %d to %d during the rollout", leader, l)
		}
		createdAt, runningAt, readyAt := r.times(start)
		b.ReportMetric(ms(createdAt), "created-ms")
		b.ReportMetric(ms(runningAt), "running-ms")
		b.ReportMetric(ms(readyAt), "ds-ready-ms")
		b.ReportMetric(float64(running-index0), "raft-entries")
		b.ReportMetric(float64(settled-index0), "raft-entries-settled")
		b.ReportMetric(float64(rss)/1024, "servers-rss-MiB")
		b.ReportMetric(float64(idle)/1024, "servers-rss-idle-MiB")
		b.ReportMetric(float64(agentsRSS)/1024, "agents-rss-MiB")
		b.ReportMetric(serversCPU.Seconds(), "servers-cpu-s")
		b.ReportMetric(agentsCPU.Seconds(), "agents-cpu-s")
		b.ReportMetric(float64(serversGC), "servers-gcs")
		b.ReportMetric(float64(agentsGC), "agents-gcs")
		b.ReportMetric(ms(sched.quantile(0.99)), "servers-sched-p99-ms")
		b.ReportMetric(ms(sched.quantile(1)), "servers-sched-max-ms")
		b.ReportMetric(float64(createEvents(b, cl, name, n, 5*time.Second)), "create-events")
		b.ReportMetric(float64(liveHeap())/(1<<20), "servers-live-heap-MiB")
		writeHeapProfile(b, fmt.Sprintf("fleet-%d.heap", n))
		stopProfile = cpuProfile(b, fmt.Sprintf("fleet-%d-update.cpu", n), nil)
		benchRollingUpdate(b, c.Server(leader).Raft().State(), cl, name, n)
		stopProfile()
	}
}

// serverLog sends the servers' logs (debug level) and Raft's to
// $CORRAL_FLEET_LOG_DIR/fleet-N.log when that is set.
func serverLog(b *testing.B, n int) func(*server.Config) {
	dir := os.Getenv("CORRAL_FLEET_LOG_DIR")
	if dir == "" {
		return func(*server.Config) {}
	}
	f, err := os.Create(filepath.Join(dir, fmt.Sprintf("fleet-%d.log", n)))
	if err != nil {
		b.Fatalf("server log: %v", err)
	}
	b.Cleanup(func() { _ = f.Close() })
	return func(cfg *server.Config) {
		cfg.Logger = slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug})).With("server", cfg.Name)
		cfg.RaftLogOutput = f
	}
}

// watchdog panics, with every goroutine's stack, if the benchmark and its
// clean-up are still running after d: benchmarks run without -timeout.
func watchdog(b *testing.B, d time.Duration) {
	t := time.AfterFunc(d, func() {
		debug.SetTraceback("all")
		panic(fmt.Sprintf("%s still running after %v", b.Name(), d))
	})
	b.Cleanup(func() { t.Stop() }) // registered first, so it runs last
}

// cpuProfile profiles this process (the servers) into
// $CORRAL_FLEET_CPU_PROFILE/name when that is set, and the agents'
// process too unless agents is nil (into name's -agents.cpu); call the
// function it returns to stop.
func cpuProfile(b *testing.B, name string, agents *fleetProcess) func() {
	dir := os.Getenv("CORRAL_FLEET_CPU_PROFILE")
	if dir == "" {
		return func() {}
	}
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		b.Fatalf("cpu profile: %v", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatalf("cpu profile: %v (use it instead of -cpuprofile)", err)
	}
	if agents != nil {
		agents.do(b, "cpuprofile "+filepath.Join(dir, strings.TrimSuffix(name, ".cpu")+"-agents.cpu"))
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			pprof.StopCPUProfile()
			_ = f.Close()
			if agents != nil {
				agents.do(b, "stopprofile")
			}
		})
	}
	b.Cleanup(stop) // if the benchmark fails first
	return stop
}

// cpuTime is a process's user and system CPU time so far.
func cpuTime(b *testing.B, pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// The fields after the command's closing parenthesis; utime and
	// stime are the 14th and 15th of the line (proc(5)).
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("/proc/%d/stat: %q", pid, data)
	}
	// USER_HZ is 100 on every Linux this runs on.
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// writeHeapProfile writes the heap profile to $CORRAL_FLEET_HEAP_PROFILE/
// name when that is set.
func writeHeapProfile(b *testing.B, name string) {
	dir := os.Getenv("CORRAL_FLEET_HEAP_PROFILE")
	if dir == "" {
		return
	}
	// A heap profile counts allocations up to the last completed
	// collection: complete one, so that it counts them all.
	runtime.GC()
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		b.Fatalf("heap profile: %v", err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		b.Fatalf("heap profile %s: %v", path, err)
	}
}

// numGC is the number of garbage collections this process has completed.
func numGC() uint32 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.NumGC
}

// latencies is a histogram of runtime/metrics.
type latencies struct {
	counts  []uint64
	buckets []float64 // boundaries in seconds: counts[i] is [buckets[i], buckets[i+1])
}

// schedLatencies is this process's /sched/latencies:seconds so far.
func schedLatencies() latencies {
	s := []metrics.Sample{{Name: "/sched/latencies:seconds"}}
	metrics.Read(s)
	h := s[0].Value.Float64Histogram()
	return latencies{counts: slices.Clone(h.Counts), buckets: h.Buckets}
}

// since is the histogram of what happened after earlier.
func (l latencies) since(earlier latencies) latencies {
	d := latencies{counts: slices.Clone(l.counts), buckets: l.buckets}
	for i := range d.counts {
		d.counts[i] -= earlier.counts[i]
	}
	return d
}

// quantile is the upper boundary of the bucket holding quantile q (1: the
// largest latency's bucket).
func (l latencies) quantile(q float64) time.Duration {
	var total uint64
	for _, c := range l.counts {
		total += c
	}
	rank := uint64(math.Ceil(q * float64(total)))
	var seen uint64
	for i, c := range l.counts {
		seen += c
		if c > 0 && seen >= rank {
			upper := l.buckets[i+1]
			if math.IsInf(upper, 1) {
				upper = l.buckets[i] // the last bucket has no upper bound
			}
			return time.Duration(upper * float64(time.Second))
		}
	}
	return 0
}

// liveHeap is the bytes of live heap objects after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// updatePercent is the fleet DaemonSet's maxUnavailable: a rolling
// update replaces its pods in 100/updatePercent waves.
const updatePercent = 10

// fleetDaemonSet is a DaemonSet for every node labelled fleet=bench.
func fleetDaemonSet(b *testing.B, name, image string) *corralpb.Object {
	objs, err := api.Decode([]byte(fmt.Sprintf(`
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: %[1]s
  namespace: default
spec:
  selector:
    matchLabels: {app: %[1]s}
  updateStrategy:
    rollingUpdate: {maxUnavailable: %[3]d%%}
  template:
    metadata:
      labels: {app: %[1]s}
    spec:
      nodeSelector: {fleet: bench}
      containers:
      - name: agent
        image: %[2]s
        resources:
          requests: {cpu: 10m, memory: 16Mi}
`, name, image, updatePercent)), name+".yml")
	if err != nil {
		b.Fatalf("decode daemonset: %v", err)
	}
	return objs[0]
}

// rollout follows one DaemonSet's pods in a state store's change events:
// when the last of want pods was created, when the last became Running and
// Ready, and when the DaemonSet's status counted them all ready.
type rollout struct {
	ds     string
	want   int
	cancel context.CancelFunc
	done   chan struct{}

	created, running, dsReady chan struct{}

	mu                             sync.Mutex
	pods, ready                    map[string]bool
	createdAt, runningAt, readyAt  time.Time
	createdOnce, runningOnce, once sync.Once
	err                            error
}

// watchRollout subscribes to st from its latest index: call it before the
// apply.
func watchRollout(st *state.Store, ds string, want int) *rollout {
	ctx, cancel := context.WithCancel(context.Background())
	r := &rollout{ds: ds, want: want, cancel: cancel, done: make(chan struct{}),
		created: make(chan struct{}), running: make(chan struct{}), dsReady: make(chan struct{}),
		pods: map[string]bool{}, ready: map[string]bool{}}
	sub, err := st.Subscribe(st.LatestIndex())
	if err != nil {
		r.err = err
		close(r.done)
		return r
	}
	go func() {
		defer close(r.done)
		defer sub.Close()
		for {
			events, err := sub.Next(ctx)
			if err != nil {
				r.mu.Lock()
				r.err = err
				r.mu.Unlock()
				return
			}
			for _, ev := range events {
				r.event(ev, time.Now())
			}
		}
	}()
	return r
}

func (r *rollout) event(ev state.Event, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ds := ev.Object.GetDaemonSet(); ds != nil && ds.GetMetadata().GetName() == r.ds {
		if s := ds.GetStatus(); s.GetNumberReady() == int32(r.want) && s.GetDesiredNumberScheduled() == int32(r.want) {
			r.once.Do(func() { r.readyAt = now; close(r.dsReady) })
		}
		return
	}
	p := ev.Object.GetPod()
	if p == nil || p.GetMetadata().GetLabels()["app"] != r.ds || ev.Type == state.EventDeleted {
		return
	}
	name := p.GetMetadata().GetName()
	r.pods[name] = true
	if len(r.pods) == r.want {
		r.createdOnce.Do(func() { r.createdAt = now; close(r.created) })
	}
	if p.GetStatus().GetPhase() == "Running" && podReady(p) {
		r.ready[name] = true
	}
	if len(r.ready) == r.want {
		r.runningOnce.Do(func() { r.runningAt = now; close(r.running) })
	}
}

func podReady(p *corralpb.Pod) bool {
	for _, c := range p.GetStatus().GetConditions() {
		if c.GetType() == "Ready" {
			return c.GetStatus() == "True"
		}
	}
	return false
}

// wait waits for one of the rollout's milestones, failing the benchmark
// with the progress so far after timeout.
func (r *rollout) wait(b *testing.B, milestone chan struct{}, what string, timeout time.Duration) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-milestone:
		return
	case <-r.done:
	case <-t.C:
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	b.Fatalf("waiting for %s: %d/%d pods created, %d Running and Ready (subscription: %v)", what, len(r.pods), r.want, len(r.ready), r.err)
}

func (r *rollout) stop() {
	r.cancel()
	<-r.done
}

// times returns the milestones as durations since start.
func (r *rollout) times(start time.Time) (created, running, ready time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.createdAt.Sub(start), r.runningAt.Sub(start), r.readyAt.Sub(start)
}

// createEvents counts the SuccessfulCreate events about ds, waiting up to
// timeout for all want of them (the recorder sends them in batches).
func createEvents(b *testing.B, cl corralpb.ClusterClient, ds string, want int, timeout time.Duration) int {
	deadline := time.Now().Add(timeout)
	for {
		resp, err := cl.List(context.Background(), &corralpb.ListRequest{Kind: "Event", Namespace: "default",
			FieldSelector: "involvedObject.name=" + ds + ",reason=SuccessfulCreate"})
		if err != nil {
			b.Fatalf("list events: %v", err)
		}
		got := 0
		for _, o := range resp.GetItems() {
			// Past nine pods, one combined event counts the rest.
			if msg := strings.TrimPrefix(o.GetEvent().GetMessage(), api.CombinedEventPrefix); strings.HasPrefix(msg, "Created pod: ") {
				got += max(1, int(o.GetEvent().GetCount()))
			}
		}
		if got >= want || time.Now().After(deadline) {
			return got
		}
		time.Sleep(100 * time.Millisecond) // a poll interval: the deadline bounds it
	}
}
