package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/corral-dev/corral/internal/roottest"
	"github.com/corral-dev/corral/lab"
	"github.com/corral-dev/corral/test/common"
	"github.com/corral-dev/corral/test/framework"
)

// TestTutorialOnLab follows the tutorial on a 3-server, 3-agent lab, as a
// user would after `sudo make lab`, asserting what the tutorial says the
// user sees.
func TestTutorialOnLab(t *testing.T) {
	roottest.Require(t, "real containers")
	framework.Binary(t)
	dir := filepath.Join(t.TempDir(), "lab")
	servers := []string{"server-1", "server-2", "server-3"}
	workers := []string{"worker-1", "worker-2", "worker-3"}
	all := append(append([]string{}, servers...), workers...)
	traces := newLabTraces(dir, append(all, "worker-4")...)
	t.Cleanup(func() {
		dumpLabLogs(t, dir, traces.nodes)
		if out, err := labCmd(t, dir, "down"); err != nil {
			t.Logf("lab down in cleanup: %v\n%s", err, out)
		}
	})
	start := time.Now()
	labOK(t, dir, "up", "--servers", "3", "--agents", "3")
	t.Logf("lab up (3+3) took %s", time.Since(start).Round(time.Millisecond))
	conf := filepath.Join(dir, "admin.conf")
	ex := common.ExamplesDir()
	apply := func(files ...string) {
		t.Helper()
		args := []string{"apply"}
		for _, f := range files {
			args = append(args, "-f", filepath.Join(ex, f))
		}
		ok(t, conf, args...)
	}
	onNodes := func(what, selector string, want []string) {
		t.Helper()
		framework.WaitFor(t, what, 90*time.Second, func() bool {
			podNodes, phases := podsOf(t, conf, selector)
			return strings.Join(sortedValues(podNodes), ",") == strings.Join(want, ",") && (len(want) == 0 || allRunning(phases))
		})
	}

	// daemonset-basic: one pod per worker; the servers' control-plane
	// taint keeps it off them.
	apply("daemonset-basic.yml")
	onNodes("one nginx pod per worker", "app=nginx-daemon", workers)
	framework.WaitFor(t, "get ds: 3 desired, current, ready, up-to-date, available", 60*time.Second, func() bool {
		return regexp.MustCompile(`(?m)^nginx-daemonset\s+3\s+3\s+3\s+3\s+3\s+<none>\s+\S+$`).MatchString(ok(t, conf, "get", "ds"))
	})
	framework.WaitFor(t, "describe ds as the tutorial shows it", 30*time.Second, func() bool {
		d := ok(t, conf, "describe", "ds", "nginx-daemonset")
		return strings.Contains(d, "Desired Number of Nodes Scheduled: 3") && strings.Contains(d, "Pods Status:  3 Running / 0 Waiting / 0 Succeeded / 0 Failed") &&
			strings.Count(d, "SuccessfulCreate") == 3
	})
	// Each nginx pod answers HTTP on its pod IP and container port, from
	// the lab host and from every node.
	for _, p := range podAddrs(t, conf, "-l", "app=nginx-daemon") {
		url := fmt.Sprintf("http://%s:80/", p.IP)
		framework.WaitFor(t, "the host reaches nginx at "+url, 20*time.Second, func() bool { return p.IP != "" && httpFrom("", url) })
		for _, n := range all {
			ns, err := lab.NodeNetNS(dir, n)
			if err != nil {
				t.Fatal(err)
			}
			framework.WaitFor(t, n+" reaches nginx at "+url, 20*time.Second, func() bool { return httpFrom(ns, url) })
		}
	}
	// Tolerations: special-daemon and fluentd run on all six nodes.
	apply("daemonset-tolerations.yml", "fluentd.yml")
	onNodes("special-daemon everywhere", "app=special-daemon", all)
	onNodes("fluentd everywhere", "-n kube-system -l app=fluentd", all)
	fluentd, _ := podsOf(t, conf, "-n kube-system -l app=fluentd")
	for pod := range fluentd {
		if lim := ok(t, conf, "exec", "-n", "kube-system", pod, "--", "/usr/local/bin/corral-standin", "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"); strings.TrimSpace(lim) != "209715200" {
			t.Errorf("fluentd memory limit %q, want 209715200", lim)
		}
		if _, errOut, code := corral(t, conf, "", "exec", "-n", "kube-system", pod, "--", "/usr/local/bin/corral-standin", "cat", "/var/log/lastlog"); code != 0 && !strings.Contains(errOut, "no such file") {
			t.Errorf("hostPath /var/log not readable: %s", errOut)
		}
		break
	}
	// nodeSelector and affinity follow labels.
	ok(t, conf, "label", "nodes", "worker-1", "disktype=ssd")
	apply("daemonset-node-selector.yml")
	onNodes("ssd-monitor on worker-1", "app=ssd-monitor", []string{"worker-1"})
	ok(t, conf, "label", "nodes", "worker-1", "disktype-")
	onNodes("ssd-monitor gone", "app=ssd-monitor", nil)
	ok(t, conf, "label", "nodes", "worker-2", "environment=production")
	apply("daemonset-node-affinity.yml")
	onNodes("production-monitor on worker-2", "app=prod-monitor", []string{"worker-2"})
	// node-exporter: hostNetwork port 9100 answers on every node's address.
	apply("namespace-monitoring.yml")
	apply("node-exporter.yml")
	onNodes("node-exporter on the workers", "-n monitoring -l app=node-exporter", workers)
	addrs := labAddresses(t, dir)
	for _, w := range workers {
		framework.WaitFor(t, "node-exporter answers on "+w, 30*time.Second, func() bool {
			resp, err := http.Get(fmt.Sprintf("http://%s:9100/", addrs[w]))
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == 200
		})
	}
	// ... and from inside it sees the node's network and processes.
	ne, _ := podsOf(t, conf, "-n monitoring -l app=node-exporter")
	for pod := range ne {
		standin := []string{"exec", "-n", "monitoring", pod, "--", "/usr/local/bin/corral-standin", "cat"}
		if dev := ok(t, conf, append(standin, "/proc/net/dev")...); !strings.Contains(dev, "corral0:") {
			t.Errorf("hostNetwork: node-exporter does not see the node's pod bridge in /proc/net/dev:\n%s", dev)
		}
		if one := ok(t, conf, append(standin, "/proc/1/cmdline")...); strings.Contains(one, "/.corral/init") {
			t.Errorf("hostPID: node-exporter's PID 1 is its own container init (%q), not the node's", one)
		}
		break
	}
	// kube-proxy: its ConfigMap volume, privileged, system-node-critical.
	apply("kube-proxy-configmap.yml", "kube-proxy.yml")
	onNodes("kube-proxy everywhere", "-n kube-system -l k8s-app=kube-proxy", all)
	kp, _ := podsOf(t, conf, "-n kube-system -l k8s-app=kube-proxy")
	for pod := range kp {
		if cfg := ok(t, conf, "exec", "-n", "kube-system", pod, "--", "/usr/local/bin/kube-proxy", "cat", "/var/lib/kube-proxy/config.conf"); !strings.Contains(cfg, "KubeProxyConfiguration") {
			t.Errorf("kube-proxy config.conf: %q", cfg)
		}
		if pj := ok(t, conf, "get", "pod", "-n", "kube-system", pod, "-o", "json"); !strings.Contains(pj, `"priority": 2000001000`) {
			t.Errorf("kube-proxy pod priority not system-node-critical")
		}
		if caps := capEff(t, ok(t, conf, "exec", "-n", "kube-system", pod, "--", "/usr/local/bin/kube-proxy", "cat", "/proc/self/status")); caps&(1<<21) == 0 || caps&(1<<12) == 0 {
			t.Errorf("kube-proxy is privileged but its effective capabilities %#x lack CAP_SYS_ADMIN or CAP_NET_ADMIN", caps)
		}
		break
	}
	// A rolling update survives the leader's death (kill -9).
	tpl := strings.Replace(readFile(t, filepath.Join(ex, "daemonset-basic.yml")), "app: nginx-daemon\n    spec:", "app: nginx-daemon\n      annotations:\n        rev: \"2\"\n    spec:", 1)
	f := filepath.Join(t.TempDir(), "basic-v2.yml")
	writeFile(t, f, tpl)
	rollout := watchRollout(t, conf, "app=nginx-daemon", workers, "2")
	ok(t, conf, "apply", "-f", f)
	labOK(t, dir, "kill", labLeader(t, conf))
	if out := ok(t, conf, "rollout", "status", "ds", "nginx-daemonset", "--timeout", "180s"); !strings.Contains(out, "successfully rolled out") {
		t.Fatalf("rollout status after the leader's death: %s", out)
	}
	worst, changes := rollout.finish(t)
	t.Logf("rolling update: at most %d of %d workers without an available nginx pod, over %d pod changes", worst, len(workers), changes)
	if worst != 1 {
		t.Errorf("during the rolling update up to %d of the workers at once had no available nginx pod, want 1 (maxUnavailable 1, maxSurge 0)", worst)
	}
	// Nodes come and go: a new agent gets the pod, a removed one loses it.
	labOK(t, dir, "add-node", "worker-4")
	onNodes("nginx on worker-4 too", "app=nginx-daemon", append(append([]string{}, workers...), "worker-4"))
	labOK(t, dir, "remove-node", "worker-4")
	onNodes("worker-4's pod collected", "app=nginx-daemon", workers)
	// Events, sorted as the tutorial sorts them.
	if ev := ok(t, conf, "get", "events", "--sort-by=.lastTimestamp"); !strings.Contains(ev, "SuccessfulCreate") || !strings.Contains(ev, "daemonset/nginx-daemonset") {
		t.Errorf("get events:\n%s", ev)
	}
	// delete --cascade=orphan keeps the pods; deleting for real removes them.
	ok(t, conf, "delete", "ds", "nginx-daemonset", "--cascade=orphan")
	onNodes("orphans still there", "app=nginx-daemon", workers)
	ok(t, conf, "apply", "-f", f)
	ok(t, conf, "delete", "ds", "nginx-daemonset")
	onNodes("nginx pods gone", "app=nginx-daemon", nil)

	labOK(t, dir, "down")
	if left := traces.left(); len(left) > 0 {
		t.Fatalf("lab down left traces:\n%s", strings.Join(left, "\n"))
	}
}

// capEff is the CapEff mask of a /proc/PID/status.
func capEff(t *testing.T, status string) uint64 {
	t.Helper()
	for _, line := range strings.Split(status, "\n") {
		if v, found := strings.CutPrefix(line, "CapEff:"); found {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				t.Fatalf("CapEff %q: %v", v, err)
			}
			return n
		}
	}
	t.Fatalf("no CapEff in:\n%s", status)
	return 0
}

// rolloutWatch follows, change by change, the pods a selector picks
// through `corral get pods -w -o json --output-watch-events` on the leader,
// which resumes on another server when the leader dies.
type rolloutWatch struct {
	nodes   []string
	cmd     *exec.Cmd
	stderr  bytes.Buffer
	armed   chan struct{} // closed once every node has an available pod
	mu      sync.Mutex
	worst   int             // most nodes at once without an available pod, once armed
	changes int             // events seen once armed
	updated map[string]bool // nodes that had an available pod with the new template
	ended   chan struct{}   // the watch's output ended
	stopped bool            // stop killed the watch: its end is no failure
}

// watchRollout starts following the pods of selector on nodes and returns
// once the watch has seen every node with an available pod (Running, Ready,
// not terminating). A pod is of the new template when its annotation
// rev is rev.
func watchRollout(t *testing.T, conf, selector string, nodes []string, rev string) *rolloutWatch {
	t.Helper()
	w := &rolloutWatch{nodes: nodes, armed: make(chan struct{}), ended: make(chan struct{}), updated: map[string]bool{}}
	// The leader first: killing it must not end the watch.
	var servers []string
	for _, line := range strings.Split(ok(t, conf, "cluster", "members", "--no-headers"), "\n") {
		if f := strings.Fields(line); len(f) >= 4 && f[3] == "Leader" {
			servers = append([]string{f[2]}, servers...)
		} else if len(f) >= 4 {
			servers = append(servers, f[2])
		}
	}
	w.cmd = exec.Command(framework.Binary(t), "--config", conf, "--server", strings.Join(servers, ","),
		"get", "pods", "-l", selector, "-w", "-o", "json", "--output-watch-events")
	w.cmd.Stderr = &w.stderr
	out, err := w.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.cmd.Start(); err != nil {
		t.Fatalf("start the pod watch: %v", err)
	}
	t.Cleanup(func() { w.stop() })
	go w.follow(json.NewDecoder(out), rev)
	select {
	case <-w.armed:
	case <-w.ended:
		w.stop()
		t.Fatalf("the pod watch ended before every node had an available pod: %s", w.stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("the pod watch did not see an available pod on every node of %v within 30s", nodes)
	}
	return w
}

// follow applies each event to the pods it knows and counts the nodes
// without an available pod after each.
func (w *rolloutWatch) follow(dec *json.Decoder, rev string) {
	defer close(w.ended)
	type podView struct {
		node             string
		available, isNew bool
	}
	pods := map[string]podView{}
	armed := false
	for {
		var ev struct {
			Type   string `json:"type"`
			Object struct {
				Metadata struct {
					Name              string            `json:"name"`
					Annotations       map[string]string `json:"annotations"`
					DeletionTimestamp string            `json:"deletionTimestamp"`
				} `json:"metadata"`
				Spec struct {
					NodeName string `json:"nodeName"`
				} `json:"spec"`
				Status struct {
					Phase      string                          `json:"phase"`
					Conditions []struct{ Type, Status string } `json:"conditions"`
				} `json:"status"`
			} `json:"object"`
		}
		if err := dec.Decode(&ev); err != nil {
			return
		}
		o := ev.Object
		if ev.Type == "DELETED" {
			delete(pods, o.Metadata.Name)
		} else {
			v := podView{node: o.Spec.NodeName, isNew: o.Metadata.Annotations["rev"] == rev}
			for _, c := range o.Status.Conditions {
				if c.Type == "Ready" && c.Status == "True" {
					v.available = o.Status.Phase == "Running" && o.Metadata.DeletionTimestamp == ""
				}
			}
			pods[o.Metadata.Name] = v
		}
		available := map[string]bool{}
		w.mu.Lock()
		for _, p := range pods {
			if p.available {
				available[p.node] = true
				if p.isNew {
					w.updated[p.node] = true
				}
			}
		}
		missing := 0
		for _, n := range w.nodes {
			if !available[n] {
				missing++
			}
		}
		if armed {
			w.worst, w.changes = max(w.worst, missing), w.changes+1
		}
		w.mu.Unlock()
		if !armed && missing == 0 {
			armed = true
			close(w.armed)
		}
	}
}

// allUpdated reports whether every node has had an available pod of the new
// template.
func (w *rolloutWatch) allUpdated() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, n := range w.nodes {
		if !w.updated[n] {
			return false
		}
	}
	return true
}

// finish waits until the watch has seen the new template available on every
// node, then stops it and returns the most nodes it saw at once without an
// available pod and the number of changes it saw.
func (w *rolloutWatch) finish(t *testing.T) (worst, changes int) {
	t.Helper()
	framework.WaitFor(t, "the pod watch sees the new template available on every node", 30*time.Second, func() bool {
		select {
		case <-w.ended:
			w.stop()
			t.Fatalf("the pod watch ended during the rollout: %s", w.stderr.String())
		default:
		}
		return w.allUpdated()
	})
	w.stop()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.worst, w.changes
}

// stop kills the watch and waits for it.
func (w *rolloutWatch) stop() {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return
	}
	w.stopped = true
	w.mu.Unlock()
	_ = w.cmd.Process.Kill()
	<-w.ended
	_ = w.cmd.Wait()
}

// labAddresses reads the nodes' addresses from `lab status`.
func labAddresses(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := labOK(t, dir, "status")
	addrs := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && strings.Count(f[2], ".") == 3 {
			addrs[f[0]] = f[2]
		}
	}
	return addrs
}

// labLeader is the name of the Raft leader.
func labLeader(t *testing.T, conf string) string {
	t.Helper()
	for _, line := range strings.Split(ok(t, conf, "cluster", "members"), "\n") {
		if strings.Contains(line, "Leader") {
			return strings.Fields(line)[0]
		}
	}
	t.Fatal("no leader in cluster members")
	return ""
}
