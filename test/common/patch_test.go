package common

import (
	"testing"

	corralpb "github.com/corral-dev/corral/proto"
	"github.com/corral-dev/corral/test/framework"
)

// corral patch on a real cluster: a strategic merge patch narrows a
// DaemonSet's nodeSelector (merged into the one it has), and the pod on
// the node that no longer matches goes; a JSON patch then removes the
// added key, and the node gets a pod again.
func testPatch(t *testing.T, f *dsFixture) {
	cl := f.client(t)
	agents := []*framework.SimAgent{
		f.fleet.Start(framework.SimAgentConfig{Name: "patch-1", Labels: map[string]string{"suite": "patch", "zone": "a"}}),
		f.fleet.Start(framework.SimAgentConfig{Name: "patch-2", Labels: map[string]string{"suite": "patch", "zone": "b"}}),
	}
	waitRegistered(t, agents...)
	apply(t, cl, daemonSet(t, "patch", map[string]string{"suite": "patch"}, 0))
	waitPodsOn(t, cl, "patch", "patch-1", "patch-2")

	out, errOut, code := f.cli(t, "patch", "ds", "patch", "-p", `{"spec":{"template":{"spec":{"nodeSelector":{"zone":"a"}}}}}`)
	if code != 0 || out != "daemonset.apps/patch patched\n" {
		t.Fatalf("strategic patch: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	waitPodsOn(t, cl, "patch", "patch-1")
	waitStatus(t, cl, "patch", dsStatus{Desired: 1, Current: 1, Ready: 1, Available: 1, Updated: 1, ObservedGeneration: 2})

	out, errOut, code = f.cli(t, "patch", "ds/patch", "--type=json", "-p", `[{"op":"remove","path":"/spec/template/spec/nodeSelector/zone"}]`)
	if code != 0 || out != "daemonset.apps/patch patched\n" {
		t.Fatalf("JSON patch: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	waitPodsOn(t, cl, "patch", "patch-1", "patch-2")

	// A patch the server's validation refuses changes nothing.
	_, errOut, code = f.cli(t, "patch", "ds", "patch", "--type=merge", "-p", `{"spec":{"updateStrategy":{"type":"Sometimes"}}}`)
	want := `The DaemonSet "patch" is invalid: spec.updateStrategy.type: Unsupported value: "Sometimes": supported values: "RollingUpdate", "OnDelete"` + "\n"
	if code != 1 || errOut != want {
		t.Fatalf("invalid patch: exit %d, stderr %q, want %q", code, errOut, want)
	}
	resp, err := cl.Get(ctx(t), &corralpb.GetRequest{Kind: "DaemonSet", Namespace: "default", Name: "patch"})
	if err != nil || resp.GetObject().GetDaemonSet().GetMetadata().GetGeneration() != 3 {
		t.Fatalf("after a refused patch: %v, generation %d, want 3", err, resp.GetObject().GetDaemonSet().GetMetadata().GetGeneration())
	}
}
