package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/corral-dev/corral/internal/roottest"
	"github.com/corral-dev/corral/test/common"
	"github.com/corral-dev/corral/test/framework"
)

// podsOf lists the pods a label selector matches as name → node, and their
// phases.
func podsOf(t *testing.T, conf, selector string) (map[string]string, map[string]string) {
	t.Helper()
	args := []string{"get", "pods", "-o", "json"}
	if strings.HasPrefix(selector, "-") {
		args = append(args, strings.Fields(selector)...)
	} else {
		args = append(args, "-l", selector)
	}
	out, _, code := corral(t, conf, "", args...)
	if code != 0 {
		return nil, nil
	}
	var list struct {
		Items []struct {
			Metadata struct{ Name string } `json:"metadata"`
			Spec     struct {
				NodeName string `json:"nodeName"`
			} `json:"spec"`
			Status struct{ Phase string } `json:"status"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("pods json: %v", err)
	}
	nodes, phases := map[string]string{}, map[string]string{}
	for _, it := range list.Items {
		nodes[it.Metadata.Name] = it.Spec.NodeName
		phases[it.Metadata.Name] = it.Status.Phase
	}
	return nodes, phases
}

func sortedValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

func allRunning(phases map[string]string) bool {
	for _, p := range phases {
		if p != "Running" {
			return false
		}
	}
	return len(phases) > 0
}

// TestDaemonSetOnAgents follows the tutorial's first steps on two agents:
// one pod per node, node selectors following labels, deletion, orphaning
// and adoption.
func TestDaemonSetOnAgents(t *testing.T) {
	roottest.Require(t, "real containers")
	c := framework.NewProcesses(t, 1)
	conf := c.AdminConf()
	reg := framework.NewRegistry(t)
	reg.Push(t, "library/nginx:1.25", framework.WorkloadImage(t))
	token := filepath.Join(filepath.Dir(conf), "token")
	reg.Push(t, "fluent/fluentd:v1.16", framework.WorkloadImage(t))
	// Two workers and a node tainted like a control-plane server.
	var nodes, all []string
	for _, n := range []string{"a", "b", "cp"} {
		name := uniqueName("ds-" + n)
		dir := mirroredAgentDir(t, "agent-"+n, reg)
		var extra []string
		if n == "cp" {
			extra = []string{"--labels", "node-role.kubernetes.io/control-plane=", "--taints", "node-role.kubernetes.io/control-plane:NoSchedule"}
		} else {
			nodes = append(nodes, name)
		}
		startAgentProc(t, name, c.APIAddr(0), token, dir, extra...)
		all = append(all, name)
	}
	sort.Strings(nodes)
	sort.Strings(all)
	framework.WaitFor(t, "three nodes Ready", 30*time.Second, func() bool {
		out, _, code := corral(t, conf, "", "get", "nodes")
		return code == 0 && strings.Count(out, " Ready ") == 3
	})
	basic := filepath.Join(common.ExamplesDir(), "daemonset-basic.yml")
	ok(t, conf, "apply", "-f", basic)
	framework.WaitFor(t, "one running nginx pod per node", 90*time.Second, func() bool {
		podNodes, phases := podsOf(t, conf, "app=nginx-daemon")
		return len(podNodes) == 2 && strings.Join(sortedValues(podNodes), ",") == strings.Join(nodes, ",") && allRunning(phases)
	})
	framework.WaitFor(t, "get ds shows 2 desired, current, ready, up-to-date, available", 30*time.Second, func() bool {
		out := ok(t, conf, "get", "ds", "nginx-daemonset")
		return regexp.MustCompile(`(?m)^nginx-daemonset\s+2\s+2\s+2\s+2\s+2\s+<none>\s+\S+$`).MatchString(out)
	})
	if out := ok(t, conf, "rollout", "status", "ds", "nginx-daemonset", "--timeout", "60s"); !strings.Contains(out, `daemon set "nginx-daemonset" successfully rolled out`) {
		t.Errorf("rollout status:\n%s", out)
	}
	// Events are recorded in batches, a moment after the pods.
	var desc string
	framework.WaitFor(t, "the controller's events in describe", 30*time.Second, func() bool {
		desc = ok(t, conf, "describe", "ds", "nginx-daemonset")
		return strings.Count(desc, "SuccessfulCreate") == 2
	})
	for _, want := range []string{"Desired Number of Nodes Scheduled: 2", "Number of Nodes Scheduled with Available Pods: 2",
		"Pods Status:  2 Running / 0 Waiting / 0 Succeeded / 0 Failed", "SuccessfulCreate", "daemonset-controller", "Created pod: nginx-daemonset-"} {
		if !strings.Contains(desc, want) {
			t.Errorf("describe ds lacks %q:\n%s", want, desc)
		}
	}
	// Tolerations: special-daemon and fluentd also run on the control-plane
	// node; fluentd's memory limit reaches its cgroup.
	ok(t, conf, "apply", "-f", filepath.Join(common.ExamplesDir(), "daemonset-tolerations.yml"), "-f", filepath.Join(common.ExamplesDir(), "fluentd.yml"))
	for _, sel := range []string{"app=special-daemon", "app=fluentd"} {
		framework.WaitFor(t, sel+" running on all three nodes", 90*time.Second, func() bool {
			args := "-l " + sel
			if sel == "app=fluentd" {
				args = "-n kube-system " + args
			}
			podNodes, phases := podsOf(t, conf, args)
			return strings.Join(sortedValues(podNodes), ",") == strings.Join(all, ",") && allRunning(phases)
		})
	}
	fluentd, _ := podsOf(t, conf, "-n kube-system -l app=fluentd")
	for pod := range fluentd {
		if lim := ok(t, conf, "exec", "-n", "kube-system", pod, "--", "/workload", "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"); strings.TrimSpace(lim) != "209715200" {
			t.Errorf("fluentd memory limit in its cgroup: %q, want 209715200 (200Mi)", lim)
		}
		break
	}
	// Node affinity: production-monitor goes where environment is
	// production or staging.
	ok(t, conf, "label", "nodes", nodes[1], "environment=staging")
	ok(t, conf, "apply", "-f", filepath.Join(common.ExamplesDir(), "daemonset-node-affinity.yml"))
	framework.WaitFor(t, "production-monitor on the staging node only", 60*time.Second, func() bool {
		podNodes, phases := podsOf(t, conf, "-l app=prod-monitor")
		return len(podNodes) == 1 && sortedValues(podNodes)[0] == nodes[1] && allRunning(phases)
	})
	// nodeSelector: the ssd-monitor pod follows the disktype=ssd label.
	ok(t, conf, "label", "nodes", nodes[0], "disktype=ssd")
	ok(t, conf, "apply", "-f", filepath.Join(common.ExamplesDir(), "daemonset-node-selector.yml"))
	framework.WaitFor(t, "ssd-monitor on the labelled node only", 60*time.Second, func() bool {
		podNodes, phases := podsOf(t, conf, "app=ssd-monitor")
		return len(podNodes) == 1 && sortedValues(podNodes)[0] == nodes[0] && allRunning(phases)
	})
	ok(t, conf, "label", "nodes", nodes[0], "disktype-")
	framework.WaitFor(t, "ssd-monitor gone with the label", 60*time.Second, func() bool {
		podNodes, _ := podsOf(t, conf, "app=ssd-monitor")
		return podNodes != nil && len(podNodes) == 0
	})
	// --cascade=orphan leaves the pods; applying again adopts them.
	before, _ := podsOf(t, conf, "app=nginx-daemon")
	ok(t, conf, "delete", "ds", "nginx-daemonset", "--cascade=orphan")
	after, _ := podsOf(t, conf, "app=nginx-daemon")
	if len(after) != 2 {
		t.Fatalf("orphaned pods: %v", after)
	}
	ok(t, conf, "apply", "-f", basic)
	framework.WaitFor(t, "the orphans adopted, no new pods", 30*time.Second, func() bool {
		out := ok(t, conf, "get", "pods", "-l", "app=nginx-daemon", "-o", "json")
		podNodes, _ := podsOf(t, conf, "app=nginx-daemon")
		return strings.Count(out, `"controller": true`) == 2 && len(podNodes) == 2
	})
	if now, _ := podsOf(t, conf, "app=nginx-daemon"); fmt.Sprint(now) != fmt.Sprint(before) {
		t.Fatalf("adoption replaced pods: before %v, after %v", before, now)
	}
	// Deleting the DaemonSet removes its pods.
	ok(t, conf, "delete", "ds", "nginx-daemonset")
	framework.WaitFor(t, "pods garbage-collected", 60*time.Second, func() bool {
		podNodes, _ := podsOf(t, conf, "app=nginx-daemon")
		return podNodes != nil && len(podNodes) == 0
	})
}
