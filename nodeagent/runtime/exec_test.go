package runtime

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	goruntime "runtime"
	"strings"
	"testing"
	"time"
)

func lockThread() { goruntime.LockOSThread() }

func TestExec(t *testing.T) {
	e := newTestEnv(t)
	sb := e.sandbox(SandboxConfig{Name: "exec-pod"})
	id := e.run(sb, "app", []string{"sleep"}, func(c *ContainerConfig) { c.Env = []string{"GREETING=hi"} })
	ctx := context.Background()

	var out, errOut bytes.Buffer
	code, err := e.rt.Exec(ctx, id, []string{"/bin/probe", "cat", "/dev/stdin"}, strings.NewReader("from stdin"), &out, &errOut, false)
	if err != nil || code != 0 || out.String() != "from stdin" {
		t.Errorf("exec with stdin: %d %v %q %q", code, err, out.String(), errOut.String())
	}
	if env := e.mustExec(id, "env"); !strings.Contains(env, "GREETING=hi\n") || !strings.Contains(env, "HOSTNAME=exec-pod\n") {
		t.Errorf("exec env = %q, want the container's", env)
	}
	if _, code := e.exec(id, "exit", "5"); code != 5 {
		t.Errorf("exec exit code = %d, want 5", code)
	}

	out.Reset()
	code, err = e.rt.Exec(ctx, id, []string{"/bin/probe", "hostname"}, nil, &out, nil, true)
	if err != nil || code != 0 || out.String() != "exec-pod\r\n" {
		t.Errorf("exec with a tty: %d %v %q", code, err, out.String())
	}

	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	code, err = e.rt.Exec(cctx, id, []string{"/bin/probe", "sleep"}, nil, nil, nil, false)
	if !errors.Is(err, context.DeadlineExceeded) || code != 137 || time.Since(start) > 5*time.Second {
		t.Errorf("cancelled exec: %d %v after %v", code, err, time.Since(start))
	}

	if _, err := e.rt.Exec(ctx, id, nil, nil, nil, nil, false); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty command: %v", err)
	}
	if err := e.rt.StopContainer(ctx, id, time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := e.rt.Exec(ctx, id, []string{"/bin/probe", "hostname"}, nil, nil, nil, false); err == nil {
		t.Error("exec in a stopped container succeeded")
	}
}

func TestRemovalLeavesNothing(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	sb := e.sandbox(SandboxConfig{})
	running := e.run(sb, "running", []string{"sleep"}, func(c *ContainerConfig) {
		c.Mounts = []Mount{{Source: t.TempDir(), Destination: "/data"}, {Destination: "/scratch", Type: "tmpfs"}}
	})
	exited := e.run(sb, "exited", []string{"exit", "0"}, nil)
	created := e.container(sb, "created", []string{"sleep"}, nil)
	e.waitState(e.rt, exited, StateExited, 10*time.Second)
	for _, id := range []string{running, exited, created} { // RemoveContainer kills what runs
		if err := e.rt.RemoveContainer(ctx, id); err != nil {
			t.Fatal(err)
		}
		if err := e.rt.RemoveContainer(ctx, id); err != nil {
			t.Errorf("second remove: %v", err)
		}
	}
	if err := e.rt.RemoveSandbox(ctx, sb.PodUID); err != nil {
		t.Fatal(err)
	}
	checkNoTrace(t, e, sb.PodUID, sb)
	if list, err := e.rt.ListContainers(ctx); err != nil || len(list) != 0 {
		t.Errorf("containers left: %+v %v", list, err)
	}
}

// TestLifecycleTimings measures create, start, stop and remove of a container whose
// command exits on SIGTERM, and the whole cycle (reported with -v).
func TestLifecycleTimings(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	sb := e.sandbox(SandboxConfig{})
	const n = 10
	var create, start, stop, remove time.Duration
	for i := 0; i < n; i++ {
		t0 := time.Now()
		id := e.container(sb, "timed", []string{"sleep"}, func(c *ContainerConfig) { c.Attempt = i })
		t1 := time.Now()
		if err := e.rt.StartContainer(ctx, id); err != nil {
			t.Fatal(err)
		}
		t2 := time.Now()
		if err := e.rt.StopContainer(ctx, id, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		t3 := time.Now()
		// Stopped right after start, the command still gets SIGTERM (not lost while
		// the init starts up) and ends by it.
		if st, err := e.rt.ContainerStatus(ctx, id); err != nil || st.ExitCode != 143 {
			t.Errorf("attempt %d: stopped at once: %+v %v, want exit code 143", i, st, err)
		}
		if err := e.rt.RemoveContainer(ctx, id); err != nil {
			t.Fatal(err)
		}
		t4 := time.Now()
		create, start, stop, remove = create+t1.Sub(t0), start+t2.Sub(t1), stop+t3.Sub(t2), remove+t4.Sub(t3)
	}
	t.Logf("mean of %d: create %v, start %v, stop (SIGTERM) %v, remove %v; create+start+stop %v",
		n, create/n, start/n, stop/n, remove/n, (create+start+stop)/n)
}

func TestCreateFailureLeavesNothing(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	sb := e.sandbox(SandboxConfig{})
	_, err := e.rt.CreateContainer(ctx, sb, &ContainerConfig{
		PodUID: sb.PodUID, Name: "broken", RootFS: filepath.Join(t.TempDir(), "no-such-rootfs"), Args: []string{"/bin/probe"},
	})
	if err == nil {
		t.Fatal("create with a missing rootfs succeeded")
	}
	if list, err := e.rt.ListContainers(ctx); err != nil || len(list) != 0 {
		t.Errorf("containers after a failed create: %+v %v", list, err)
	}
	if err := e.rt.RemoveSandbox(ctx, sb.PodUID); err != nil {
		t.Fatal(err)
	}
	checkNoTrace(t, e, sb.PodUID, sb)
}

func TestVersion(t *testing.T) {
	gomod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	pinned := regexp.MustCompile(`(?m)^\s*github\.com/opencontainers/runc v` + regexp.QuoteMeta(pinnedRunc) + `(\s|$)`)
	if !pinned.Match(gomod) {
		t.Errorf("go.mod does not pin runc %s: update pinnedRunc", pinnedRunc)
	}
	if v := (&Runtime{}).Version(); v != "corral-runc://"+pinnedRunc {
		t.Errorf("Version() = %q", v)
	}
}
