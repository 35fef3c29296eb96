package cli

import (
	"strings"
	"testing"

	"github.com/corral-dev/corral/api"
)

func TestAnnotate(t *testing.T) {
	fake := newFakeCluster()
	h := newHarness(t, fake)
	fake.put(objs(seedDaemonSet())[0])
	fake.put(objs(testNode("node1", true, map[string]string{"disktype": "ssd"}))[0])
	fake.put(objs(testNode("node2", true, map[string]string{"disktype": "ssd"}))[0])
	annotations := func() map[string]string {
		return api.Meta(fake.object("DaemonSet", "default", "nginx-daemonset")).GetAnnotations()
	}

	// A value may hold '=' and spaces; kubectl prints "annotated".
	fake.conflicts = 2 // another writer in between: the change is made on a fresh copy
	if out := h.mustRun("annotate", "ds", "nginx-daemonset", "kubernetes.io/change-cause=nginx 1.26: a=b", "team=edge"); out != "daemonset.apps/nginx-daemonset annotated\n" {
		t.Fatalf("annotate: %q", out)
	}
	if a := annotations(); a["kubernetes.io/change-cause"] != "nginx 1.26: a=b" || a["team"] != "edge" {
		t.Fatalf("annotations: %v", a)
	}
	// Another value needs --overwrite, except for the change cause; the
	// same value does not, and writes nothing.
	before := fake.updates
	_, errOut, code := h.run("annotate", "ds/nginx-daemonset", "team=core")
	if code != 1 || errOut != "error: --overwrite is false but found the following declared annotation(s): 'team' already has a value (edge)\n" {
		t.Fatalf("no overwrite: exit %d %q", code, errOut)
	}
	if out := h.mustRun("annotate", "ds", "nginx-daemonset", "team=edge"); out != "daemonset.apps/nginx-daemonset annotated\n" || fake.updates != before {
		t.Fatalf("same value: %q, %d updates", out, fake.updates-before)
	}
	h.mustRun("annotate", "ds", "nginx-daemonset", "kubernetes.io/change-cause=nginx 1.27")
	h.mustRun("annotate", "daemonsets", "nginx-daemonset", "team=core", "--overwrite")
	if a := annotations(); a["kubernetes.io/change-cause"] != "nginx 1.27" || a["team"] != "core" {
		t.Fatalf("after overwrites: %v", a)
	}
	// Dry runs change nothing.
	for _, mode := range []string{"client", "server"} {
		out := h.mustRun("annotate", "ds", "nginx-daemonset", "team-", "--dry-run="+mode)
		if want := map[string]string{"client": " (dry run)", "server": " (server dry run)"}[mode]; out != "daemonset.apps/nginx-daemonset annotated"+want+"\n" {
			t.Fatalf("--dry-run=%s: %q", mode, out)
		}
	}
	if annotations()["team"] != "core" {
		t.Fatalf("a dry run removed the annotation: %v", annotations())
	}
	// KEY- removes; a key that is not there is no error.
	h.mustRun("annotate", "ds", "nginx-daemonset", "team-", "absent-")
	if _, ok := annotations()["team"]; ok {
		t.Fatalf("team not removed: %v", annotations())
	}
	if out := h.mustRun("annotate", "ds", "nginx-daemonset", "--list"); out != "kubernetes.io/change-cause=nginx 1.27\n" {
		t.Fatalf("--list: %q", out)
	}

	// --resource-version: the write is conditional on the version given.
	rv := api.Meta(fake.object("DaemonSet", "default", "nginx-daemonset")).GetResourceVersion()
	_, errOut, code = h.run("annotate", "ds", "nginx-daemonset", "a=1", "--resource-version=1")
	if code != 1 || !strings.Contains(errOut, "the object has been modified") {
		t.Fatalf("stale --resource-version: exit %d %q", code, errOut)
	}
	if _, ok := annotations()["a"]; ok {
		t.Fatal("a write with a stale --resource-version was stored")
	}
	h.mustRun("annotate", "ds", "nginx-daemonset", "a=1", "--resource-version="+rv)
	if annotations()["a"] != "1" {
		t.Fatalf("--resource-version %s: %v", rv, annotations())
	}

	// A selector annotates every match; --list heads each object.
	if out := h.mustRun("annotate", "nodes", "-l", "disktype=ssd", "rack=r1"); out != "node/node1 annotated\nnode/node2 annotated\n" {
		t.Fatalf("-l: %q", out)
	}
	if out := h.mustRun("annotate", "nodes", "node1", "node2", "--list"); out != "Listing annotations for Node./node1:\n rack=r1\nListing annotations for Node./node2:\n rack=r1\n" {
		t.Fatalf("--list of two: %q", out)
	}

	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"ds", "nginx-daemonset"}, "error: at least one annotation update is required\n"},
		{[]string{"ds", "nginx-daemonset", "a=1", "a-"}, "error: can not both modify and remove the following annotation(s) in the same command: a\n"},
		{[]string{"ds", "a=1", "nginx-daemonset"}, "error: all resources must be specified before annotation changes: nginx-daemonset\n"},
		{[]string{"nodes", "-l", "disktype=ssd", "x=1", "--resource-version=3"}, "error: --resource-version may only be used with a single resource\n"},
		{[]string{"nodes", "--all", "-l", "disktype=ssd", "x=1"}, "error: cannot set --all and --selector at the same time\n"},
		{[]string{"ds", "nginx-daemonset", "--list", "a=1"}, "error: --list shows annotations and changes none: remove \"a=1\", or drop --list\n"},
		{[]string{"ds", "missing", "a=1"}, `Error from server (NotFound): daemonsets.apps "missing" not found` + "\n"},
	} {
		before := fake.updates
		_, errOut, code := h.run(append([]string{"annotate"}, tc.args...)...)
		if code != 1 || errOut != tc.err {
			t.Errorf("annotate %v: exit %d %q, want %q", tc.args, code, errOut, tc.err)
		}
		if fake.updates != before {
			t.Errorf("annotate %v wrote %d updates", tc.args, fake.updates-before)
		}
	}
}
