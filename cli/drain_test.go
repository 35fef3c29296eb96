package cli

import (
	"strings"
	"testing"

	corralpb "github.com/corral-dev/corral/proto"
)

func TestDrain(t *testing.T) {
	fake := newFakeCluster()
	h := newHarness(t, fake)
	fake.put(objs(testNode("node1", true, nil))[0])
	fake.put(objs(testNode("node2", true, nil))[0])
	bare := func(name, node, phase string, emptyDir bool) *corralpb.Object {
		p := &corralpb.Pod{Metadata: &corralpb.ObjectMeta{Name: name, Namespace: "default"},
			Spec:   &corralpb.PodSpec{NodeName: node, Containers: []*corralpb.Container{{Name: "c", Image: "busybox:1.36"}}},
			Status: &corralpb.PodStatus{Phase: phase}}
		if emptyDir {
			p.Spec.Volumes = []*corralpb.Volume{{Name: "scratch", EmptyDir: &corralpb.EmptyDirVolumeSource{}}}
		}
		return objs(p)[0]
	}
	fake.put(objs(seedPod("nginx-daemonset-abcde", "node1", "10.42.1.2"))[0])
	fake.put(bare("web", "node1", "Running", false))
	fake.put(bare("scratch", "node1", "Running", true))
	fake.put(bare("done", "node1", "Succeeded", true)) // finished: deleted whatever it is
	fake.put(bare("elsewhere", "node2", "Running", false))
	gone := func() []string {
		var names []string
		for _, d := range fake.deletes {
			names = append(names, d.GetName())
		}
		return names
	}

	// Refused pods: the node is cordoned and nothing is deleted.
	out, errOut, code := h.run("drain", "node1")
	refusals := "[cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): default/nginx-daemonset-abcde, " +
		"cannot delete Pods declare no controller (use --force to override): default/scratch, default/web, " +
		"cannot delete Pods with local storage (use --delete-emptydir-data to override): default/scratch]"
	wantErr := `error: unable to drain node "node1" due to error: ` + refusals + ", continuing command...\n" +
		"There are pending nodes to be drained:\n node1\n" + refusals + "\n"
	if code != 1 || out != "node/node1 cordoned\n" || errOut != wantErr {
		t.Fatalf("drain with refused pods: exit %d\nstdout %q\nstderr %q\nwant   %q", code, out, errOut, wantErr)
	}
	if !fake.object("Node", "", "node1").GetNode().GetSpec().GetUnschedulable() || len(fake.deletes) != 0 {
		t.Fatalf("after a refused drain: unschedulable %v, deletes %v", fake.object("Node", "", "node1").GetNode().GetSpec().GetUnschedulable(), gone())
	}

	// A dry run deletes nothing.
	out, errOut, code = h.run("drain", "node2", "--force", "--dry-run=client")
	if code != 0 || out != "node/node2 cordoned (dry run)\nevicting pod default/elsewhere\npod/elsewhere evicted (dry run)\nnode/node2 drained (dry run)\n" ||
		errOut != "Warning: deleting Pods that declare no controller: default/elsewhere\n" || len(fake.deletes) != 0 {
		t.Fatalf("drain --dry-run=client: exit %d %q %q, deletes %v", code, out, errOut, gone())
	}

	// Allowed: every pod but the DaemonSet's goes; other nodes are untouched.
	out, errOut, code = h.run("drain", "node1", "--ignore-daemonsets", "--force", "--delete-emptydir-data")
	wantOut := "node/node1 already cordoned\n" +
		"evicting pod default/done\npod/done evicted\n" +
		"evicting pod default/scratch\npod/scratch evicted\n" +
		"evicting pod default/web\npod/web evicted\n" +
		"node/node1 drained\n"
	wantErr = "Warning: ignoring DaemonSet-managed Pods: default/nginx-daemonset-abcde; " +
		"deleting Pods that declare no controller: default/scratch, default/web; deleting Pods with local storage: default/scratch\n"
	if code != 0 || out != wantOut || errOut != wantErr {
		t.Fatalf("drain: exit %d\nstdout %q\nwant   %q\nstderr %q\nwant   %q", code, out, wantOut, errOut, wantErr)
	}
	if got := strings.Join(gone(), ","); got != "done,scratch,web" {
		t.Fatalf("deleted %s, want done,scratch,web", got)
	}
	if fake.object("Pod", "default", "nginx-daemonset-abcde") == nil || fake.object("Pod", "default", "elsewhere") == nil {
		t.Fatal("drain deleted a DaemonSet's pod or another node's pod")
	}
	if fake.object("Node", "", "node2").GetNode().GetSpec().GetUnschedulable() {
		t.Fatal("node2 was cordoned by a dry run or by draining node1")
	}

	for _, tc := range []struct {
		args []string
		err  string
	}{
		{nil, "error: USAGE: drain NODE [flags]\n"},
		{[]string{"missing"}, `Error from server (NotFound): nodes "missing" not found` + "\n"},
		{[]string{"node1", "--pod-selector", "a==b==c"}, "error: invalid --pod-selector"},
	} {
		_, errOut, code := h.run(append([]string{"drain"}, tc.args...)...)
		if code != 1 || !strings.HasPrefix(errOut, tc.err) {
			t.Errorf("drain %v: exit %d %q, want %q", tc.args, code, errOut, tc.err)
		}
	}
}
