package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/corral-dev/corral/internal/roottest"
	"github.com/corral-dev/corral/test/framework"
)

// podEvent is one change the pod watch saw, and when it saw it.
type podEvent struct {
	at      time.Time
	typ     string
	name    string
	image   string
	running bool   // the container is running
	waiting string // the container's waiting message
}

// watchPods follows the pods selector picks (`get pods -w -o json
// --output-watch-events`) until the returned func is called, which stops the
// watch and returns every change seen. It returns once the watch has listed
// the current pods (at least existing of them), so that no later change
// can slip in before the watch begins.
func watchPods(t *testing.T, conf, selector string, existing int) func() []podEvent {
	t.Helper()
	cmd := exec.Command(framework.Binary(t), "--config", conf, "get", "pods", "-l", selector, "-w", "-o", "json", "--output-watch-events")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []podEvent
	done := make(chan struct{})
	go func() {
		defer close(done)
		dec := json.NewDecoder(out)
		for {
			var ev struct {
				Type   string `json:"type"`
				Object struct {
					Metadata struct{ Name string } `json:"metadata"`
					Spec     struct {
						Containers []struct{ Image string } `json:"containers"`
					} `json:"spec"`
					Status struct {
						ContainerStatuses []struct {
							State struct {
								Running *struct{} `json:"running"`
								Waiting *struct {
									Message string `json:"message"`
								} `json:"waiting"`
							} `json:"state"`
						} `json:"containerStatuses"`
					} `json:"status"`
				} `json:"object"`
			}
			if dec.Decode(&ev) != nil {
				return
			}
			e := podEvent{at: time.Now(), typ: ev.Type, name: ev.Object.Metadata.Name}
			if cs := ev.Object.Spec.Containers; len(cs) > 0 {
				e.image = cs[0].Image
			}
			if cs := ev.Object.Status.ContainerStatuses; len(cs) > 0 {
				e.running = cs[0].State.Running != nil
				if w := cs[0].State.Waiting; w != nil {
					e.waiting = w.Message
				}
			}
			mu.Lock()
			seen = append(seen, e)
			mu.Unlock()
		}
	}()
	stop := func() []podEvent {
		if cmd.Process != nil {
			_ = cmd.Process.Kill()
		}
		<-done
		_ = cmd.Wait()
		mu.Lock()
		defer mu.Unlock()
		return append([]podEvent(nil), seen...)
	}
	var once sync.Once
	var result []podEvent
	t.Cleanup(func() { once.Do(func() { result = stop() }) })
	framework.WaitFor(t, "the pod watch lists the current pods", 30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) >= existing
	})
	return func() []podEvent {
		once.Do(func() { result = stop() })
		return result
	}
}

// TestRollingUpdateWaitsForTheOldPodToTerminate updates a DaemonSet whose
// container ignores SIGTERM (grace period 3 s): the API forgets the old pod
// at once, but the node starts the new one only after the old container
// was killed at the end of its grace period, showing why meanwhile.
func TestRollingUpdateWaitsForTheOldPodToTerminate(t *testing.T) {
	roottest.Require(t, "real containers")
	c := framework.NewProcesses(t, 1)
	conf := c.AdminConf()
	reg := framework.NewRegistry(t)
	img := framework.WorkloadImage(t)
	reg.Push(t, "library/slowstop:1", img)
	reg.Push(t, "library/slowstop:2", img)
	dir := mirroredAgentDir(t, "agent", reg)
	node := uniqueName("slowstop")
	startAgentProc(t, node, c.APIAddr(0), filepath.Join(filepath.Dir(conf), "token"), dir)
	// Before the node is there, the DaemonSet wants no pod and its rollout
	// is trivially done.
	framework.WaitFor(t, "the node Ready", 30*time.Second, func() bool {
		out, _, code := corral(t, conf, "", "get", "node", node)
		return code == 0 && strings.Contains(out, " Ready ")
	})
	manifest := func(tag string) string {
		return fmt.Sprintf(`apiVersion: apps/v1
kind: DaemonSet
metadata: {name: slowstop}
spec:
  selector: {matchLabels: {app: slowstop}}
  template:
    metadata: {labels: {app: slowstop}}
    spec:
      nodeSelector: {kubernetes.io/hostname: %s}
      terminationGracePeriodSeconds: 3
      containers:
      - name: app
        image: slowstop:%s
        env: [{name: WORKLOAD_IGNORE_TERM, value: "1"}, {name: WORKLOAD_LISTEN, value: ":8080"}]
        # Ready once it serves, which is after it ignores SIGTERM: before
        # that a SIGTERM would end it at once.
        readinessProbe: {httpGet: {path: /ready, port: 8080}, periodSeconds: 1}
`, node, tag)
	}
	file := filepath.Join(t.TempDir(), "ds.yml")
	writeFile(t, file, manifest("1"))
	ok(t, conf, "apply", "-f", file)
	ok(t, conf, "rollout", "status", "ds/slowstop", "--timeout", "90s")
	events := watchPods(t, conf, "app=slowstop", 1)
	writeFile(t, file, manifest("2"))
	ok(t, conf, "apply", "-f", file)
	ok(t, conf, "rollout", "status", "ds/slowstop", "--timeout", "90s")
	framework.WaitFor(t, "the watch sees the new pod running", 30*time.Second, func() bool {
		out := ok(t, conf, "get", "pods", "-l", "app=slowstop", "-o", "jsonpath={.items[*].spec.containers[0].image}")
		return strings.TrimSpace(out) == "slowstop:2"
	})
	var deleted, running time.Time
	var waited bool
	seen := events()
	for _, e := range seen {
		switch {
		case e.typ == "DELETED" && e.image == "slowstop:1" && deleted.IsZero():
			deleted = e.at
		case e.image == "slowstop:2" && strings.Contains(e.waiting, "to terminate"):
			waited = true
		case e.image == "slowstop:2" && e.running && running.IsZero():
			running = e.at
		}
	}
	if deleted.IsZero() || running.IsZero() {
		t.Fatalf("the watch did not see the old pod deleted and the new one running: %+v", seen)
	}
	if !waited {
		t.Errorf("the new pod never showed it was waiting for the old one to terminate: %+v", seen)
	}
	if gap := running.Sub(deleted); gap < 2*time.Second {
		t.Errorf("the new pod ran %v after the old one was deleted, within the old container's 3 s grace period", gap)
	}
}
