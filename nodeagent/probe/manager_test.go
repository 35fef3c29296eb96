package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corralpb "github.com/corral-dev/corral/proto"
)

// recorder collects reports.
type recorder struct {
	mu      sync.Mutex
	reports []Report
}

func (r *recorder) add(rep Report) {
	r.mu.Lock()
	r.reports = append(r.reports, rep)
	r.mu.Unlock()
}

func (r *recorder) all() []Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Report(nil), r.reports...)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitReport waits for a report matching match and returns it.
func (r *recorder) wait(t *testing.T, what string, match func(Report) bool) Report {
	t.Helper()
	var found Report
	waitFor(t, what, 10*time.Second, func() bool {
		for _, rep := range r.all() {
			if match(rep) {
				found = rep
				return true
			}
		}
		return false
	})
	return found
}

func hostPort(t *testing.T, rawURL string) (string, int) {
	t.Helper()
	host, port, err := net.SplitHostPort(rawURL[len("http://"):])
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(port)
	return host, n
}

func TestManagerReadinessFlips(t *testing.T) {
	t.Parallel()
	var status atomic.Int32
	status.Store(http.StatusOK)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(int(status.Load())) }))
	defer srv.Close()
	host, port := hostPort(t, srv.URL)
	c := &corralpb.Container{Name: "web", Ports: []*corralpb.ContainerPort{{Name: "http", ContainerPort: int32(port)}},
		ReadinessProbe: &corralpb.Probe{HttpGet: &corralpb.HTTPGetAction{Path: "/ready", Port: &corralpb.IntOrString{IsString: true, StrVal: "http"}},
			PeriodSeconds: 1, FailureThreshold: 1}}
	rec := &recorder{}
	m := NewManager(rec.add)
	defer m.Close()
	if st, ok := m.Status("pod-1", "web"); ok {
		t.Fatalf("status before Add: %+v", st)
	}
	if err := m.Add(Target{PodUID: "pod-1", Container: c, ContainerID: "c1", StartedAt: time.Now(), Env: Env{PodIP: host}}); err != nil {
		t.Fatal(err)
	}
	rec.wait(t, "ready", func(r Report) bool { return r.Kind == Readiness && r.Outcome.Changed && r.Outcome.Value == Success })
	if st, _ := m.Status("pod-1", "web"); !st.Ready || !st.Started || st.ContainerID != "c1" {
		t.Errorf("status after ready: %+v", st)
	}
	status.Store(http.StatusInternalServerError)
	rep := rec.wait(t, "unready", func(r Report) bool { return r.Outcome.Changed && r.Outcome.Value == Failure })
	if rep.Message != "Readiness probe failed: HTTP probe failed with statuscode: 500" || rep.Outcome.Restart || rep.PodUID != "pod-1" || rep.Container != "web" {
		t.Errorf("unready report: %+v", rep)
	}
	if st, _ := m.Status("pod-1", "web"); st.Ready {
		t.Errorf("status after failure: %+v", st)
	}

	// The container restarts: probing starts over, not ready until a success.
	status.Store(http.StatusOK)
	if err := m.Add(Target{PodUID: "pod-1", Container: c, ContainerID: "c2", StartedAt: time.Now().Add(time.Hour), Env: Env{PodIP: host}}); err != nil {
		t.Fatal(err)
	}
	if st, _ := m.Status("pod-1", "web"); st.Ready || st.ContainerID != "c2" {
		t.Errorf("status right after restart: %+v", st)
	}
}

func TestManagerLivenessRestart(t *testing.T) {
	t.Parallel()
	refused := closedAddr(t)
	host, port, _ := net.SplitHostPort(refused)
	n, _ := strconv.Atoi(port)
	c := &corralpb.Container{Name: "app",
		LivenessProbe: &corralpb.Probe{TcpSocket: &corralpb.TCPSocketAction{Port: &corralpb.IntOrString{IntVal: int32(n)}}, FailureThreshold: 1}}
	rec := &recorder{}
	m := NewManager(rec.add)
	defer m.Close()
	if err := m.Add(Target{PodUID: "pod-1", Container: c, ContainerID: "c1", StartedAt: time.Now(), Env: Env{PodIP: host}}); err != nil {
		t.Fatal(err)
	}
	rep := rec.wait(t, "restart", func(r Report) bool { return r.Outcome.Restart })
	want := "Liveness probe failed: dial tcp " + refused + ": connect: connection refused"
	if rep.Message != want || rep.Kind != Liveness || rep.ContainerID != "c1" {
		t.Errorf("report %+v, want message %q", rep, want)
	}
}

func TestManagerStartupGates(t *testing.T) {
	t.Parallel()
	var startupCalls atomic.Int32
	var livenessBeforeStart atomic.Bool
	exec := &fakeExec{exec: func(_ context.Context, cmd []string) (int, []byte, error) {
		switch cmd[0] {
		case "startup":
			if startupCalls.Add(1) < 2 {
				return 1, []byte("not yet"), nil
			}
			return 0, nil, nil
		default: // liveness
			if startupCalls.Load() < 2 {
				livenessBeforeStart.Store(true)
			}
			return 1, []byte("sick"), nil
		}
	}}
	c := &corralpb.Container{Name: "app",
		StartupProbe:  &corralpb.Probe{Exec: &corralpb.ExecAction{Command: []string{"startup"}}, PeriodSeconds: 1, FailureThreshold: 5},
		LivenessProbe: &corralpb.Probe{Exec: &corralpb.ExecAction{Command: []string{"liveness"}}, PeriodSeconds: 1, FailureThreshold: 1}}
	rec := &recorder{}
	m := NewManager(rec.add)
	defer m.Close()
	if err := m.Add(Target{PodUID: "p", Container: c, ContainerID: "c1", StartedAt: time.Now(), Env: Env{Exec: exec}}); err != nil {
		t.Fatal(err)
	}
	rec.wait(t, "liveness restart", func(r Report) bool { return r.Kind == Liveness && r.Outcome.Restart })
	if livenessBeforeStart.Load() {
		t.Error("liveness ran before the startup probe succeeded")
	}
	var kinds []string
	for _, r := range rec.all() {
		kinds = append(kinds, fmt.Sprintf("%v:%v:%q", r.Kind, r.Outcome.Result, r.Message))
	}
	want := []string{`Startup:Failure:"Startup probe failed: not yet"`, `Startup:Success:""`, `Liveness:Failure:"Liveness probe failed: sick"`}
	if fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Errorf("reports %v, want %v", kinds, want)
	}
}

func TestManagerErroredProbe(t *testing.T) {
	t.Parallel()
	c := &corralpb.Container{Name: "app",
		ReadinessProbe: &corralpb.Probe{TcpSocket: &corralpb.TCPSocketAction{Port: &corralpb.IntOrString{IsString: true, StrVal: "nope"}}}}
	rec := &recorder{}
	m := NewManager(rec.add)
	defer m.Close()
	if err := m.Add(Target{PodUID: "p", Container: c, ContainerID: "c1", StartedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	rep := rec.wait(t, "errored", func(Report) bool { return true })
	want := `Readiness probe errored: tcpSocket probe of "app": probe port: couldn't find port "nope" in container "app"`
	if rep.Message != want || rep.Outcome.Result != Unknown {
		t.Errorf("report %+v, want %q", rep, want)
	}
	if st, _ := m.Status("p", "app"); st.Ready {
		t.Error("an errored readiness probe made the container ready")
	}
}

func TestManagerNoGoroutineLeak(t *testing.T) {
	// Not parallel: it counts goroutines.
	runtime.GC()
	before := runtime.NumGoroutine()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	host, port := hostPort(t, srv.URL)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, tcpPort := hostPort(t, "http://"+ln.Addr().String())
	exec := &fakeExec{exec: func(ctx context.Context, _ []string) (int, []byte, error) { return 1, nil, nil }}

	rec := &recorder{}
	m := NewManager(rec.add)
	const pods = 10
	for i := range pods {
		c := &corralpb.Container{Name: "c",
			ReadinessProbe: &corralpb.Probe{HttpGet: &corralpb.HTTPGetAction{Port: &corralpb.IntOrString{IntVal: int32(port)}}, PeriodSeconds: 1},
			LivenessProbe:  &corralpb.Probe{TcpSocket: &corralpb.TCPSocketAction{Port: &corralpb.IntOrString{IntVal: int32(tcpPort)}}, PeriodSeconds: 1}}
		c2 := &corralpb.Container{Name: "side",
			StartupProbe: &corralpb.Probe{Exec: &corralpb.ExecAction{Command: []string{"x"}}, PeriodSeconds: 1, FailureThreshold: 100}}
		for _, cc := range []*corralpb.Container{c, c2} {
			if err := m.Add(Target{PodUID: fmt.Sprint("pod-", i), Container: cc, ContainerID: "1", StartedAt: time.Now(), Env: Env{PodIP: host, Exec: exec}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitFor(t, "every pod ready", 10*time.Second, func() bool {
		for i := range pods {
			if st, _ := m.Status(fmt.Sprint("pod-", i), "c"); !st.Ready {
				return false
			}
		}
		return true
	})
	during := runtime.NumGoroutine()
	if during < before+3*pods {
		t.Errorf("%d goroutines while probing %d pods, %d before", during, pods, before)
	}
	m.Remove("pod-0", "c")
	m.RemovePod("pod-1")
	if _, ok := m.Status("pod-1", "side"); ok {
		t.Error("RemovePod left a container")
	}
	m.Close()
	if err := m.Add(Target{PodUID: "late", Container: &corralpb.Container{Name: "c"}}); !errors.Is(err, ErrClosed) {
		t.Errorf("Add after Close: %v", err)
	}
	srv.Close()
	ln.Close()
	waitFor(t, "goroutines to end", 5*time.Second, func() bool { return runtime.NumGoroutine() <= before })
}
