package nodeagent_test

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/corral-dev/corral/api"
	"github.com/corral-dev/corral/nodeagent"
	"github.com/corral-dev/corral/pki"
	corralpb "github.com/corral-dev/corral/proto"
	"github.com/corral-dev/corral/test/framework"
)

// fakeSyncer stands in for the pod runtime: it records the pods it is told
// to run and reports each as Running.
type fakeSyncer struct {
	mu       sync.Mutex
	pods     map[string]*corralpb.Pod
	reporter *nodeagent.Reporter
}

func (f *fakeSyncer) Sync(_ context.Context, pods map[string]*corralpb.Pod, _ func(string, string) (*corralpb.ConfigMap, bool)) {
	f.mu.Lock()
	f.pods = pods
	r := f.reporter
	f.mu.Unlock()
	for _, p := range pods {
		if r != nil {
			r.Report(p, &corralpb.PodStatus{Phase: "Running", HostIp: "127.0.0.1"})
		}
	}
}

func (f *fakeSyncer) has(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.pods["default/"+name]
	return ok
}

// startAgent runs agent w1 with its data in dir: it certifies with token
// unless dir holds its certificate already (token "").
func startAgent(t *testing.T, dir string, servers []string, token string) (*fakeSyncer, context.CancelFunc) {
	t.Helper()
	return startAgentWith(t, dir, servers, token, nil)
}

// startAgentWith is startAgent with a Config.Started callback.
func startAgentWith(t *testing.T, dir string, servers []string, token string, started func(*fakeSyncer)) (*fakeSyncer, context.CancelFunc) {
	t.Helper()
	f := &fakeSyncer{}
	certDir := pki.Dir(filepath.Join(dir, "tls"))
	cctx, ccancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer ccancel()
	creds, err := nodeagent.LoadOrCertify(cctx, certDir, "w1", servers, token, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := nodeagent.New(nodeagent.Config{Name: "w1", DataDir: dir, Servers: servers, Credentials: creds, CertDir: certDir,
		Labels: map[string]string{"zone": "a"}, NodeIP: "127.0.0.1", ResyncPeriod: time.Second,
		Started: func() {
			if started != nil {
				started(f)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.reporter = a.Reporter()
	f.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(ctx, f) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return f, stop
}

func bindPod(t *testing.T, c framework.Cluster, server int, name string) {
	t.Helper()
	objs, err := api.Decode([]byte(`
apiVersion: v1
kind: Pod
metadata: {name: `+name+`}
spec:
  nodeName: w1
  containers: [{name: c, image: nginx:1.25}]
`), "pod.yml")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Client(t, server).Apply(ctx, &corralpb.ApplyRequest{Objects: objs}); err != nil {
		t.Fatal(err)
	}
}

func podPhase(t *testing.T, c framework.Cluster, server int, name string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := c.Client(t, server).Get(ctx, &corralpb.GetRequest{Kind: "Pod", Name: name})
	if err != nil {
		return ""
	}
	return resp.GetObject().GetPod().GetStatus().GetPhase()
}

func TestAgentRegistersRunsAssignmentsAndSurvivesServerDeath(t *testing.T) {
	c := framework.NewInProcess(t, 3)
	token := c.JoinToken(t)
	servers := []string{c.APIAddr(0), c.APIAddr(1), c.APIAddr(2)}
	f, _ := startAgent(t, t.TempDir(), servers, token)
	framework.WaitFor(t, "node registered", 10*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		resp, err := c.Client(t, 1).Get(ctx, &corralpb.GetRequest{Kind: "Node", Name: "w1"})
		if err != nil {
			return false
		}
		n := resp.GetObject().GetNode()
		return n.GetMetadata().GetLabels()["zone"] == "a" && n.GetMetadata().GetLabels()["kubernetes.io/hostname"] == "w1" &&
			n.GetStatus().GetCapacity()["pods"] == "110" && n.GetStatus().GetNodeInfo().GetKernelVersion() != ""
	})
	bindPod(t, c, 1, "p1")
	framework.WaitFor(t, "p1 assigned and Running", 10*time.Second, func() bool {
		return f.has("p1") && podPhase(t, c, 2, "p1") == "Running"
	})
	// The agent talks to the first server; kill it: the agent moves on.
	c.Kill(t, 0)
	bindPod(t, c, 1, "p2")
	framework.WaitFor(t, "p2 assigned and Running after server 0 died", 20*time.Second, func() bool {
		return f.has("p2") && podPhase(t, c, 2, "p2") == "Running"
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Client(t, 1).Delete(ctx, &corralpb.DeleteRequest{Kind: "Pod", Name: "p1"}); err != nil {
		t.Fatal(err)
	}
	framework.WaitFor(t, "p1 unassigned", 10*time.Second, func() bool { return !f.has("p1") && f.has("p2") })
}

func TestAgentStartedIsCalledOnceAfterTheFirstAssignmentsAreSynced(t *testing.T) {
	c := framework.NewInProcess(t, 1)
	token := c.JoinToken(t)
	bindPod(t, c, 0, "p1") // assigned before the agent starts
	var calls atomic.Int32
	var hadP1 atomic.Bool
	f, _ := startAgentWith(t, t.TempDir(), []string{c.APIAddr(0)}, token, func(f *fakeSyncer) {
		calls.Add(1)
		hadP1.Store(f.has("p1"))
	})
	framework.WaitFor(t, "start-up over", 10*time.Second, func() bool { return calls.Load() > 0 })
	if !hadP1.Load() {
		t.Fatal("Started was called before the syncer had the servers' assignments (p1)")
	}
	// More syncs follow (a change, then resyncs): no second call.
	bindPod(t, c, 0, "p2")
	framework.WaitFor(t, "p2 assigned and Running", 10*time.Second, func() bool {
		return f.has("p2") && podPhase(t, c, 0, "p2") == "Running"
	})
	if n := calls.Load(); n != 1 {
		t.Fatalf("Started was called %d times; want once", n)
	}
}

func TestAgentStartsFromSavedAssignmentsWithoutServers(t *testing.T) {
	c := framework.NewInProcess(t, 1)
	dir := t.TempDir()
	f, stop := startAgent(t, dir, []string{c.APIAddr(0)}, c.JoinToken(t))
	bindPod(t, c, 0, "keep")
	framework.WaitFor(t, "keep assigned", 10*time.Second, func() bool { return f.has("keep") })
	stop()
	c.Kill(t, 0)
	// No server answers: the certificate and the pods come from disk.
	f2, _ := startAgent(t, dir, []string{c.APIAddr(0)}, "")
	framework.WaitFor(t, "saved pod synced with no server", 5*time.Second, func() bool { return f2.has("keep") })
}
