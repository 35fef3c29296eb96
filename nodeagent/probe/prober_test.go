package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	corralpb "github.com/corral-dev/corral/proto"
)

// probeServer serves the paths the HTTP probe tests use.
func probeServer(t *testing.T, tls bool) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "healthy") })
	mux.HandleFunc("/500", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	mux.HandleFunc("/404", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotFound) })
	mux.HandleFunc("/399", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(399) })
	mux.HandleFunc("/same-host", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusFound) })
	mux.HandleFunc("/same-host-500", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/500", http.StatusFound) })
	mux.HandleFunc("/other-host", func(w http.ResponseWriter, r *http.Request) {
		// Same server under another host name: must not be followed.
		_, port, _ := net.SplitHostPort(r.Host)
		http.Redirect(w, r, "http://localhost:"+port+"/500", http.StatusFound)
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/loop", http.StatusFound) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, strings.Repeat("x", 20<<10)) })
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "ua=%s host=%s x=%s accept=%s q=%s", r.UserAgent(), r.Host, r.Header.Get("X-Probe"), r.Header.Get("Accept"), r.URL.RawQuery)
	})
	var s *httptest.Server
	if tls {
		s = httptest.NewTLSServer(mux)
	} else {
		s = httptest.NewServer(mux)
	}
	t.Cleanup(s.Close)
	return s
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestHTTPGet(t *testing.T) {
	srv := probeServer(t, false)
	tlsSrv := probeServer(t, true)
	refused := closedAddr(t)
	rows := []struct {
		name    string
		url     string
		header  http.Header
		timeout time.Duration
		want    Result
		output  string // exact, or a prefix when it ends with "*"
	}{
		{name: "200", url: srv.URL + "/ok", want: Success, output: "healthy"},
		{name: "399 is success", url: srv.URL + "/399", want: Success, output: "Probe terminated redirects, Response body: "},
		{name: "500", url: srv.URL + "/500", want: Failure, output: "HTTP probe failed with statuscode: 500"},
		{name: "404", url: srv.URL + "/404", want: Failure, output: "HTTP probe failed with statuscode: 404"},
		{name: "redirect on the same host is followed", url: srv.URL + "/same-host", want: Success, output: "healthy"},
		{name: "redirect on the same host to a 500", url: srv.URL + "/same-host-500", want: Failure, output: "HTTP probe failed with statuscode: 500"},
		{name: "redirect to another host is not followed", url: srv.URL + "/other-host", want: Success, output: "Probe terminated redirects, Response body: *"},
		{name: "redirect loop", url: srv.URL + "/loop", want: Failure, output: `Get "/loop": stopped after 10 redirects`},
		{name: "timeout", url: srv.URL + "/slow", timeout: 100 * time.Millisecond, want: Failure, output: `Get "` + srv.URL + `/slow": context deadline exceeded*`},
		{name: "body read is limited to 10 KiB", url: srv.URL + "/big", want: Success, output: strings.Repeat("x", 10<<10)},
		{name: "connection refused", url: "http://" + refused + "/", want: Failure,
			output: `Get "http://` + refused + `/": dial tcp ` + refused + `: connect: connection refused`},
		{name: "HTTPS without certificate checks", url: tlsSrv.URL + "/ok", want: Success, output: "healthy"},
		{name: "default headers", url: srv.URL + "/echo?a=1", want: Success,
			output: "ua=" + UserAgent + " host=" + strings.TrimPrefix(srv.URL, "http://") + " x= accept=*/* q=a=1"},
		{name: "custom headers, Host and User-Agent", url: srv.URL + "/echo",
			header: http.Header{"X-Probe": {"1"}, "Host": {"app.example"}, "User-Agent": {"mine"}}, want: Success,
			output: "ua=mine host=app.example x=1 accept=*/* q="},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			timeout := r.timeout
			if timeout == 0 {
				timeout = 5 * time.Second
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			got, output := NewHTTPGet(mustURL(t, r.url), r.header, nil).Probe(ctx)
			if got != r.want || !matches(output, r.output) {
				t.Errorf("got %v %q, want %v %q", got, output, r.want, r.output)
			}
		})
	}
}

// matches compares exactly, or by prefix when want ends with "*".
func matches(got, want string) bool {
	if p, ok := strings.CutSuffix(want, "*"); ok {
		return strings.HasPrefix(got, p)
	}
	return got == want
}

func TestNewBuildsProbers(t *testing.T) {
	c := &corralpb.Container{Name: "web", Ports: []*corralpb.ContainerPort{{Name: "http", ContainerPort: 8080}}}
	named := &corralpb.IntOrString{IsString: true, StrVal: "http"}
	rows := []struct {
		name  string
		probe *corralpb.Probe
		env   Env
		want  string // the HTTP URL or TCP address; "error: ..." for an error
	}{
		{"http: pod IP is the default host, named port", &corralpb.Probe{HttpGet: &corralpb.HTTPGetAction{Path: "/healthz?full=1", Port: named}},
			Env{PodIP: "10.42.0.5"}, "http://10.42.0.5:8080/healthz?full=1"},
		{"http: no pod IP → loopback, HTTPS scheme, explicit host", &corralpb.Probe{HttpGet: &corralpb.HTTPGetAction{Path: "x", Port: &corralpb.IntOrString{IntVal: 443}, Scheme: "HTTPS"}},
			Env{}, "https://127.0.0.1:443/x"},
		{"http: explicit host", &corralpb.Probe{HttpGet: &corralpb.HTTPGetAction{Host: "::1", Port: named}},
			Env{PodIP: "10.42.0.5"}, "http://[::1]:8080"},
		{"tcp", &corralpb.Probe{TcpSocket: &corralpb.TCPSocketAction{Port: named}}, Env{PodIP: "10.42.0.5"}, "10.42.0.5:8080"},
		{"unknown port name", &corralpb.Probe{TcpSocket: &corralpb.TCPSocketAction{Port: &corralpb.IntOrString{IsString: true, StrVal: "nope"}}},
			Env{}, `error: tcpSocket probe of "web": probe port: couldn't find port "nope" in container "web"`},
		{"grpc", &corralpb.Probe{Grpc: &corralpb.GRPCAction{Port: 9}}, Env{}, `error: unsupported probe: grpc probes are not supported (container "web")`},
		{"exec without an Execer", &corralpb.Probe{Exec: &corralpb.ExecAction{Command: []string{"true"}}}, Env{}, `error: exec probe of "web": no Execer`},
	}
	for _, r := range rows {
		p, err := New(r.probe, c, r.env)
		var got string
		switch p := p.(type) {
		case *HTTPGet:
			got = p.URL()
		case *TCPSocket:
			got = p.Address
		}
		if err != nil {
			got = "error: " + err.Error()
		}
		if got != r.want {
			t.Errorf("%s: got %q, want %q", r.name, got, r.want)
		}
	}
}

func TestTCPSocket(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	ctx := context.Background()
	if got, output := (&TCPSocket{Address: ln.Addr().String()}).Probe(ctx); got != Success || output != "" {
		t.Errorf("listening: %v %q", got, output)
	}
	refused := closedAddr(t)
	want := "dial tcp " + refused + ": connect: connection refused"
	if got, output := (&TCPSocket{Address: refused}).Probe(ctx); got != Failure || output != want {
		t.Errorf("closed: %v %q, want %q", got, output, want)
	}
}

// fakeExec is an Execer from a function.
type fakeExec struct {
	exec func(ctx context.Context, cmd []string) (int, []byte, error)
}

var _ Execer = (*fakeExec)(nil)

func (f *fakeExec) Exec(ctx context.Context, cmd []string) (int, []byte, error) {
	return f.exec(ctx, cmd)
}

// returns is an exec that ends at once with code, output and err.
func returns(code int, output string, err error) func(context.Context, []string) (int, []byte, error) {
	return func(context.Context, []string) (int, []byte, error) { return code, []byte(output), err }
}

// hangs is an exec that runs until its context ends.
func hangs(ctx context.Context, _ []string) (int, []byte, error) {
	<-ctx.Done()
	return -1, nil, ctx.Err()
}

func TestExec(t *testing.T) {
	rows := []struct {
		name    string
		exec    func(ctx context.Context, cmd []string) (int, []byte, error)
		timeout time.Duration
		want    Result
		output  string
	}{
		{"exit 0", returns(0, "fine\n", nil), 0, Success, "fine\n"},
		{"exit 1", returns(1, "cat: /tmp/healthy: No such file\n", nil), 0, Failure, "cat: /tmp/healthy: No such file\n"},
		{"timeout", hangs, 50 * time.Millisecond, Failure, `command "check --deep" timed out`},
		{"cannot run", returns(-1, "", errors.New("container not running")), 0, Unknown, `exec "check --deep": container not running`},
		{"output limited to 10 KiB", returns(2, strings.Repeat("y", 11<<10), nil), 0, Failure, strings.Repeat("y", 10<<10)},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			timeout := r.timeout
			if timeout == 0 {
				timeout = 5 * time.Second
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			var gotCmd []string
			p := &Exec{Command: []string{"check", "--deep"}, Execer: &fakeExec{exec: func(ctx context.Context, cmd []string) (int, []byte, error) {
				gotCmd = cmd
				return r.exec(ctx, cmd)
			}}}
			got, output := p.Probe(ctx)
			if got != r.want || output != r.output || strconv.Quote(strings.Join(gotCmd, " ")) != `"check --deep"` {
				t.Errorf("got %v %q (cmd %q), want %v %q", got, output, gotCmd, r.want, r.output)
			}
		})
	}
}
