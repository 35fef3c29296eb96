package cli

import (
	"testing"

	corralpb "github.com/corral-dev/corral/proto"
)

func TestSetImage(t *testing.T) {
	fake := newFakeCluster()
	h := newHarness(t, fake)
	ds := seedDaemonSet()
	ds.Spec.Template.Spec.InitContainers = []*corralpb.Container{{Name: "init", Image: "busybox:1.36"}}
	fake.put(objs(ds)[0])
	fake.put(objs(seedPod("nginx-daemonset-abcde", "node1", "10.42.1.2"))[0])
	fake.put(objs(testNode("node1", true, nil))[0])
	images := func() (init, main string) {
		spec := fake.object("DaemonSet", "default", "nginx-daemonset").GetDaemonSet().GetSpec().GetTemplate().GetSpec()
		return spec.GetInitContainers()[0].GetImage(), spec.GetContainers()[0].GetImage()
	}

	fake.conflicts = 1 // another writer in between: the change is made on a fresh copy
	if out := h.mustRun("set", "image", "ds/nginx-daemonset", "nginx=nginx:1.26"); out != "daemonset.apps/nginx-daemonset image updated\n" {
		t.Fatalf("set image: %q", out)
	}
	if init, main := images(); init != "busybox:1.36" || main != "nginx:1.26" {
		t.Fatalf("images: %s, %s", init, main)
	}
	// Nothing to change: kubectl prints nothing and writes nothing.
	before := fake.updates
	if out := h.mustRun("set", "image", "daemonsets", "nginx-daemonset", "nginx=nginx:1.26"); out != "" || fake.updates != before {
		t.Fatalf("same image: %q, %d updates", out, fake.updates-before)
	}
	// An init container is named like any other; --dry-run stores nothing.
	if out := h.mustRun("set", "image", "ds", "nginx-daemonset", "init=busybox:1.37", "--dry-run=client"); out != "daemonset.apps/nginx-daemonset image updated (dry run)\n" {
		t.Fatalf("--dry-run=client: %q", out)
	}
	if out := h.mustRun("set", "image", "ds", "nginx-daemonset", "init=busybox:1.37", "--dry-run=server"); out != "daemonset.apps/nginx-daemonset image updated (server dry run)\n" {
		t.Fatalf("--dry-run=server: %q", out)
	}
	if init, _ := images(); init != "busybox:1.36" {
		t.Fatalf("a dry run stored %s", init)
	}
	// * sets every container, init containers included; -l selects.
	if out := h.mustRun("set", "image", "ds", "-l", "app=nginx-daemon", "*=registry.local/all:1"); out != "daemonset.apps/nginx-daemonset image updated\n" {
		t.Fatalf("set image '*': %q", out)
	}
	if init, main := images(); init != "registry.local/all:1" || main != "registry.local/all:1" {
		t.Fatalf("images after '*': %s, %s", init, main)
	}

	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"ds", "nginx-daemonset", "nope=x:1"}, "error: unable to find container named \"nope\"\n"},
		{[]string{"ds", "nginx-daemonset", "nope=x:1", "nginx=nginx:1.27", "gone=y:2"},
			"error: [unable to find container named \"gone\", unable to find container named \"nope\"]\n"},
		{[]string{"ds", "nginx-daemonset"}, "error: at least one image update is required\n"},
		{[]string{"ds", "nginx-daemonset", "*=a:1", "nginx=b:2"}, "error: all containers are already specified by *, but saw more than one container_name=container_image pairs\n"},
		{[]string{"nginx=nginx:1.27"}, "error: one or more resources must be specified as <resource> <name> or <resource>/<name>\n"},
		{[]string{"pod", "nginx-daemonset-abcde", "nginx=nginx:1.27"},
			"error: pod/nginx-daemonset-abcde: corral does not change a pod's containers in place; set the image of its DaemonSet, which replaces the pod\n"},
		{[]string{"node", "node1", "nginx=nginx:1.27"}, "error: node/node1 the object is not a pod or does not have a pod template\n"},
		{[]string{"ds", "missing", "nginx=nginx:1.27"}, `Error from server (NotFound): daemonsets.apps "missing" not found` + "\n"},
	} {
		before := fake.updates
		_, errOut, code := h.run(append([]string{"set", "image"}, tc.args...)...)
		if code != 1 || errOut != tc.err {
			t.Errorf("set image %v: exit %d %q, want %q", tc.args, code, errOut, tc.err)
		}
		if fake.updates != before {
			t.Errorf("set image %v wrote %d updates", tc.args, fake.updates-before)
		}
	}
	if init, main := images(); init != "registry.local/all:1" || main != "registry.local/all:1" {
		t.Fatalf("a refused set image changed the images: %s, %s", init, main)
	}
}
