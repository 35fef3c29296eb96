package runtime

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/cgroups"

	"github.com/corral-dev/corral/internal/roottest"
)

// TestMain doubles as libcontainer's bootstrap: libcontainer starts every container by
// re-executing /proc/self/exe (this test binary) as "init".
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "init" {
		Init()
	}
	code := m.Run()
	if binaries.dir != "" {
		os.RemoveAll(binaries.dir)
	}
	os.Exit(code)
}

// binaries are built once per test run: the static test image program and the
// corral-style static init.
var binaries struct {
	once        sync.Once
	dir         string
	probe, init string
	err         error
}

func testBinaries(t *testing.T) (probe, init string) {
	t.Helper()
	binaries.once.Do(func() {
		dir, err := os.MkdirTemp("", "corral-runtime-test-")
		if err != nil {
			binaries.err = err
			return
		}
		binaries.dir = dir
		binaries.probe = filepath.Join(dir, "probe")
		binaries.init = filepath.Join(dir, "corral-init")
		binaries.err = errors.Join(
			goBuild([]string{"CGO_ENABLED=0"}, binaries.probe, "./testdata/probe"),
			goBuild([]string{"CGO_ENABLED=1"}, binaries.init, "./testdata/corralinit",
				"-tags", "netgo osusergo", "-ldflags", `-s -w -linkmode external -extldflags "-static"`),
		)
	})
	if binaries.err != nil {
		t.Fatalf("build test binaries: %v", binaries.err)
	}
	return binaries.probe, binaries.init
}

func goBuild(env []string, out, pkg string, flags ...string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
	}
	args := append([]string{"build", "-o", out}, flags...)
	cmd := exec.Command(goBin, append(args, pkg)...)
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}

// testEnv is one test's runtime: its own state and pods directories, its own cgroup
// parent, a test image root filesystem; everything is removed in t.Cleanup.
type testEnv struct {
	t      *testing.T
	rt     *Runtime
	cfg    Config
	rootfs string
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	roottest.Require(t, "real containers")
	probe, initBin := testBinaries(t)
	base := t.TempDir()
	cfg := Config{
		StateDir:     filepath.Join(base, "state"),
		PodsDir:      filepath.Join(base, "pods"),
		CgroupParent: "/corral-test-" + randomHex(4),
		InitBinary:   initBin,
		Logger:       testLogger(),
	}
	rt, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := &testEnv{t: t, rt: rt, cfg: cfg, rootfs: filepath.Join(base, "rootfs")}
	t.Cleanup(e.cleanup)
	for _, d := range []string{"bin", "proc", "dev", "sys", "etc", "tmp"} {
		if err := os.MkdirAll(filepath.Join(e.rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(e.rootfs, "tmp"), 0o1777)
	if err := copyFile(probe, filepath.Join(e.rootfs, "bin", "probe")); err != nil {
		t.Fatal(err)
	}
	return e
}

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// cleanup removes every container and sandbox of the env and its cgroup parent, even
// after a failure.
func (e *testEnv) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if list, err := e.rt.ListContainers(ctx); err == nil {
		for _, c := range list {
			if err := e.rt.RemoveContainer(ctx, c.ID); err != nil {
				e.t.Errorf("cleanup: %v", err)
			}
		}
	}
	if list, err := e.rt.ListSandboxes(ctx); err == nil {
		for _, sb := range list {
			if err := e.rt.RemoveSandbox(ctx, sb.PodUID); err != nil {
				e.t.Errorf("cleanup: %v", err)
			}
		}
	}
	mounts, _ := cgroupMounts()
	for _, m := range mounts {
		if err := cgroups.RemovePath(filepath.Join(m, e.cfg.CgroupParent)); err != nil {
			e.t.Errorf("cleanup: %v", err)
		}
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// sandbox makes a sandbox for a new pod with a unique UID.
func (e *testEnv) sandbox(cfg SandboxConfig) *Sandbox {
	e.t.Helper()
	if cfg.PodUID == "" {
		cfg.PodUID = "pod-" + randomHex(6)
	}
	if cfg.Name == "" {
		cfg.Name = "web"
	}
	sb, err := e.rt.EnsureSandbox(context.Background(), cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return sb
}

// container creates a container running the probe with args; mod adjusts its config.
func (e *testEnv) container(sb *Sandbox, name string, args []string, mod func(*ContainerConfig)) string {
	e.t.Helper()
	c := &ContainerConfig{
		PodUID: sb.PodUID, Name: name, Image: "probe:test", ImageID: "sha256:test", RootFS: e.rootfs,
		Args: append([]string{"/bin/probe"}, args...),
	}
	if mod != nil {
		mod(c)
	}
	id, err := e.rt.CreateContainer(context.Background(), sb, c)
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

// run creates and starts a container.
func (e *testEnv) run(sb *Sandbox, name string, args []string, mod func(*ContainerConfig)) string {
	e.t.Helper()
	id := e.container(sb, name, args, mod)
	if err := e.rt.StartContainer(context.Background(), id); err != nil {
		e.t.Fatal(err)
	}
	return id
}

// exec runs the probe in container id and returns its stdout and exit code.
func (e *testEnv) exec(id string, args ...string) (string, int) {
	e.t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code, err := e.rt.Exec(ctx, id, append([]string{"/bin/probe"}, args...), nil, &out, &errOut, false)
	if err != nil {
		e.t.Fatalf("exec %v: %v", args, err)
	}
	if code != 0 {
		e.t.Logf("exec %v: exit %d: %s", args, code, strings.TrimSpace(errOut.String()))
	}
	return out.String(), code
}

// mustExec is exec that fails the test unless the probe succeeds.
func (e *testEnv) mustExec(id string, args ...string) string {
	e.t.Helper()
	out, code := e.exec(id, args...)
	if code != 0 {
		e.t.Fatalf("exec %v: exit code %d", args, code)
	}
	return out
}

// waitState waits until container id is in state, or fails the test.
func (e *testEnv) waitState(rt *Runtime, id, state string, timeout time.Duration) *ContainerStatus {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st, err := rt.ContainerStatus(context.Background(), id)
		if err != nil {
			e.t.Fatal(err)
		}
		if st.State == state {
			return st
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("container %s is %s after %v, want %s (%+v)", id, st.State, timeout, state, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func netInterfaceNames() ([]string, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, i := range ifs {
		names = append(names, i.Name)
	}
	return names, nil
}
