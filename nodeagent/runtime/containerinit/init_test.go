package containerinit

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/corral-dev/corral/internal/roottest"
)

// The init is tested as it runs in production: a static binary that
// blank-imports the package, run as "BIN container-init ... -- CMD" with
// fd 3 a directory. It needs no root: on the host it is not PID 1 and
// becomes a child subreaper instead.
var (
	initBin     string // built with the static flags of RUNTIME-NOTES
	initBinProc string // the same, reading /proc/self/cmdline for argv
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "containerinit-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil { // TestUnreachableDir runs it as nobody
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	initBin = filepath.Join(tmp, "init")
	initBinProc = filepath.Join(tmp, "init-proc")
	if err := buildInit(initBin, ""); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := buildInit(initBinProc, "-DCONTAINERINIT_PROC_CMDLINE"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// buildInit builds testdata/initbin static, as the Makefile builds corral.
func buildInit(out, cflags string) error {
	cmd := exec.Command("go", "build", "-o", out, "-tags", "netgo osusergo",
		"-ldflags", `-s -w -linkmode external -extldflags "-static"`, "./testdata/initbin")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if cflags != "" {
		cmd.Env = append(cmd.Env, "CGO_CFLAGS=-O2 -g "+cflags)
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build static init: %v\n%s", err, b)
	}
	f, err := elf.Open(out)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			return fmt.Errorf("%s is not static: it has %v", out, p.Type)
		}
	}
	return nil
}

// initRun is one run of the init in a temporary directory.
type initRun struct {
	dir    string
	cmd    *exec.Cmd
	stdout bytes.Buffer // the init's own; read only after wait
	stderr bytes.Buffer
	done   chan struct{}
	err    error // of cmd.Wait, once done is closed
}

func startInit(t *testing.T, bin string, args ...string) *initRun {
	t.Helper()
	return startInitWith(t, nil, bin, args...)
}

// startInitWith is startInit with a hook to adjust the command (and its
// directory) before it starts.
func startInitWith(t *testing.T, setup func(*initRun), bin string, args ...string) *initRun {
	t.Helper()
	r := &initRun{dir: t.TempDir(), done: make(chan struct{})}
	fd, err := syscall.Open(r.dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	d := os.NewFile(uintptr(fd), r.dir)
	defer d.Close()
	r.cmd = exec.Command(bin, append([]string{"container-init"}, args...)...)
	r.cmd.Dir = r.dir
	r.cmd.Env = append(os.Environ(), "CORRAL_TEST=yes")
	r.cmd.ExtraFiles = []*os.File{d}
	r.cmd.Stdout, r.cmd.Stderr = &r.stdout, &r.stderr
	r.cmd.WaitDelay = 5 * time.Second
	if setup != nil {
		setup(r)
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.err = r.cmd.Wait(); close(r.done) }()
	t.Cleanup(func() {
		select {
		case <-r.done:
		default:
			killTree(r.cmd.Process.Pid)
			<-r.done
		}
	})
	return r
}

// wait returns the init's exit code once it has exited.
func (r *initRun) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("init still running after 20s; stderr: %s", r.stderr.String())
	}
	var ee *exec.ExitError
	if r.err != nil && !errors.As(r.err, &ee) {
		t.Fatalf("wait: %v", r.err)
	}
	if !r.cmd.ProcessState.Exited() {
		t.Fatalf("init did not exit normally: %v", r.cmd.ProcessState)
	}
	return r.cmd.ProcessState.ExitCode()
}

func (r *initRun) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := r.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

func (r *initRun) exit(t *testing.T) *Exit {
	t.Helper()
	e, err := ReadExit(r.dir)
	if err != nil {
		t.Fatalf("%v; init stderr: %s", err, r.stderr.String())
	}
	return e
}

// log returns the entries of container.log.
func (r *initRun) log(t *testing.T, name string) []LogLine {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(r.dir, name))
	if err != nil {
		t.Fatal(err)
	}
	var lines []LogLine
	for l := range bytes.Lines(b) {
		e, err := ParseLogLine(l)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, e)
	}
	return lines
}

// waitLog waits until container.log contains s.
func (r *initRun) waitLog(t *testing.T, s string) {
	t.Helper()
	waitFor(t, "container.log to contain "+strconv.Quote(s), func() bool {
		b, _ := os.ReadFile(filepath.Join(r.dir, LogFile))
		return bytes.Contains(b, []byte(s))
	})
}

// waitFor polls cond until it holds, failing the test after 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// children returns the pids of pid's children.
func children(pid int) []int {
	var pids []int
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		for _, s := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(s); err == nil {
				pids = append(pids, n)
			}
		}
	}
	return pids
}

// killTree SIGKILLs pid and every descendant of it.
func killTree(pid int) {
	for _, c := range children(pid) {
		killTree(c)
	}
	syscall.Kill(pid, syscall.SIGKILL)
}

// procStatus returns a field of /proc/PID/status ("" when gone).
func procStatus(pid int, field string) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ""
	}
	for l := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func messages(lines []LogLine) []string {
	var s []string
	for _, l := range lines {
		tag := "F"
		if l.Partial {
			tag = "P"
		}
		s = append(s, l.Stream+" "+tag+" "+string(l.Message))
	}
	return s
}

func TestExitStatus(t *testing.T) {
	for _, tc := range []struct {
		script     string
		code, sig  int
		wantReason string
	}{
		{"exit 0", 0, 0, ReasonCompleted},
		{"exit 3", 3, 0, ReasonError},
		{"kill -KILL $$", 137, 9, ReasonError},
	} {
		t.Run(tc.script, func(t *testing.T) {
			before := time.Now()
			r := startInit(t, initBin, "--", "sh", "-c", tc.script)
			if code := r.wait(t); code != tc.code {
				t.Fatalf("exit code %d, want %d; stderr: %s", code, tc.code, r.stderr.String())
			}
			e := r.exit(t)
			if e.ExitCode != tc.code || e.Signal != tc.sig || e.Reason != tc.wantReason || e.Message != "" {
				t.Errorf("exit.json = %+v, want code %d signal %d reason %s", e, tc.code, tc.sig, tc.wantReason)
			}
			if e.StartedAt.Before(before.Add(-time.Second)) || e.FinishedAt.Before(e.StartedAt) ||
				e.FinishedAt.After(time.Now()) {
				t.Errorf("times: started %v finished %v (test began %v)", e.StartedAt, e.FinishedAt, before)
			}
			if _, err := os.Stat(filepath.Join(r.dir, ExitFile+".tmp")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("temporary exit file left behind: %v", err)
			}
		})
	}
}

func TestStartError(t *testing.T) {
	tmp := t.TempDir()
	noExec, notProgram := filepath.Join(tmp, "corral-test-noexec"), filepath.Join(tmp, "corral-test-text")
	if err := os.WriteFile(noExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(notProgram, []byte("echo no shebang\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		args    []string
		code    int
		message string
	}{
		{"not found", []string{"--", "no-such-command-xyz"}, 127,
			`exec: "no-such-command-xyz": executable file not found in $PATH`},
		{"no such path", []string{"--", "/no/such/file"}, 127,
			`exec: "/no/such/file": no such file or directory`},
		{"not executable", []string{"--", noExec}, 126,
			`exec: "` + noExec + `": permission denied`},
		{"not executable in PATH", []string{"--", "corral-test-noexec"}, 126,
			`exec: "corral-test-noexec": permission denied`},
		{"not a program", []string{"--", notProgram}, 126,
			`exec: "` + notProgram + `": exec format error`},
		{"bad arguments", []string{"--log-max-size", "x", "--", "true"}, 128,
			"container-init: usage: container-init [--log-max-size BYTES] [--log-max-files N] [--no-log-capture] -- CMD [ARGS...]"},
		{"no command", []string{"--"}, 128,
			"container-init: usage: container-init [--log-max-size BYTES] [--log-max-files N] [--no-log-capture] -- CMD [ARGS...]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("PATH", os.Getenv("PATH")+":"+tmp)
			r := startInit(t, initBin, tc.args...)
			if code := r.wait(t); code != tc.code {
				t.Fatalf("exit code %d, want %d", code, tc.code)
			}
			e := r.exit(t)
			if e.ExitCode != tc.code || e.Reason != ReasonStartError || e.Message != tc.message {
				t.Errorf("exit.json = %+v\nwant code %d, StartError, message %s", e, tc.code, tc.message)
			}
		})
	}
}

func TestSignalsForwarded(t *testing.T) {
	const script = `sleep 1000 >/dev/null 2>&1 & pid=$!
trap 'echo got-usr1' USR1
trap 'echo got-hup' HUP
trap 'kill $pid; exit 7' TERM
echo ready
while :; do wait $pid; done`
	r := startInit(t, initBin, "--", "sh", "-c", script)
	r.waitLog(t, "ready")
	r.signal(t, syscall.SIGUSR1)
	r.waitLog(t, "got-usr1")
	r.signal(t, syscall.SIGHUP)
	r.waitLog(t, "got-hup")
	r.signal(t, syscall.SIGTERM)
	if code := r.wait(t); code != 7 {
		t.Fatalf("exit code %d, want 7", code)
	}
	if e := r.exit(t); e.ExitCode != 7 || e.Signal != 0 || e.Reason != ReasonError {
		t.Errorf("exit.json = %+v", e)
	}
}

func TestSignalKillsChild(t *testing.T) {
	r := startInit(t, initBin, "--", "sh", "-c", "echo ready; exec sleep 1000")
	r.waitLog(t, "ready")
	r.signal(t, syscall.SIGTERM)
	if code := r.wait(t); code != 128+15 {
		t.Fatalf("exit code %d, want 143", code)
	}
	if e := r.exit(t); e.ExitCode != 143 || e.Signal != 15 {
		t.Errorf("exit.json = %+v", e)
	}
}

// TestZombiesReaped orphans grandchildren: they are reparented to the
// init (a subreaper here, PID 1 in a container), which must reap them.
func TestZombiesReaped(t *testing.T) {
	const script = `sh -c 'for i in 1 2 3; do sleep 1 </dev/null >/dev/null 2>&1 & echo orphan $!; done'
echo ready
exec sleep 1000`
	r := startInit(t, initBin, "--", "sh", "-c", script)
	r.waitLog(t, "ready")
	initPid := r.cmd.Process.Pid
	var orphans []int
	for _, l := range r.log(t, LogFile) {
		if s, ok := strings.CutPrefix(string(l.Message), "orphan "); ok {
			pid, _ := strconv.Atoi(s)
			orphans = append(orphans, pid)
		}
	}
	if len(orphans) != 3 {
		t.Fatalf("orphans %v", orphans)
	}
	for _, pid := range orphans {
		if pp := procStatus(pid, "PPid"); pp != strconv.Itoa(initPid) {
			t.Errorf("orphan %d has parent %s, want the init %d", pid, pp, initPid)
		}
	}
	waitFor(t, "orphans to be reaped", func() bool {
		for _, pid := range orphans {
			if procStatus(pid, "State") != "" { // a zombie still has one
				return false
			}
		}
		return true
	})
	for _, c := range children(initPid) {
		if st := procStatus(c, "State"); strings.HasPrefix(st, "Z") {
			t.Errorf("zombie child %d of the init", c)
		}
	}
	r.signal(t, syscall.SIGTERM)
	if code := r.wait(t); code != 143 {
		t.Fatalf("exit code %d, want 143", code)
	}
}

func TestLogLines(t *testing.T) {
	// Each write waits until the previous one is in the log, so the order
	// across the two pipes is defined.
	const script = `echo out1
until grep -q out1 container.log; do sleep 0.01; done
echo err1 >&2
until grep -q err1 container.log; do sleep 0.01; done
echo; echo "out2  with  spaces"
printf 'no newline'`
	before := time.Now()
	r := startInit(t, initBin, "--", "sh", "-c", script)
	if code := r.wait(t); code != 0 {
		t.Fatalf("exit code %d; stderr %s", code, r.stderr.String())
	}
	lines := r.log(t, LogFile)
	want := []string{"stdout F out1", "stderr F err1", "stdout F ", "stdout F out2  with  spaces", "stdout F no newline"}
	if got := messages(lines); !slices.Equal(got, want) {
		t.Fatalf("log:\n%q\nwant\n%q", got, want)
	}
	prev := before.Add(-time.Second)
	for _, l := range lines {
		if l.Time.Before(prev) || l.Time.After(time.Now()) || l.Time.Location() != time.UTC {
			t.Errorf("timestamp %v out of order or not UTC", l.Time)
		}
		prev = l.Time
	}
	b, _ := os.ReadFile(filepath.Join(r.dir, LogFile))
	if ts := strings.Fields(string(b))[0]; len(ts) != len("2006-01-02T15:04:05.000000000Z") {
		t.Errorf("timestamp %q is not fixed-width RFC 3339 with nanoseconds", ts)
	}
	if fi, err := os.Stat(filepath.Join(r.dir, LogFile)); err != nil || fi.Mode().Perm() != 0o640&^currentUmask() {
		t.Errorf("log file mode: %v %v", fi.Mode(), err)
	}
}

func currentUmask() os.FileMode {
	m := syscall.Umask(0)
	syscall.Umask(m)
	return os.FileMode(m)
}

func TestLongLines(t *testing.T) {
	const script = `head -c 40960 /dev/zero | tr '\0' a; echo
head -c 16384 /dev/zero | tr '\0' b; echo
head -c 16385 /dev/zero | tr '\0' c >&2`
	r := startInit(t, initBin, "--", "sh", "-c", script)
	if code := r.wait(t); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	var got []string
	for _, l := range r.log(t, LogFile) {
		got = append(got, fmt.Sprintf("%s %v %c%d", l.Stream, l.Partial, l.Message[0], len(l.Message)))
	}
	want := []string{
		"stdout true a16384", "stdout true a16384", "stdout false a8192",
		"stdout false b16384",
		"stderr true c16384", "stderr false c1",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("entries %q, want %q", got, want)
	}
	var out bytes.Buffer
	if err := ReadLogs(context.Background(), r.dir, ReadOptions{Tail: 2}, &out); err != nil {
		t.Fatal(err)
	}
	if want := strings.Repeat("b", 16384) + "\n" + strings.Repeat("c", 16385) + "\n"; out.String() != want {
		t.Errorf("ReadLogs tail 2: %d bytes, want %d", out.Len(), len(want))
	}
}

func TestRotation(t *testing.T) {
	const script = `i=1; while [ $i -le 300 ]; do echo line$i; i=$((i+1)); done`
	r := startInit(t, initBin, "--log-max-size", "1000", "--log-max-files", "3", "--", "sh", "-c", script)
	if code := r.wait(t); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	names, _ := filepath.Glob(filepath.Join(r.dir, LogFile+"*"))
	for i := range names {
		names[i] = filepath.Base(names[i])
	}
	if want := []string{LogFile, LogFile + ".1", LogFile + ".2"}; !slices.Equal(names, want) {
		t.Fatalf("log files %q, want %q", names, want)
	}
	var all []LogLine
	for _, name := range []string{LogFile + ".2", LogFile + ".1", LogFile} {
		if fi, _ := os.Stat(filepath.Join(r.dir, name)); fi.Size() > 1000 {
			t.Errorf("%s has %d bytes, more than the 1000 allowed", name, fi.Size())
		}
		all = append(all, r.log(t, name)...)
	}
	first, _ := strconv.Atoi(strings.TrimPrefix(string(all[0].Message), "line"))
	for i, l := range all {
		if want := fmt.Sprintf("line%d", first+i); string(l.Message) != want {
			t.Fatalf("entry %d is %q, want %q", i, l.Message, want)
		}
	}
	if last := string(all[len(all)-1].Message); last != "line300" {
		t.Fatalf("last line %q", last)
	}

	// kubectl logs --tail, counted across the rotated files.
	current := len(r.log(t, LogFile))
	var out bytes.Buffer
	if err := ReadLogs(context.Background(), r.dir, ReadOptions{Tail: current + 2}, &out); err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for i := 300 - current - 1; i <= 300; i++ {
		fmt.Fprintf(&want, "line%d\n", i)
	}
	if out.String() != want.String() {
		t.Errorf("tail %d:\n%s\nwant\n%s", current+2, out.String(), want.String())
	}

	// --since and --timestamps: from an entry of container.log.1 on.
	from := r.log(t, LogFile+".1")[3]
	out.Reset()
	if err := ReadLogs(context.Background(), r.dir, ReadOptions{Tail: -1, Since: from.Time, Timestamps: true}, &out); err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	wantFirst := from.Time.Format(time.RFC3339Nano) + " " + string(from.Message)
	if got[0] != wantFirst || !strings.HasSuffix(got[len(got)-1], " line300") {
		t.Errorf("since %v: first %q (want %q), last %q", from.Time, got[0], wantFirst, got[len(got)-1])
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestFollowAcrossRotations(t *testing.T) {
	// Batch 2 rotates container.log twice while the follower waits.
	const script = `n=0
batch() { i=0; while [ $i -lt $1 ]; do n=$((n+1)); echo line$n; i=$((i+1)); done; }
batch 5; until [ -e go1 ]; do sleep 0.01; done
batch 20; until [ -e go2 ]; do sleep 0.01; done
batch 3`
	r := startInit(t, initBin, "--log-max-size", "500", "--log-max-files", "5", "--", "sh", "-c", script)
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- ReadLogs(context.Background(), r.dir, ReadOptions{Tail: -1, Follow: true}, &out) }()
	lines := func(n int) string {
		var b strings.Builder
		for i := 1; i <= n; i++ {
			fmt.Fprintf(&b, "line%d\n", i)
		}
		return b.String()
	}
	waitFor(t, "batch 1", func() bool { return out.String() == lines(5) })
	os.WriteFile(filepath.Join(r.dir, "go1"), nil, 0o644)
	waitFor(t, "batch 2", func() bool { return out.String() == lines(25) })
	if _, err := os.Stat(filepath.Join(r.dir, LogFile+".2")); err != nil {
		t.Errorf("batch 2 did not rotate twice: %v", err)
	}
	os.WriteFile(filepath.Join(r.dir, "go2"), nil, 0o644)
	if code := r.wait(t); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ReadLogs still following after exit.json appeared")
	}
	if out.String() != lines(28) {
		t.Errorf("followed:\n%s\nwant\n%s", out.String(), lines(28))
	}
}

func TestFollowEndsWithContext(t *testing.T) {
	r := startInit(t, initBin, "--", "sh", "-c", "echo one; exec sleep 1000")
	r.waitLog(t, "one")
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- ReadLogs(ctx, r.dir, ReadOptions{Tail: -1, Follow: true}, &out) }()
	waitFor(t, "the first line", func() bool { return out.String() == "one\n" })
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("ReadLogs = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ReadLogs did not end with its context")
	}
}

// TestDrainBounded: a grandchild that keeps the pipes open delays the end
// by 2 seconds at most.
func TestDrainBounded(t *testing.T) {
	r := startInit(t, initBin, "--", "sh", "-c", "sleep 1000 & echo bg $!")
	r.waitLog(t, "bg ")
	msg := string(r.log(t, LogFile)[0].Message)
	bg, _ := strconv.Atoi(strings.TrimPrefix(msg, "bg "))
	t.Cleanup(func() { syscall.Kill(bg, syscall.SIGKILL) })
	if code := r.wait(t); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	exited := time.Now()
	e := r.exit(t)
	if d := exited.Sub(e.FinishedAt); d < 1500*time.Millisecond || d > 8*time.Second {
		t.Errorf("init exited %v after the child, want about 2s", d)
	}
}

func TestNoLogCapture(t *testing.T) {
	r := startInit(t, initBin, "--no-log-capture", "--", "sh", "-c", "echo to-stdout; echo to-stderr >&2")
	if code := r.wait(t); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if r.stdout.String() != "to-stdout\n" || r.stderr.String() != "to-stderr\n" {
		t.Errorf("stdout %q stderr %q", r.stdout.String(), r.stderr.String())
	}
	if _, err := os.Stat(filepath.Join(r.dir, LogFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("container.log written without capture: %v", err)
	}
	if e := r.exit(t); e.Reason != ReasonCompleted {
		t.Errorf("exit.json = %+v", e)
	}
}

// TestProcCmdline runs the build that reads its arguments from
// /proc/self/cmdline, as it must with C libraries other than glibc.
func TestProcCmdline(t *testing.T) {
	r := startInit(t, initBinProc, "--log-max-files", "2", "--", "sh", "-c", `echo "$0 $1"; exit 5`, "a b", "c")
	if code := r.wait(t); code != 5 {
		t.Fatalf("exit code %d; stderr %s", code, r.stderr.String())
	}
	if got := messages(r.log(t, LogFile)); !slices.Equal(got, []string{"stdout F a b c"}) {
		t.Errorf("log %q", got)
	}
}

// TestChildEnvironment checks what the command gets: the environment,
// stdio pipes, no other descriptor (fd 3 least of all), default signals.
// It also logs the init's memory while it waits.
func TestChildEnvironment(t *testing.T) {
	r := startInit(t, initBin, "--", "sh", "-c", `echo "env $CORRAL_TEST"; exec sleep 1000`)
	r.waitLog(t, "env yes")
	var child int
	waitFor(t, "the child to exec sleep", func() bool {
		c := children(r.cmd.Process.Pid)
		if len(c) == 1 && procStatus(c[0], "Name") == "sleep" {
			child = c[0]
			return true
		}
		return false
	})
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", child))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, fd := range fds {
		target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", child, fd.Name()))
		names = append(names, fd.Name()+"="+strings.Split(target, ":")[0])
	}
	if want := []string{"0=/dev/null", "1=pipe", "2=pipe"}; !slices.Equal(names, want) {
		t.Errorf("child descriptors %q, want %q", names, want)
	}
	for _, f := range []string{"SigBlk", "SigIgn"} {
		if v := procStatus(child, f); strings.Trim(v, "0") != "" {
			t.Errorf("child %s = %s, want none", f, v)
		}
	}
	if pgid, _ := syscall.Getpgid(child); pgid != child {
		t.Errorf("child process group %d, want its own (%d)", pgid, child)
	}
	init := r.cmd.Process.Pid
	t.Logf("init memory while waiting: VmRSS %s (RssAnon %s, RssFile %s)",
		procStatus(init, "VmRSS"), procStatus(init, "RssAnon"), procStatus(init, "RssFile"))
	r.signal(t, syscall.SIGTERM)
	r.wait(t)
}

// TestUnreachableDir: the init's directory is outside the container's root,
// so a process of the container (same uid, no CAP_SYS_PTRACE) must not be
// able to open it through /proc/<init>/fd/3. Needs root to become nobody.
func TestUnreachableDir(t *testing.T) {
	roottest.Require(t, "to run the init as another user")
	const script = `for p in /proc/$PPID/fd/3/. /proc/$PPID/cwd/. /proc/$PPID/root/.; do
	if ls $p >/dev/null 2>&1; then echo "reachable $p"; else echo "unreachable $p"; fi
done; id -u`
	r := startInitWith(t, func(r *initRun) {
		if err := os.Chown(r.dir, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		r.cmd.Dir = "/"
		r.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	}, initBin, "--", "sh", "-c", script)
	if code := r.wait(t); code != 0 {
		t.Fatalf("exit code %d; stderr %s", code, r.stderr.String())
	}
	var got []string
	for _, l := range r.log(t, LogFile) {
		got = append(got, string(l.Message))
	}
	want := []string{"unreachable /proc/$/fd/3/.", "unreachable /proc/$/cwd/.", "unreachable /proc/$/root/.", "65534"}
	for i := range got {
		got[i] = strings.Replace(got[i], "/proc/"+strconv.Itoa(r.cmd.Process.Pid)+"/", "/proc/$/", 1)
	}
	if !slices.Equal(got, want) {
		t.Errorf("from the container: %q, want %q", got, want)
	}
}
