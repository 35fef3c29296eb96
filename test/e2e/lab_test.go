package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/corral-dev/corral/internal/roottest"
	"github.com/corral-dev/corral/test/framework"
)

// labCmd runs `corral lab VERB ... --dir dir` and returns its output and error.
func labCmd(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(framework.Binary(t), append(append([]string{"lab"}, args...), "--dir", dir)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func labOK(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := labCmd(t, dir, args...)
	if err != nil {
		t.Fatalf("corral lab %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// nodeReady returns each node's Ready condition status.
func nodeReady(t *testing.T, conf string) map[string]string {
	t.Helper()
	out, _, code := corral(t, conf, "", "get", "nodes", "-o", "json")
	ready := map[string]string{}
	if code != 0 {
		return ready
	}
	var list struct {
		Items []struct {
			Metadata struct{ Name string } `json:"metadata"`
			Status   struct {
				Conditions []struct{ Type, Status string } `json:"conditions"`
			} `json:"status"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("nodes json: %v", err)
	}
	for _, it := range list.Items {
		for _, c := range it.Status.Conditions {
			if c.Type == "Ready" {
				ready[it.Metadata.Name] = c.Status
			}
		}
	}
	return ready
}

// labTraces lists what a lab in dir may leave on the machine.
type labTraces struct {
	dir   string
	hash  string
	nodes []string
}

func newLabTraces(dir string, nodes ...string) labTraces {
	sum := sha256.Sum256([]byte(dir))
	return labTraces{dir: dir, hash: hex.EncodeToString(sum[:3]), nodes: nodes}
}

// left returns every trace still present: processes, namespaces, links,
// mounts, cgroups, files.
func (l labTraces) left() []string {
	var out []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(l.dir)) {
			out = append(out, "process "+p+": "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	prefixes := []string{"crl-" + l.hash + "-"}
	for _, n := range l.nodes {
		for _, sd := range []string{filepath.Join(l.dir, n, "run"), filepath.Join(l.dir, n, "agent", "run")} {
			sum := sha256.Sum256([]byte(sd))
			prefixes = append(prefixes, "corral-"+hex.EncodeToString(sum[:4])+"-")
		}
		// The lab names its nodes' cgroups after its bridge (crl-<hash>).
		cgs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", "corral", "crl-"+l.hash+"-"+n))
		for _, c := range cgs {
			out = append(out, "cgroup "+c)
		}
	}
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		for _, p := range prefixes {
			if strings.HasPrefix(e.Name(), p) {
				out = append(out, "netns "+e.Name())
			}
		}
	}
	links, _ := os.ReadDir("/sys/class/net")
	for _, e := range links {
		if strings.Contains(e.Name(), l.hash) {
			out = append(out, "link "+e.Name())
		}
	}
	if mountedUnder(l.dir) {
		out = append(out, "mounts under "+l.dir)
	}
	if _, err := os.Stat(l.dir); err == nil {
		out = append(out, "directory "+l.dir)
	}
	return out
}

// TestLab brings a 1-server + 2-agent lab up, runs the tutorial's first
// DaemonSet on its stand-in image, kills and restarts a node, partitions
// and heals one, serves a pushed image, and takes the lab down without a
// trace.
func TestLab(t *testing.T) {
	roottest.Require(t, "real containers")
	framework.Binary(t) // build it now when CORRAL_BIN is not set
	dir := filepath.Join(t.TempDir(), "lab")
	traces := newLabTraces(dir, "server-1", "worker-1", "worker-2")
	t.Cleanup(func() {
		dumpLabLogs(t, dir, traces.nodes)
		if out, err := labCmd(t, dir, "down"); err != nil {
			t.Logf("lab down in cleanup: %v\n%s", err, out)
		}
		for _, n := range traces.nodes {
			framework.CleanupNode(t, dir, n)
		}
	})
	start := time.Now()
	out := labOK(t, dir, "up", "--servers", "1", "--agents", "2", "--node-monitor-grace-period", "4s")
	t.Logf("lab up (1+2) took %s", time.Since(start).Round(time.Millisecond))
	for _, want := range []string{"STAND-INS", "export CORRAL_CONFIG=" + filepath.Join(dir, "admin.conf")} {
		if !strings.Contains(out, want) {
			t.Errorf("lab up output lacks %q:\n%s", want, out)
		}
	}
	conf := filepath.Join(dir, "admin.conf")
	// A one-server lab is a single-server cluster: its node is untainted.
	want := map[string]string{"server-1": "True", "worker-1": "True", "worker-2": "True"}
	if got := nodeReady(t, conf); !mapsEqual(got, want) {
		t.Fatalf("nodes after lab up: %v, want %v", got, want)
	}
	if taints := ok(t, conf, "get", "node", "server-1", "-o", "jsonpath={.spec.taints}"); strings.Contains(taints, "control-plane") {
		t.Errorf("the single server of a one-server lab is tainted: %s", taints)
	}
	if out := labOK(t, dir, "up", "--servers", "1", "--agents", "2"); !strings.Contains(out, "already up") {
		t.Errorf("second lab up: %q, want it to say the lab is already up", out)
	}
	status := labOK(t, dir, "status")
	for _, w := range []string{"NODE", "server-1", "worker-2", "running", "registry"} {
		if !strings.Contains(status, w) {
			t.Errorf("lab status lacks %q:\n%s", w, status)
		}
	}

	t.Run("stand-in DaemonSet", func(t *testing.T) { labStandinDaemonSet(t, conf) })
	t.Run("kill and start", func(t *testing.T) { labKillStart(t, dir, conf) })
	t.Run("partition and heal", func(t *testing.T) { labPartitionHeal(t, dir, conf) })
	t.Run("push", func(t *testing.T) { labPush(t, dir, conf) })

	dumpLabLogs(t, dir, traces.nodes)
	out = labOK(t, dir, "down")
	if left := traces.left(); len(left) > 0 {
		t.Fatalf("lab down left traces:\n%s\n(lab down said: %s)", strings.Join(left, "\n"), out)
	}
}

// dumpLabLogs logs the tail of every node's log once the test has failed.
func dumpLabLogs(t *testing.T, dir string, nodes []string) {
	if !t.Failed() {
		return
	}
	for _, n := range nodes {
		data, err := os.ReadFile(filepath.Join(dir, n, "log"))
		if err != nil {
			continue
		}
		if len(data) > 6000 {
			data = data[len(data)-6000:]
		}
		t.Logf("--- %s log (tail) ---\n%s", n, data)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func labStandinDaemonSet(t *testing.T, conf string) {
	ok(t, conf, "apply", "-f", "../../deploy/examples/daemonset-basic.yml")
	var nodes, phases map[string]string
	framework.WaitFor(t, "nginx stand-in pods Running on the three nodes", 60*time.Second, func() bool {
		nodes, phases = podsOf(t, conf, "app=nginx-daemon")
		return len(phases) == 3 && allRunning(phases)
	})
	if got := strings.Join(sortedValues(nodes), ","); got != "server-1,worker-1,worker-2" {
		t.Fatalf("pods on %s, want one on each of server-1, worker-1, worker-2", got)
	}
	for pod, node := range nodes {
		if node != "worker-1" {
			continue
		}
		logs := ok(t, conf, "logs", pod)
		if !strings.Contains(logs, "workload: pid") || !strings.Contains(logs, "listening on :80,:8080,:9100") {
			t.Errorf("logs of %s lack the stand-in's start line:\n%s", pod, logs)
		}
		env := ok(t, conf, "exec", pod, "--", "/usr/local/bin/corral-standin", "env")
		if !strings.Contains(env, "CORRAL_STANDIN=1") {
			t.Errorf("exec env in %s: %q, want CORRAL_STANDIN=1", pod, env)
		}
	}
	ok(t, conf, "delete", "-f", "../../deploy/examples/daemonset-basic.yml")
}

func labKillStart(t *testing.T, dir, conf string) {
	labOK(t, dir, "kill", "worker-1")
	if s := labOK(t, dir, "status"); !strings.Contains(s, "stopped") {
		t.Errorf("status after kill shows nothing stopped:\n%s", s)
	}
	framework.WaitFor(t, "worker-1 no longer Ready", 30*time.Second, func() bool { return nodeReady(t, conf)["worker-1"] != "True" })
	labOK(t, dir, "start", "worker-1")
	framework.WaitFor(t, "worker-1 Ready again", 30*time.Second, func() bool { return nodeReady(t, conf)["worker-1"] == "True" })
}

func labPartitionHeal(t *testing.T, dir, conf string) {
	labOK(t, dir, "partition", "worker-2")
	framework.WaitFor(t, "partitioned worker-2 Unknown", 30*time.Second, func() bool { return nodeReady(t, conf)["worker-2"] == "Unknown" })
	labOK(t, dir, "heal")
	framework.WaitFor(t, "healed worker-2 Ready", 30*time.Second, func() bool { return nodeReady(t, conf)["worker-2"] == "True" })
}

func labPush(t *testing.T, dir, conf string) {
	ref := "example.com/team/app:1"
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	tarPath := filepath.Join(t.TempDir(), "app.tar")
	if err := tarball.WriteToFile(tarPath, tag, framework.WorkloadImage(t)); err != nil {
		t.Fatal(err)
	}
	if out := labOK(t, dir, "push", tarPath, ref); !strings.Contains(out, "Pushed "+ref) {
		t.Errorf("lab push said %q", out)
	}
	ds := `apiVersion: apps/v1
kind: DaemonSet
metadata: {name: pushed}
spec:
  selector: {matchLabels: {app: pushed}}
  template:
    metadata: {labels: {app: pushed}}
    spec:
      nodeSelector: {kubernetes.io/hostname: worker-2}
      containers:
        - name: app
          image: ` + ref + `
`
	if out, errOut, code := corral(t, conf, ds, "apply", "-f", "-"); code != 0 {
		t.Fatalf("apply pushed DaemonSet: %s %s", out, errOut)
	}
	framework.WaitFor(t, "the pushed image's pod Running on worker-2", 60*time.Second, func() bool {
		nodes, phases := podsOf(t, conf, "app=pushed")
		return len(phases) == 1 && allRunning(phases) && sortedValues(nodes)[0] == "worker-2"
	})
}
