package cli

import (
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	corralpb "github.com/corral-dev/corral/proto"
)

// logsFake serves Logs from fixed output (in chunks of 4 bytes) or a fixed
// error, and records the requests.
type logsFake struct {
	mu   sync.Mutex
	reqs []*corralpb.LogsRequest
	out  string
	err  error
}

func (l *logsFake) serve(req *corralpb.LogsRequest, st grpc.ServerStreamingServer[corralpb.LogsChunk]) error {
	l.mu.Lock()
	l.reqs = append(l.reqs, req)
	l.mu.Unlock()
	for i := 0; i < len(l.out); i += 4 {
		if err := st.Send(&corralpb.LogsChunk{Data: []byte(l.out[i:min(i+4, len(l.out))])}); err != nil {
			return err
		}
	}
	return l.err
}

func (l *logsFake) last() *corralpb.LogsRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.reqs) == 0 {
		return nil
	}
	return l.reqs[len(l.reqs)-1]
}

func TestLogsRequests(t *testing.T) {
	fake := newFakeCluster()
	lf := &logsFake{out: "line one\nline two\n"}
	fake.logs = lf.serve
	h := newHarness(t, fake)
	all := int64(-1)
	cases := []struct {
		args []string
		want *corralpb.LogsRequest
	}{
		{[]string{"logs", "web"}, &corralpb.LogsRequest{Namespace: "default", Pod: "web", TailLines: all}},
		{[]string{"logs", "pod/web", "-n", "kube-system"}, &corralpb.LogsRequest{Namespace: "kube-system", Pod: "web", TailLines: all}},
		{[]string{"logs", "po/web", "-c", "app", "--tail", "20", "--timestamps"},
			&corralpb.LogsRequest{Namespace: "default", Pod: "web", Container: "app", TailLines: 20, Timestamps: true}},
		{[]string{"logs", "-f", "-p", "web", "app"},
			&corralpb.LogsRequest{Namespace: "default", Pod: "web", Container: "app", Follow: true, Previous: true, TailLines: all}},
		{[]string{"logs", "pods/web", "--previous", "--since", "90s", "--limit-bytes", "100"},
			&corralpb.LogsRequest{Namespace: "default", Pod: "web", Previous: true, TailLines: all, SinceSeconds: 90, LimitBytes: 100}},
		{[]string{"logs", "web", "--since", "1500ms", "--tail=0"},
			&corralpb.LogsRequest{Namespace: "default", Pod: "web", SinceSeconds: 2}},
	}
	for _, c := range cases {
		out := h.mustRun(c.args...)
		if out != lf.out {
			t.Errorf("%v: output %q, want %q", c.args, out, lf.out)
		}
		if got := lf.last(); !proto.Equal(got, c.want) {
			t.Errorf("%v: request %v, want %v", c.args, got, c.want)
		}
	}
	if got := fake.sortedAuth(); len(got) != 1 || got[0] != testAdmin.String() {
		t.Fatalf("client identities seen: %v", got)
	}
}

func TestLogsErrors(t *testing.T) {
	fake := newFakeCluster()
	lf := &logsFake{}
	fake.logs = lf.serve
	h := newHarness(t, fake)
	cases := []struct {
		args    []string
		srvErr  error
		wantErr string
	}{
		{args: []string{"logs"}, wantErr: "error: expected 'logs [-f] [-p] (POD | TYPE/NAME) [-c CONTAINER]'.\nPOD or TYPE/NAME is a required argument for the logs command\n"},
		{args: []string{"logs", "a", "b", "c"}, wantErr: "POD or TYPE/NAME is a required argument"},
		{args: []string{"logs", "web", "app", "-c", "other"}, wantErr: "error: only one of -c or an inline [CONTAINER] arg is allowed\n"},
		{args: []string{"logs", "web", "--tail", "-2"}, wantErr: "error: --tail must be greater than or equal to -1\n"},
		{args: []string{"logs", "web", "--limit-bytes", "-1"}, wantErr: "error: --limit-bytes must be greater than 0\n"},
		{args: []string{"logs", "node/n1"}, wantErr: "error: cannot get the logs from node/n1: only pods are supported\n"},
		{args: []string{"logs", "foo/x"}, wantErr: `error: the server doesn't have a resource type "foo"` + "\n"},
		{args: []string{"logs", "web"}, srvErr: status.Error(codes.NotFound, `pods "web" not found`),
			wantErr: "Error from server (NotFound): pods \"web\" not found\n"},
		{args: []string{"logs", "web", "-p"}, srvErr: status.Error(codes.InvalidArgument, `previous terminated container "app" in pod "web" not found`),
			wantErr: "Error from server (BadRequest): previous terminated container \"app\" in pod \"web\" not found\n"},
		{args: []string{"logs", "web"}, srvErr: status.Error(codes.Unavailable, `error dialing backend: the agent of node "n1" at 10.0.0.1:10250 is unreachable: connection refused`),
			wantErr: `the agent of node "n1" at 10.0.0.1:10250 is unreachable`},
	}
	for _, c := range cases {
		lf.err = c.srvErr
		before := len(lf.reqs)
		_, errOut, code := h.run(c.args...)
		if code != 1 || !strings.Contains(errOut, c.wantErr) {
			t.Errorf("%v: exit %d, stderr %q; want %q", c.args, code, errOut, c.wantErr)
		}
		if c.srvErr == nil && len(lf.reqs) != before {
			t.Errorf("%v: a bad invocation reached the server", c.args)
		}
	}
}
