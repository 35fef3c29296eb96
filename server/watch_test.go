package server_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	corralpb "github.com/corral-dev/corral/proto"
	"github.com/corral-dev/corral/test/framework"
)

// A watch from a list's resourceVersion sees, for the objects the list
// returned, changes as MODIFIED and deletions as DELETED (stamped with the
// deletion's resourceVersion), an object that starts matching as ADDED and
// one that stops as DELETED.
func TestWatchFromListResourceVersion(t *testing.T) {
	c := framework.NewInProcess(t, 1)
	cl := c.Client(t, 0)
	cm := func(name, x, data string) []*corralpb.Object {
		return decode(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: "+name+", labels: {x: \""+x+"\"}}\ndata: {d: \""+data+"\"}\n")
	}
	for _, o := range [][]*corralpb.Object{cm("a", "1", "v1"), cm("b", "2", "v1"), cm("c", "1", "v1")} {
		if _, err := cl.Apply(ctx(t), &corralpb.ApplyRequest{Objects: o}); err != nil {
			t.Fatal(err)
		}
	}
	list, err := cl.List(ctx(t), &corralpb.ListRequest{Kind: "ConfigMap", Namespace: "default", LabelSelector: "x=1"})
	if err != nil || len(list.GetItems()) != 2 {
		t.Fatalf("list: %v, %v", list, err)
	}
	wctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	stream, err := cl.Watch(wctx, &corralpb.WatchRequest{Kind: "ConfigMap", Namespace: "default", LabelSelector: "x=1",
		ResourceVersion: list.GetResourceVersion()})
	if err != nil {
		t.Fatal(err)
	}
	next := func(wantType, wantName string) *corralpb.WatchEvent {
		t.Helper()
		ev, err := stream.Recv()
		if err != nil {
			t.Fatalf("waiting for %s %s: %v", wantType, wantName, err)
		}
		if ev.GetType() != wantType || ev.GetObject().GetConfigMap().GetMetadata().GetName() != wantName {
			t.Fatalf("got %s %s, want %s %s", ev.GetType(), ev.GetObject().GetConfigMap().GetMetadata().GetName(), wantType, wantName)
		}
		return ev
	}
	apply := func(o []*corralpb.Object) {
		t.Helper()
		if _, err := cl.Apply(ctx(t), &corralpb.ApplyRequest{Objects: o}); err != nil {
			t.Fatal(err)
		}
	}
	apply(cm("a", "1", "v2"))
	modified := next("MODIFIED", "a").GetObject().GetConfigMap().GetMetadata().GetResourceVersion()
	apply(cm("b", "1", "v1")) // starts matching
	next("ADDED", "b")
	apply(cm("c", "2", "v1")) // stops matching
	next("DELETED", "c")
	if _, err := cl.Delete(ctx(t), &corralpb.DeleteRequest{Kind: "ConfigMap", Namespace: "default", Name: "a"}); err != nil {
		t.Fatal(err)
	}
	ev := next("DELETED", "a")
	rv, err1 := strconv.ParseUint(ev.GetObject().GetConfigMap().GetMetadata().GetResourceVersion(), 10, 64)
	last, err2 := strconv.ParseUint(modified, 10, 64)
	if err1 != nil || err2 != nil || rv <= last {
		t.Fatalf("DELETED a carries resourceVersion %q, want the deletion's, after %s", ev.GetObject().GetConfigMap().GetMetadata().GetResourceVersion(), modified)
	}
	if _, err := cl.Delete(ctx(t), &corralpb.DeleteRequest{Kind: "ConfigMap", Namespace: "default", Name: "c"}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Delete(ctx(t), &corralpb.DeleteRequest{Kind: "ConfigMap", Namespace: "default", Name: "b"}); err != nil {
		t.Fatal(err)
	}
	next("DELETED", "b") // c's deletion is not this watcher's: it no longer matched
}
