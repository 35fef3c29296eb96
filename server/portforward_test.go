package server_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corralpb "github.com/corral-dev/corral/proto"
	"github.com/corral-dev/corral/test/framework"
)

// podRunning stores the pod's status as Running, as its node's agent would.
func podRunning(t *testing.T, c *framework.InProcess, node, name string) {
	t.Helper()
	got, err := c.Client(t, 0).Get(ctx(t), &corralpb.GetRequest{Kind: "Pod", Namespace: "default", Name: name})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nodeClient(t, c, 0, node).UpdateStatus(ctx(t), &corralpb.UpdateStatusRequest{NodeName: node, Pods: []*corralpb.PodStatusUpdate{{
		Namespace: "default", Name: name, Uid: got.GetObject().GetPod().GetMetadata().GetUid(), Status: &corralpb.PodStatus{Phase: "Running"}}}}); err != nil {
		t.Fatal(err)
	}
}

// answerAll serves on l: each connection's whole input (up to the
// client's half-close) is answered with "got: " and it, then closed.
func answerAll(t *testing.T, l net.Listener) {
	t.Helper()
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				in, _ := io.ReadAll(conn)
				_, _ = conn.Write(append([]byte("got: "), in...))
			}()
		}
	}()
}

// corral port-forward: local connections carried by the CLI through a
// server (a follower) and the pod's node agent to the pod's port, each
// direction half-closed on its own, several at once; kubectl's messages
// and errors.
func TestPortForwardFromCLIThroughServerToAgent(t *testing.T) {
	c := framework.NewInProcess(t, 3)
	server := c.APIAddr((framework.Leader(t, c) + 1) % 3)
	agent := &hostContainers{root: t.TempDir(), pods: map[string][]string{"default/web": {"app"}}}
	registerNode(t, c, "w1", serveAgent(t, c, agent, "w1"))
	applyPod(t, c, "web", "w1", "app")
	applyPod(t, c, "pending", "w1", "app")
	podRunning(t, c, "w1", "web")
	app, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	answerAll(t, app)
	appPort := app.Addr().(*net.TCPAddr).Port

	fctx, cancel := context.WithCancel(ctx(t))
	defer cancel()
	var out framework.SyncBuffer
	done := make(chan string, 1)
	go func() {
		errOut, code := corralCLI(fctx, c, server, "", &out, "port-forward", "pod/web", fmt.Sprintf(":%d", appPort))
		done <- fmt.Sprintf("exit %d, stderr %q", code, errOut)
	}()
	forwarding := regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+) -> ` + strconv.Itoa(appPort) + "\n")
	var local string
	framework.WaitFor(t, "port-forward listening", 10*time.Second, func() bool {
		m := forwarding.FindStringSubmatch(out.String())
		if m != nil {
			local = m[1]
		}
		return m != nil
	})
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("tcp", "127.0.0.1:"+local)
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(30 * time.Second))    // a lost half-close fails, not hangs
			msg := strings.Repeat(fmt.Sprintf("hello %d ", i), 20000) // several frames
			if _, err := conn.Write([]byte(msg)); err != nil {
				t.Error(err)
				return
			}
			_ = conn.(*net.TCPConn).CloseWrite() // the app answers once it has all
			got, err := io.ReadAll(conn)
			if err != nil || string(got) != "got: "+msg {
				t.Errorf("connection %d: %d bytes back (%v), want %d", i, len(got), err, len("got: "+msg))
			}
		}()
	}
	wg.Wait()
	if n := strings.Count(out.String(), "Handling connection for "+local+"\n"); n != 3 {
		t.Errorf("stdout %q: want 3 'Handling connection' lines", out.String())
	}
	cancel()
	select {
	case r := <-done:
		if r != `exit 0, stderr ""` {
			t.Fatalf("interrupted port-forward: %s", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("port-forward did not end when interrupted")
	}

	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"port-forward", "pending", "8080"}, "error: unable to forward port because pod is not running. Current status=Pending\n"},
		{[]string{"port-forward", "gone", "8080"}, "Error from server (NotFound): pods \"gone\" not found\n"},
		{[]string{"port-forward", "web", "8080:http"}, "error: pod 'web' does not have a named port 'http'\n"},
		{[]string{"port-forward", "web", "70000"}, "error: error parsing remote port '70000': must be a number between 1 and 65535\n"},
		{[]string{"port-forward", "web"}, "error: TYPE/NAME and list of ports are required for port-forward\n"},
		{[]string{"port-forward", "--address", "nowhere", "web", "8080"}, "error: nowhere is not a valid IP\n"},
	} {
		var out framework.SyncBuffer
		errOut, code := corralCLI(ctx(t), c, server, "", &out, tc.args...)
		if code != 1 || errOut != tc.err {
			t.Errorf("corral %s: exit %d, stderr %q; want %q", strings.Join(tc.args, " "), code, errOut, tc.err)
		}
	}

	// A port nothing listens on: the connection is closed and the CLI says why.
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadPort := closed.Addr().(*net.TCPAddr).Port
	_ = closed.Close()
	fctx, cancel = context.WithCancel(ctx(t))
	defer cancel()
	out = framework.SyncBuffer{}
	go func() {
		errOut, code := corralCLI(fctx, c, server, "", &out, "port-forward", "web", fmt.Sprintf(":%d", deadPort))
		done <- fmt.Sprintf("exit %d, stderr %q", code, errOut)
	}()
	forwarding = regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+) -> ` + strconv.Itoa(deadPort) + "\n")
	framework.WaitFor(t, "port-forward listening", 10*time.Second, func() bool {
		m := forwarding.FindStringSubmatch(out.String())
		if m != nil {
			local = m[1]
		}
		return m != nil
	})
	conn, err := net.Dial("tcp", "127.0.0.1:"+local)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if got, err := io.ReadAll(conn); len(got) != 0 || err != nil {
		t.Errorf("read %q (%v) from a forwarded port nothing listens on", got, err)
	}
	conn.Close()
	cancel()
	r := <-done
	if want := fmt.Sprintf("error: an error occurred forwarding %s -> %d: error forwarding port %d to pod web: ", local, deadPort, deadPort); !strings.HasPrefix(r, `exit 0, stderr "`+want) || !strings.Contains(r, "connection refused") {
		t.Fatalf("port-forward to a closed port: %s", r)
	}
}
