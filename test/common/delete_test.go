package common

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
	"github.com/corral-dev/corral/test/framework"
)

// Deleting a DaemonSet as `corral delete --cascade=` does, with each
// propagation policy: orphan leaves its pods running without an owner (and
// a DaemonSet applied again adopts them, making none), foreground keeps the
// DaemonSet, marked, until its pods are gone, and background removes it at
// once and its pods after it.
func testDeleteModes(t *testing.T, f *dsFixture) {
	cl := f.client(t)
	sel := map[string]string{"suite": "deletes"}
	agents := f.agents(t, "deletes", 2, sel)
	apply(t, cl, daemonSet(t, "deletes", sel, 0))
	pods := waitPodsOn(t, cl, "deletes", "deletes-1", "deletes-2")
	uids := map[string]bool{}
	for _, p := range pods {
		uids[p.GetMetadata().GetUid()] = true
	}
	del := func(policy string) *corralpb.Object {
		t.Helper()
		resp, err := cl.Delete(ctx(t), &corralpb.DeleteRequest{Kind: "DaemonSet", Namespace: "default", Name: "deletes", PropagationPolicy: policy})
		if err != nil {
			t.Fatalf("delete --cascade=%s: %v", policy, err)
		}
		return resp.GetObject()
	}
	exists := func() *corralpb.DaemonSet {
		t.Helper()
		resp, err := cl.Get(ctx(t), &corralpb.GetRequest{Kind: "DaemonSet", Namespace: "default", Name: "deletes"})
		if status.Code(err) == codes.NotFound {
			return nil
		}
		if err != nil {
			t.Fatalf("get daemonset deletes: %v", err)
		}
		return resp.GetObject().GetDaemonSet()
	}

	// Orphan: the DaemonSet goes, its pods stay, owned by nobody.
	del("Orphan")
	if ds := exists(); ds != nil {
		t.Fatalf("after an orphaning delete the DaemonSet is still there: %v", ds.GetMetadata())
	}
	for _, p := range podsOf(t, cl, "deletes") {
		if !uids[p.GetMetadata().GetUid()] || len(p.GetMetadata().GetOwnerReferences()) != 0 {
			t.Fatalf("orphaned pod %s: uid %s, owners %v", p.GetMetadata().GetName(), p.GetMetadata().GetUid(), p.GetMetadata().GetOwnerReferences())
		}
	}
	// Applied again, the DaemonSet adopts them: the same pods, its own.
	apply(t, cl, daemonSet(t, "deletes", sel, 0))
	ds := exists()
	framework.WaitFor(t, "the orphans adopted", 30*time.Second, func() bool {
		pods = podsOf(t, cl, "deletes")
		for _, p := range pods {
			refs := p.GetMetadata().GetOwnerReferences()
			if !uids[p.GetMetadata().GetUid()] {
				t.Fatalf("a new pod %s instead of adopting the orphans", p.GetMetadata().GetName())
			}
			if len(refs) != 1 || refs[0].GetUid() != ds.GetMetadata().GetUid() || !refs[0].GetController() {
				return false
			}
		}
		return len(pods) == 2
	})
	for _, a := range agents {
		if got := a.Assigned(); len(got) != 1 {
			t.Fatalf("node %s was assigned %v, want its one pod throughout", a.Name(), got)
		}
	}

	// Foreground: the DaemonSet stays, marked, until its pods are gone.
	list, err := cl.List(ctx(t), &corralpb.ListRequest{Kind: "Pod", Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	from := list.GetResourceVersion()
	marked := del("Foreground").GetDaemonSet()
	if marked.GetMetadata().GetDeletionTimestamp() == nil || !slices.Contains(marked.GetMetadata().GetFinalizers(), "foregroundDeletion") {
		t.Fatalf("a foreground delete answered %v: want the DaemonSet marked for deletion with the foregroundDeletion finalizer", marked.GetMetadata())
	}
	framework.WaitFor(t, "the DaemonSet gone after its pods", 30*time.Second, func() bool { return exists() == nil })
	podsGone := deletions(t, cl, "Pod", from, pods[0].GetMetadata().GetName(), pods[1].GetMetadata().GetName())
	dsGone := deletions(t, cl, "DaemonSet", from, "deletes")
	for name, at := range podsGone {
		if at >= dsGone["deletes"] {
			t.Fatalf("pod %s deleted at index %d, its DaemonSet no later, at %d", name, at, dsGone["deletes"])
		}
	}

	// Background: the DaemonSet goes at once, its pods after it.
	apply(t, cl, daemonSet(t, "deletes", sel, 0))
	waitPodsOn(t, cl, "deletes", "deletes-1", "deletes-2")
	del("")
	if ds := exists(); ds != nil {
		t.Fatalf("after a background delete the DaemonSet is still there: %v", ds.GetMetadata())
	}
	waitPodsOn(t, cl, "deletes")
	for _, a := range agents {
		waitAgentPods(t, a)
	}
}

// deletions watches kind in the default namespace from resourceVersion
// from until each of names was deleted, and returns the resourceVersion
// (the Raft index) each was deleted at.
func deletions(t *testing.T, cl corralpb.ClusterClient, kind, from string, names ...string) map[string]uint64 {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx(t), 30*time.Second)
	defer cancel()
	stream, err := cl.Watch(wctx, &corralpb.WatchRequest{Kind: kind, Namespace: "default", ResourceVersion: from})
	if err != nil {
		t.Fatalf("watch %s: %v", kind, err)
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string]uint64{}
	for len(out) < len(names) {
		ev, err := stream.Recv()
		if err != nil {
			t.Fatalf("watch %s from %s: %v; deletions seen %v of %v", kind, from, err, out, names)
		}
		if ev.GetType() != "DELETED" || ev.GetObject() == nil {
			continue
		}
		md := api.Meta(ev.GetObject())
		name, rv := md.GetName(), md.GetResourceVersion()
		if !want[name] {
			continue
		}
		n, err := strconv.ParseUint(rv, 10, 64)
		if err != nil {
			t.Fatalf("deleted %s %s at resourceVersion %q: %v", kind, name, rv, err)
		}
		out[name] = n
	}
	return out
}
