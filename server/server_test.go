package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
	"github.com/corral-dev/corral/test/framework"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return c
}

func decode(t *testing.T, doc string) []*corralpb.Object {
	t.Helper()
	objs, err := api.Decode([]byte(doc), "test.yml")
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

const dsYAML = `
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: web
  labels: {app: web}
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.25
`

func wantCode(t *testing.T, err error, code codes.Code, contains ...string) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("got %v, want code %v", err, code)
	}
	for _, c := range contains {
		if !strings.Contains(status.Convert(err).Message(), c) {
			t.Fatalf("error %q does not mention %q", status.Convert(err).Message(), c)
		}
	}
}

func TestTokenRequired(t *testing.T) {
	c := framework.NewInProcess(t, 1)
	conn, err := grpc.NewClient(c.Server(0).APIAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cl := corralpb.NewClusterClient(conn)
	_, err = cl.List(ctx(t), &corralpb.ListRequest{Kind: "Namespace"})
	wantCode(t, err, codes.Unauthenticated)
	bad := metadata.AppendToOutgoingContext(ctx(t), "authorization", "Bearer not-the-token")
	_, err = cl.List(bad, &corralpb.ListRequest{Kind: "Namespace"})
	wantCode(t, err, codes.Unauthenticated, "invalid credentials")
	if _, err := c.Client(t, 0).List(ctx(t), &corralpb.ListRequest{Kind: "Namespace"}); err != nil {
		t.Fatalf("with the admin.conf token: %v", err)
	}
}

func TestApplyCreatesConfiguresAndBumpsGeneration(t *testing.T) {
	c := framework.NewInProcess(t, 1)
	cl := c.Client(t, 0)
	resp, err := cl.Apply(ctx(t), &corralpb.ApplyRequest{Objects: decode(t, dsYAML)})
	if err != nil {
		t.Fatal(err)
	}
	ds := resp.GetResults()[0].GetObject().GetDaemonSet()
	m := ds.GetMetadata()
	if resp.GetResults()[0].GetAction() != "created" || m.GetGeneration() != 1 || m.GetUid() == "" ||
		m.GetCreationTimestamp() == nil || m.GetResourceVersion() == "" || m.GetNamespace() != "default" {
		t.Fatalf("created object: %v", resp.GetResults()[0])
	}
	if ds.GetSpec().GetUpdateStrategy().GetType() != "RollingUpdate" || ds.GetSpec().GetRevisionHistoryLimit() != 10 {
		t.Fatalf("defaults not applied: %v", ds.GetSpec())
	}
	changed := strings.Replace(dsYAML, "nginx:1.25", "nginx:1.26", 1)
	resp, err = cl.Apply(ctx(t), &corralpb.ApplyRequest{Objects: decode(t, changed)})
	if err != nil {
		t.Fatal(err)
	}
	m2 := resp.GetResults()[0].GetObject().GetDaemonSet().GetMetadata()
	if resp.GetResults()[0].GetAction() != "configured" || m2.GetGeneration() != 2 || m2.GetUid() != m.GetUid() ||
		m2.GetResourceVersion() == m.GetResourceVersion() {
		t.Fatalf("configured object: %v", resp.GetResults()[0])
	}
	// A label-only change is configured without a new generation.
	relabel := strings.Replace(changed, "labels: {app: web}\nspec", "labels: {app: web, tier: edge}\nspec", 1)
	resp, err = cl.Apply(ctx(t), &corralpb.ApplyRequest{Objects: decode(t, relabel)})
	if err != nil {
		t.Fatal(err)
	}
	if g := resp.GetResults()[0].GetObject().GetDaemonSet().GetMetadata().GetGeneration(); g != 2 {
		t.Fatalf("generation after a metadata-only change = %d, want 2", g)
	}
	// The selector is immutable.
	moved := strings.Replace(relabel, "matchLabels: {app: web}", "matchLabels: {app: web, x: z}", 1)
	moved = strings.Replace(moved, "labels: {app: web}\n    spec", "labels: {app: web, x: z}\n    spec", 1)
	_, err = cl.Apply(ctx(t), &corralpb.ApplyRequest{Objects: decode(t, moved)})
	wantCode(t, err, codes.InvalidArgument, "spec.selector", "field is immutable")
}

func TestUpdateKeepsStatusAndRejectsStaleVersion(t *testing.T) {
	c := framework.NewInProcess(t, 1)
	cl := c.Client(t, 0)
	resp, err := cl.Apply(ctx(t), &corralpb.ApplyRequest{Objects: decode(t, dsYAML)})
	if err != nil {
		t.Fatal(err)
	}
	obj := resp.GetResults()[0].GetObject()
	stale := api.Meta(obj).GetResourceVersion()
	edit := decode(t, dsYAML)[0]
	api.Meta(edit).ResourceVersion = stale
	api.Meta(edit).Labels["edited"] = "yes"
	edit.GetDaemonSet().Status = &corralpb.DaemonSetStatus{NumberReady: 99}
	up, err := cl.Update(ctx(t), &corralpb.UpdateRequest{Object: edit})
	if err != nil {
		t.Fatal(err)
	}
	if up.GetObject().GetDaemonSet().GetStatus().GetNumberReady() == 99 {
		t.Fatal("a user update wrote the DaemonSet's status")
	}
	if api.Meta(up.GetObject()).Labels["edited"] != "yes" {
		t.Fatal("update lost the label change")
	}
	_, err = cl.Update(ctx(t), &corralpb.UpdateRequest{Object: edit})
	wantCode(t, err, codes.Aborted, `Operation cannot be fulfilled on daemonsets.apps "web"`)
}

func TestDeletePropagation(t *testing.T) {
	c := framework.NewInProcess(t, 1)
	cl := c.Client(t, 0)
	resp, err := cl.Apply(ctx(t), &corralpb.ApplyRequest{Objects: decode(t, dsYAML)})
	if err != nil {
		t.Fatal(err)
	}
	owner := resp.GetResults()[0].GetObject()
	pod := func(name string) *corralpb.Object {
		o := decode(t, `
apiVersion: v1
kind: Pod
metadata:
  name: `+name+`
  labels: {app: web}
spec:
  containers:
  - name: web
    image: nginx:1.25
`)[0]
		api.Meta(o).OwnerReferences = []*corralpb.OwnerReference{{ApiVersion: "apps/v1", Kind: "DaemonSet",
			Name: "web", Uid: api.Meta(owner).Uid}}
		return o
	}
	if _, err := cl.Apply(ctx(t), &corralpb.ApplyRequest{Objects: []*corralpb.Object{pod("web-a"), pod("web-b")}}); err != nil {
		t.Fatal(err)
	}
	// Foreground: the owner stays, marked, while dependents exist.
	if _, err := cl.Delete(ctx(t), &corralpb.DeleteRequest{Kind: "DaemonSet", Name: "web", PropagationPolicy: "Foreground"}); err != nil {
		t.Fatal(err)
	}
	got, err := cl.Get(ctx(t), &corralpb.GetRequest{Kind: "DaemonSet", Name: "web"})
	if err != nil {
		t.Fatalf("foreground delete removed the owner at once: %v", err)
	}
	if m := api.Meta(got.GetObject()); m.DeletionTimestamp == nil || !strings.Contains(strings.Join(m.Finalizers, ","), "foregroundDeletion") {
		t.Fatalf("foreground delete did not mark the owner: %v", m)
	}
	// Orphan: the owner goes, the dependents stay without the reference.
	if _, err := cl.Delete(ctx(t), &corralpb.DeleteRequest{Kind: "DaemonSet", Name: "web", PropagationPolicy: "Orphan"}); err != nil {
		t.Fatal(err)
	}
	_, err = cl.Get(ctx(t), &corralpb.GetRequest{Kind: "DaemonSet", Name: "web"})
	wantCode(t, err, codes.NotFound, `daemonsets.apps "web" not found`)
	pods, err := cl.List(ctx(t), &corralpb.ListRequest{Kind: "Pod", Namespace: "default", LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.GetItems()) != 2 {
		t.Fatalf("%d pods after an orphan delete, want 2", len(pods.GetItems()))
	}
	for _, p := range pods.GetItems() {
		if len(api.Meta(p).OwnerReferences) != 0 {
			t.Fatalf("orphaned pod %s keeps its owner reference", api.Meta(p).Name)
		}
	}
	_, err = cl.Delete(ctx(t), &corralpb.DeleteRequest{Kind: "Namespace", Name: "kube-system"})
	wantCode(t, err, codes.PermissionDenied, "may not be deleted")
	_, err = cl.Delete(ctx(t), &corralpb.DeleteRequest{Kind: "Pod", Name: "nope"})
	wantCode(t, err, codes.NotFound, `pods "nope" not found`)
}

func TestFieldSelectors(t *testing.T) {
	c := framework.NewInProcess(t, 1)
	cl := c.Client(t, 0)
	ev := decode(t, `
apiVersion: v1
kind: Event
metadata: {name: e1}
involvedObject: {kind: DaemonSet, name: web, namespace: default}
reason: SuccessfulCreate
message: "Created pod: web-abcde"
type: Normal
source: {component: daemonset-controller}
---
apiVersion: v1
kind: Event
metadata: {name: e2}
involvedObject: {kind: DaemonSet, name: other, namespace: default}
reason: SuccessfulCreate
type: Normal
`)
	if _, err := cl.Apply(ctx(t), &corralpb.ApplyRequest{Objects: ev}); err != nil {
		t.Fatal(err)
	}
	resp, err := cl.List(ctx(t), &corralpb.ListRequest{Kind: "Event", Namespace: "default",
		FieldSelector: "involvedObject.kind=DaemonSet,involvedObject.name=web"})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetItems()) != 1 || api.Meta(resp.GetItems()[0]).Name != "e1" {
		t.Fatalf("field selector matched %v", resp.GetItems())
	}
	_, err = cl.List(ctx(t), &corralpb.ListRequest{Kind: "Event", FieldSelector: "spec.bogus=1"})
	wantCode(t, err, codes.InvalidArgument, "field label not supported: spec.bogus")
}
