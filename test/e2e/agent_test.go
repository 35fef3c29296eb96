package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/corral-dev/corral/internal/roottest"
	"github.com/corral-dev/corral/test/framework"
)

// agentProc is a `corral agent` process on this machine.
type agentProc struct {
	t    *testing.T
	args []string
	dir  string
	cmd  *exec.Cmd
}

// mirroredAgentDir makes a fresh agent data dir whose registries.yaml sends
// every registry to reg (the tests' images are stand-ins).
func mirroredAgentDir(t *testing.T, name string, reg *framework.Registry) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "registries.yaml"), fmt.Sprintf("mirrors:\n  \"*\":\n    endpoint: [\"http://%s\"]\n", reg.Host))
	return dir
}

func startAgentProc(t *testing.T, name, server, tokenFile, dir string, extra ...string) *agentProc {
	t.Helper()
	a := &agentProc{t: t, dir: dir, args: append([]string{"agent", "--name", name, "--data-dir", dir, "--server", server,
		"--token-file", tokenFile, "--node-ip", "127.0.0.1", "--log-level", "debug", "--bridge", framework.AgentBridge(name),
		"--agent-port", fmt.Sprint(freePort(t))}, extra...)}
	a.start()
	t.Cleanup(func() {
		a.kill()
		framework.CleanupNode(t, dir, name)
		if t.Failed() {
			data, _ := os.ReadFile(filepath.Join(dir, "agent.log"))
			if len(data) > 12000 {
				data = data[len(data)-12000:]
			}
			t.Logf("--- agent log (tail) ---\n%s", data)
		}
	})
	return a
}

func (a *agentProc) start() {
	a.t.Helper()
	if err := os.MkdirAll(a.dir, 0o700); err != nil {
		a.t.Fatal(err)
	}
	logf, err := os.OpenFile(filepath.Join(a.dir, "agent.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		a.t.Fatal(err)
	}
	defer logf.Close()
	a.cmd = exec.Command(framework.Binary(a.t), a.args...)
	a.cmd.Stdout, a.cmd.Stderr = logf, logf
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := a.cmd.Start(); err != nil {
		a.t.Fatal(err)
	}
}

func (a *agentProc) kill() {
	if a.cmd != nil {
		_ = a.cmd.Process.Signal(syscall.SIGKILL)
		_ = a.cmd.Wait()
		a.cmd = nil
	}
}

// uniqueName gives node names that no other test (or test process) uses,
// so cgroup parents never collide.
func uniqueName(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), time.Now().UnixNano()%100000)
}

func mountedUnder(dir string) bool {
	data, _ := os.ReadFile("/proc/self/mountinfo")
	return strings.Contains(string(data), " "+dir+"/")
}

func freePort(t *testing.T) int {
	t.Helper()
	return framework.FreePort(t)
}

type podJSON struct {
	Status struct {
		Phase             string `json:"phase"`
		HostIP            string `json:"hostIP"`
		ContainerStatuses []struct {
			Name         string `json:"name"`
			Ready        bool   `json:"ready"`
			RestartCount int    `json:"restartCount"`
			ContainerID  string `json:"containerID"`
			State        struct {
				Waiting *struct {
					Reason  string `json:"reason"`
					Message string `json:"message"`
				} `json:"waiting"`
				Running *struct{} `json:"running"`
			} `json:"state"`
		} `json:"containerStatuses"`
	} `json:"status"`
}

func getPod(t *testing.T, conf, name string) *podJSON {
	t.Helper()
	out, _, code := corral(t, conf, "", "get", "pod", name, "-o", "json")
	if code != 0 {
		return nil
	}
	var p podJSON
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("pod json: %v\n%s", err, out)
	}
	return &p
}

// containerPid finds the host pid of the init of a container by its id
// through the runtime's state file.
func initPid(t *testing.T, agentDir, containerID string) int {
	t.Helper()
	id := strings.TrimPrefix(containerID, "corral://")
	data, err := os.ReadFile(filepath.Join(agentDir, "run", "containers", id, "state.json"))
	if err != nil {
		t.Fatalf("container state: %v", err)
	}
	var st struct {
		InitProcessPid int `json:"init_process_pid"`
	}
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatal(err)
	}
	return st.InitProcessPid
}

// waitHealthy waits for the stand-in workload listening on 127.0.0.1:port
// to answer its health check.
func waitHealthy(t *testing.T, what string, port int) {
	t.Helper()
	framework.WaitFor(t, what+" to answer HTTP", 20*time.Second, func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/health", port))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

// TestAgentRunsRealContainers is the node agent's acceptance test on one
// machine: a server process, an agent process, an in-process image
// registry serving the stand-in workload, and a bare Pod bound to the node.
func TestAgentRunsRealContainers(t *testing.T) {
	roottest.Require(t, "real containers")
	c := framework.NewProcesses(t, 1)
	conf := c.AdminConf()
	reg := framework.NewRegistry(t)
	ref := reg.Push(t, "workload:1", framework.WorkloadImage(t))
	tokenFile := filepath.Join(filepath.Dir(conf), "token")
	agentDir := filepath.Join(t.TempDir(), "agent")
	node := uniqueName("node")
	agent := startAgentProc(t, node, c.APIAddr(0), tokenFile, agentDir)
	framework.WaitFor(t, node+" Ready", 30*time.Second, func() bool {
		out, _, code := corral(t, conf, "", "get", "nodes")
		return code == 0 && strings.Contains(out, node) && strings.Contains(out, "Ready")
	})
	port := freePort(t)
	pod := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  nodeName: %s
  hostNetwork: true
  containers:
  - name: web
    image: %s
    args: ["--listen=127.0.0.1:%d"]
    env:
    - name: POD_NAME
      valueFrom: {fieldRef: {fieldPath: metadata.name}}
    - {name: GREETING, value: "hello $(POD_NAME)"}
    resources:
      limits: {memory: 64Mi, cpu: 200m}
`, node, ref, port)
	podFile := filepath.Join(t.TempDir(), "pod.yml")
	writeFile(t, podFile, pod)
	ok(t, conf, "apply", "-f", podFile)
	var cid string
	framework.WaitFor(t, "pod Running with its container ready", 60*time.Second, func() bool {
		p := getPod(t, conf, "web")
		if p == nil || p.Status.Phase != "Running" || len(p.Status.ContainerStatuses) != 1 || !p.Status.ContainerStatuses[0].Ready {
			return false
		}
		cid = p.Status.ContainerStatuses[0].ContainerID
		return true
	})
	// Without a readiness probe a container is ready once it runs, as in
	// Kubernetes; the program inside may take a moment to listen.
	waitHealthy(t, "the container", port)
	// What the container sees, through exec and logs (CLI → server → agent).
	if env, errOut, code := corral(t, conf, "", "exec", "web", "--", "/workload", "env"); code != 0 || !strings.Contains(env, "GREETING=hello web") || !strings.Contains(env, "POD_NAME=web") {
		t.Errorf("container environment (exit %d, stderr %q):\n%s", code, errOut, env)
	}
	if lim := ok(t, conf, "exec", "web", "--", "/workload", "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"); strings.TrimSpace(lim) != "67108864" {
		t.Errorf("memory limit seen in the container: %q, want 67108864 (64Mi)", lim)
	}
	if _, errOut, code := corral(t, conf, "", "exec", "web", "--", "/workload", "exit", "3"); code != 3 || !strings.Contains(errOut, "command terminated with exit code 3") {
		t.Errorf("exec exit code %d, stderr %q", code, errOut)
	}
	if logs := ok(t, conf, "logs", "web"); !strings.Contains(logs, "workload: pid") || !strings.Contains(logs, "--listen=127.0.0.1") {
		t.Errorf("corral logs web:\n%s", logs)
	}
	pid := initPid(t, agentDir, cid)
	// kill -9 the agent and start it again: the container is re-adopted,
	// not restarted.
	agent.kill()
	agent.start()
	framework.WaitFor(t, "agent back", 30*time.Second, func() bool {
		p := getPod(t, conf, "web")
		return p != nil && p.Status.Phase == "Running"
	})
	// A second pod started by the restarted agent proves it has synced: the
	// first pod's worker makes its first pass as the agent starts.
	writeFile(t, podFile, strings.NewReplacer("name: web}", "name: second}", fmt.Sprint(port), fmt.Sprint(freePort(t))).Replace(pod))
	ok(t, conf, "apply", "-f", podFile)
	framework.WaitFor(t, "second pod Running", 60*time.Second, func() bool {
		p := getPod(t, conf, "second")
		return p != nil && p.Status.Phase == "Running"
	})
	p := getPod(t, conf, "web")
	if got := p.Status.ContainerStatuses[0]; got.ContainerID != cid || got.RestartCount != 0 {
		t.Fatalf("after the agent restart the container is %s (restarts %d), want %s untouched", got.ContainerID, got.RestartCount, cid)
	}
	if got := initPid(t, agentDir, cid); got != pid {
		t.Fatalf("container init pid %d after the agent restart, want %d", got, pid)
	}
	// A machine reboot, as the agent finds it on its next start: every
	// process, mount, cgroup and network namespace gone, the data
	// directory (container state included) still on disk. The pods are
	// recreated.
	before := map[string]string{}
	for _, name := range []string{"web", "second"} {
		before[name] = getPod(t, conf, name).Status.ContainerStatuses[0].ContainerID
	}
	agent.kill()
	framework.CleanupNode(t, agentDir, node)
	framework.WaitFor(t, "the old container init to be gone", 30*time.Second, func() bool {
		return syscall.Kill(pid, 0) != nil
	})
	agent.start()
	framework.WaitFor(t, "both pods running again after the reboot", 60*time.Second, func() bool {
		for _, name := range []string{"web", "second"} {
			p := getPod(t, conf, name)
			if p == nil || p.Status.Phase != "Running" || len(p.Status.ContainerStatuses) != 1 {
				return false
			}
			st := p.Status.ContainerStatuses[0]
			if !st.Ready || st.State.Running == nil || st.ContainerID == before[name] {
				return false
			}
			if name == "web" {
				cid = st.ContainerID
			}
		}
		return true
	})
	waitHealthy(t, "the recreated container", port)
	pid = initPid(t, agentDir, cid)
	if pid == 0 || syscall.Kill(pid, 0) != nil {
		t.Fatalf("recreated container %s has no live init (pid %d)", cid, pid)
	}
	// Deleting the pods stops and removes their containers, mounts and
	// cgroups.
	ok(t, conf, "delete", "pod", "web", "second")
	framework.WaitFor(t, "container gone", 60*time.Second, func() bool {
		return syscall.Kill(pid, 0) != nil
	})
	framework.WaitFor(t, "no container state, mount or cgroup left", 30*time.Second, func() bool {
		entries, _ := os.ReadDir(filepath.Join(agentDir, "run", "containers"))
		groups, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/memory/corral", node, "*"))
		dirs := 0
		for _, g := range groups {
			if st, err := os.Stat(g); err == nil && st.IsDir() {
				dirs++
			}
		}
		pods, _ := os.ReadDir(filepath.Join(agentDir, "pods"))
		return len(entries) == 0 && dirs == 0 && len(pods) == 0 && !mountedUnder(agentDir)
	})
}

// TestServerRunsEmbeddedAgent: a lone `corral server` also runs pods on its
// own node, labelled as control plane and, being a single-server cluster,
// untainted.
func TestServerRunsEmbeddedAgent(t *testing.T) {
	roottest.Require(t, "real containers")
	dir := t.TempDir()
	name := uniqueName("solo")
	apiPort := freePort(t)
	srv := exec.Command(framework.Binary(t), "server", "--name", name, "--data-dir", dir,
		"--api-addr", fmt.Sprintf("127.0.0.1:%d", apiPort), "--raft-addr", "127.0.0.1:0", "--node-ip", "127.0.0.1",
		"--bridge", framework.AgentBridge(name))
	logf, err := os.Create(filepath.Join(t.TempDir(), "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	srv.Stdout, srv.Stderr = logf, logf
	srv.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = srv.Process.Signal(syscall.SIGKILL)
		_ = srv.Wait()
		framework.CleanupNode(t, filepath.Join(dir, "agent"), name)
		if t.Failed() {
			data, _ := os.ReadFile(logf.Name())
			if len(data) > 8000 {
				data = data[len(data)-8000:]
			}
			t.Logf("--- server log (tail) ---\n%s", data)
		}
	})
	conf := filepath.Join(dir, "admin.conf")
	framework.WaitFor(t, "the server's own node Ready", 30*time.Second, func() bool {
		if _, err := os.Stat(conf); err != nil {
			return false
		}
		out, _, code := corral(t, conf, "", "get", "nodes", name)
		return code == 0 && strings.Contains(out, "Ready") && strings.Contains(out, "control-plane")
	})
	node := ok(t, conf, "get", "node", name, "-o", "json")
	if strings.Contains(node, `"taints"`) {
		t.Fatalf("a single-server cluster's node is tainted:\n%s", node)
	}
	reg := framework.NewRegistry(t)
	ref := reg.Push(t, "workload:1", framework.WorkloadImage(t))
	podFile := filepath.Join(t.TempDir(), "pod.yml")
	writeFile(t, podFile, fmt.Sprintf("apiVersion: v1\nkind: Pod\nmetadata: {name: solo}\nspec:\n  nodeName: %s\n  containers:\n  - {name: app, image: %q}\n", name, ref))
	ok(t, conf, "apply", "-f", podFile)
	framework.WaitFor(t, "pod Running on the server's node", 60*time.Second, func() bool {
		p := getPod(t, conf, "solo")
		return p != nil && p.Status.Phase == "Running"
	})
	ok(t, conf, "delete", "pod", "solo")
	framework.WaitFor(t, "pod's containers removed", 60*time.Second, func() bool {
		entries, _ := os.ReadDir(filepath.Join(dir, "agent", "run", "containers"))
		return len(entries) == 0
	})
}

// containerState is one container's status, read with -o json.
type containerState struct {
	RestartCount int `json:"restartCount"`
	Ready        bool
	State        struct {
		Waiting *struct {
			Reason  string `json:"reason"`
			Message string `json:"message"`
		} `json:"waiting"`
		Running *struct{} `json:"running"`
	} `json:"state"`
	LastState struct {
		Terminated *struct {
			ExitCode int    `json:"exitCode"`
			Reason   string `json:"reason"`
		} `json:"terminated"`
	} `json:"lastState"`
}

func container(t *testing.T, conf, pod string) *containerState {
	t.Helper()
	out, _, code := corral(t, conf, "", "get", "pod", pod, "-o", "json")
	if code != 0 {
		return nil
	}
	var p struct {
		Status struct {
			ContainerStatuses []*containerState `json:"containerStatuses"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(out), &p); err != nil || len(p.Status.ContainerStatuses) == 0 {
		return nil
	}
	return p.Status.ContainerStatuses[0]
}

func waitingReason(c *containerState) string {
	if c == nil || c.State.Waiting == nil {
		return ""
	}
	return c.State.Waiting.Reason
}

// TestAgentProbesVolumesAndFailures runs pods that exercise probes,
// volumes and the ways a pod can fail, each showing a clear status.
func TestAgentProbesVolumesAndFailures(t *testing.T) {
	roottest.Require(t, "real containers")
	c := framework.NewProcesses(t, 1)
	conf := c.AdminConf()
	reg := framework.NewRegistry(t)
	ref := reg.Push(t, "workload:1", framework.WorkloadImage(t))
	agentDir := filepath.Join(t.TempDir(), "agent")
	node := uniqueName("probes")
	startAgentProc(t, node, c.APIAddr(0), filepath.Join(filepath.Dir(conf), "token"), agentDir)
	hostDir := t.TempDir()
	writeFile(t, filepath.Join(hostDir, "marker"), "from the host")
	port := freePort(t)
	manifests := fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata: {name: app-config}
data: {greeting: hello}
---
apiVersion: v1
kind: Pod
metadata: {name: probed}
spec:
  nodeName: %[1]s
  hostNetwork: true
  containers:
  - name: app
    image: %[2]s
    args: ["--listen=127.0.0.1:%[3]d"]
    livenessProbe: {httpGet: {path: /health, port: %[3]d}, periodSeconds: 1, failureThreshold: 2}
    readinessProbe: {httpGet: {path: /ready, port: %[3]d}, periodSeconds: 1}
    volumeMounts:
    - {name: conf, mountPath: /etc/app}
    - {name: host, mountPath: /host, readOnly: true}
  volumes:
  - {name: conf, configMap: {name: app-config}}
  - {name: host, hostPath: {path: %[4]q, type: Directory}}
---
apiVersion: v1
kind: Pod
metadata: {name: crasher}
spec:
  nodeName: %[1]s
  containers:
  - name: app
    image: %[2]s
    env: [{name: WORKLOAD_EXIT_AFTER, value: 100ms}, {name: WORKLOAD_EXIT_CODE, value: "3"}]
---
apiVersion: v1
kind: Pod
metadata: {name: hog}
spec:
  nodeName: %[1]s
  containers:
  - name: app
    image: %[2]s
    env: [{name: WORKLOAD_ALLOC_MB, value: "200"}]
    resources: {limits: {memory: 48Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: badimage}
spec:
  nodeName: %[1]s
  containers: [{name: app, image: "%[5]s/no-such-image:1"}]
---
apiVersion: v1
kind: Pod
metadata: {name: badpath}
spec:
  nodeName: %[1]s
  containers: [{name: app, image: %[2]s, volumeMounts: [{name: f, mountPath: /f}]}]
  volumes: [{name: f, hostPath: {path: %[4]q, type: File}}]
`, node, ref, port, hostDir, reg.Host)
	file := filepath.Join(t.TempDir(), "pods.yml")
	writeFile(t, file, manifests)
	ok(t, conf, "apply", "-f", file)
	framework.WaitFor(t, "probed pod ready", 60*time.Second, func() bool { c := container(t, conf, "probed"); return c != nil && c.Ready })
	if got := ok(t, conf, "exec", "probed", "--", "/workload", "cat", "/etc/app/greeting", "/host/marker"); got != "hellofrom the host" {
		t.Errorf("volumes seen in the container: %q", got)
	}
	// Readiness follows /ready.
	ok(t, conf, "exec", "probed", "--", "/workload", "touch", "/tmp/unready")
	framework.WaitFor(t, "probed pod unready", 30*time.Second, func() bool { c := container(t, conf, "probed"); return c != nil && !c.Ready })
	ok(t, conf, "exec", "probed", "--", "/workload", "rm", "/tmp/unready")
	framework.WaitFor(t, "probed pod ready again", 30*time.Second, func() bool { c := container(t, conf, "probed"); return c != nil && c.Ready })
	// A ConfigMap change reaches the mounted files.
	writeFile(t, file, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app-config}\ndata: {greeting: bye}\n")
	ok(t, conf, "apply", "-f", file)
	framework.WaitFor(t, "updated ConfigMap in the volume", 60*time.Second, func() bool {
		out, _, code := corral(t, conf, "", "exec", "probed", "--", "/workload", "cat", "/etc/app/greeting")
		return code == 0 && out == "bye"
	})
	// A failing liveness probe restarts the container.
	ok(t, conf, "exec", "probed", "--", "/workload", "touch", "/tmp/unhealthy")
	framework.WaitFor(t, "liveness restart", 60*time.Second, func() bool {
		c := container(t, conf, "probed")
		return c != nil && c.RestartCount >= 1 && c.Ready
	})
	framework.WaitFor(t, "crasher in CrashLoopBackOff", 60*time.Second, func() bool {
		c := container(t, conf, "crasher")
		return waitingReason(c) == "CrashLoopBackOff" && c.RestartCount >= 1 && c.LastState.Terminated != nil && c.LastState.Terminated.ExitCode == 3
	})
	framework.WaitFor(t, "hog OOMKilled", 60*time.Second, func() bool {
		c := container(t, conf, "hog")
		return c != nil && c.LastState.Terminated != nil && c.LastState.Terminated.Reason == "OOMKilled"
	})
	framework.WaitFor(t, "badimage ErrImagePull or ImagePullBackOff", 60*time.Second, func() bool {
		r := waitingReason(container(t, conf, "badimage"))
		return r == "ErrImagePull" || r == "ImagePullBackOff"
	})
	framework.WaitFor(t, "badpath stuck creating with the hostPath error", 60*time.Second, func() bool {
		c := container(t, conf, "badpath")
		return waitingReason(c) == "ContainerCreating" && strings.Contains(c.State.Waiting.Message, "hostPath type check failed")
	})
	// Each condition left its event, as kubectl describe shows them.
	framework.WaitFor(t, "the agent's events", 30*time.Second, func() bool {
		probed, _, _ := corral(t, conf, "", "describe", "pod", "probed")
		badpath, _, _ := corral(t, conf, "", "describe", "pod", "badpath")
		crasher, _, _ := corral(t, conf, "", "describe", "pod", "crasher")
		return strings.Contains(probed, "Started") && strings.Contains(probed, "Unhealthy") &&
			strings.Contains(probed, "Liveness probe failed") && strings.Contains(probed, "Killing") &&
			strings.Contains(badpath, "FailedMount") && strings.Contains(crasher, "BackOff")
	})
	// The good pod was never disturbed by the bad ones, and the agent still
	// answers.
	if c := container(t, conf, "probed"); c == nil || !c.Ready {
		t.Fatal("probed pod lost readiness")
	}
	ok(t, conf, "delete", "pod", "probed", "crasher", "hog", "badimage", "badpath")
	framework.WaitFor(t, "all containers removed", 60*time.Second, func() bool {
		entries, _ := os.ReadDir(filepath.Join(agentDir, "run", "containers"))
		return len(entries) == 0
	})
}
