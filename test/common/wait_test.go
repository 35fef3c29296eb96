package common

import (
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
	"github.com/corral-dev/corral/test/framework"
)

// corral wait on a real cluster, as a lab script uses it: for pods to be
// Ready (their agents report a second after they are assigned, so the
// wait follows them), for a DaemonSet's status by JSONPath, for an object
// to be created, and its timeout.
func testWait(t *testing.T, f *dsFixture) {
	cl := f.client(t)
	sel := map[string]string{"suite": "wait"}
	agents := []*framework.SimAgent{
		f.fleet.Start(framework.SimAgentConfig{Name: "wait-1", Labels: sel, StatusDelay: time.Second}),
		f.fleet.Start(framework.SimAgentConfig{Name: "wait-2", Labels: sel, StatusDelay: time.Second}),
	}
	waitRegistered(t, agents...)
	apply(t, cl, daemonSet(t, "wait", sel, 0))
	framework.WaitFor(t, "two pods of wait", 30*time.Second, func() bool { return len(podsOf(t, cl, "wait")) == 2 })

	out, errOut, code := f.cli(t, "wait", "--for=condition=Ready", "pod", "-l", "app=wait", "--timeout=60s")
	var want []string
	for _, p := range podsOf(t, cl, "wait") {
		want = append(want, "pod/"+p.GetMetadata().GetName()+" condition met")
		if !ready(p) {
			t.Errorf("pod %s is not Ready after the wait: %v", p.GetMetadata().GetName(), p.GetStatus())
		}
	}
	sort.Strings(want)
	if code != 0 || out != strings.Join(want, "\n")+"\n" {
		t.Fatalf("wait for Ready: exit %d, stdout %q, stderr %q; want %q", code, out, errOut, want)
	}

	out, errOut, code = f.cli(t, "wait", "ds/wait", "--for=jsonpath={.status.numberReady}=2", "--timeout=60s")
	if code != 0 || out != "daemonset.apps/wait condition met\n" {
		t.Fatalf("wait for numberReady: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	out, errOut, code = f.cli(t, "wait", "ds/wait", "--for=jsonpath={.status.numberReady}=3", "--timeout=300ms")
	if code != 1 || out != "" || errOut != "error: timed out waiting for the condition on daemonsets/wait\n" {
		t.Fatalf("wait for a count never reached: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if _, errOut, code := f.cli(t, "wait", "pod/wait-missing", "--for=condition=Ready"); code != 1 || errOut != `Error from server (NotFound): pods "wait-missing" not found`+"\n" {
		t.Fatalf("wait on a missing pod: exit %d, stderr %q", code, errOut)
	}
	if out, _, code := f.cli(t, "wait", "pod/wait-missing", "--for=delete"); code != 0 || out != "" {
		t.Fatalf("wait for a pod already gone to be deleted: exit %d, stdout %q", code, out)
	}

	// --for=create follows the namespace until the object appears, whether
	// it comes before or after the wait starts.
	type result struct {
		out, errOut string
		code        int
	}
	done := make(chan result, 1)
	go func() {
		out, errOut, code := f.cli(t, "wait", "configmap/wait-later", "--for=create", "--timeout=60s")
		done <- result{out, errOut, code}
	}()
	cm, err := api.Decode([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: wait-later, namespace: default}\n"), "wait-later.yaml")
	if err != nil {
		t.Fatal(err)
	}
	apply(t, cl, cm...)
	select {
	case r := <-done:
		if r.code != 0 || r.out != "configmap/wait-later condition met\n" {
			t.Fatalf("wait for create: exit %d, stdout %q, stderr %q", r.code, r.out, r.errOut)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("wait --for=create did not return after the object was created")
	}
}

// ready reports whether p's Ready condition is True.
func ready(p *corralpb.Pod) bool {
	for _, c := range p.GetStatus().GetConditions() {
		if c.GetType() == "Ready" {
			return c.GetStatus() == "True"
		}
	}
	return false
}
