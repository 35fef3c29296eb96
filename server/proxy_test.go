package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/corral-dev/corral/cli"
	"github.com/corral-dev/corral/nodeagent"
	"github.com/corral-dev/corral/pki"
	corralpb "github.com/corral-dev/corral/proto"
	"github.com/corral-dev/corral/server"
	"github.com/corral-dev/corral/test/framework"
)

// hostContainers is a node agent's view of its containers for the agent
// API, made of real CRI log files under root/<ns>/<pod>/<container>/
// {current,previous} and commands run as host processes.
type hostContainers struct {
	root string
	pods map[string][]string // "ns/pod" → container names
}

var _ nodeagent.Containers = (*hostContainers)(nil)

func (h *hostContainers) containers(ns, pod string) ([]string, error) {
	ctrs, ok := h.pods[ns+"/"+pod]
	if !ok {
		return nil, fmt.Errorf("pod %s/%s: %w", ns, pod, nodeagent.ErrPodNotFound)
	}
	return ctrs, nil
}

func (h *hostContainers) LogDir(ns, pod, ctr string, previous bool) (string, error) {
	ctrs, err := h.containers(ns, pod)
	if err != nil {
		return "", err
	}
	if !contains(ctrs, ctr) {
		return "", fmt.Errorf("container %s: %w", ctr, nodeagent.ErrContainerNotFound)
	}
	dir := filepath.Join(h.root, ns, pod, ctr, "current")
	if previous {
		dir = filepath.Join(h.root, ns, pod, ctr, "previous")
		if _, err := os.Stat(dir); err != nil {
			return "", fmt.Errorf("container %s: %w", ctr, nodeagent.ErrNoPreviousContainer)
		}
	}
	return dir, nil
}

func (h *hostContainers) Exec(ctx context.Context, ns, pod, ctr string, cmd []string, stdin io.Reader, stdout, stderr io.Writer, _ bool) (int, error) {
	if _, err := h.LogDir(ns, pod, ctr, false); err != nil {
		return -1, err
	}
	c := exec.CommandContext(ctx, cmd[0], cmd[1:]...)
	c.Stdin, c.Stdout, c.Stderr = stdin, stdout, stderr
	err := c.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	if err != nil {
		return -1, fmt.Errorf("exec %s: %w", cmd[0], err)
	}
	return 0, nil
}

func (h *hostContainers) DefaultContainer(ns, pod string) (string, error) {
	ctrs, err := h.containers(ns, pod)
	if err != nil {
		return "", err
	}
	if len(ctrs) != 1 {
		return "", fmt.Errorf("a container name must be specified for pod %s, choose one of: [%s]", pod, strings.Join(ctrs, " "))
	}
	return ctrs[0], nil
}

// DialPod dials the port on this host's loopback: the pods of
// hostContainers share the host's network namespace.
func (h *hostContainers) DialPod(ctx context.Context, ns, pod string, port int) (net.Conn, error) {
	if _, err := h.containers(ns, pod); err != nil {
		return nil, err
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// serveAgent serves the agent API over h on 127.0.0.1:0 as node's agent,
// with a node certificate from the cluster CA, and returns its port.
func serveAgent(t *testing.T, c *framework.InProcess, h nodeagent.Containers, node string) int {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveAgentAt(t, lis, h, issue(t, c.CA(t), pki.Identity{Role: pki.RoleNode, Name: node}, time.Hour))
	return lis.Addr().(*net.TCPAddr).Port
}

// registerNode registers a node whose agent API is at 127.0.0.1:port.
func registerNode(t *testing.T, c *framework.InProcess, name string, port int) {
	t.Helper()
	n := agentNode(name, nil)
	n.Status.Addresses = []*corralpb.NodeAddress{{Type: "InternalIP", Address: "127.0.0.1"}, {Type: "Hostname", Address: name}}
	n.Status.DaemonEndpoints = &corralpb.NodeDaemonEndpoints{KubeletEndpoint: &corralpb.DaemonEndpoint{Port: int32(port)}}
	_, err := nodeClient(t, c, 0, name).Register(ctx(t), &corralpb.RegisterRequest{Node: n})
	if err != nil {
		t.Fatal(err)
	}
}

// applyPod applies a bare pod bound to node ("" leaves it unbound).
func applyPod(t *testing.T, c framework.Cluster, name, node string, containers ...string) {
	t.Helper()
	doc := "apiVersion: v1\nkind: Pod\nmetadata: {name: " + name + "}\nspec:\n"
	if node != "" {
		doc += "  nodeName: " + node + "\n"
	}
	doc += "  containers:\n"
	for _, ctr := range containers {
		doc += "  - {name: " + ctr + ", image: busybox:1.36}\n"
	}
	if _, err := c.Client(t, 0).Apply(ctx(t), &corralpb.ApplyRequest{Objects: decode(t, doc)}); err != nil {
		t.Fatal(err)
	}
}

// writeCRILog writes lines to dir/container.log, one second apart from
// 2026-11-28T12:00:00Z; lines starting "err:" go to stderr.
func writeCRILog(t *testing.T, dir string, lines ...string) {
	t.Helper()
	var b strings.Builder
	base := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	for i, l := range lines {
		stream := "stdout"
		if strings.HasPrefix(l, "err:") {
			stream = "stderr"
		}
		fmt.Fprintf(&b, "%s %s F %s\n", base.Add(time.Duration(i)*time.Second).Format(time.RFC3339Nano), stream, l)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "container.log"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// corralCLI runs the CLI against server (by API address) with the admin
// credentials of c, until it returns or ctx ends.
func corralCLI(ctx context.Context, c *framework.InProcess, server, stdin string, stdout io.Writer, args ...string) (string, int) {
	var errOut framework.SyncBuffer
	root := cli.NewRootCommand(strings.NewReader(stdin), stdout, &errOut)
	root.SetArgs(append([]string{"--config", c.AdminConf(), "--server", server}, args...))
	code := cli.ExitCode(root.ExecuteContext(ctx))
	return errOut.String(), code
}

func TestLogsAndExecFromCLIThroughServerToAgent(t *testing.T) {
	c := framework.NewInProcess(t, 3)
	// Any server will do: the CLI talks to a follower.
	server := c.APIAddr((framework.Leader(t, c) + 1) % 3)
	root := t.TempDir()
	agent := &hostContainers{root: root, pods: map[string][]string{"default/web": {"app"}, "default/two": {"a", "b"}}}
	registerNode(t, c, "w1", serveAgent(t, c, agent, "w1"))
	applyPod(t, c, "web", "w1", "app")
	applyPod(t, c, "two", "w1", "a", "b")
	applyPod(t, c, "pending", "", "app")
	current := filepath.Join(root, "default", "web", "app", "current")
	writeCRILog(t, current, "one", "err:two", "three")
	writeCRILog(t, filepath.Join(root, "default", "web", "app", "previous"), "crashed")

	run := func(stdin string, args ...string) (string, string, int) {
		t.Helper()
		var out framework.SyncBuffer
		errOut, code := corralCLI(ctx(t), c, server, stdin, &out, args...)
		return out.String(), errOut, code
	}
	cases := []struct {
		args            []string
		stdin           string
		out, err        string
		code            int
		errContainsOnly bool
	}{
		{args: []string{"logs", "web"}, out: "one\nerr:two\nthree\n"},
		{args: []string{"logs", "pod/web", "--tail", "1", "--timestamps"}, out: "2026-11-28T12:00:02Z three\n"},
		{args: []string{"logs", "web", "-c", "app", "--previous"}, out: "crashed\n"},
		{args: []string{"logs", "two", "-c", "a", "-p"}, code: 1,
			err: "Error from server (BadRequest): previous terminated container \"a\" in pod \"two\" not found\n"},
		{args: []string{"logs", "two"}, code: 1,
			err: "Error from server (BadRequest): a container name must be specified for pod two, choose one of: [a b]\n"},
		{args: []string{"logs", "gone"}, code: 1, err: "Error from server (NotFound): pods \"gone\" not found\n"},
		{args: []string{"logs", "pending"}, code: 1, err: "Error from server (BadRequest): pod pending does not have a host assigned\n"},
		{args: []string{"exec", "-i", "web", "--", "sh", "-c", "tr a-z A-Z; echo oops >&2; exit 3"}, stdin: "hello\n",
			out: "HELLO\n", err: "oops\ncommand terminated with exit code 3\n", code: 3},
		{args: []string{"exec", "two", "-c", "b", "--", "echo", "hi"}, out: "hi\n"},
		{args: []string{"exec", "web", "-c", "nope", "--", "true"}, code: 1,
			err: "Error from server (NotFound): container nope is not valid for pod web\n"},
	}
	for _, tc := range cases {
		out, errOut, code := run(tc.stdin, tc.args...)
		if out != tc.out || errOut != tc.err || code != tc.code {
			t.Errorf("corral %s: exit %d, stdout %q, stderr %q; want exit %d, %q, %q",
				strings.Join(tc.args, " "), code, out, errOut, tc.code, tc.out, tc.err)
		}
	}

	// Follow: lines appended later arrive until the user interrupts.
	fctx, cancel := context.WithCancel(ctx(t))
	defer cancel()
	var out framework.SyncBuffer
	done := make(chan int, 1)
	go func() {
		_, code := corralCLI(fctx, c, server, "", &out, "logs", "-f", "--tail", "1", "web")
		done <- code
	}()
	framework.WaitFor(t, "the last line", 10*time.Second, func() bool { return out.String() == "three\n" })
	f, err := os.OpenFile(filepath.Join(current, "container.log"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(time.Now().UTC().Format(time.RFC3339Nano) + " stdout F four\n"); err != nil {
		t.Fatal(err)
	}
	framework.WaitFor(t, "the followed line", 10*time.Second, func() bool { return out.String() == "three\nfour\n" })
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("interrupted logs -f: exit %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("logs -f did not end when interrupted")
	}
}

func TestProxyErrors(t *testing.T) {
	c := framework.NewInProcess(t, 1)
	// A node whose agent is gone: its port is closed.
	lis := listenBelowEphemeral(t)
	deadPort := lis.Addr().(*net.TCPAddr).Port
	_ = lis.Close()
	registerNode(t, c, "dead", deadPort)
	applyPod(t, c, "orphan", "dead", "app")
	applyPod(t, c, "pending", "", "app")
	applyPod(t, c, "lost", "no-such-node", "app")

	logs := func(pod string) error {
		st, err := c.Client(t, 0).Logs(ctx(t), &corralpb.LogsRequest{Pod: pod, TailLines: -1})
		if err == nil {
			_, err = st.Recv()
		}
		return err
	}
	wantCode(t, logs("orphan"), codes.Unavailable, `node "dead"`, "unreachable", "connection refused")
	errOut, code := corralCLI(ctx(t), c, c.APIAddr(0), "", io.Discard, "logs", "orphan")
	want := fmt.Sprintf("Unable to connect to the server: error dialing backend: the agent of node \"dead\" at 127.0.0.1:%d is unreachable: dial tcp 127.0.0.1:%d: connect: connection refused\n", deadPort, deadPort)
	if code != 1 || errOut != want {
		t.Fatalf("corral logs of a pod on a dead node: exit %d, stderr %q, want %q", code, errOut, want)
	}
	wantCode(t, logs("pending"), codes.InvalidArgument, "pod pending does not have a host assigned")
	wantCode(t, logs("gone"), codes.NotFound, `pods "gone" not found`)
	wantCode(t, logs("lost"), codes.NotFound, `nodes "no-such-node" not found`)

	// A client certificate guards logs and exec as every cluster call.
	anon := corralpb.NewClusterClient(dialServer(t, c.APIAddr(0), anonymous(c.CA(t))))
	st, err := anon.Logs(ctx(t), &corralpb.LogsRequest{Pod: "orphan", TailLines: -1})
	if err == nil {
		_, err = st.Recv()
	}
	wantCode(t, err, codes.Unauthenticated)

	// An agent presenting another node's certificate is not talked to.
	impostor := &hostContainers{root: t.TempDir(), pods: map[string][]string{"default/fooled": {"app"}}}
	writeCRILog(t, filepath.Join(impostor.root, "default", "fooled", "app", "current"), "secret")
	registerNode(t, c, "w2", serveAgent(t, c, impostor, "w3"))
	applyPod(t, c, "fooled", "w2", "app")
	wantCode(t, logs("fooled"), codes.Unavailable, `the agent of node "w2"`, "certificate is valid for w3, not w2")

	execCall := func(first *corralpb.ExecInput) error {
		st, err := c.Client(t, 0).Exec(ctx(t))
		if err != nil {
			return err
		}
		if err := st.Send(first); err != nil {
			return err
		}
		_, err = st.Recv()
		return err
	}
	start := func(pod string) *corralpb.ExecInput {
		return &corralpb.ExecInput{Msg: &corralpb.ExecInput_Start{Start: &corralpb.ExecStart{Pod: pod, Command: []string{"true"}}}}
	}
	wantCode(t, execCall(start("orphan")), codes.Unavailable, `node "dead"`)
	wantCode(t, execCall(start("pending")), codes.InvalidArgument, "does not have a host assigned")
	wantCode(t, execCall(&corralpb.ExecInput{Msg: &corralpb.ExecInput_Stdin{Stdin: []byte("x")}}), codes.InvalidArgument, "the first message must be start")

	// The dead agent comes back on the same port: the next call reaches it
	// through the cached connection.
	agent := &hostContainers{root: t.TempDir(), pods: map[string][]string{"default/orphan": {"app"}}}
	writeCRILog(t, filepath.Join(agent.root, "default", "orphan", "app", "current"), "back")
	lis, err = net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", deadPort))
	if err != nil {
		t.Fatalf("listen again on the dead agent's port: %v", err)
	}
	serveAgentAt(t, lis, agent, issue(t, c.CA(t), pki.Identity{Role: pki.RoleNode, Name: "dead"}, time.Hour))
	framework.WaitFor(t, "the agent back", 10*time.Second, func() bool {
		st, err := c.Client(t, 0).Logs(ctx(t), &corralpb.LogsRequest{Pod: "orphan", TailLines: -1})
		if err != nil {
			return false
		}
		chunk, err := st.Recv()
		return err == nil && string(chunk.GetData()) == "back\n"
	})
}

// listenBelowEphemeral listens on a free loopback port below the kernel's
// ephemeral range (32768 and up by default), so that once it is closed no
// outgoing connection can take it before the test listens on it again.
func listenBelowEphemeral(t *testing.T) net.Listener {
	t.Helper()
	start := 20000 + int(time.Now().UnixNano()%10000)
	for i := 0; i < 2000; i++ {
		lis, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", start+i))
		if err == nil {
			return lis
		}
	}
	t.Fatalf("no free port in %d-%d", start, start+1999)
	return nil
}

// TestStopDoesNotWaitForFollowedLogsOrExec: a `logs -f` and an exec
// session end only when their user leaves, like a watch; a stopping server
// cuts them rather than wait, as kube-apiserver does its long-running
// requests, and each ends with Unavailable.
func TestStopDoesNotWaitForFollowedLogsOrExec(t *testing.T) {
	defer server.SetStopGrace(time.Hour)() // only the streams ending could end Stop
	c := framework.NewInProcess(t, 1)
	root := t.TempDir()
	agent := &hostContainers{root: root, pods: map[string][]string{"default/web": {"app"}}}
	registerNode(t, c, "w1", serveAgent(t, c, agent, "w1"))
	applyPod(t, c, "web", "w1", "app")
	writeCRILog(t, filepath.Join(root, "default", "web", "app", "current"), "one")
	cl := c.Client(t, 0)
	sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	logs, err := cl.Logs(sctx, &corralpb.LogsRequest{Pod: "web", Follow: true, TailLines: -1})
	if err != nil {
		t.Fatal(err)
	}
	if chunk, err := logs.Recv(); err != nil || !strings.Contains(string(chunk.GetData()), "one") {
		t.Fatalf("first chunk: %q, %v", chunk.GetData(), err)
	}
	exec, err := cl.Exec(sctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range []*corralpb.ExecInput{
		{Msg: &corralpb.ExecInput_Start{Start: &corralpb.ExecStart{Pod: "web", Command: []string{"cat"}, Stdin: true}}},
		{Msg: &corralpb.ExecInput_Stdin{Stdin: []byte("hi\n")}},
	} {
		if err := exec.Send(in); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Recv(); err != nil || string(out.GetStdout()) != "hi\n" { // the session runs
		t.Fatalf("exec output: %v, %v", out, err)
	}
	stopped := make(chan struct{})
	go func() { defer close(stopped); c.Kill(t, 0) }()
	select {
	case <-stopped:
	case <-time.After(30 * time.Second):
		t.Fatal("Stop is waiting for a followed log and an exec session")
	}
	_, err = logs.Recv()
	wantCode(t, err, codes.Unavailable)
	_, err = exec.Recv()
	wantCode(t, err, codes.Unavailable)
}

// TestLogsOfEveryPodASelectorPicks: `logs -l` reads each pod's logs from
// its node's agent, through any server; --prefix names each line's pod and
// container, and -f follows them all at once until interrupted.
func TestLogsOfEveryPodASelectorPicks(t *testing.T) {
	c := framework.NewInProcess(t, 1)
	server := c.APIAddr(0)
	root := t.TempDir()
	agent := &hostContainers{root: root, pods: map[string][]string{"default/a": {"app"}, "default/b": {"app"}}}
	registerNode(t, c, "w1", serveAgent(t, c, agent, "w1"))
	for _, name := range []string{"a", "b"} {
		doc := "apiVersion: v1\nkind: Pod\nmetadata: {name: " + name + ", labels: {tier: edge}}\nspec:\n  nodeName: w1\n  containers:\n  - {name: app, image: busybox:1.36}\n"
		if _, err := c.Client(t, 0).Apply(ctx(t), &corralpb.ApplyRequest{Objects: decode(t, doc)}); err != nil {
			t.Fatal(err)
		}
		writeCRILog(t, filepath.Join(root, "default", name, "app", "current"), "one from "+name, "two from "+name)
	}
	var out framework.SyncBuffer
	errOut, code := corralCLI(ctx(t), c, server, "", &out, "logs", "-l", "tier=edge", "--prefix", "--tail=1")
	if want := "[pod/a/app] two from a\n[pod/b/app] two from b\n"; code != 0 || out.String() != want {
		t.Fatalf("logs -l --prefix: exit %d, stdout %q, stderr %q; want %q", code, out.String(), errOut, want)
	}

	fctx, cancel := context.WithCancel(ctx(t))
	defer cancel()
	var follow framework.SyncBuffer
	done := make(chan int, 1)
	go func() {
		_, code := corralCLI(fctx, c, server, "", &follow, "logs", "-f", "-l", "tier=edge", "--prefix")
		done <- code
	}()
	framework.WaitFor(t, "both pods' lines", 10*time.Second, func() bool { return strings.Count(follow.String(), "\n") == 4 })
	for _, name := range []string{"a", "b"} {
		f, err := os.OpenFile(filepath.Join(root, "default", name, "app", "current", "container.log"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.WriteString(time.Now().UTC().Format(time.RFC3339Nano) + " stdout F three from " + name + "\n")
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	framework.WaitFor(t, "the followed lines of both pods", 10*time.Second, func() bool {
		s := follow.String()
		return strings.Contains(s, "[pod/a/app] three from a\n") && strings.Contains(s, "[pod/b/app] three from b\n")
	})
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("interrupted logs -f -l: exit %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("logs -f -l did not end when interrupted")
	}
	for _, line := range strings.Split(strings.TrimSuffix(follow.String(), "\n"), "\n") {
		if !strings.HasPrefix(line, "[pod/a/app] ") && !strings.HasPrefix(line, "[pod/b/app] ") {
			t.Errorf("a followed line without its pod's prefix, or cut: %q", line)
		}
	}
}
