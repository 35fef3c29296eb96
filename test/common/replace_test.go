package common

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
	"github.com/corral-dev/corral/test/framework"
)

// corral replace on a real cluster: the object replaced whole from a file,
// conditional on the file's resourceVersion when it gives one; --force
// deletes it and creates it again once it is gone.
func testReplace(t *testing.T, f *dsFixture) {
	cl := f.client(t)
	sel := map[string]string{"suite": "replace"}
	f.agents(t, "replace", 1, sel)
	apply(t, cl, daemonSet(t, "replace", sel, 0))
	pods := waitPodsOn(t, cl, "replace", "replace-1")
	dir := t.TempDir()
	write := func(name string, change func(*corralpb.DaemonSet)) string {
		t.Helper()
		ds := daemonSet(t, "replace", sel, 0)
		change(ds.GetDaemonSet())
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
	get := func() *corralpb.DaemonSet {
		t.Helper()
		resp, err := cl.Get(ctx(t), getDS("replace"))
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetObject().GetDaemonSet()
	}
	image := func(ds *corralpb.DaemonSet) string {
		return ds.GetSpec().GetTemplate().GetSpec().GetContainers()[0].GetImage()
	}
	newImage := write("image.yaml", func(ds *corralpb.DaemonSet) { ds.Spec.Template.Spec.Containers[0].Image = "nginx:1.27" })

	if out, errOut, code := f.cli(t, "replace", "-f", newImage, "--dry-run=server"); code != 0 || out != "daemonset.apps/replace replaced (server dry run)\n" || image(get()) != "nginx:1.25" {
		t.Fatalf("replace --dry-run=server: exit %d, stdout %q, stderr %q, image %s", code, out, errOut, image(get()))
	}
	if out, errOut, code := f.cli(t, "replace", "-f", newImage); code != 0 || out != "daemonset.apps/replace replaced\n" {
		t.Fatalf("replace: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if ds := get(); image(ds) != "nginx:1.27" || ds.GetMetadata().GetGeneration() != 2 || ds.GetMetadata().GetUid() == "" {
		t.Fatalf("after replace: image %s, generation %d", image(ds), ds.GetMetadata().GetGeneration())
	}

	// A resourceVersion in the file makes the replace conditional on it.
	stale := write("stale.yaml", func(ds *corralpb.DaemonSet) { ds.Metadata.ResourceVersion = "1" })
	if _, errOut, code := f.cli(t, "replace", "-f", stale); code != 1 || !strings.HasPrefix(errOut, "Error from server (Conflict): ") {
		t.Fatalf("replace of a stale version: exit %d, stderr %q", code, errOut)
	}
	missing := write("missing.yaml", func(ds *corralpb.DaemonSet) { ds.Metadata.Name = "replace-missing" })
	if _, errOut, code := f.cli(t, "replace", "-f", missing); code != 1 || errOut != `Error from server (NotFound): daemonsets.apps "replace-missing" not found`+"\n" {
		t.Fatalf("replace of a missing object: exit %d, stderr %q", code, errOut)
	}
	if image(get()) != "nginx:1.27" {
		t.Fatal("a refused replace changed the DaemonSet")
	}

	// --force: deleted, gone, created again: a new object and new pods.
	old := get().GetMetadata().GetUid()
	out, errOut, code := f.cli(t, "replace", "--force", "-f", newImage)
	if code != 0 || out != "daemonset.apps \"replace\" deleted\ndaemonset.apps/replace replaced\n" {
		t.Fatalf("replace --force: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if ds := get(); ds.GetMetadata().GetUid() == old || image(ds) != "nginx:1.27" || ds.GetMetadata().GetGeneration() != 1 {
		t.Fatalf("after replace --force: uid %s (was %s), image %s, generation %d", ds.GetMetadata().GetUid(), old, image(ds), ds.GetMetadata().GetGeneration())
	}
	framework.WaitFor(t, "the old pod replaced", 30*time.Second, func() bool {
		now := podsOf(t, cl, "replace")
		return len(now) == 1 && now[0].GetMetadata().GetUid() != pods[0].GetMetadata().GetUid()
	})
	waitPodsOn(t, cl, "replace", "replace-1")
}
