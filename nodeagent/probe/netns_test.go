package probe

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/corral-dev/corral/internal/netnstest"
	"github.com/corral-dev/corral/internal/roottest"
	corralpb "github.com/corral-dev/corral/proto"
)

func TestNetNSDialer(t *testing.T) {
	roottest.Require(t, "network namespaces")
	path := netnstest.New(t, "probe")
	ns, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	var ln net.Listener
	if err := netnstest.Run(path, func() (err error) {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "inside") })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	port := ln.Addr().(*net.TCPAddr).Port
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	d := &NetNSDialer{Path: path}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if res, out := (&TCPSocket{Address: addr, Dialer: d}).Probe(ctx); res != Success {
		t.Errorf("tcp probe in the netns: %v %s", res, out)
	}
	if res, out := NewHTTPGet(&url.URL{Scheme: "http", Host: addr, Path: "/"}, nil, d).Probe(ctx); res != Success || out != "inside" {
		t.Errorf("http probe in the netns: %v %q", res, out)
	}
	// The host's 127.0.0.1 at that port is another socket: nothing there.
	if res, out := (&TCPSocket{Address: addr}).Probe(ctx); res != Failure {
		t.Errorf("host loopback answered at the pod's port: %v %s", res, out)
	}
	// A closed port inside the namespace reads like kubelet's message.
	refused := net.JoinHostPort("127.0.0.1", strconv.Itoa(port+1))
	if res, out := (&TCPSocket{Address: refused, Dialer: d}).Probe(ctx); res != Failure || out != "dial tcp "+refused+": connect: connection refused" {
		t.Errorf("closed port in the netns: %v %q", res, out)
	}
	if _, err := (&NetNSDialer{Path: path + "-missing"}).DialContext(ctx, "tcp", addr); err == nil {
		t.Error("dial through a missing netns succeeded")
	}
	// Many dials at once leave no thread of this process in the pod's
	// namespace.
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if res, out := (&TCPSocket{Address: addr, Dialer: d}).Probe(ctx); res != Success {
				t.Errorf("concurrent probe: %v %s", res, out)
			}
		}()
	}
	wg.Wait()
	assertNoThreadIn(t, ns)

	// The Manager through the dialer.
	rec := &recorder{}
	m := NewManager(rec.add)
	defer m.Close()
	c := &corralpb.Container{Name: "web", ReadinessProbe: &corralpb.Probe{
		HttpGet: &corralpb.HTTPGetAction{Path: "/", Port: &corralpb.IntOrString{IntVal: int32(port)}}}}
	if err := m.Add(Target{PodUID: "p", Container: c, ContainerID: "1", StartedAt: time.Now(), Env: Env{Dialer: d}}); err != nil {
		t.Fatal(err)
	}
	rec.wait(t, "ready through the netns", func(r Report) bool { return r.Outcome.Changed && r.Outcome.Value == Success })
}

// assertNoThreadIn checks that no thread of this process is in ns.
func assertNoThreadIn(t *testing.T, ns netns.NsHandle) {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		tid, err := strconv.Atoi(task.Name())
		if err != nil {
			continue
		}
		h, err := netns.GetFromThread(os.Getpid(), tid)
		if err != nil {
			continue // the thread ended meanwhile
		}
		if h.Equal(ns) {
			t.Errorf("thread %d is still in the pod's netns", tid)
		}
		h.Close()
	}
}
