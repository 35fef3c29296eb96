package cli

import (
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

// seedManifest is the tutorial's daemonset-basic.yml.
const seedManifest = `apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: nginx-daemonset
  labels:
    app: nginx-daemon
spec:
  selector:
    matchLabels:
      app: nginx-daemon
  template:
    metadata:
      labels:
        app: nginx-daemon
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
        ports:
        - containerPort: 80
`

const namespaceManifest = `apiVersion: v1
kind: Namespace
metadata:
  name: monitoring
`

func TestApplyCreatedConfiguredUnchanged(t *testing.T) {
	fake := newFakeCluster()
	h := newHarness(t, fake)
	dir := t.TempDir()
	for name, content := range map[string]string{"ds.yml": seedManifest, "ns.yaml": namespaceManifest} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := h.mustRun("apply", "-f", dir)
	if !strings.Contains(out, "daemonset.apps/nginx-daemonset created\n") || !strings.Contains(out, "namespace/monitoring created\n") {
		t.Fatalf("first apply:\n%s", out)
	}
	if len(fake.applies) != 1 || len(fake.applies[0].GetObjects()) != 2 {
		t.Fatalf("want one Apply with both objects, got %d", len(fake.applies))
	}
	if ns := api.Meta(fake.object("DaemonSet", "default", "nginx-daemonset")); ns == nil {
		t.Fatal("the DaemonSet was not stored in the default namespace")
	}
	if out := h.mustRun("apply", "-f", filepath.Join(dir, "ds.yml")); out != "daemonset.apps/nginx-daemonset unchanged\n" {
		t.Fatalf("re-apply: %q", out)
	}
	h.stdin = strings.Replace(seedManifest, "nginx:1.25", "nginx:1.26", 1)
	if out := h.mustRun("apply", "-f", "-"); out != "daemonset.apps/nginx-daemonset configured\n" {
		t.Fatalf("apply changed: %q", out)
	}
	if got := fake.sortedAuth(); !reflect.DeepEqual(got, []string{testAdmin.String()}) {
		t.Fatalf("client identities seen: %v", got)
	}
	// Server dry run says so and changes nothing.
	h.stdin = strings.Replace(seedManifest, "nginx:1.25", "nginx:1.27", 1)
	if out := h.mustRun("apply", "-f", "-", "--dry-run=server"); out != "daemonset.apps/nginx-daemonset configured (server dry run)\n" {
		t.Fatalf("server dry run: %q", out)
	}
	if !fake.applies[len(fake.applies)-1].GetDryRun() {
		t.Fatal("dry_run not sent")
	}
}

func TestApplyRefusesInvalidBeforeSending(t *testing.T) {
	fake := newFakeCluster()
	h := newHarness(t, fake)
	bad := strings.Replace(seedManifest, "  selector:\n    matchLabels:\n      app: nginx-daemon\n", "", 1)
	bad = strings.Replace(bad, "nginx-daemonset", "bad", 1)
	path := writeFile(t, "bad.yml", namespaceManifest+"---\n"+bad)
	_, errOut, code := h.run("apply", "-f", path)
	if code != 1 || !strings.HasPrefix(errOut, `The DaemonSet "bad" is invalid: `) || !strings.Contains(errOut, "spec.selector") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	if len(fake.applies) != 0 {
		t.Fatal("an invalid manifest reached the server")
	}
	_, errOut, code = h.run("apply", "-f", filepath.Join(t.TempDir(), "missing.yml"))
	if code != 1 || !strings.HasPrefix(errOut, "error: ") {
		t.Fatalf("missing file: exit %d, %q", code, errOut)
	}
	_, errOut, code = h.run("apply")
	if code != 1 || errOut != "error: must specify one of -f and -k\n" {
		t.Fatalf("no -f: exit %d, %q", code, errOut)
	}
	// A file with no object in it, for every verb that reads manifests.
	empty := writeFile(t, "empty.yml", "# nothing yet\n---\n")
	for _, verb := range []string{"apply", "create", "diff", "replace"} {
		_, errOut, code := h.run(verb, "-f", empty)
		if code == 0 || errOut != "error: no objects passed to "+verb+"\n" {
			t.Errorf("%s of an empty file: exit %d, %q", verb, code, errOut)
		}
	}
}

func TestGetOutputs(t *testing.T) {
	fake := newFakeCluster()
	h := newHarness(t, fake)
	h.now = testNow
	_, errOut, code := h.run("get", "ds")
	if code != 0 || errOut != "No resources found in default namespace.\n" {
		t.Fatalf("empty get: exit %d %q", code, errOut)
	}
	if _, errOut, _ := h.run("get", "nodes"); errOut != "No resources found\n" {
		t.Fatalf("empty cluster-scoped get: %q", errOut)
	}
	fake.put(objs(seedDaemonSet())[0])
	fake.put(objs(seedPod("nginx-daemonset-abc12", "node1", "10.42.0.5"))[0])

	single := h.mustRun("get", "ds", "nginx-daemonset", "-o", "json")
	var obj map[string]any
	if err := json.Unmarshal([]byte(single), &obj); err != nil || obj["kind"] != "DaemonSet" {
		t.Fatalf("single -o json: %v\n%s", err, single)
	}
	list := h.mustRun("get", "ds", "-o", "json")
	if err := json.Unmarshal([]byte(list), &obj); err != nil || obj["kind"] != "List" || len(obj["items"].([]any)) != 1 {
		t.Fatalf("list -o json: %v\n%s", err, list)
	}
	if out := h.mustRun("get", "ds/nginx-daemonset", "-o", "yaml"); !strings.Contains(out, "kind: DaemonSet\n") {
		t.Fatalf("-o yaml:\n%s", out)
	}
	if out := h.mustRun("get", "ds,pods", "-o", "name"); out != "daemonset.apps/nginx-daemonset\npod/nginx-daemonset-abc12\n" {
		t.Fatalf("-o name: %q", out)
	}
	both := h.mustRun("get", "ds,po")
	if !strings.Contains(both, "\ndaemonset.apps/nginx-daemonset   3") || !strings.Contains(both, "\n\nNAME                        READY") || !strings.Contains(both, "pod/nginx-daemonset-abc12   1/1") {
		t.Fatalf("two kinds:\n%s", both)
	}
	if out := h.mustRun("get", "pods", "-o", "jsonpath={.items[*].spec.nodeName}"); out != "node1" {
		t.Fatalf("jsonpath: %q", out)
	}
	if out := h.mustRun("get", "pods", "-o", "custom-columns=NAME:.metadata.name,NODE:.spec.nodeName,GATES:.spec.readinessGates"); out != "NAME                    NODE    GATES\nnginx-daemonset-abc12   node1   <none>\n" {
		t.Fatalf("custom-columns: %q", out)
	}
	if out := h.mustRun("get", "pods", "-l", "app=nginx-daemon", "--no-headers"); !strings.HasPrefix(out, "nginx-daemonset-abc12   1/1") {
		t.Fatalf("-l: %q", out)
	}
	if _, errOut, _ := h.run("get", "pods", "-l", "app=other"); errOut != "No resources found in default namespace.\n" {
		t.Fatalf("-l no match: %q", errOut)
	}
	out, errOut, code := h.run("get", "ds", "nginx-daemonset", "nope")
	if code != 1 || !strings.Contains(out, "nginx-daemonset") || errOut != "Error from server (NotFound): daemonsets.apps \"nope\" not found\n" {
		t.Fatalf("partly missing: exit %d\n%s\n%s", code, out, errOut)
	}
	if _, errOut, code := h.run("get", "ds", "nope", "--ignore-not-found"); code != 0 || errOut != "" {
		t.Fatalf("--ignore-not-found: exit %d %q", code, errOut)
	}
	if _, errOut, code := h.run("get", "foo"); code != 1 || errOut != "error: the server doesn't have a resource type \"foo\"\n" {
		t.Fatalf("unknown type: exit %d %q", code, errOut)
	}
	if _, errOut, code := h.run("get", "ds", "-o", "xml"); code != 1 || !strings.HasPrefix(errOut, "error: unable to match a printer") {
		t.Fatalf("bad -o: exit %d %q", code, errOut)
	}
}

func TestGetWatchPrintsRowsWithoutRepeatingHeader(t *testing.T) {
	fake := newFakeCluster()
	h := newHarness(t, fake)
	h.now = testNow
	fake.put(objs(seedDaemonSet())[0])
	updated := seedDaemonSet()
	updated.Status.NumberReady = 2
	fake.watch <- &corralpb.WatchEvent{Type: "MODIFIED", Object: objs(updated)[0]}
	other := seedDaemonSet()
	other.Metadata.Name = "other"
	fake.watch <- &corralpb.WatchEvent{Type: "ADDED", Object: objs(other)[0]}
	close(fake.watch)
	out := h.mustRun("get", "ds", "-w")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || strings.Count(out, "NAME") != 1 || strings.Join(strings.Fields(lines[2]), " ") != "nginx-daemonset 3 3 2 3 3 <none> 30s" || !strings.HasPrefix(lines[3], "other") {
		t.Fatalf("watch output:\n%s", out)
	}
}

func TestGetWatchOutputsEventsAndResumesWhereTheLostServerStopped(t *testing.T) {
	fake := newFakeCluster()
	h := newHarness(t, fake)
	h.now = testNow
	first := fake.put(objs(seedDaemonSet())[0])
	updated := seedDaemonSet()
	updated.Status.NumberReady = 2
	updated.Metadata.ResourceVersion = "7"
	fake.watch <- &corralpb.WatchEvent{Type: "MODIFIED", Object: objs(updated)[0]}
	fake.watch <- &corralpb.WatchEvent{Type: "LOST"} // the server dies
	gone := seedDaemonSet()
	gone.Metadata.ResourceVersion = "9"
	fake.watch <- &corralpb.WatchEvent{Type: "DELETED", Object: objs(gone)[0]}
	close(fake.watch)
	out := h.mustRun("get", "ds", "-w", "--output-watch-events")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "EVENT ") || !strings.HasPrefix(lines[1], "ADDED ") ||
		!strings.HasPrefix(lines[2], "MODIFIED ") || !strings.HasPrefix(lines[3], "DELETED ") {
		t.Fatalf("watch output:\n%s", out)
	}
	fake.mu.Lock()
	rvs := fake.watchRVs
	fake.mu.Unlock()
	if want := []string{api.Meta(first).GetResourceVersion(), "7"}; !slices.Equal(rvs, want) {
		t.Fatalf("watch calls from resourceVersions %q, want %q (the second resumes after the last event seen)", rvs, want)
	}
}

func TestGetWatchOnlySkipsTheCurrentObjects(t *testing.T) {
	fake := newFakeCluster()
	h := newHarness(t, fake)
	h.now = testNow
	fake.put(objs(seedDaemonSet())[0])
	other := seedDaemonSet()
	other.Metadata.Name = "other"
	fake.watch <- &corralpb.WatchEvent{Type: "ADDED", Object: objs(other)[0]}
	close(fake.watch)
	out := h.mustRun("get", "ds", "--watch-only")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "NAME ") || !strings.HasPrefix(lines[1], "other ") {
		t.Fatalf("--watch-only printed:\n%s", out)
	}
}

func TestGetWatchJSONEvents(t *testing.T) {
	fake := newFakeCluster()
	h := newHarness(t, fake)
	fake.put(objs(seedDaemonSet())[0])
	close(fake.watch)
	out := h.mustRun("get", "ds", "-w", "-o", "json", "--output-watch-events")
	var ev struct {
		Type   string `json:"type"`
		Object struct {
			Kind     string                `json:"kind"`
			Metadata struct{ Name string } `json:"metadata"`
		} `json:"object"`
	}
	if err := json.Unmarshal([]byte(out), &ev); err != nil || ev.Type != "ADDED" || ev.Object.Kind != "DaemonSet" || ev.Object.Metadata.Name != "nginx-daemonset" {
		t.Fatalf("-o json --output-watch-events: %v\n%s", err, out)
	}
	if !strings.HasPrefix(out, "{\n    \"type\": \"ADDED\",\n    \"object\": {\n        \"apiVersion\": \"apps/v1\",") {
		t.Fatalf("not laid out as kubectl lays out a watch event:\n%s", out)
	}
	if _, errOut, code := h.run("get", "ds", "-w", "-o", "name", "--output-watch-events"); code == 0 || !strings.Contains(errOut, "--output-watch-events") {
		t.Fatalf("-o name --output-watch-events: exit %d %q", code, errOut)
	}
}

func TestLabelRetriesOnConflict(t *testing.T) {
	fake := newFakeCluster()
	h := newHarness(t, fake)
	fake.put(objs(testNode("node1", true, nil))[0])
	fake.conflicts = 2
	if out := h.mustRun("label", "nodes", "node1", "disktype=ssd"); out != "node/node1 labeled\n" {
		t.Fatalf("label: %q", out)
	}
	lbls := api.Meta(fake.object("Node", "", "node1")).GetLabels()
	if lbls["disktype"] != "ssd" || lbls["race"] != "0" {
		t.Fatalf("labels after retries: %v (the other writer's change must survive)", lbls)
	}
	_, errOut, code := h.run("label", "node/node1", "disktype=hdd")
	if code != 1 || errOut != "error: 'disktype' already has a value (ssd), and --overwrite is false\n" {
		t.Fatalf("no overwrite: exit %d %q", code, errOut)
	}
	if out := h.mustRun("label", "no", "node1", "disktype=hdd", "--overwrite"); out != "node/node1 labeled\n" {
		t.Fatalf("overwrite: %q", out)
	}
	if out := h.mustRun("label", "nodes", "node1", "disktype-"); out != "node/node1 unlabeled\n" {
		t.Fatalf("unlabel: %q", out)
	}
	before := fake.updates
	if out := h.mustRun("label", "nodes", "node1", "race=0"); out != "node/node1 not labeled\n" || fake.updates != before {
		t.Fatalf("no-op label: %q, %d updates", out, fake.updates-before)
	}
	if out := h.mustRun("label", "nodes", "-l", "race=0", "zone=a"); out != "node/node1 labeled\n" {
		t.Fatalf("label -l: %q", out)
	}
	fake.conflicts = 10
	if _, errOut, code := h.run("label", "nodes", "node1", "x=y"); code != 1 || !strings.Contains(errOut, "Conflict") {
		t.Fatalf("endless conflicts: exit %d %q", code, errOut)
	}
}

func TestTaintAndCordon(t *testing.T) {
	fake := newFakeCluster()
	h := newHarness(t, fake)
	fake.put(objs(testNode("node1", true, nil))[0])
	steps := []struct {
		args []string
		out  string
	}{
		{[]string{"taint", "nodes", "node1", "dedicated=edge:NoSchedule"}, "node/node1 tainted\n"},
		{[]string{"taint", "nodes", "node1", "dedicated=core:NoSchedule", "--overwrite"}, "node/node1 modified\n"},
		{[]string{"cordon", "node1"}, "node/node1 cordoned\n"},
		{[]string{"cordon", "node1"}, "node/node1 already cordoned\n"},
		{[]string{"uncordon", "node1"}, "node/node1 uncordoned\n"},
		{[]string{"uncordon", "node1"}, "node/node1 already uncordoned\n"},
		{[]string{"taint", "node", "node1", "dedicated:NoSchedule-"}, "node/node1 untainted\n"},
	}
	for _, s := range steps {
		if out := h.mustRun(s.args...); out != s.out {
			t.Fatalf("%v: %q, want %q", s.args, out, s.out)
		}
		if strings.HasPrefix(s.args[0], "cordon") && !fake.object("Node", "", "node1").GetNode().GetSpec().GetUnschedulable() {
			t.Fatal("cordon did not set unschedulable")
		}
	}
	h.mustRun("taint", "nodes", "node1", "a=b:NoExecute")
	_, errOut, code := h.run("taint", "nodes", "node1", "a=c:NoExecute")
	if code != 1 || errOut != "error: node node1 already has a taint(s) with same effect(s) and --overwrite is false\n" {
		t.Fatalf("taint without overwrite: exit %d %q", code, errOut)
	}
	if _, errOut, code := h.run("taint", "nodes", "node1", "zz:NoSchedule-"); code != 1 || errOut != "error: taint \"zz:NoSchedule\" not found\n" {
		t.Fatalf("remove missing taint: exit %d %q", code, errOut)
	}
	if _, errOut, code := h.run("taint", "ds", "x", "a=b:NoSchedule"); code != 1 || !strings.Contains(errOut, "only node types are supported") {
		t.Fatalf("taint ds: exit %d %q", code, errOut)
	}
}

func TestDeleteMessages(t *testing.T) {
	fake := newFakeCluster()
	h := newHarness(t, fake)
	fake.put(objs(seedDaemonSet())[0])
	fake.put(objs(seedPod("p1", "node1", "10.0.0.1"))[0])
	fake.put(objs(seedPod("p2", "node2", "10.0.0.2"))[0])
	if out := h.mustRun("delete", "ds", "nginx-daemonset", "--cascade=orphan"); out != "daemonset.apps \"nginx-daemonset\" deleted\n" {
		t.Fatalf("delete: %q", out)
	}
	if got := fake.deletes[0].GetPropagationPolicy(); got != "Orphan" {
		t.Fatalf("propagation %q", got)
	}
	_, errOut, code := h.run("delete", "ds", "nginx-daemonset")
	if code != 1 || errOut != "Error from server (NotFound): daemonsets.apps \"nginx-daemonset\" not found\n" {
		t.Fatalf("delete missing: exit %d %q", code, errOut)
	}
	if _, _, code := h.run("delete", "ds", "nginx-daemonset", "--ignore-not-found"); code != 0 {
		t.Fatal("--ignore-not-found failed")
	}
	if _, errOut, code := h.run("delete", "pods"); code != 1 || errOut != "error: resource(s) were provided, but no name was specified\n" {
		t.Fatalf("delete without name: exit %d %q", code, errOut)
	}
	if out := h.mustRun("delete", "pods", "-l", "app=nginx-daemon", "--dry-run=server"); out != "pod \"p1\" deleted (server dry run)\npod \"p2\" deleted (server dry run)\n" {
		t.Fatalf("delete -l dry run: %q", out)
	}
	if out := h.mustRun("delete", "pod/p1", "pod/p2"); out != "pod \"p1\" deleted\npod \"p2\" deleted\n" {
		t.Fatalf("delete TYPE/NAME: %q", out)
	}
	if _, errOut, code := h.run("delete", "ds", "x", "--cascade=sometimes"); code != 1 || !strings.Contains(errOut, "invalid cascade value (sometimes)") {
		t.Fatalf("bad cascade: exit %d %q", code, errOut)
	}
	if fake.deletes[0].GetNamespace() != "default" {
		t.Fatalf("namespace %q", fake.deletes[0].GetNamespace())
	}
	path := writeFile(t, "ds.yml", seedManifest)
	fake.put(objs(seedDaemonSet())[0])
	if out := h.mustRun("delete", "-f", path); out != "daemonset.apps \"nginx-daemonset\" deleted\n" {
		t.Fatalf("delete -f: %q", out)
	}
}

func TestEdit(t *testing.T) {
	fake := newFakeCluster()
	h := newHarness(t, fake)
	fake.put(objs(seedDaemonSet())[0])
	editor := writeFile(t, "editor.sh", "#!/bin/sh\nsed -i 's/nginx:1.25/nginx:1.26/' \"$1\"\n")
	if err := os.Chmod(editor, 0o755); err != nil {
		t.Fatal(err)
	}
	h.env["KUBE_EDITOR"] = editor
	if out := h.mustRun("edit", "ds", "nginx-daemonset"); out != "daemonset.apps/nginx-daemonset edited\n" {
		t.Fatalf("edit: %q", out)
	}
	img := fake.object("DaemonSet", "default", "nginx-daemonset").GetDaemonSet().GetSpec().GetTemplate().GetSpec().GetContainers()[0].GetImage()
	if img != "nginx:1.26" {
		t.Fatalf("image after edit: %s", img)
	}
	h.env["KUBE_EDITOR"] = "true"
	if _, errOut, code := h.run("edit", "ds/nginx-daemonset"); code != 0 || errOut != "Edit cancelled, no changes made.\n" {
		t.Fatalf("unchanged edit: exit %d %q", code, errOut)
	}
	h.env["KUBE_EDITOR"] = "sed -i 's/name: nginx-daemonset/name: renamed/'"
	_, errOut, code := h.run("edit", "ds", "nginx-daemonset")
	if code != 1 || !strings.Contains(errOut, "A copy of your changes has been stored to \"") || !strings.HasSuffix(errOut, "error: Edit cancelled, no valid changes were saved.\n") {
		t.Fatalf("invalid edit: exit %d %q", code, errOut)
	}
	kept := strings.Split(strings.Split(errOut, "stored to \"")[1], "\"")[0]
	if _, err := os.Stat(kept); err != nil {
		t.Fatalf("the edited copy is gone: %v", err)
	}
	t.Cleanup(func() { _ = os.Remove(kept) })
}

func TestCreateNamespaceAndConfigMap(t *testing.T) {
	fake := newFakeCluster()
	h := newHarness(t, fake)
	if out := h.mustRun("create", "namespace", "monitoring"); out != "namespace/monitoring created\n" {
		t.Fatalf("create ns: %q", out)
	}
	if _, errOut, code := h.run("create", "ns", "monitoring"); code != 1 || errOut != "Error from server (AlreadyExists): namespaces \"monitoring\" already exists\n" {
		t.Fatalf("create existing: exit %d %q", code, errOut)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.conf"), []byte("mode: iptables\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "blob"), []byte{0xff, 0xfe}, 0o644); err != nil {
		t.Fatal(err)
	}
	env := writeFile(t, "app.env", "# comment\nA=1\n\nB=two=2\n")
	out := h.mustRun("create", "configmap", "kube-proxy", "-n", "kube-system", "--from-file="+dir, "--from-literal=extra=yes", "--dry-run=client", "-o", "yaml")
	if !strings.Contains(out, "kind: ConfigMap") || !strings.Contains(out, "config.conf: |") || !strings.Contains(out, "extra: \"yes\"") || !strings.Contains(out, "blob:") || !strings.Contains(out, "namespace: kube-system") {
		t.Fatalf("dry-run -o yaml:\n%s", out)
	}
	if fake.object("ConfigMap", "kube-system", "kube-proxy") != nil {
		t.Fatal("client dry run created the config map")
	}
	if out := h.mustRun("create", "cm", "app", "--from-env-file="+env); out != "configmap/app created\n" {
		t.Fatalf("create cm: %q", out)
	}
	if got := fake.object("ConfigMap", "default", "app").GetConfigMap().GetData(); !reflect.DeepEqual(got, map[string]string{"A": "1", "B": "two=2"}) {
		t.Fatalf("env file data: %v", got)
	}
	for args, want := range map[string]string{
		"create cm x --from-literal=novalue":                "error: invalid literal source novalue, expected key=value\n",
		"create cm x --from-literal=a=1 --from-literal=a=2": "error: cannot add key \"a\", another key by that name already exists in Data for ConfigMap \"x\"\n",
		"create cm x --from-literal=bad/key=1":              "error: \"bad/key\" is not a valid key name for a ConfigMap: ",
	} {
		if _, errOut, code := h.run(strings.Fields(args)...); code != 1 || !strings.HasPrefix(errOut, want) {
			t.Errorf("%s: exit %d %q", args, code, errOut)
		}
	}
}

func TestClusterSnapshotVersionAndResources(t *testing.T) {
	fake := newFakeCluster()
	fake.snapshot = []byte("0123456789abcdef-raft-snapshot")
	h := newHarness(t, fake)
	members := h.mustRun("cluster", "members")
	want := "" +
		"NAME      RAFT-ADDRESS    API-ADDRESS     STATE      VOTER   LAST-INDEX\n" +
		"server1   10.0.0.1:7000   10.0.0.1:7443   Leader     true    42\n" +
		"server2   10.0.0.2:7000   10.0.0.2:7443   Follower   true    41\n"
	if members != want {
		t.Fatalf("members:\n%s\nwant:\n%s", members, want)
	}
	file := filepath.Join(t.TempDir(), "backup.snap")
	if out := h.mustRun("snapshot", "save", file); out != "Snapshot saved to "+file+" (30 bytes)\n" {
		t.Fatalf("snapshot save: %q", out)
	}
	if data, err := os.ReadFile(file); err != nil || string(data) != string(fake.snapshot) {
		t.Fatalf("snapshot file: %q %v", data, err)
	}
	if out := h.mustRun("version"); !strings.HasPrefix(out, "Client Version: ") || !strings.HasSuffix(out, "Server Version: v9.9.9\n") {
		t.Fatalf("version: %q", out)
	}
	if out := h.mustRun("version", "--client"); strings.Contains(out, "Server") {
		t.Fatalf("version --client: %q", out)
	}
	res := h.mustRun("api-resources")
	if !strings.Contains(res, "daemonsets") || !strings.Contains(res, "apps/v1") || !strings.HasPrefix(res, "NAME") {
		t.Fatalf("api-resources:\n%s", res)
	}
	if out := h.mustRun("completion", "bash"); !strings.Contains(out, "corral") {
		t.Fatal("completion bash is empty")
	}
}

func TestDeadServerIsSkipped(t *testing.T) {
	fake := newFakeCluster()
	h := newHarness(t, fake)
	fake.put(objs(seedDaemonSet())[0])
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := lis.Addr().String()
	if err := lis.Close(); err != nil {
		t.Fatal(err)
	}
	h.setServers(dead, h.addr)
	if out := h.mustRun("get", "ds", "-o", "name"); out != "daemonset.apps/nginx-daemonset\n" {
		t.Fatalf("get through the second server: %q", out)
	}
	_, errOut, code := h.run("--server", dead, "get", "ds")
	if code != 1 || !strings.HasPrefix(errOut, "Unable to connect to the server: ") {
		t.Fatalf("only a dead server: exit %d %q", code, errOut)
	}
}

func TestCommandLineErrors(t *testing.T) {
	h := newHarness(t, newFakeCluster())
	if _, errOut, code := h.run("frobnicate"); code != 1 || errOut != "error: unknown command \"frobnicate\" for \"corral\"\n" {
		t.Fatalf("unknown command: exit %d %q", code, errOut)
	}
	if _, errOut, code := h.run("get", "ds", "--bogus"); code != 1 || !strings.HasPrefix(errOut, "error: unknown flag: --bogus") {
		t.Fatalf("unknown flag: exit %d %q", code, errOut)
	}
	if _, errOut, code := h.run("get"); code != 1 || !strings.HasSuffix(errOut, "error: Required resource not specified.\n") {
		t.Fatalf("get without type: exit %d %q", code, errOut)
	}
	if out, _, code := h.run(); code != 0 || !strings.Contains(out, "Available Commands") {
		t.Fatalf("bare corral: exit %d", code)
	}
	if _, errOut, code := h.run("cluster", "frob"); code != 1 || errOut != "error: unknown command \"frob\" for \"corral cluster\"\n" {
		t.Fatalf("unknown subcommand: exit %d %q", code, errOut)
	}
	if out, _, code := h.run("snapshot"); code != 0 || !strings.Contains(out, "save") {
		t.Fatalf("bare snapshot: exit %d %q", code, out)
	}
}

func TestExtraCommandsAreAddedOrMerged(t *testing.T) {
	snap := &cobra.Command{Use: "snapshot"}
	snap.AddCommand(&cobra.Command{Use: "restore FILE", Run: func(*cobra.Command, []string) {}})
	server := &cobra.Command{Use: "server", Run: func(*cobra.Command, []string) {}}
	root := NewRootCommand(strings.NewReader(""), io.Discard, io.Discard, server, snap)
	var names []string
	for _, c := range root.Commands() {
		if c.Name() == "snapshot" {
			for _, sub := range c.Commands() {
				names = append(names, sub.Name())
			}
		}
		if c.Name() == "server" {
			names = append(names, "server")
		}
	}
	if strings.Join(names, " ") != "server restore save" {
		t.Fatalf("commands: %v", names)
	}
}

// TestSilentServerIsSkipped: a server that accepts connections but never
// answers (hung or partitioned) costs a fraction of a second, not the
// request timeout: pick-first moves on to the next address.
func TestSilentServerIsSkipped(t *testing.T) {
	fake := newFakeCluster()
	h := newHarness(t, fake)
	fake.put(objs(seedDaemonSet())[0])
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lis.Close() })
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = c.Close() })
		}
	}()
	h.setServers(lis.Addr().String(), h.addr)
	start := time.Now()
	if out := h.mustRun("get", "ds", "-o", "name"); out != "daemonset.apps/nginx-daemonset\n" {
		t.Fatalf("get: %q", out)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("a silent first server held the CLI for %v", d)
	}
}
