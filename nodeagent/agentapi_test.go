package nodeagent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/corral-dev/corral/pki"
	corralpb "github.com/corral-dev/corral/proto"
)

// apiFake is a Containers of function fields.
type apiFake struct {
	logDir   func(ns, pod, ctr string, previous bool) (string, error)
	exec     func(ctx context.Context, cmd []string, stdin io.Reader, stdout, stderr io.Writer, tty bool) (int, error)
	defaultC func(ns, pod string) (string, error)
	dial     func(ctx context.Context, ns, pod string, port int) (net.Conn, error)
}

var _ Containers = (*apiFake)(nil)

func (f *apiFake) LogDir(ns, pod, ctr string, previous bool) (string, error) {
	return f.logDir(ns, pod, ctr, previous)
}

func (f *apiFake) Exec(ctx context.Context, _, _, _ string, cmd []string, stdin io.Reader, stdout, stderr io.Writer, tty bool) (int, error) {
	return f.exec(ctx, cmd, stdin, stdout, stderr, tty)
}

func (f *apiFake) DefaultContainer(ns, pod string) (string, error) {
	return f.defaultC(ns, pod)
}

func (f *apiFake) DialPod(ctx context.Context, ns, pod string, port int) (net.Conn, error) {
	return f.dial(ctx, ns, pod, port)
}

// apiTLS is a cluster CA and the agent's credentials (node w1) for the
// agent API's tests.
type apiTLS struct {
	ca    *pki.CA
	agent *pki.Credentials
}

func newAPITLS(t *testing.T) apiTLS {
	t.Helper()
	ca := testCA(t)
	return apiTLS{ca: ca, agent: testCreds(t, ca, pki.Identity{Role: pki.RoleNode, Name: "w1"})}
}

// listenAgentAPI serves NewAgentAPI(c) on loopback as cmd/corral does:
// mutual TLS with the agent's node certificate, servers' certificates only.
func listenAgentAPI(t *testing.T, c Containers, tl apiTLS) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(
		tl.agent.ServerConfig(tls.RequireAndVerifyClientCert, pki.OnlyRole(pki.RoleServer), "h2"))))
	corralpb.RegisterAgentAPIServer(srv, NewAgentAPI(c, nil))
	go func() { _ = srv.Serve(lis) }() // returns when stopped
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// dialAgentAPI dials addr as a server's proxy does: presenting caller's
// certificate, expecting node w1's.
func dialAgentAPI(t *testing.T, addr string, caller *pki.Credentials) corralpb.AgentAPIClient {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(credentials.NewTLS(
		caller.ClientConfig("w1", pki.OnlyRole(pki.RoleNode)))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return corralpb.NewAgentAPIClient(conn)
}

// serveAgentAPI serves NewAgentAPI(c) and returns a client holding a
// server certificate of the cluster.
func serveAgentAPI(t *testing.T, c Containers) corralpb.AgentAPIClient {
	t.Helper()
	tl := newAPITLS(t)
	addr := listenAgentAPI(t, c, tl)
	return dialAgentAPI(t, addr, testCreds(t, tl.ca, pki.Identity{Role: pki.RoleServer, Name: "s1"}))
}

func apiCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// apiCRILines renders lines as container.log entries one second apart from
// 2026-11-28T12:00:00Z.
func apiCRILines(lines ...string) string {
	var b strings.Builder
	base := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	for i, l := range lines {
		stream := "stdout"
		if strings.HasPrefix(l, "err:") {
			stream = "stderr"
		}
		fmt.Fprintf(&b, "%s %s F %s\n", base.Add(time.Duration(i)*time.Second).Format(time.RFC3339Nano), stream, l)
	}
	return b.String()
}

func apiWriteLog(t *testing.T, dir, content string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "container.log"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// apiReadLogs collects a logs stream and the size of its largest chunk.
func apiReadLogs(st grpc.ServerStreamingClient[corralpb.LogsChunk]) (string, int, error) {
	var b strings.Builder
	largest := 0
	for {
		c, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return b.String(), largest, nil
		}
		if err != nil {
			return b.String(), largest, err
		}
		largest = max(largest, len(c.GetData()))
		b.Write(c.GetData())
	}
}

func apiWantStatus(t *testing.T, err error, code codes.Code, msg string) {
	t.Helper()
	if status.Code(err) != code || !strings.Contains(status.Convert(err).Message(), msg) {
		t.Fatalf("got %v, want %v containing %q", err, code, msg)
	}
}

// apiContainers serves logs from root/<pod>/<container>/{current,previous};
// pod "web" has one container "app", pod "two" has "a" and "b".
func apiContainers(root string) *apiFake {
	return &apiFake{
		defaultC: func(ns, pod string) (string, error) {
			switch pod {
			case "web":
				return "app", nil
			case "two":
				return "", fmt.Errorf("a container name must be specified for pod %s, choose one of: [a b]", pod)
			}
			return "", fmt.Errorf("default container of %s/%s: %w", ns, pod, ErrPodNotFound)
		},
		logDir: func(ns, pod, ctr string, previous bool) (string, error) {
			if pod != "web" && pod != "two" {
				return "", ErrPodNotFound
			}
			if pod == "web" && ctr != "app" {
				return "", fmt.Errorf("log dir: %w", ErrContainerNotFound)
			}
			which := "current"
			if previous {
				which = "previous"
			}
			dir := filepath.Join(root, pod, ctr, which)
			if _, err := os.Stat(dir); err != nil && previous {
				return "", fmt.Errorf("log dir: %w", ErrNoPreviousContainer)
			}
			return dir, nil
		},
	}
}

func TestAgentAPIAuth(t *testing.T) {
	root := t.TempDir()
	apiWriteLog(t, filepath.Join(root, "web", "app", "current"), apiCRILines("one"))
	c := apiContainers(root)
	c.exec = func(context.Context, []string, io.Reader, io.Writer, io.Writer, bool) (int, error) {
		t.Error("exec reached the runtime from a refused caller")
		return -1, nil
	}
	tl := newAPITLS(t)
	addr := listenAgentAPI(t, c, tl)
	cases := []struct {
		name   string
		caller *pki.Credentials
		ok     bool
	}{
		{"server", testCreds(t, tl.ca, pki.Identity{Role: pki.RoleServer, Name: "s1"}), true},
		{"no certificate", func() *pki.Credentials { p := &pki.Credentials{}; p.SetCA(tl.ca.Cert); return p }(), false},
		{"another node", testCreds(t, tl.ca, pki.Identity{Role: pki.RoleNode, Name: "w2"}), false},
		{"admin", testCreds(t, tl.ca, pki.Identity{Role: pki.RoleAdmin, Name: "alice"}), false},
		{"server of another CA", func() *pki.Credentials {
			other := testCreds(t, testCA(t), pki.Identity{Role: pki.RoleServer, Name: "s1"})
			other.SetCA(tl.ca.Cert) // trusts the agent, but is not trusted by it
			return other
		}(), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cl := dialAgentAPI(t, addr, tc.caller)
			st, err := cl.Logs(apiCtx(t), &corralpb.LogsRequest{Pod: "web", TailLines: -1})
			var got string
			if err == nil {
				got, _, err = apiReadLogs(st)
			}
			if tc.ok {
				if err != nil || got != "one\n" {
					t.Fatalf("logs: %q, %v", got, err)
				}
				return
			}
			if status.Code(err) != codes.Unavailable {
				t.Fatalf("logs: got %q, %v; want the connection refused", got, err)
			}
			ex, err := cl.Exec(apiCtx(t))
			if err == nil {
				err = ex.Send(apiStart("web", false, "true"))
			}
			if err == nil || errors.Is(err, io.EOF) {
				_, err = ex.Recv()
			}
			if status.Code(err) != codes.Unavailable {
				t.Fatalf("exec: %v; want the connection refused", err)
			}
		})
	}
	// A plaintext client gets no answer either.
	plain, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	pst, err := corralpb.NewAgentAPIClient(plain).Logs(apiCtx(t), &corralpb.LogsRequest{Pod: "web", TailLines: -1})
	if err == nil {
		_, _, err = apiReadLogs(pst)
	}
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("plaintext logs: %v; want the connection refused", err)
	}
	// A caller that expects node w1 (a server's proxy) refuses a listener
	// that presents another node's certificate.
	addr2 := listenAgentAPI(t, c, apiTLS{ca: tl.ca, agent: testCreds(t, tl.ca, pki.Identity{Role: pki.RoleNode, Name: "w9"})})
	cl := dialAgentAPI(t, addr2, cases[0].caller)
	st, err := cl.Logs(apiCtx(t), &corralpb.LogsRequest{Pod: "web", TailLines: -1})
	if err == nil {
		_, _, err = apiReadLogs(st)
	}
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "w1") {
		t.Fatalf("node w9's listener taken for w1's: %v", err)
	}
}

func TestAgentAPILogs(t *testing.T) {
	root := t.TempDir()
	apiWriteLog(t, filepath.Join(root, "web", "app", "current"), apiCRILines("one", "err:two", "three"))
	apiWriteLog(t, filepath.Join(root, "web", "app", "previous"), apiCRILines("before crash"))
	cl := serveAgentAPI(t, apiContainers(root))
	cases := []struct {
		name string
		req  *corralpb.LogsRequest
		want string
		code codes.Code
		msg  string
	}{
		{name: "all", req: &corralpb.LogsRequest{Pod: "web", TailLines: -1}, want: "one\nerr:two\nthree\n"},
		{name: "tail", req: &corralpb.LogsRequest{Pod: "web", Container: "app", TailLines: 1}, want: "three\n"},
		{name: "timestamps", req: &corralpb.LogsRequest{Pod: "web", TailLines: 1, Timestamps: true},
			want: "2026-11-28T12:00:02Z three\n"},
		{name: "limit", req: &corralpb.LogsRequest{Pod: "web", TailLines: -1, LimitBytes: 6}, want: "one\ner"},
		{name: "previous", req: &corralpb.LogsRequest{Pod: "web", TailLines: -1, Previous: true}, want: "before crash\n"},
		{name: "since", req: &corralpb.LogsRequest{Pod: "web", TailLines: -1, SinceSeconds: 60}, want: ""},
		{name: "no previous", req: &corralpb.LogsRequest{Pod: "two", Container: "a", TailLines: -1, Previous: true},
			code: codes.InvalidArgument, msg: `previous terminated container "a" in pod "two" not found`},
		{name: "which container", req: &corralpb.LogsRequest{Pod: "two", TailLines: -1},
			code: codes.InvalidArgument, msg: "a container name must be specified for pod two, choose one of: [a b]"},
		{name: "no pod", req: &corralpb.LogsRequest{Pod: "gone", TailLines: -1}, code: codes.NotFound, msg: `pods "gone" not found`},
		{name: "no container", req: &corralpb.LogsRequest{Pod: "web", Container: "x", TailLines: -1},
			code: codes.NotFound, msg: "container x is not valid for pod web"},
		{name: "no log dir", req: &corralpb.LogsRequest{Pod: "two", Container: "b", TailLines: -1}, code: codes.NotFound, msg: "logs of container"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, err := cl.Logs(apiCtx(t), c.req)
			if err != nil {
				t.Fatal(err)
			}
			got, _, err := apiReadLogs(st)
			if c.code != codes.OK {
				apiWantStatus(t, err, c.code, c.msg)
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("got %q, %v; want %q", got, err, c.want)
			}
		})
	}
}

func TestAgentAPILogsChunksAndFollow(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "web", "app", "current")
	long := strings.Repeat("x", 10000)
	var lines []string
	for i := 0; i < 20; i++ {
		lines = append(lines, long)
	}
	apiWriteLog(t, dir, apiCRILines(lines...))
	cl := serveAgentAPI(t, apiContainers(root))
	st, err := cl.Logs(apiCtx(t), &corralpb.LogsRequest{Pod: "web", TailLines: -1})
	if err != nil {
		t.Fatal(err)
	}
	got, largest, err := apiReadLogs(st)
	if err != nil || len(got) != 20*10001 {
		t.Fatalf("read %d bytes, %v", len(got), err)
	}
	if largest > 32<<10 {
		t.Fatalf("a chunk of %d bytes: want at most 32 KiB", largest)
	}

	// Follow: new lines arrive until the caller cancels.
	dir = filepath.Join(root, "two", "a", "current")
	apiWriteLog(t, dir, apiCRILines("first"))
	ctx, cancel := context.WithCancel(apiCtx(t))
	defer cancel()
	st, err = cl.Logs(ctx, &corralpb.LogsRequest{Pod: "two", Container: "a", TailLines: -1, Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := st.Recv(); err != nil || string(c.GetData()) != "first\n" {
		t.Fatalf("followed %q, %v", c.GetData(), err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "container.log"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(time.Now().UTC().Format(time.RFC3339Nano) + " stdout F later\n"); err != nil {
		t.Fatal(err)
	}
	c, err := st.Recv()
	if err != nil || string(c.GetData()) != "later\n" {
		t.Fatalf("followed %q, %v", c.GetData(), err)
	}
	cancel()
	if _, err := st.Recv(); status.Code(err) != codes.Canceled {
		t.Fatalf("after cancel: %v", err)
	}
}

// apiHostExec runs cmd as a host process.
func apiHostExec(ctx context.Context, cmd []string, stdin io.Reader, stdout, stderr io.Writer, _ bool) (int, error) {
	c := exec.CommandContext(ctx, cmd[0], cmd[1:]...)
	c.Stdin, c.Stdout, c.Stderr = stdin, stdout, stderr
	err := c.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	if err != nil {
		return -1, fmt.Errorf("run %s: %w", cmd[0], err)
	}
	return 0, nil
}

// apiExecResult is what an exec stream returned.
type apiExecResult struct {
	stdout, stderr string
	code           int32
	gotCode        bool
	err            error
}

func apiRunExec(t *testing.T, cl corralpb.AgentAPIClient, in ...*corralpb.ExecInput) apiExecResult {
	t.Helper()
	st, err := cl.Exec(apiCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range in {
		if err := st.Send(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.CloseSend(); err != nil {
		t.Fatal(err)
	}
	var r apiExecResult
	var out, errOut strings.Builder
	for {
		m, err := st.Recv()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				r.err = err
			}
			r.stdout, r.stderr = out.String(), errOut.String()
			return r
		}
		if r.gotCode {
			t.Fatalf("message %v after the exit code", m)
		}
		switch m := m.GetMsg().(type) {
		case *corralpb.ExecOutput_Stdout:
			out.Write(m.Stdout)
		case *corralpb.ExecOutput_Stderr:
			errOut.Write(m.Stderr)
		case *corralpb.ExecOutput_ExitCode:
			r.code, r.gotCode = m.ExitCode, true
		}
	}
}

func apiStart(pod string, stdin bool, cmd ...string) *corralpb.ExecInput {
	return &corralpb.ExecInput{Msg: &corralpb.ExecInput_Start{Start: &corralpb.ExecStart{
		Namespace: "default", Pod: pod, Command: cmd, Stdin: stdin}}}
}

func TestAgentAPIExec(t *testing.T) {
	c := apiContainers(t.TempDir())
	c.exec = apiHostExec
	cl := serveAgentAPI(t, c)

	r := apiRunExec(t, cl, apiStart("web", true, "sh", "-c", "tr a-z A-Z; echo oops >&2; exit 3"),
		&corralpb.ExecInput{Msg: &corralpb.ExecInput_Stdin{Stdin: []byte("hello ")}},
		&corralpb.ExecInput{Msg: &corralpb.ExecInput_Stdin{Stdin: []byte("world\n")}},
		&corralpb.ExecInput{Msg: &corralpb.ExecInput_StdinClose{StdinClose: true}})
	if r.err != nil || r.stdout != "HELLO WORLD\n" || r.stderr != "oops\n" || !r.gotCode || r.code != 3 {
		t.Fatalf("exec: %+v", r)
	}
	// Without stdin the command reads end of file at once.
	r = apiRunExec(t, cl, apiStart("web", false, "cat"))
	if r.err != nil || r.stdout != "" || r.code != 0 || !r.gotCode {
		t.Fatalf("exec without stdin: %+v", r)
	}
	// The end of the caller's stream closes stdin too.
	r = apiRunExec(t, cl, apiStart("web", true, "cat"), &corralpb.ExecInput{Msg: &corralpb.ExecInput_Stdin{Stdin: []byte("x")}})
	if r.err != nil || r.stdout != "x" || r.code != 0 {
		t.Fatalf("exec with half-closed stream: %+v", r)
	}
	r = apiRunExec(t, cl, &corralpb.ExecInput{Msg: &corralpb.ExecInput_Stdin{Stdin: []byte("x")}})
	apiWantStatus(t, r.err, codes.InvalidArgument, "the first message must be start")
	r = apiRunExec(t, cl, apiStart("web", false))
	apiWantStatus(t, r.err, codes.InvalidArgument, "at least one command")
	r = apiRunExec(t, cl, apiStart("gone", false, "true"))
	apiWantStatus(t, r.err, codes.NotFound, `pods "gone" not found`)
	r = apiRunExec(t, cl, apiStart("web", false, "/no/such/binary"))
	apiWantStatus(t, r.err, codes.Internal, "/no/such/binary")
}

func TestAgentAPIExecCancelKills(t *testing.T) {
	c := apiContainers(t.TempDir())
	done := make(chan error, 1)
	c.exec = func(ctx context.Context, cmd []string, stdin io.Reader, stdout, stderr io.Writer, tty bool) (int, error) {
		if _, err := stdout.Write([]byte("started\n")); err != nil {
			return -1, err
		}
		<-ctx.Done()
		done <- ctx.Err()
		return -1, ctx.Err()
	}
	cl := serveAgentAPI(t, c)
	ctx, cancel := context.WithCancel(apiCtx(t))
	defer cancel()
	st, err := cl.Exec(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(apiStart("web", true, "sleep", "1000")); err != nil {
		t.Fatal(err)
	}
	if m, err := st.Recv(); err != nil || string(m.GetStdout()) != "started\n" {
		t.Fatalf("first output %v, %v", m, err)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("exec ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("cancelling the caller did not end the command")
	}
}

// apiForward runs one PortForward call: frames sent in order, then the
// end of the caller's stream; it returns the data that came back, whether
// close_write came after it, and the call's error.
func apiForward(t *testing.T, cl corralpb.AgentAPIClient, frames ...*corralpb.PortForwardFrame) (string, bool, error) {
	t.Helper()
	st, err := cl.PortForward(apiCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range frames {
		if err := st.Send(f); err != nil {
			break // the agent ended the call: Recv tells why
		}
	}
	_ = st.CloseSend()
	var data strings.Builder
	closed := false
	for {
		f, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return data.String(), closed, nil
		}
		if err != nil {
			return data.String(), closed, err
		}
		if f.GetCloseWrite() {
			closed = true
			continue
		}
		if closed {
			t.Fatal("data after close_write")
		}
		data.Write(f.GetData())
	}
}

func TestAgentAPIPortForward(t *testing.T) {
	app, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	go func() {
		for {
			conn, err := app.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				in, _ := io.ReadAll(conn) // to the caller's half-close
				_, _ = conn.Write(append([]byte("got: "), in...))
			}()
		}
	}()
	c := apiContainers(t.TempDir())
	var mu sync.Mutex
	var dialled []string
	c.dial = func(ctx context.Context, ns, pod string, port int) (net.Conn, error) {
		if pod != "web" {
			return nil, fmt.Errorf("dial: %w", ErrPodNotFound)
		}
		mu.Lock()
		dialled = append(dialled, fmt.Sprintf("%s/%s:%d", ns, pod, port))
		mu.Unlock()
		var d net.Dialer
		return d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	}
	cl := serveAgentAPI(t, c)
	appPort := int32(app.Addr().(*net.TCPAddr).Port)
	start := func(pod string, port int32) *corralpb.PortForwardFrame {
		return &corralpb.PortForwardFrame{Msg: &corralpb.PortForwardFrame_Start{Start: &corralpb.PortForwardStart{Pod: pod, Port: port}}}
	}
	data := func(s string) *corralpb.PortForwardFrame {
		return &corralpb.PortForwardFrame{Msg: &corralpb.PortForwardFrame_Data{Data: []byte(s)}}
	}
	closeWrite := &corralpb.PortForwardFrame{Msg: &corralpb.PortForwardFrame_CloseWrite{CloseWrite: true}}

	// close_write half-closes the connection: the app answers all it got.
	got, closed, err := apiForward(t, cl, start("web", appPort), data("hello "), data("world"), closeWrite)
	if err != nil || got != "got: hello world" || !closed {
		t.Fatalf("forward: %q, close_write %v, %v", got, closed, err)
	}
	// So does the end of the caller's stream; a big answer comes in chunks.
	big := strings.Repeat("x", 100_000)
	if got, closed, err := apiForward(t, cl, start("web", appPort), data(big)); err != nil || got != "got: "+big || !closed {
		t.Fatalf("forward of 100 kB: %d bytes, close_write %v, %v", len(got), closed, err)
	}
	mu.Lock()
	if want := fmt.Sprintf("default/web:%d", appPort); len(dialled) != 2 || dialled[0] != want {
		t.Fatalf("dialled %v, want %s twice (namespace defaulted)", dialled, want)
	}
	mu.Unlock()

	_, _, err = apiForward(t, cl, data("x"))
	apiWantStatus(t, err, codes.InvalidArgument, "the first message must be start")
	_, _, err = apiForward(t, cl, start("web", 0))
	apiWantStatus(t, err, codes.InvalidArgument, "port: Invalid value: 0")
	_, _, err = apiForward(t, cl, start("gone", appPort))
	apiWantStatus(t, err, codes.NotFound, `pods "gone" not found`)
	closedPort, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadPort := int32(closedPort.Addr().(*net.TCPAddr).Port)
	_ = closedPort.Close()
	_, _, err = apiForward(t, cl, start("web", deadPort))
	apiWantStatus(t, err, codes.FailedPrecondition, fmt.Sprintf("error forwarding port %d to pod web", deadPort))
}
