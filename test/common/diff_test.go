package common

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

// corral diff against a real cluster: the object as the server's dry run
// of the apply would store it, beside the live one, through diff -u -N,
// with kubectl diff's exit codes; nothing is changed.
func testDiff(t *testing.T, f *dsFixture) {
	cl := f.client(t)
	dir := t.TempDir()
	write := func(name string, image string) string {
		t.Helper()
		ds := daemonSet(t, "diff", map[string]string{"suite": "diff"}, 0)
		ds.GetDaemonSet().Spec.Template.Spec.Containers[0].Image = image
		data, err := api.MarshalYAML(ds)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	file := write("ds.yaml", "nginx:1.25")

	// Not there yet: the whole object is new.
	out, errOut, code := f.cli(t, "diff", "-f", file)
	if code != 1 || !strings.Contains(out, "+++ ") || !strings.Contains(out, "/apps.v1.DaemonSet.default.diff") ||
		!strings.Contains(out, "+  name: diff\n") || !strings.Contains(out, "+      - image: nginx:1.25\n") {
		t.Fatalf("diff of a new object: exit %d\nstdout %s\nstderr %q", code, out, errOut)
	}
	if _, err := cl.Get(ctx(t), getDS("diff")); err == nil {
		t.Fatal("diff created the DaemonSet")
	}

	apply(t, cl, daemonSet(t, "diff", map[string]string{"suite": "diff"}, 0))
	if out, errOut, code := f.cli(t, "diff", "-f", file); code != 0 || out != "" {
		t.Fatalf("diff of what is applied: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	// A new image: the template's line and the generation change.
	file = write("ds2.yaml", "nginx:1.27")
	out, errOut, code = f.cli(t, "diff", "-f", file)
	if code != 1 || !strings.Contains(out, "-      - image: nginx:1.25\n+      - image: nginx:1.27\n") ||
		!strings.Contains(out, "-  generation: 1\n+  generation: 2\n") {
		t.Fatalf("diff of a new image: exit %d\nstdout %s\nstderr %q", code, out, errOut)
	}
	resp, err := cl.Get(ctx(t), getDS("diff"))
	if err != nil || resp.GetObject().GetDaemonSet().GetSpec().GetTemplate().GetSpec().GetContainers()[0].GetImage() != "nginx:1.25" {
		t.Fatalf("after diff: %v %v", err, resp)
	}

	// An error exits 2, as kubectl diff's do.
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: x}\nspec: {minReadySecond: 1}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := f.cli(t, "diff", "-f", bad); code != 2 || !strings.Contains(errOut, "spec.minReadySecond: unknown field") {
		t.Fatalf("diff of a bad manifest: exit %d, stderr %q", code, errOut)
	}
}

// getDS is the Get request of DaemonSet name in namespace default.
func getDS(name string) *corralpb.GetRequest {
	return &corralpb.GetRequest{Kind: "DaemonSet", Namespace: "default", Name: name}
}
