// Package common holds test bodies written once against framework.Cluster
// and run both on in-process servers and on real server processes.
package common

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
	"github.com/corral-dev/corral/test/framework"
)

// ExamplesDir is deploy/examples of this checkout: the seed tutorial's
// manifests plus the namespace and ConfigMap they rely on.
func ExamplesDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "deploy", "examples")
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// listJSON lists a kind in every namespace through server i and returns the
// items as Kubernetes JSON, for comparing state across servers.
func listJSON(t testing.TB, c framework.Cluster, i int, kind string) (string, int) {
	t.Helper()
	resp, err := c.Client(t, i).List(ctx(t), &corralpb.ListRequest{Kind: kind})
	if err != nil {
		t.Fatalf("list %s through server %d: %v", kind, i, err)
	}
	out, err := api.MarshalList(resp.GetItems(), false)
	if err != nil {
		t.Fatal(err)
	}
	return string(out), len(resp.GetItems())
}

// SeedSurvivesLeaderLoss applies every example manifest in one request,
// checks each server returns the same DaemonSets, kills the leader and
// checks the survivors still return exactly them and take writes.
func SeedSurvivesLeaderLoss(t *testing.T, c framework.Cluster) {
	objs, err := api.DecodeFiles([]string{ExamplesDir()}, false)
	if err != nil {
		t.Fatalf("decode examples: %v", err)
	}
	resp, err := c.Client(t, 0).Apply(ctx(t), &corralpb.ApplyRequest{Objects: objs})
	if err != nil {
		t.Fatalf("apply examples: %v", err)
	}
	for _, r := range resp.GetResults() {
		if r.GetAction() != "created" {
			t.Errorf("%s: action %q, want created", api.Ref(r.GetObject()), r.GetAction())
		}
	}
	// The controller writes the DaemonSets' status right after they are
	// created: wait until it has, then every server must return the same.
	var before string
	framework.WaitFor(t, "every server to return the same DaemonSets", 20*time.Second, func() bool {
		var n int
		before, n = listJSON(t, c, 0, "DaemonSet")
		if n != 10 || !strings.Contains(before, `"observedGeneration": 1`) {
			return false
		}
		for i := 1; i < c.Size(); i++ {
			if got, _ := listJSON(t, c, i, "DaemonSet"); got != before {
				return false
			}
		}
		return strings.Count(before, `"observedGeneration": 1`) == 10
	})
	// Re-applying changes nothing.
	resp, err = c.Client(t, 1).Apply(ctx(t), &corralpb.ApplyRequest{Objects: objs})
	if err != nil {
		t.Fatalf("re-apply: %v", err)
	}
	for _, r := range resp.GetResults() {
		if r.GetAction() != "unchanged" {
			t.Errorf("re-apply %s: action %q, want unchanged", api.Ref(r.GetObject()), r.GetAction())
		}
	}
	leader := framework.Leader(t, c)
	c.Kill(t, leader)
	for i := 0; i < c.Size(); i++ {
		if !c.Running(i) {
			continue
		}
		if got, _ := listJSON(t, c, i, "DaemonSet"); got != before {
			t.Fatalf("after the leader died, server %d returns:\n%s\nwant\n%s", i, got, before)
		}
		cm := &corralpb.Object{Kind: &corralpb.Object_ConfigMap{ConfigMap: &corralpb.ConfigMap{
			Metadata: &corralpb.ObjectMeta{Name: fmt.Sprintf("after-failover-%d", i)}, Data: map[string]string{"k": "v"}}}}
		if _, err := c.Client(t, i).Create(ctx(t), &corralpb.CreateRequest{Object: cm}); err != nil {
			t.Fatalf("create through survivor %d: %v", i, err)
		}
	}
	c.Restart(t, leader)
	framework.WaitFor(t, "restarted server to catch up", 20*time.Second, func() bool {
		resp, err := c.Client(t, leader).List(ctx(t), &corralpb.ListRequest{Kind: "ConfigMap", Namespace: "default"})
		return err == nil && len(resp.GetItems()) == c.Size()-1
	})
}

// ConcurrentUpdatesOneWins sends conflicting updates carrying the same
// resourceVersion through every server at once: exactly one succeeds and
// every other gets a Conflict (Aborted).
func ConcurrentUpdatesOneWins(t *testing.T, c framework.Cluster) {
	cm := &corralpb.Object{Kind: &corralpb.Object_ConfigMap{ConfigMap: &corralpb.ConfigMap{
		Metadata: &corralpb.ObjectMeta{Name: "contended"}, Data: map[string]string{"n": "0"}}}}
	created, err := c.Client(t, 0).Create(ctx(t), &corralpb.CreateRequest{Object: cm})
	if err != nil {
		t.Fatal(err)
	}
	const writers = 9
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			o := created.GetObject()
			u := &corralpb.Object{Kind: &corralpb.Object_ConfigMap{ConfigMap: &corralpb.ConfigMap{
				Metadata: &corralpb.ObjectMeta{Name: "contended", Namespace: "default",
					ResourceVersion: api.Meta(o).ResourceVersion},
				Data: map[string]string{"n": fmt.Sprint(w + 1)}}}}
			_, errs[w] = c.Client(t, w%c.Size()).Update(ctx(t), &corralpb.UpdateRequest{Object: u})
		}(w)
	}
	wg.Wait()
	wins := 0
	for w, err := range errs {
		switch status.Code(err) {
		case codes.OK:
			wins++
		case codes.Aborted:
			if !strings.Contains(err.Error(), `Operation cannot be fulfilled on configmaps "contended"`) {
				t.Errorf("writer %d: conflict message %q", w, err)
			}
		default:
			t.Errorf("writer %d: %v", w, err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d updates won, want exactly 1", wins)
	}
}

// BadInputChangesNothing checks that an apply with one invalid object, or
// into a namespace that does not exist, fails with an error naming the
// object and field and writes none of the request's objects.
func BadInputChangesNothing(t *testing.T, c framework.Cluster) {
	objs, err := api.Decode([]byte(`
apiVersion: v1
kind: Namespace
metadata:
  name: half-applied
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: broken
  namespace: half-applied
spec:
  selector:
    matchLabels: {app: a}
  template:
    metadata:
      labels: {app: b}
    spec:
      containers:
      - name: c
        image: nginx:1.25
`), "bad.yml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Client(t, 1).Apply(ctx(t), &corralpb.ApplyRequest{Objects: objs})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "broken") ||
		!strings.Contains(err.Error(), "spec.template.metadata.labels") {
		t.Fatalf("invalid apply: got %v, want InvalidArgument naming broken and spec.template.metadata.labels", err)
	}
	if _, err := c.Client(t, 2%c.Size()).Get(ctx(t), &corralpb.GetRequest{Kind: "Namespace", Name: "half-applied"}); status.Code(err) != codes.NotFound {
		t.Fatalf("namespace of a rejected apply exists (err %v)", err)
	}
	objs, err = api.DecodeFiles([]string{filepath.Join(ExamplesDir(), "node-exporter.yml")}, false)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Client(t, 0).Apply(ctx(t), &corralpb.ApplyRequest{Objects: objs})
	if status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), `namespaces "monitoring" not found`) ||
		!strings.Contains(err.Error(), "corral create namespace monitoring") {
		t.Fatalf("apply into a missing namespace: got %v", err)
	}
}

// WatchStreamsChanges watches ConfigMaps through one server while another
// creates, updates and deletes one.
func WatchStreamsChanges(t *testing.T, c framework.Cluster) {
	wctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// List, then watch from the list's resourceVersion, as Kubernetes
	// clients do: the watch call returns before the server has subscribed.
	list, err := c.Client(t, 0).List(ctx(t), &corralpb.ListRequest{Kind: "ConfigMap", Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	stream, err := c.Client(t, 0).Watch(wctx, &corralpb.WatchRequest{Kind: "ConfigMap", Namespace: "default",
		LabelSelector: "app=watched", ResourceVersion: list.GetResourceVersion()})
	if err != nil {
		t.Fatal(err)
	}
	cl := c.Client(t, 1%c.Size())
	mk := func(v string) *corralpb.Object {
		return &corralpb.Object{Kind: &corralpb.Object_ConfigMap{ConfigMap: &corralpb.ConfigMap{
			Metadata: &corralpb.ObjectMeta{Name: "w", Namespace: "default", Labels: map[string]string{"app": "watched"}},
			Data:     map[string]string{"v": v}}}}
	}
	if _, err := cl.Create(ctx(t), &corralpb.CreateRequest{Object: mk("1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Apply(ctx(t), &corralpb.ApplyRequest{Objects: []*corralpb.Object{mk("2")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Delete(ctx(t), &corralpb.DeleteRequest{Kind: "ConfigMap", Namespace: "default", Name: "w"}); err != nil {
		t.Fatal(err)
	}
	want := []string{"ADDED 1", "MODIFIED 2", "DELETED 2"}
	for _, w := range want {
		ev, err := stream.Recv()
		if err != nil {
			t.Fatalf("watch: %v (waiting for %s)", err, w)
		}
		if got := ev.GetType() + " " + ev.GetObject().GetConfigMap().GetData()["v"]; got != w {
			t.Fatalf("watch event %q, want %q", got, w)
		}
	}
}
