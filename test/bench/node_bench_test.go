package bench

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/corral-dev/corral/internal/roottest"
	"github.com/corral-dev/corral/nodeagent"
	"github.com/corral-dev/corral/nodeagent/image"
	"github.com/corral-dev/corral/nodeagent/runtime"
	"github.com/corral-dev/corral/nodeagent/runtime/containerinit"
	"github.com/corral-dev/corral/nodeagent/volume"
	corralpb "github.com/corral-dev/corral/proto"
	"github.com/corral-dev/corral/test/framework"
)

// startedSignal signals every Started event.
type startedSignal chan struct{}

func (s startedSignal) Event(_ *corralpb.Object, _, reason, _ string) {
	if reason == "Started" {
		s <- struct{}{}
	}
}

// nullSink discards pod status.
type nullSink struct{}

func (nullSink) Report(*corralpb.Pod, *corralpb.PodStatus) {}

// BenchmarkAgentMemory runs a `corral agent` process against a server
// process and reports its resident memory idle and the memory each running
// pod adds, counting the agent's growth and every container's init.
func BenchmarkAgentMemory(b *testing.B) {
	roottest.Require(b, "real containers")
	const pods = 10
	for n := 0; n < b.N; n++ {
		c := framework.NewProcesses(b, 1)
		conf := c.AdminConf()
		dir := b.TempDir()
		node := fmt.Sprintf("membench-%d-%d", os.Getpid(), time.Now().UnixNano()%1000000)
		agent := exec.Command(framework.Binary(b), "agent", "--name", node, "--data-dir", dir, "--server", c.APIAddr(0),
			"--token-file", filepath.Join(filepath.Dir(conf), "token"), "--node-ip", "127.0.0.1", "--bridge", framework.AgentBridge(node))
		agent.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := agent.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			_ = agent.Process.Kill()
			_ = agent.Wait()
			framework.CleanupNode(b, dir, node)
		})
		cl := c.Client(b, 0)
		framework.WaitFor(b, "node registered", 30*time.Second, func() bool {
			_, err := cl.Get(context.Background(), &corralpb.GetRequest{Kind: "Node", Name: node})
			return err == nil
		})
		// Idle means idle, in a steady state: start-up garbage collected,
		// and the code of a few heartbeats and a resync (10 s) mapped
		// again after the agent released its start-up code.
		time.Sleep(15 * time.Second)
		idle := statusKiB(b, agent.Process.Pid, "VmRSS:")
		// The rest of VmRSS is the program's code and read-only data,
		// page cache shared with other processes of the binary (see the
		// README).
		idleAnon := statusKiB(b, agent.Process.Pid, "RssAnon:")
		reg := framework.NewRegistry(b)
		ref := reg.Push(b, "workload:1", framework.WorkloadImage(b))
		for i := 0; i < pods; i++ {
			pod := &corralpb.Pod{Metadata: &corralpb.ObjectMeta{Name: fmt.Sprintf("m%d", i)},
				Spec: &corralpb.PodSpec{NodeName: node, Containers: []*corralpb.Container{{Name: "c", Image: ref}}}}
			if _, err := cl.Create(context.Background(), &corralpb.CreateRequest{Object: &corralpb.Object{Kind: &corralpb.Object_Pod{Pod: pod}}}); err != nil {
				b.Fatal(err)
			}
		}
		var inits []int
		framework.WaitFor(b, "all pods running", 120*time.Second, func() bool {
			inits = initPids(dir)
			return len(inits) == pods
		})
		time.Sleep(5 * time.Second) // settle after the starts
		busy := statusKiB(b, agent.Process.Pid, "VmRSS:")
		helpers := 0
		for _, pid := range inits {
			helpers += pssKiB(pid)
		}
		// Delete the pods and let the agent remove them before it is
		// killed, so nothing is left to the emergency clean-up.
		for i := 0; i < pods; i++ {
			if _, err := cl.Delete(context.Background(), &corralpb.DeleteRequest{Kind: "Pod", Name: fmt.Sprintf("m%d", i)}); err != nil {
				b.Fatal(err)
			}
		}
		framework.WaitFor(b, "pods removed by the agent", 60*time.Second, func() bool {
			entries, _ := os.ReadDir(filepath.Join(dir, "pods"))
			return len(entries) == 0
		})
		b.ReportMetric(float64(idle)/1024, "agent-idle-RSS-MiB")
		b.ReportMetric(float64(idleAnon)/1024, "agent-idle-anon-MiB")
		b.ReportMetric(float64(busy-idle+helpers)/1024/pods, "per-pod-MiB")
		b.ReportMetric(float64(helpers)/1024/pods, "init-PSS-per-pod-MiB")
	}
}

// BenchmarkPodStart measures a pod's start with a cached image, from the
// assignment reaching the agent's pod manager to its container running,
// beside the bare runtime's create+start of the same container in the same
// run (libcontainer's own cost, the floor).
func BenchmarkPodStart(b *testing.B) {
	roottest.Require(b, "real containers")
	const pods = 20
	dir := b.TempDir()
	node := fmt.Sprintf("bench-%d-%d", os.Getpid(), time.Now().UnixNano()%1000000)
	b.Cleanup(func() { framework.CleanupNode(b, dir, node) })
	rt, err := runtime.New(runtime.Config{StateDir: filepath.Join(dir, "run"), PodsDir: filepath.Join(dir, "pods"),
		CgroupParent: "/corral/" + node, InitBinary: framework.Binary(b)})
	if err != nil {
		b.Fatal(err)
	}
	images, err := image.Open(image.Options{Root: filepath.Join(dir, "images")})
	if err != nil {
		b.Fatal(err)
	}
	reg := framework.NewRegistry(b)
	ref := reg.Push(b, "workload:1", framework.WorkloadImage(b))
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel) // before the node clean-up, which runs first
	img, _, _, err := images.Pull(ctx, ref, "IfNotPresent", nil)
	if err != nil {
		b.Fatal(err)
	}
	vols, err := volume.NewManager(filepath.Join(dir, "pods"))
	if err != nil {
		b.Fatal(err)
	}
	for n := 0; n < b.N; n++ {
		raw := rawStarts(b, ctx, rt, images, img, pods)
		started := make(chan struct{}, pods)
		m := nodeagent.NewPodManager(nodeagent.PodManagerConfig{NodeName: node, NodeIP: "127.0.0.1",
			PodsDir: filepath.Join(dir, "pods"), Runtime: rt, Images: images, Volumes: vols, Reporter: nullSink{},
			Events: startedSignal(started),
			Logger: benchLogger()})
		var total time.Duration
		desired := map[string]*corralpb.Pod{}
		for i := 0; i < pods; i++ {
			p := &corralpb.Pod{Metadata: &corralpb.ObjectMeta{Name: fmt.Sprintf("p%d", i), Namespace: "default", Uid: fmt.Sprintf("bench-%d-%d", n, i)},
				Spec: &corralpb.PodSpec{RestartPolicy: "Always", NodeName: node, Containers: []*corralpb.Container{{Name: "c", Image: ref, ImagePullPolicy: "IfNotPresent"}}}}
			desired["default/"+p.Metadata.Name] = p
			t0 := time.Now()
			m.Sync(ctx, desired, nil)
			// The worker records Started the moment the runtime has started
			// the container: no polling to add its own latency or load.
			select {
			case <-started:
			case <-time.After(30 * time.Second):
				b.Fatalf("pod %d not started after 30s", i)
			}
			total += time.Since(t0)
		}
		m.Sync(ctx, map[string]*corralpb.Pod{}, nil)
		framework.WaitFor(b, "pods removed", 60*time.Second, func() bool {
			cs, _ := rt.ListContainers(ctx)
			sbs, _ := rt.ListSandboxes(ctx)
			return len(cs) == 0 && len(sbs) == 0
		})
		podMs := float64(total.Microseconds()) / 1000 / pods
		b.ReportMetric(podMs, "pod-start-ms")
		b.ReportMetric(raw, "raw-create+start-ms")
		b.ReportMetric(podMs/raw, "ratio")
	}
}

// rawStarts creates and starts n containers straight through the runtime
// and returns the mean time in milliseconds; it removes them again.
func rawStarts(b *testing.B, ctx context.Context, rt *runtime.Runtime, images *image.Store, img *image.Image, n int) float64 {
	var total time.Duration
	var ids []string
	for i := 0; i < n; i++ {
		uid := fmt.Sprintf("raw-%d-%d", time.Now().UnixNano(), i)
		sb, err := rt.EnsureSandbox(ctx, runtime.SandboxConfig{PodUID: uid, Namespace: "default", Name: "raw"})
		if err != nil {
			b.Fatal(err)
		}
		id := runtime.ContainerID(uid, "c", 0)
		rootfs, err := images.Mount(ctx, id, img)
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		if _, err := rt.CreateContainer(ctx, sb, &runtime.ContainerConfig{PodUID: uid, Name: "c", RootFS: rootfs,
			Args: []string{"/workload"}, Log: containerinit.LogOptions{MaxSize: 1 << 20, MaxFiles: 2}}); err != nil {
			b.Fatal(err)
		}
		if err := rt.StartContainer(ctx, id); err != nil {
			b.Fatal(err)
		}
		total += time.Since(t0)
		ids = append(ids, id)
	}
	for _, id := range ids {
		_ = rt.StopContainer(ctx, id, 5*time.Second)
		_ = rt.RemoveContainer(ctx, id)
		_ = images.RemoveContainerFS(id)
		_ = rt.RemoveSandbox(ctx, strings.TrimSuffix(id, "-c-0"))
	}
	return float64(total.Microseconds()) / 1000 / float64(n)
}

// initPids lists the pids of running container inits under an agent's
// state dir.
func initPids(dir string) []int {
	entries, _ := os.ReadDir(filepath.Join(dir, "run", "containers"))
	var out []int
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, "run", "containers", e.Name(), "state.json"))
		if err != nil {
			continue
		}
		i := strings.Index(string(data), `"init_process_pid":`)
		if i < 0 {
			continue
		}
		rest := string(data[i+len(`"init_process_pid":`):])
		end := strings.IndexAny(rest, ",}")
		if pid, err := strconv.Atoi(strings.TrimSpace(rest[:end])); err == nil && syscall.Kill(pid, 0) == nil {
			out = append(out, pid)
		}
	}
	return out
}

func statusKiB(b *testing.B, pid int, key string) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, key) {
			v, _ := strconv.Atoi(strings.Fields(line)[1])
			return v
		}
	}
	b.Fatalf("no %s for %d", key, pid)
	return 0
}

// pssKiB is a process's proportional set size: shared pages (the init's
// binary) split across the processes that map them.
func pssKiB(pid int) int {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) >= 2 && fields[0] == "Pss:" {
			v, _ := strconv.Atoi(fields[1])
			return v
		}
	}
	return 0
}

// benchLogger shows the pod workers' step timings with CORRAL_BENCH_DEBUG=1.
func benchLogger() *slog.Logger {
	if os.Getenv("CORRAL_BENCH_DEBUG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
