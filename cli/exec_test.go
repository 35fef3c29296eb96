package cli

import (
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	corralpb "github.com/corral-dev/corral/proto"
)

// execFake runs a tiny interpreter for exec streams: "upper" echoes stdin
// upper-cased, "fail N" writes to stderr and exits N, "unbound" and
// "nopod" fail as the server would.
type execFake struct {
	mu     sync.Mutex
	starts []*corralpb.ExecStart
	closed bool // stdin_close was received
}

func (e *execFake) serve(st grpc.BidiStreamingServer[corralpb.ExecInput, corralpb.ExecOutput]) error {
	first, err := st.Recv()
	if err != nil {
		return err
	}
	start := first.GetStart()
	e.mu.Lock()
	e.starts = append(e.starts, start)
	e.mu.Unlock()
	cmd := start.GetCommand()
	switch cmd[0] {
	case "unbound":
		return status.Error(codes.InvalidArgument, "pod web does not have a host assigned")
	case "nopod":
		return status.Errorf(codes.NotFound, "pods %q not found", start.GetPod())
	case "fail":
		code, _ := strconv.Atoi(cmd[1])
		if err := st.Send(&corralpb.ExecOutput{Msg: &corralpb.ExecOutput_Stderr{Stderr: []byte("failing\n")}}); err != nil {
			return err
		}
		return st.Send(&corralpb.ExecOutput{Msg: &corralpb.ExecOutput_ExitCode{ExitCode: int32(code)}})
	}
	var in strings.Builder
	for {
		m, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		in.Write(m.GetStdin())
		if m.GetStdinClose() {
			e.mu.Lock()
			e.closed = true
			e.mu.Unlock()
		}
	}
	out := strings.ToUpper(in.String())
	if err := st.Send(&corralpb.ExecOutput{Msg: &corralpb.ExecOutput_Stdout{Stdout: []byte(out)}}); err != nil {
		return err
	}
	return st.Send(&corralpb.ExecOutput{Msg: &corralpb.ExecOutput_ExitCode{ExitCode: 0}})
}

func (e *execFake) last() *corralpb.ExecStart {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.starts[len(e.starts)-1]
}

func TestExecStdinOutputAndExitCode(t *testing.T) {
	fake := newFakeCluster()
	ef := &execFake{}
	fake.exec = ef.serve
	h := newHarness(t, fake)

	h.stdin = "hello\n"
	if out := h.mustRun("exec", "-i", "web", "-c", "app", "--", "upper", "-x"); out != "HELLO\n" {
		t.Fatalf("exec -i: %q", out)
	}
	want := &corralpb.ExecStart{Namespace: "default", Pod: "web", Container: "app", Command: []string{"upper", "-x"}, Stdin: true}
	if !proto.Equal(ef.last(), want) || !ef.closed {
		t.Fatalf("start %v (stdin closed %v), want %v", ef.last(), ef.closed, want)
	}
	// Without -i nothing is sent and the stream is half-closed at once.
	if out := h.mustRun("exec", "pod/web", "-n", "ops", "--", "upper"); out != "" {
		t.Fatalf("exec without -i: %q", out)
	}
	want = &corralpb.ExecStart{Namespace: "ops", Pod: "web", Command: []string{"upper"}}
	if !proto.Equal(ef.last(), want) {
		t.Fatalf("start %v, want %v", ef.last(), want)
	}
	// The remote exit code becomes the CLI's, with kubectl's message.
	out, errOut, code := h.run("exec", "web", "--", "fail", "3")
	if out != "" || errOut != "failing\ncommand terminated with exit code 3\n" || code != 3 {
		t.Fatalf("failing command: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// ds/NAME runs in the DaemonSet's pod that logs would read.
	fake.put(objs(seedDaemonSet())[0])
	fake.put(objs(seedPod("nginx-daemonset-aaaaa", "node1", "10.42.1.2"))[0])
	if out, errOut, code := h.run("exec", "ds/nginx-daemonset", "--", "upper"); code != 0 || out != "" || errOut != "" {
		t.Fatalf("exec ds/: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	want = &corralpb.ExecStart{Namespace: "default", Pod: "nginx-daemonset-aaaaa", Command: []string{"upper"}}
	if !proto.Equal(ef.last(), want) {
		t.Fatalf("exec ds/: start %v, want %v", ef.last(), want)
	}
}

func TestExecTTY(t *testing.T) {
	fake := newFakeCluster()
	ef := &execFake{}
	fake.exec = ef.serve
	h := newHarness(t, fake)
	// -t needs -i: dropped silently without it.
	_, errOut, code := h.run("exec", "-t", "web", "--", "upper")
	if code != 0 || errOut != "" || ef.last().GetTty() {
		t.Fatalf("-t without -i: exit %d, stderr %q, start %v", code, errOut, ef.last())
	}
	// -it with input that is not a terminal: kubectl's warning, no TTY.
	h.stdin = "x"
	out, errOut, code := h.run("exec", "-it", "web", "--", "upper")
	if code != 0 || out != "X" || errOut != "Unable to use a TTY - input is not a terminal or the right kind of file\n" || ef.last().GetTty() {
		t.Fatalf("-it from a pipe: exit %d, stdout %q, stderr %q, start %v", code, out, errOut, ef.last())
	}
}

func TestExecErrors(t *testing.T) {
	fake := newFakeCluster()
	ef := &execFake{}
	fake.exec = ef.serve
	h := newHarness(t, fake)
	cases := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"exec"}, "error: pod, type/name or --filename must be specified\n"},
		{[]string{"exec", "web"}, "error: you must specify at least one command for the container\n"},
		{[]string{"exec", "web", "--"}, "error: you must specify at least one command for the container\n"},
		{[]string{"exec", "web", "date"}, "error: exec [POD] [COMMAND] is not supported anymore. Use exec [POD] -- [COMMAND] instead\n"},
		{[]string{"exec", "node/web", "--", "date"}, "error: cannot exec into node/web: only pods are supported\n"},
		{[]string{"exec", "ds/web", "--", "date"}, `Error from server (NotFound): daemonsets.apps "web" not found` + "\n"},
		{[]string{"exec", "web", "--", "unbound"}, "Error from server (BadRequest): pod web does not have a host assigned\n"},
		{[]string{"exec", "web", "--", "nopod"}, "Error from server (NotFound): pods \"web\" not found\n"},
	}
	for _, c := range cases {
		_, errOut, code := h.run(c.args...)
		if code != 1 || !strings.HasPrefix(errOut, c.wantErr) {
			t.Errorf("%v: exit %d, stderr %q; want %q", c.args, code, errOut, c.wantErr)
		}
	}
}
