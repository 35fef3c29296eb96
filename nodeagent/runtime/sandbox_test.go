package runtime

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/corral-dev/corral/internal/roottest"
)

func TestSandboxLifecycle(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	cfg := SandboxConfig{PodUID: "pod-" + randomHex(6), Namespace: "default", Name: "web", Hostname: "web-0",
		DNS: &DNSConfig{Servers: []string{"10.0.0.10"}, Searches: []string{"default.svc.cluster.local"}, Options: []string{"ndots:5"}}}
	sb, err := e.rt.EnsureSandbox(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{sb.NetNSPath, sb.IPCNSPath, sb.UTSNSPath} {
		if fsType(p) != nsfsMagic {
			t.Errorf("%s is not a namespace mount", p)
		}
	}
	if fsType(sb.ShmPath) != tmpfsMagic {
		t.Errorf("%s is not a tmpfs", sb.ShmPath)
	}
	if !strings.HasPrefix(sb.NetNSPath, "/run/netns/") {
		t.Errorf("netns %s is not a named netns", sb.NetNSPath)
	}
	if b, _ := os.ReadFile(sb.ResolvConfPath); string(b) != "search default.svc.cluster.local\nnameserver 10.0.0.10\noptions ndots:5\n" {
		t.Errorf("resolv.conf = %q", b)
	}
	if b, _ := os.ReadFile(sb.HostnamePath); string(b) != "web-0\n" {
		t.Errorf("hostname file = %q", b)
	}
	if b, _ := os.ReadFile(sb.HostsPath); !strings.Contains(string(b), "127.0.0.1\tlocalhost") {
		t.Errorf("hosts = %q", b)
	}
	if got := hostnameIn(t, sb.UTSNSPath); got != "web-0" {
		t.Errorf("hostname in the UTS namespace = %q", got)
	}

	again, err := e.rt.EnsureSandbox(ctx, cfg)
	if err != nil || !again.Created.Equal(sb.Created) || again.NetNSPath != sb.NetNSPath {
		t.Errorf("second EnsureSandbox = %+v, %v; want the same sandbox", again, err)
	}
	list, err := e.rt.ListSandboxes(ctx)
	if err != nil || len(list) != 1 || list[0].PodUID != cfg.PodUID {
		t.Errorf("ListSandboxes = %+v, %v", list, err)
	}

	if err := e.rt.RemoveSandbox(ctx, cfg.PodUID); err != nil {
		t.Fatal(err)
	}
	checkNoTrace(t, e, cfg.PodUID, sb)
	if err := e.rt.RemoveSandbox(ctx, cfg.PodUID); err != nil {
		t.Errorf("second RemoveSandbox: %v", err)
	}
}

// hostnameIn reads the hostname of a UTS namespace from a locked thread.
func hostnameIn(t *testing.T, nsPath string) string {
	t.Helper()
	type result struct {
		name string
		err  error
	}
	out := make(chan result, 1)
	go func() {
		// This thread enters the namespace and is never unlocked: it dies with the goroutine.
		lockThread()
		fd, err := unix.Open(nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			out <- result{err: err}
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWUTS); err != nil {
			out <- result{err: err}
			return
		}
		var u unix.Utsname
		err = unix.Uname(&u)
		out <- result{unix.ByteSliceToString(u.Nodename[:]), err}
	}()
	r := <-out
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.name
}

func TestSandboxRecreatesIncomplete(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	cfg := SandboxConfig{PodUID: "pod-" + randomHex(6), Name: "web"}
	sb, err := e.rt.EnsureSandbox(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// As after a reboot or a crash mid-creation: a namespace mount is gone.
	if err := unix.Unmount(sb.UTSNSPath, unix.MNT_DETACH); err != nil {
		t.Fatal(err)
	}
	list, _ := e.rt.ListSandboxes(ctx)
	if len(list) != 1 || list[0].NetNSPath != "" {
		t.Errorf("an incomplete sandbox is listed as %+v, want only its PodUID", list)
	}
	sb2, err := e.rt.EnsureSandbox(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if fsType(sb2.UTSNSPath) != nsfsMagic || fsType(sb2.NetNSPath) != nsfsMagic || !sb2.Created.After(sb.Created) {
		t.Errorf("the sandbox was not recreated: %+v", sb2)
	}
}

func TestSandboxHostNamespaces(t *testing.T) {
	e := newTestEnv(t)
	sb := e.sandbox(SandboxConfig{HostNetwork: true, HostIPC: true})
	hostname, _ := os.Hostname()
	if sb.NetNSPath != "" || sb.IPCNSPath != "" || sb.UTSNSPath != "" || sb.ShmPath != "/dev/shm" || sb.Hostname != hostname {
		t.Errorf("host sandbox = %+v", sb)
	}
	host, _ := os.ReadFile("/etc/hosts")
	if b, _ := os.ReadFile(sb.HostsPath); string(b) != string(host) {
		t.Errorf("hostNetwork pod's hosts = %q, want the node's", b)
	}
}

func TestRemoveSandboxNeedsContainersRemoved(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	sb := e.sandbox(SandboxConfig{})
	id := e.container(sb, "app", []string{"sleep"}, nil)
	if err := e.rt.RemoveSandbox(ctx, sb.PodUID); !errors.Is(err, ErrSandboxBusy) {
		t.Fatalf("RemoveSandbox with a container: %v, want ErrSandboxBusy", err)
	}
	if err := e.rt.RemoveContainer(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := e.rt.RemoveSandbox(ctx, sb.PodUID); err != nil {
		t.Fatal(err)
	}
}

func TestSandboxInvalid(t *testing.T) {
	e := newTestEnv(t)
	for _, uid := range []string{"", "..", "a/b", "a b"} {
		if _, err := e.rt.EnsureSandbox(context.Background(), SandboxConfig{PodUID: uid}); !errors.Is(err, ErrInvalid) {
			t.Errorf("EnsureSandbox(%q) = %v, want ErrInvalid", uid, err)
		}
	}
}

// checkNoTrace fails unless nothing of the pod remains: mounts, namespace files,
// sandbox files, cgroup directories.
func checkNoTrace(t *testing.T, e *testEnv, podUID string, sb *Sandbox) {
	t.Helper()
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mi), "\n") {
		if strings.Contains(line, e.cfg.StateDir) || strings.Contains(line, podUID) {
			t.Errorf("mount left: %s", line)
		}
	}
	for _, p := range []string{sb.NetNSPath, e.rt.sandboxDir(podUID)} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left (%v)", p, err)
		}
	}
	mounts, err := cgroupMounts()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mounts {
		if _, err := os.Stat(filepath.Join(m, e.cfg.CgroupParent, podUID)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cgroup %s left", filepath.Join(m, e.cfg.CgroupParent, podUID))
		}
	}
	for _, d := range []string{e.rt.metaDir(), e.rt.containersRoot()} {
		if entries, _ := os.ReadDir(d); len(entries) > 0 {
			t.Errorf("%s not empty: %v", d, entries)
		}
	}
}

// TestNamespaceFailureRestoresThreads makes namespace creation fail half-way (after the
// thread entered a new network and IPC namespace) and checks that no thread of the
// process is left in another namespace.
func TestNamespaceFailureRestoresThreads(t *testing.T) {
	roottest.Require(t, "real containers")
	name := "corral-test-" + randomHex(6)
	t.Cleanup(func() { unmountAndRemove(filepath.Join("/run/netns", name)) })
	err := makeNamespaces(nsRequest{netName: name, ipcFile: filepath.Join(t.TempDir(), "missing", "ipc")})
	if err == nil {
		t.Fatal("namespace creation into a missing directory succeeded")
	}
	want := map[string]string{}
	for _, kind := range []string{"net", "ipc", "uts"} {
		want[kind], _ = os.Readlink("/proc/self/ns/" + kind)
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		for kind, ns := range want {
			got, err := os.Readlink(filepath.Join("/proc/self/task", task.Name(), "ns", kind))
			if err == nil && got != ns {
				t.Errorf("thread %s is in %s, want %s", task.Name(), got, ns)
			}
		}
	}
}
