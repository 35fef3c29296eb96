package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPatch(t *testing.T) {
	fake := newFakeCluster()
	h := newHarness(t, fake)
	fake.put(objs(seedDaemonSet())[0])
	spec := func() string {
		s := fake.object("DaemonSet", "default", "nginx-daemonset").GetDaemonSet().GetSpec().GetTemplate().GetSpec()
		return s.GetNodeSelector()["disktype"] + " " + s.GetContainers()[0].GetImage()
	}

	// A strategic merge patch; another writer in between: it is applied
	// again to the fresh copy.
	fake.conflicts = 1
	if out := h.mustRun("patch", "ds", "nginx-daemonset", "-p", `{"spec":{"template":{"spec":{"nodeSelector":{"disktype":"ssd"}}}}}`); out != "daemonset.apps/nginx-daemonset patched\n" {
		t.Fatalf("patch: %q", out)
	}
	if got := spec(); got != "ssd nginx:1.25" {
		t.Fatalf("after the patch: %s", got)
	}
	// The same patch again changes nothing and writes nothing.
	before := fake.updates
	if out := h.mustRun("patch", "ds/nginx-daemonset", "-p", `spec: {template: {spec: {nodeSelector: {disktype: ssd}}}}`); out != "daemonset.apps/nginx-daemonset patched (no change)\n" || fake.updates != before {
		t.Fatalf("same patch: %q, %d updates", out, fake.updates-before)
	}
	// A patch naming a resourceVersion is conditional on it.
	rv := fake.object("DaemonSet", "default", "nginx-daemonset").GetDaemonSet().GetMetadata().GetResourceVersion()
	if _, errOut, code := h.run("patch", "ds", "nginx-daemonset", "-p", `{"metadata":{"resourceVersion":"1"},"spec":{"minReadySeconds":5}}`); code != 1 ||
		errOut != `Error from server (Conflict): Operation cannot be fulfilled on daemonsets.apps "nginx-daemonset": the object has been modified; please apply your changes to the latest version and try again`+"\n" || fake.updates != before {
		t.Fatalf("stale resourceVersion: exit %d, stderr %q, %d updates", code, errOut, fake.updates-before)
	}
	if out := h.mustRun("patch", "ds", "nginx-daemonset", "-p", `{"metadata":{"resourceVersion":"`+rv+`"},"spec":{"minReadySeconds":5}}`); out != "daemonset.apps/nginx-daemonset patched\n" {
		t.Fatalf("current resourceVersion: %q", out)
	}
	before = fake.updates
	// The status is the server's: a patch of it changes nothing.
	if out := h.mustRun("patch", "ds", "nginx-daemonset", "--type=merge", "-p", `{"status":{"numberReady":42}}`); out != "daemonset.apps/nginx-daemonset patched (no change)\n" || fake.updates != before {
		t.Fatalf("status patch: %q, %d updates", out, fake.updates-before)
	}
	// Containers merge by name; dry runs store nothing; -o prints the result.
	image := `{"spec":{"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:1.27"}]}}}}`
	if out := h.mustRun("patch", "ds", "nginx-daemonset", "-p", image, "--dry-run=client"); out != "daemonset.apps/nginx-daemonset patched (dry run)\n" {
		t.Fatalf("--dry-run=client: %q", out)
	}
	if out := h.mustRun("patch", "ds", "nginx-daemonset", "-p", image, "--dry-run=client", "-o", "jsonpath={.spec.template.spec.containers[*].image}"); out != "nginx:1.27" {
		t.Fatalf("--dry-run=client -o jsonpath: %q", out)
	}
	if fake.updates != before {
		t.Fatalf("a client dry run sent %d updates", fake.updates-before)
	}
	if out := h.mustRun("patch", "ds", "nginx-daemonset", "-p", image, "--dry-run=server"); out != "daemonset.apps/nginx-daemonset patched (server dry run)\n" {
		t.Fatalf("--dry-run=server: %q", out)
	}
	if got := spec(); got != "ssd nginx:1.25" {
		t.Fatalf("a dry run stored %s", got)
	}
	// A JSON merge patch from a file, then a JSON patch.
	file := filepath.Join(t.TempDir(), "patch.yaml")
	if err := os.WriteFile(file, []byte("spec:\n  template:\n    spec:\n      nodeSelector: null\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := h.mustRun("patch", "ds", "nginx-daemonset", "--type=merge", "--patch-file", file); out != "daemonset.apps/nginx-daemonset patched\n" {
		t.Fatalf("--type=merge: %q", out)
	}
	if out := h.mustRun("patch", "ds", "nginx-daemonset", "--type", "json", "-p", `[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"nginx:1.27"}]`); out != "daemonset.apps/nginx-daemonset patched\n" {
		t.Fatalf("--type=json: %q", out)
	}
	if got := spec(); got != " nginx:1.27" {
		t.Fatalf("after the merge and JSON patches: %q", got)
	}

	// Errors: each names what is wrong, exits 1 and writes nothing.
	before = fake.updates
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"ds", "nginx-daemonset"}, "error: must specify --patch or --patch-file containing the contents of the patch\n"},
		{[]string{"ds", "nginx-daemonset", "-p", "{}", "--patch-file", file}, "error: --patch and --patch-file cannot be used together\n"},
		{[]string{"ds", "nginx-daemonset", "-p", "{}", "--type", "apply"}, "error: --type must be one of [json merge strategic], not \"apply\"\n"},
		{[]string{"ds", "nginx-daemonset", "-p", `{"spec":`}, `unable to parse "{\"spec\":"`},
		{[]string{"ds", "nginx-daemonset", "-p", `{"spec":{"template":{"spec":{"nodeSelectr":{"a":"b"}}}}}`}, "spec.template.spec.nodeSelectr: unknown field"},
		{[]string{"ds", "nginx-daemonset", "-p", `{"spec":{"template":{"spec":{"containers":[{"name":"nginx","image":""}]}}}}`},
			`The DaemonSet "nginx-daemonset" is invalid: spec.template.spec.containers[0].image: Required value`},
		{[]string{"ds", "nginx-daemonset", "-p", `{"metadata":{"name":"other"}}`}, "a patch may not change apiVersion, kind, name or namespace"},
		{[]string{"ds", "missing", "-p", "{}"}, `Error from server (NotFound): daemonsets.apps "missing" not found`},
		{[]string{"-p", "{}"}, "error: one or more resources must be specified"},
	} {
		_, errOut, code := h.run(append([]string{"patch"}, tc.args...)...)
		if code != 1 || !strings.Contains(errOut, tc.err) {
			t.Errorf("patch %q: exit %d, stderr %q; want %q", tc.args, code, errOut, tc.err)
		}
	}
	if fake.updates != before || spec() != " nginx:1.27" {
		t.Fatalf("a refused patch wrote: %d updates, spec %q", fake.updates-before, spec())
	}
}
