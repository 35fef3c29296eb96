package framework

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corralpb "github.com/corral-dev/corral/proto"
)

// Processes is a cluster of real `corral server` processes on loopback.
type Processes struct {
	bin     string
	mu      sync.Mutex
	names   []string
	dirs    []string
	apis    []string
	args    [][]string
	procs   []*exec.Cmd
	clients map[int]corralpb.ClusterClient
}

var _ Cluster = (*Processes)(nil)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// Binary returns the corral binary under test: $CORRAL_BIN, else one built
// once per test process from this checkout.
func Binary(t testing.TB) string {
	t.Helper()
	if b := os.Getenv("CORRAL_BIN"); b != "" {
		abs, err := filepath.Abs(b)
		if err != nil {
			t.Fatal(err)
		}
		return abs
	}
	buildOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		dir, err := os.MkdirTemp("", "corral-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "corral")
		// Static, as `make build` makes it: the binary is also every
		// container's init.
		cmd := exec.Command("go", "build", "-tags", "netgo osusergo",
			"-ldflags", "-linkmode external -extldflags -static", "-o", builtBin, "./cmd/corral")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

// NewProcesses starts n `corral server` processes with bootstrap-expect n
// (and extra flags) and waits until admin.conf exists.
func NewProcesses(t testing.TB, n int, extra ...string) *Processes {
	t.Helper()
	c := &Processes{bin: Binary(t), procs: make([]*exec.Cmd, n), clients: map[int]corralpb.ClusterClient{}}
	addrs := freeAddrs(t, 2*n) // one call: the ports are distinct
	api, raft := addrs[:n:n], addrs[n:]
	root := t.TempDir()
	secret := BootstrapSecret()
	for i := 0; i < n; i++ {
		var join []string
		for j, a := range api {
			if j != i {
				join = append(join, a)
			}
		}
		dir := filepath.Join(root, serverName(i))
		c.names = append(c.names, serverName(i))
		c.dirs = append(c.dirs, dir)
		c.apis = append(c.apis, api[i])
		c.args = append(c.args, []string{"server", "--name", serverName(i), "--data-dir", dir,
			"--api-addr", api[i], "--raft-addr", raft[i], "--bootstrap-expect", fmt.Sprint(n),
			"--join", strings.Join(join, ","), "--log-level", "debug", "--no-agent", "--token", secret})
		c.args[i] = append(c.args[i], extra...)
	}
	t.Cleanup(func() {
		for i := range c.procs {
			c.kill(i)
		}
		if t.Failed() {
			c.dumpLogs(t)
		}
	})
	for i := 0; i < n; i++ {
		c.Restart(t, i)
	}
	WaitFor(t, "admin.conf", 30*time.Second, func() bool {
		_, err := os.Stat(c.AdminConf())
		return err == nil
	})
	return c
}

// Size implements Cluster.
func (c *Processes) Size() int { return len(c.names) }

// APIAddr returns server i's API address.
func (c *Processes) APIAddr(i int) string { return c.apis[i] }

// Client implements Cluster.
func (c *Processes) Client(t testing.TB, i int) corralpb.ClusterClient {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.clients[i]; ok {
		return cl
	}
	cl := dial(t, c.APIAddr(i), c.AdminConf())
	c.clients[i] = cl
	return cl
}

// Kill implements Cluster: SIGKILL, no chance to clean up.
func (c *Processes) Kill(t testing.TB, i int) { c.kill(i) }

func (c *Processes) kill(i int) {
	if p := c.take(i); p != nil {
		_ = p.Process.Signal(syscall.SIGKILL)
		_ = p.Wait()
	}
}

// Terminate stops server i with SIGTERM, as systemd stops a service, and
// waits until it has exited (SIGKILL after 30 s).
func (c *Processes) Terminate(t testing.TB, i int) {
	t.Helper()
	p := c.take(i)
	if p == nil {
		return
	}
	if err := p.Process.Signal(syscall.SIGTERM); err != nil {
		t.Errorf("SIGTERM %s: %v", c.names[i], err)
	}
	done := make(chan struct{})
	go func() { _ = p.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = p.Process.Signal(syscall.SIGKILL)
		<-done
		t.Errorf("%s did not exit within 30 s of SIGTERM", c.names[i])
	}
}

// take returns server i's process, if it runs, and forgets it: the
// caller stops it.
func (c *Processes) take(i int) *exec.Cmd {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.procs[i]
	c.procs[i] = nil
	return p
}

// Restart implements Cluster.
func (c *Processes) Restart(t testing.TB, i int) {
	t.Helper()
	if err := os.MkdirAll(c.dirs[i], 0o700); err != nil {
		t.Fatal(err)
	}
	logf, err := os.OpenFile(c.logPath(i), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(c.bin, c.args[i]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		t.Fatalf("start %s: %v", c.names[i], err)
	}
	_ = logf.Close()
	c.mu.Lock()
	c.procs[i] = cmd
	c.mu.Unlock()
}

// Running implements Cluster.
func (c *Processes) Running(i int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.procs[i] != nil
}

// Pid returns server i's process id, or 0.
func (c *Processes) Pid(i int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.procs[i] == nil {
		return 0
	}
	return c.procs[i].Process.Pid
}

// AdminConf implements Cluster: the first server's admin.conf.
func (c *Processes) AdminConf() string { return filepath.Join(c.dirs[0], "admin.conf") }

func (c *Processes) logPath(i int) string { return filepath.Join(c.dirs[i], "server.log") }

func (c *Processes) dumpLogs(t testing.TB) {
	for i := range c.names {
		data, _ := os.ReadFile(c.logPath(i))
		if len(data) > 8000 {
			data = data[len(data)-8000:]
		}
		t.Logf("--- %s log (tail) ---\n%s", c.names[i], bytes.TrimSpace(data))
	}
}
