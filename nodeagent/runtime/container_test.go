package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/sys/capability"

	"github.com/corral-dev/corral/nodeagent/runtime/containerinit"
)

// capMask is the CapEff bit mask of the named capabilities.
func capMask(t *testing.T, names []string) uint64 {
	t.Helper()
	var m uint64
	for _, c := range capability.ListKnown() {
		if slices.Contains(names, "CAP_"+strings.ToUpper(c.String())) {
			m |= 1 << uint(c)
		}
	}
	return m
}

// parseStatus parses "CapEff:\t..." and "NoNewPrivs:\t..." lines printed by probe status.
func parseStatus(t *testing.T, out string) (capEff uint64, noNewPrivs string) {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		k, v, _ := strings.Cut(line, ":")
		v = strings.TrimSpace(v)
		switch k {
		case "CapEff":
			n, err := strconv.ParseUint(v, 16, 64)
			if err != nil {
				t.Fatalf("CapEff %q: %v", v, err)
			}
			capEff = n
		case "NoNewPrivs":
			noNewPrivs = v
		}
	}
	return capEff, noNewPrivs
}

func ownCapEff(t *testing.T) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	c, _ := parseStatus(t, string(b))
	return c
}

// maskedFiles are the masked files this kernel has: /proc/kcore, or others when the
// kernel lacks it (CONFIG_PROC_KCORE).
func maskedFiles(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, p := range []string{"/proc/kcore", "/proc/keys", "/proc/timer_list"} {
		if _, err := os.Stat(p); err == nil {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		t.Fatal("no maskable /proc file on this kernel")
	}
	return out
}

// nofileOf extracts "soft hard\n" of "Max open files" from a /proc/PID/limits.
func nofileOf(t *testing.T, limits string) string {
	t.Helper()
	for _, line := range strings.Split(limits, "\n") {
		if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
			f := strings.Fields(rest)
			return f[0] + " " + f[1] + "\n"
		}
	}
	t.Fatalf("no open files limit in %q", limits)
	return ""
}

// wantNofile is RLIMIT_NOFILE as a container gets it from this agent.
func wantNofile(e *testEnv) string {
	hard := uint64(nofileHard)
	if !e.rt.host.sysResource {
		hard = min(hard, e.rt.host.nofileHard)
	}
	return fmt.Sprintf("%d %d\n", min(uint64(nofileSoft), hard), hard)
}

func TestContainerDefaultIsolation(t *testing.T) {
	e := newTestEnv(t)
	sb := e.sandbox(SandboxConfig{Hostname: "isolated"})
	id := e.run(sb, "app", []string{"sleep"}, nil)

	capEff, nnp := parseStatus(t, e.mustExec(id, "status"))
	if want := capMask(t, defaultCaps); capEff != want || want != 0xa80425fb {
		t.Errorf("CapEff = %x, want %x (containerd's default set)", capEff, want)
	}
	if nnp != "0" {
		t.Errorf("NoNewPrivs = %s, want 0", nnp)
	}
	// The init's limit: a Go program (the probe) raises its own soft limit at start.
	if got := nofileOf(t, e.mustExec(id, "cat", "/proc/1/limits")); got != wantNofile(e) {
		t.Errorf("RLIMIT_NOFILE = %q, want %q", got, wantNofile(e))
	}
	for _, p := range maskedFiles(t) {
		if got := e.mustExec(id, "stat", p); got != "char 1:3\n" {
			t.Errorf("%s is %q, want masked by /dev/null", p, got)
		}
	}
	if _, code := e.exec(id, "write", "/proc/sys/kernel/domainname", "x"); code == 0 {
		t.Error("/proc/sys is writable")
	}
	if _, code := e.exec(id, "mknod", "/tmp/mem-default", "1", "1"); code == 0 {
		t.Error("mknod of /dev/mem (c 1:1) allowed by the device cgroup")
	}
	for _, dev := range []string{"/dev/null", "/dev/zero", "/dev/full", "/dev/urandom", "/dev/tty"} {
		if dev == "/dev/tty" {
			continue // no controlling terminal: open fails whatever the cgroup says
		}
		e.mustExec(id, "open", dev)
	}
	if got := e.mustExec(id, "hostname"); got != "isolated\n" {
		t.Errorf("hostname = %q", got)
	}
	if got := e.mustExec(id, "cat", "/etc/hostname"); got != "isolated\n" {
		t.Errorf("/etc/hostname = %q", got)
	}
	if got := e.mustExec(id, "ifaces"); got != "lo\n" {
		t.Errorf("interfaces = %q, want only lo", got)
	}
	if got := e.mustExec(id, "cat", "/proc/1/cmdline"); !strings.HasPrefix(got, containerinit.InitPath+"\x00container-init\x00") {
		t.Errorf("PID 1 is %q, want the container init", got)
	}
	checkDeviceCgroup(t, e, sb, "app")
}

// checkDeviceCgroup reads the container's devices.list on the host.
func checkDeviceCgroup(t *testing.T, e *testEnv, sb *Sandbox, name string) {
	t.Helper()
	p := filepath.Join("/sys/fs/cgroup/devices", CgroupPath(e.cfg.CgroupParent, sb.PodUID, name, 0), "devices.list")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Fields(strings.ReplaceAll(string(b), "\n", ","))
	slices.Sort(got)
	want := []string{"c", "1:3", "rwm,c", "1:5", "rwm,c", "1:7", "rwm,c", "1:8", "rwm,c", "1:9", "rwm,c",
		"5:0", "rwm,c", "5:1", "rwm,c", "5:2", "rwm,c", "136:*", "rwm,"}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("devices.list = %q", b)
	}
}

func TestContainerPrivileged(t *testing.T) {
	e := newTestEnv(t)
	sb := e.sandbox(SandboxConfig{})
	id := e.run(sb, "priv", []string{"sleep"}, func(c *ContainerConfig) { c.Privileged = true })
	capEff, _ := parseStatus(t, e.mustExec(id, "status"))
	if want := ownCapEff(t); capEff != want {
		t.Errorf("CapEff = %x, want the agent's %x", capEff, want)
	}
	for _, p := range maskedFiles(t) {
		if got := e.mustExec(id, "stat", p); !strings.HasPrefix(got, "file ") {
			t.Errorf("%s is %q, want the real file", p, got)
		}
	}
	e.mustExec(id, "write", "/proc/sys/kernel/domainname", "priv")
	e.mustExec(id, "mknod", "/tmp/mem-priv", "1", "1")
	if got := e.mustExec(id, "stat", "/dev/kmsg"); !strings.HasPrefix(got, "char ") {
		t.Errorf("host device /dev/kmsg = %q", got)
	}
}

func TestContainerCapabilitiesAndNoNewPrivs(t *testing.T) {
	e := newTestEnv(t)
	sb := e.sandbox(SandboxConfig{})
	id := e.run(sb, "caps", []string{"sleep"}, func(c *ContainerConfig) {
		c.CapAdd, c.CapDrop, c.NoNewPrivileges = []string{"NET_ADMIN"}, []string{"CHOWN", "NET_RAW"}, true
		c.User = &User{UID: 0, GID: 0, AdditionalGIDs: []uint32{1234}}
	})
	want := slices.DeleteFunc(append(slices.Clone(defaultCaps), "CAP_NET_ADMIN"), func(c string) bool {
		return c == "CAP_CHOWN" || c == "CAP_NET_RAW"
	})
	capEff, nnp := parseStatus(t, e.mustExec(id, "status"))
	if capEff != capMask(t, want) {
		t.Errorf("CapEff = %x, want %x", capEff, capMask(t, want))
	}
	if nnp != "1" {
		t.Errorf("NoNewPrivs = %s, want 1", nnp)
	}
	if got := e.mustExec(id, "cat", "/proc/self/status"); !strings.Contains(got, "Groups:\t1234") {
		t.Errorf("additional gids missing: %s", got)
	}
}

func TestPodSharesNamespaces(t *testing.T) {
	e := newTestEnv(t)
	sb := e.sandbox(SandboxConfig{Name: "shared-pod"})
	server := e.run(sb, "server", []string{"listen", "127.0.0.1:8080"}, nil)
	client := e.run(sb, "client", []string{"sleep"}, nil)
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, code := e.exec(client, "dial", "127.0.0.1:8080")
		if code == 0 && out == "hello\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the client does not reach the server's loopback listener: %q %d", out, code)
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.mustExec(server, "shmget", "48879")
	if got := e.mustExec(client, "cat", "/proc/sysvipc/shm"); !strings.Contains(got, " 48879 ") {
		t.Errorf("the client's IPC namespace lacks the server's segment:\n%s", got)
	}
	if host, _ := os.ReadFile("/proc/sysvipc/shm"); strings.Contains(string(host), " 48879 ") {
		t.Error("the pod's shm segment is in the host's IPC namespace")
	}
	for _, id := range []string{server, client} {
		if got := e.mustExec(id, "hostname"); got != "shared-pod\n" {
			t.Errorf("hostname in %s = %q", id, got)
		}
	}
	e.mustExec(server, "write", "/dev/shm/token", "shared")
	if got := e.mustExec(client, "cat", "/dev/shm/token"); got != "shared" {
		t.Errorf("/dev/shm not shared: %q", got)
	}
}

func TestHostNamespaces(t *testing.T) {
	e := newTestEnv(t)
	sb := e.sandbox(SandboxConfig{HostNetwork: true, HostPID: true, HostIPC: true})
	id := e.run(sb, "host", []string{"sleep"}, nil)
	ifs, err := netInterfaceNames()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Fields(e.mustExec(id, "ifaces")); !slices.Equal(got, ifs) {
		t.Errorf("interfaces = %v, want the host's %v", got, ifs)
	}
	hostInit, _ := os.ReadFile("/proc/1/cmdline")
	if got := e.mustExec(id, "cat", "/proc/1/cmdline"); got != string(hostInit) {
		t.Errorf("PID 1 = %q, want the host's %q", got, hostInit)
	}
	hostname, _ := os.Hostname()
	if got := e.mustExec(id, "hostname"); got != hostname+"\n" {
		t.Errorf("hostname = %q, want the node's %q", got, hostname)
	}
}

func TestResourcesReadBack(t *testing.T) {
	e := newTestEnv(t)
	sb := e.sandbox(SandboxConfig{})
	id := e.run(sb, "limited", []string{"sleep"}, func(c *ContainerConfig) {
		c.Resources = Resources{MemoryLimit: 64 << 20, CPUQuota: MilliCPUToQuota(500, 0), CPUShares: MilliCPUToShares(250)}
	})
	cg := CgroupPath(e.cfg.CgroupParent, sb.PodUID, "limited", 0)
	for file, want := range map[string]string{
		"memory/memory.limit_in_bytes": "67108864", "cpu/cpu.cfs_quota_us": "50000",
		"cpu/cpu.cfs_period_us": "100000", "cpu/cpu.shares": "256",
	} {
		dir, name := filepath.Split(file)
		b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", dir, cg, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(b)); got != want {
			t.Errorf("%s = %s, want %s", file, got, want)
		}
		// The same file from inside the container (cgroup namespace).
		if got := strings.TrimSpace(e.mustExec(id, "cat", filepath.Join("/sys/fs/cgroup", file))); got != want {
			t.Errorf("inside: %s = %s, want %s", file, got, want)
		}
	}
}

func TestOOMKilled(t *testing.T) {
	e := newTestEnv(t)
	sb := e.sandbox(SandboxConfig{})
	id := e.run(sb, "hog", []string{"alloc", "256"}, func(c *ContainerConfig) { c.Resources.MemoryLimit = 32 << 20 })
	st := e.waitState(e.rt, id, StateExited, 30*time.Second)
	if st.Reason != ReasonOOMKilled || st.ExitCode != 137 {
		t.Errorf("status = %+v, want OOMKilled, 137", st)
	}
	// Recorded: a fresh Runtime reads the same from the metadata.
	rt2, err := New(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if st2, err := rt2.ContainerStatus(context.Background(), id); err != nil || st2.Reason != ReasonOOMKilled {
		t.Errorf("after restart: %+v, %v", st2, err)
	}
}

func TestStopGraceThenKill(t *testing.T) {
	e := newTestEnv(t)
	sb := e.sandbox(SandboxConfig{})
	stubborn := e.run(sb, "stubborn", []string{"trap-term"}, nil)
	polite := e.run(sb, "polite", []string{"sleep"}, nil)
	ctx := context.Background()

	start := time.Now()
	if err := e.rt.StopContainer(ctx, stubborn, time.Second); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < time.Second || d > 5*time.Second {
		t.Errorf("stop of a SIGTERM-ignoring container took %v, want the 1s grace then a kill", d)
	}
	st := e.waitState(e.rt, stubborn, StateExited, time.Second)
	if st.ExitCode != 137 || st.Reason != ReasonError {
		t.Errorf("killed container: %+v, want exit code 137", st)
	}

	start = time.Now()
	if err := e.rt.StopContainer(ctx, polite, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("stop of a SIGTERM-honouring container took %v", d)
	}
	if st := e.waitState(e.rt, polite, StateExited, time.Second); st.ExitCode != 143 {
		t.Errorf("terminated container: %+v, want exit code 143", st)
	}
	if err := e.rt.StopContainer(ctx, polite, time.Second); err != nil {
		t.Errorf("stop of a stopped container: %v", err)
	}
}

func TestExitCodesAndLogs(t *testing.T) {
	e := newTestEnv(t)
	sb := e.sandbox(SandboxConfig{})
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		reason string
	}{
		{"ok", []string{"/bin/probe", "echo", "hello", "world"}, 0, ReasonCompleted},
		{"fail", []string{"/bin/probe", "exit", "3"}, 3, ReasonError},
		{"missing", []string{"/bin/nothing-here"}, 127, ReasonStartError},
		{"path-lookup", []string{"probe", "exit", "0"}, 0, ReasonCompleted},
	} {
		id := e.run(sb, tc.name, nil, func(c *ContainerConfig) { c.Args = tc.args; c.Env = []string{"PATH=/bin"} })
		st := e.waitState(e.rt, id, StateExited, 10*time.Second)
		if st.ExitCode != tc.code || st.Reason != tc.reason {
			t.Errorf("%s: exit %d reason %s (%s), want %d %s", tc.name, st.ExitCode, st.Reason, st.Message, tc.code, tc.reason)
		}
	}
	st, err := e.rt.ContainerStatus(context.Background(), ContainerID(sb.PodUID, "ok", 0))
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	if err := containerinit.ReadLogs(context.Background(), st.LogDir, containerinit.ReadOptions{Tail: -1}, &logs); err != nil {
		t.Fatal(err)
	}
	if logs.String() != "hello\nworld\n" {
		t.Errorf("logs = %q", logs.String())
	}
	if st.Image != "probe:test" || st.ImageID != "sha256:test" || st.Name != "ok" || st.PodUID != sb.PodUID {
		t.Errorf("status = %+v", st)
	}
}

func TestReadoptionAfterRestart(t *testing.T) {
	e := newTestEnv(t)
	sb := e.sandbox(SandboxConfig{})
	ctx := context.Background()
	id := e.run(sb, "long", []string{"exit-after", "2s", "7"}, nil)
	before := e.waitState(e.rt, id, StateRunning, time.Second)
	// A created, not yet started container is adopted too.
	pending := e.container(sb, "pending", []string{"exit", "0"}, nil)

	rt2, err := New(e.cfg) // as after an agent restart
	if err != nil {
		t.Fatal(err)
	}
	list, err := rt2.ListContainers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got *ContainerStatus
	for _, st := range list {
		if st.ID == id {
			got = st
		}
	}
	if got == nil || got.State != StateRunning || got.Pid != before.Pid || got.Pid == 0 {
		t.Fatalf("the new runtime lists %+v, want running with PID %d", got, before.Pid)
	}
	sbs, err := rt2.ListSandboxes(ctx)
	if err != nil || len(sbs) != 1 || sbs[0].NetNSPath != sb.NetNSPath {
		t.Fatalf("sandboxes after restart = %+v, %v", sbs, err)
	}
	var out strings.Builder
	if code, err := rt2.Exec(ctx, id, []string{"/bin/probe", "echo", "adopted"}, nil, &out, nil, false); err != nil || code != 0 || out.String() != "adopted\n" {
		t.Errorf("exec through the new runtime: %d %v %q", code, err, out.String())
	}
	if st := e.waitState(rt2, id, StateExited, 10*time.Second); st.ExitCode != 7 {
		t.Errorf("exit seen by the new runtime: %+v, want 7", st)
	}
	if err := rt2.StartContainer(ctx, pending); err != nil {
		t.Fatal(err)
	}
	if st := e.waitState(rt2, pending, StateExited, 10*time.Second); st.ExitCode != 0 || st.Reason != ReasonCompleted {
		t.Errorf("container created by one runtime, started by another: %+v", st)
	}
	if err := rt2.StartContainer(ctx, pending); !errors.Is(err, ErrAlreadyStarted) {
		t.Errorf("second start: %v, want ErrAlreadyStarted", err)
	}
}

func TestUserMountsReadOnlyRootAndSysctls(t *testing.T) {
	e := newTestEnv(t)
	sb := e.sandbox(SandboxConfig{Sysctls: map[string]string{
		"net.ipv4.ip_unprivileged_port_start": "0", "kernel.shm_rmid_forced": "1",
	}})
	data := t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "file"), []byte("host data"), 0o644); err != nil {
		t.Fatal(err)
	}
	id := e.run(sb, "app", []string{"sleep"}, func(c *ContainerConfig) {
		c.User = &User{UID: 1000, GID: 1000}
		c.ReadOnlyRootFS = true
		c.WorkingDir = "/scratch"
		c.Mounts = []Mount{{Source: data, Destination: "/data", ReadOnly: true}, {Destination: "/scratch", Type: "tmpfs"}}
	})
	if got := e.mustExec(id, "cat", "/proc/self/status"); !strings.Contains(got, "Uid:\t1000\t1000") || !strings.Contains(got, "Gid:\t1000\t1000") {
		t.Errorf("status = %s, want uid and gid 1000", got)
	}
	if got := e.mustExec(id, "pwd"); got != "/scratch\n" {
		t.Errorf("working dir = %q", got)
	}
	if got := e.mustExec(id, "cat", "/data/file"); got != "host data" {
		t.Errorf("/data/file = %q", got)
	}
	for _, p := range []string{"/data/new", "/bin/new", "/etc/hosts"} {
		if _, code := e.exec(id, "write", p, "x"); code == 0 {
			t.Errorf("%s is writable", p)
		}
	}
	e.mustExec(id, "write", "/scratch/new", "x")
	for key, want := range map[string]string{"net/ipv4/ip_unprivileged_port_start": "0", "kernel/shm_rmid_forced": "1"} {
		if got := strings.TrimSpace(e.mustExec(id, "cat", "/proc/sys/"+key)); got != want {
			t.Errorf("sysctl %s = %s, want %s", key, got, want)
		}
	}
	host, _ := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if strings.TrimSpace(string(host)) == "0" {
		t.Log("the host also has ip_unprivileged_port_start=0: the sysctl check proves less")
	}
}

func TestContainerSeccomp(t *testing.T) {
	e := newTestEnv(t)
	sb := e.sandbox(SandboxConfig{})
	unconfined := e.run(sb, "unconfined", []string{"sleep"}, nil)
	confined := e.run(sb, "default", []string{"sleep"}, func(c *ContainerConfig) {
		c.Seccomp = &SeccompProfile{Type: SeccompRuntimeDefault}
	})
	privileged := e.run(sb, "privileged", []string{"sleep"}, func(c *ContainerConfig) {
		c.Privileged, c.Seccomp = true, &SeccompProfile{Type: SeccompRuntimeDefault}
	})
	local := e.run(sb, "local", []string{"sleep"}, func(c *ContainerConfig) {
		c.Seccomp = &SeccompProfile{Type: SeccompLocalhost, Name: "profiles/no-shm.json", Localhost: []byte(
			`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["shmget"], "action": "SCMP_ACT_ERRNO"}]}`)}
	})
	for _, tc := range []struct {
		id             string
		mode           string
		keyctl, shmget bool // allowed
	}{
		{unconfined, "0", true, true},
		{confined, "2", false, true},
		{privileged, "0", true, true},
		{local, "2", true, false},
	} {
		if mode := strings.TrimSpace(e.mustExec(tc.id, "seccomp")); mode != tc.mode {
			t.Errorf("%s: Seccomp mode %s, want %s", tc.id, mode, tc.mode)
		}
		if _, code := e.exec(tc.id, "keyctl"); (code == 0) != tc.keyctl {
			t.Errorf("%s: keyctl exit code %d, want allowed=%v", tc.id, code, tc.keyctl)
		}
		if _, code := e.exec(tc.id, "shmget", "4242"); (code == 0) != tc.shmget {
			t.Errorf("%s: shmget exit code %d, want allowed=%v", tc.id, code, tc.shmget)
		}
	}
	_, err := e.rt.CreateContainer(context.Background(), sb, &ContainerConfig{
		PodUID: sb.PodUID, Name: "bad", Image: "probe:test", ImageID: "sha256:test", RootFS: e.rootfs, Args: []string{"/bin/probe", "sleep"},
		Seccomp: &SeccompProfile{Type: SeccompLocalhost, Name: "profiles/bad.json", Localhost: []byte(`{"defaultAction": `)},
	})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "profiles/bad.json") {
		t.Errorf("a malformed Localhost profile: %v, want ErrInvalid naming the profile", err)
	}
}
