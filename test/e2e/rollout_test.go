package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/corral-dev/corral/internal/roottest"
	"github.com/corral-dev/corral/test/common"
	"github.com/corral-dev/corral/test/framework"
)

// podImages maps the DaemonSet's pods to their image.
func podImages(t *testing.T, conf, selector string) map[string]string {
	t.Helper()
	out, _, code := corral(t, conf, "", "get", "pods", "-l", selector, "-o", "json")
	if code != 0 {
		return nil
	}
	var list struct {
		Items []struct {
			Metadata struct{ Name string } `json:"metadata"`
			Spec     struct {
				Containers []struct{ Image string } `json:"containers"`
			} `json:"spec"`
			Status struct{ Phase string } `json:"status"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatal(err)
	}
	out2 := map[string]string{}
	for _, it := range list.Items {
		out2[it.Metadata.Name] = it.Spec.Containers[0].Image + "/" + it.Status.Phase
	}
	return out2
}

func allImages(m map[string]string, want string, n int) bool {
	if len(m) != n {
		return false
	}
	for _, v := range m {
		if v != want+"/Running" {
			return false
		}
	}
	return true
}

// TestRollingUpdateHistoryUndoOnDelete changes the tutorial's nginx
// DaemonSet on three agents: a rolling update that `rollout status`
// follows to the end, its history, an undo, and an OnDelete update that
// waits for pods to be deleted.
func TestRollingUpdateHistoryUndoOnDelete(t *testing.T) {
	roottest.Require(t, "real containers")
	c := framework.NewProcesses(t, 1)
	conf := c.AdminConf()
	reg := framework.NewRegistry(t)
	img := framework.WorkloadImage(t)
	reg.Push(t, "library/nginx:1.25", img)
	reg.Push(t, "library/nginx:1.26", img)
	token := filepath.Join(filepath.Dir(conf), "token")
	for _, n := range []string{"a", "b", "c"} {
		dir := mirroredAgentDir(t, "agent-"+n, reg)
		startAgentProc(t, uniqueName("ru-"+n), c.APIAddr(0), token, dir)
	}
	framework.WaitFor(t, "three nodes Ready", 30*time.Second, func() bool {
		out, _, code := corral(t, conf, "", "get", "nodes")
		return code == 0 && strings.Count(out, " Ready ") == 3
	})
	basic := readFile(t, filepath.Join(common.ExamplesDir(), "daemonset-basic.yml"))
	file := filepath.Join(t.TempDir(), "ds.yml")
	writeFile(t, file, basic)
	ok(t, conf, "apply", "-f", file)
	framework.WaitFor(t, "three nginx:1.25 pods running", 90*time.Second, func() bool {
		return allImages(podImages(t, conf, "app=nginx-daemon"), "nginx:1.25", 3)
	})
	ok(t, conf, "rollout", "status", "ds/nginx-daemonset", "--timeout", "60s")
	// A new image rolls out one node at a time (maxUnavailable 1), and
	// rollout status follows it to the end.
	writeFile(t, file, strings.Replace(basic, "nginx:1.25", "nginx:1.26", 1))
	if out := ok(t, conf, "apply", "-f", file); !strings.Contains(out, "daemonset.apps/nginx-daemonset configured") {
		t.Fatalf("apply: %s", out)
	}
	status := ok(t, conf, "rollout", "status", "ds", "nginx-daemonset", "--timeout", "120s")
	if !strings.Contains(status, `daemon set "nginx-daemonset" successfully rolled out`) || !strings.Contains(status, "new pods have been updated") {
		t.Fatalf("rollout status:\n%s", status)
	}
	if !allImages(podImages(t, conf, "app=nginx-daemon"), "nginx:1.26", 3) {
		t.Fatalf("after the rollout: %v", podImages(t, conf, "app=nginx-daemon"))
	}
	history := ok(t, conf, "rollout", "history", "ds/nginx-daemonset")
	if !regexp.MustCompile(`(?m)^REVISION\s+CHANGE-CAUSE\n1\s+<none>\n2\s+<none>`).MatchString(history) {
		t.Fatalf("rollout history:\n%s", history)
	}
	if rev := ok(t, conf, "rollout", "history", "ds/nginx-daemonset", "--revision", "1"); !strings.Contains(rev, "nginx:1.25") {
		t.Fatalf("revision 1:\n%s", rev)
	}
	// Undo goes back to 1.25; revision 1 becomes revision 3.
	if out := ok(t, conf, "rollout", "undo", "ds/nginx-daemonset"); !strings.Contains(out, "daemonset.apps/nginx-daemonset rolled back") {
		t.Fatalf("undo: %s", out)
	}
	ok(t, conf, "rollout", "status", "ds/nginx-daemonset", "--timeout", "120s")
	if !allImages(podImages(t, conf, "app=nginx-daemon"), "nginx:1.25", 3) {
		t.Fatalf("after undo: %v", podImages(t, conf, "app=nginx-daemon"))
	}
	framework.WaitFor(t, "history renumbered", 10*time.Second, func() bool {
		h := ok(t, conf, "rollout", "history", "ds/nginx-daemonset")
		return regexp.MustCompile(`(?m)^2\s+<none>\n3\s+<none>`).MatchString(h) && !regexp.MustCompile(`(?m)^1\s`).MatchString(h)
	})
	// OnDelete: nothing changes until a pod is deleted; that one comes
	// back with the new template.
	onDelete := strings.Replace(strings.Replace(basic, "nginx:1.25", "nginx:1.26", 1),
		"spec:\n  selector:", "spec:\n  updateStrategy:\n    type: OnDelete\n  selector:", 1)
	writeFile(t, file, onDelete)
	ok(t, conf, "apply", "-f", file)
	if _, errOut, code := corral(t, conf, "", "rollout", "status", "ds/nginx-daemonset"); code == 0 || !strings.Contains(errOut, "rollout status is only available for RollingUpdate strategy type") {
		t.Fatalf("rollout status with OnDelete: exit %d, %s", code, errOut)
	}
	before := podImages(t, conf, "app=nginx-daemon")
	framework.WaitFor(t, "the controller to see the new template", 10*time.Second, func() bool {
		out := ok(t, conf, "get", "ds", "nginx-daemonset", "-o", "json")
		return strings.Contains(out, `"observedGeneration": 4`)
	})
	if now := podImages(t, conf, "app=nginx-daemon"); fmt.Sprint(now) != fmt.Sprint(before) {
		t.Fatalf("OnDelete changed pods: before %v, after %v", before, now)
	}
	var victim string
	for name := range before {
		victim = name
		break
	}
	ok(t, conf, "delete", "pod", victim)
	framework.WaitFor(t, "the deleted pod replaced with the new template", 90*time.Second, func() bool {
		now := podImages(t, conf, "app=nginx-daemon")
		n126 := 0
		for _, v := range now {
			if v == "nginx:1.26/Running" {
				n126++
			}
		}
		return len(now) == 3 && n126 == 1
	})
	// set image changes the template like an edit would (OnDelete: no pod
	// changes), and the new revision records the DaemonSet's change cause.
	before = podImages(t, conf, "app=nginx-daemon")
	ok(t, conf, "annotate", "ds/nginx-daemonset", "kubernetes.io/change-cause=nginx 1.27 by set image")
	if out := ok(t, conf, "set", "image", "ds/nginx-daemonset", "nginx=nginx:1.27"); strings.TrimSpace(out) != "daemonset.apps/nginx-daemonset image updated" {
		t.Fatalf("set image: %q", out)
	}
	if img := ok(t, conf, "get", "ds", "nginx-daemonset", "-o", "jsonpath={.spec.template.spec.containers[0].image}"); img != "nginx:1.27" {
		t.Fatalf("template image after set image: %q", img)
	}
	if _, errOut, code := corral(t, conf, "", "set", "image", "ds/nginx-daemonset", "nope=nginx:1.27"); code == 0 || !strings.Contains(errOut, `unable to find container named "nope"`) {
		t.Fatalf("set image of a missing container: exit %d, %s", code, errOut)
	}
	framework.WaitFor(t, "the revision of nginx:1.27 with its change cause", 10*time.Second, func() bool {
		return regexp.MustCompile(`(?m)^\d+\s+nginx 1.27 by set image$`).MatchString(ok(t, conf, "rollout", "history", "ds/nginx-daemonset"))
	})
	if now := podImages(t, conf, "app=nginx-daemon"); fmt.Sprint(now) != fmt.Sprint(before) {
		t.Fatalf("set image under OnDelete changed pods: before %v, after %v", before, now)
	}
}
