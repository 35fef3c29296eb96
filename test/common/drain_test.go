package common

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/corral-dev/corral/api"
	"github.com/corral-dev/corral/cli"
	corralpb "github.com/corral-dev/corral/proto"
	"github.com/corral-dev/corral/test/framework"
)

// Draining a node with the CLI, as an operator does before maintenance. It
// is refused while a DaemonSet's pod or a bare pod is on the node, which
// is cordoned all the same and keeps its pods. With --ignore-daemonsets
// and --force the bare pod goes and the DaemonSet's pod stays: DaemonSet
// pods tolerate the cordon, so a new DaemonSet still gets a pod there.
func testDrain(t *testing.T, f *dsFixture) {
	cl := f.client(t)
	sel := map[string]string{"suite": "drain"}
	f.agents(t, "drain", 2, sel)
	apply(t, cl, daemonSet(t, "drain", sel, 0))
	before := byNode(waitPodsOn(t, cl, "drain", "drain-1", "drain-2"))["drain-1"][0]
	bare, err := api.Decode([]byte("apiVersion: v1\nkind: Pod\nmetadata: {name: drain-bare, namespace: default}\n"+
		"spec:\n  nodeName: drain-1\n  containers:\n  - {name: c, image: busybox:1.36}\n"), "drain-bare.yaml")
	if err != nil {
		t.Fatal(err)
	}
	apply(t, cl, bare...)
	run := func(args ...string) (string, string, int) { t.Helper(); return f.cli(t, args...) }

	out, errOut, code := run("drain", "drain-1")
	for _, want := range []string{
		`error: unable to drain node "drain-1" due to error: [`,
		"cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): default/" + before,
		"cannot delete Pods declare no controller (use --force to override): default/drain-bare",
		"There are pending nodes to be drained:\n drain-1\n",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("refused drain: stderr lacks %q:\n%s", want, errOut)
		}
	}
	if code != 1 || out != "node/drain-1 cordoned\n" {
		t.Fatalf("refused drain: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if _, err := cl.Get(ctx(t), &corralpb.GetRequest{Kind: "Pod", Namespace: "default", Name: "drain-bare"}); err != nil {
		t.Fatalf("a refused drain deleted the bare pod: %v", err)
	}

	out, errOut, code = run("drain", "drain-1", "--ignore-daemonsets", "--force")
	if code != 0 || out != "node/drain-1 already cordoned\nevicting pod default/drain-bare\npod/drain-bare evicted\nnode/drain-1 drained\n" ||
		errOut != "Warning: ignoring DaemonSet-managed Pods: default/"+before+"; deleting Pods that declare no controller: default/drain-bare\n" {
		t.Fatalf("drain: exit %d\nstdout %q\nstderr %q", code, out, errOut)
	}
	_, err = cl.Get(ctx(t), &corralpb.GetRequest{Kind: "Pod", Namespace: "default", Name: "drain-bare"})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("the bare pod after the drain: %v", err)
	}
	node, err := cl.Get(ctx(t), &corralpb.GetRequest{Kind: "Node", Name: "drain-1"})
	if err != nil || !node.GetObject().GetNode().GetSpec().GetUnschedulable() {
		t.Fatalf("drain-1 after the drain: %v, %v", node, err)
	}
	apply(t, cl, daemonSet(t, "drain-late", sel, 0))
	waitPodsOn(t, cl, "drain-late", "drain-1", "drain-2")
	if now := byNode(waitPodsOn(t, cl, "drain", "drain-1", "drain-2"))["drain-1"][0]; now != before {
		t.Fatalf("the DaemonSet's pod on the drained node is %s, was %s", now, before)
	}
	if out, _, code := run("uncordon", "drain-1"); code != 0 || out != "node/drain-1 uncordoned\n" {
		t.Fatalf("uncordon: exit %d %q", code, out)
	}
}

// cli runs the corral CLI in this process against a running server of
// the cluster, with its admin credentials; it returns stdout, stderr and
// the exit code.
func (f *dsFixture) cli(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	server := ""
	for i := 0; i < f.c.Size(); i++ {
		if f.c.Running(i) {
			server = f.c.APIAddr(i)
			break
		}
	}
	var out, errOut framework.SyncBuffer
	root := cli.NewRootCommand(strings.NewReader(""), &out, &errOut)
	root.SetArgs(append([]string{"--config", f.c.AdminConf(), "--server", server}, args...))
	code := cli.ExitCode(root.ExecuteContext(ctx(t)))
	return out.String(), errOut.String(), code
}
