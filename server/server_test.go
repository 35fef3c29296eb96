package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

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

// The API port speaks TLS only, and cluster calls need a client
// certificate; the admin.conf a server writes holds one.
func TestTLSRequired(t *testing.T) {
	c := framework.NewInProcess(t, 1)
	plain, err := grpc.NewClient(c.Server(0).APIAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = plain.Close() })
	_, err = corralpb.NewClusterClient(plain).List(ctx(t), &corralpb.ListRequest{Kind: "Namespace"})
	wantCode(t, err, codes.Unavailable)
	anon := corralpb.NewClusterClient(dialServer(t, c.Server(0).APIAddr(), anonymous(c.CA(t))))
	_, err = anon.List(ctx(t), &corralpb.ListRequest{Kind: "Namespace"})
	wantCode(t, err, codes.Unauthenticated, "no client certificate")
	if _, err := c.Client(t, 0).List(ctx(t), &corralpb.ListRequest{Kind: "Namespace"}); err != nil {
		t.Fatalf("with the admin.conf certificate: %v", err)
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
	if _, err := cl.Apply(ctx(t), &corralpb.ApplyRequest{Objects: decode(t, dsYAML)}); err != nil {
		t.Fatal(err)
	}
	// The DaemonSet controller writes the status once: read the object
	// after that, as a client would before editing.
	var obj *corralpb.Object
	framework.WaitFor(t, "the controller's status", 10*time.Second, func() bool {
		got, err := cl.Get(ctx(t), &corralpb.GetRequest{Kind: "DaemonSet", Name: "web"})
		if err != nil {
			return false
		}
		obj = got.GetObject()
		return obj.GetDaemonSet().GetStatus().GetObservedGeneration() == 1
	})
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

// TestDeletePropagation checks the API's propagation policies with an
// owner no controller acts on (a ConfigMap), so that what the server itself
// does is what is seen; the DaemonSet controller's part (it completes
// foreground deletions and collects the pods of deleted DaemonSets) is
// tested with the controller.
func TestDeletePropagation(t *testing.T) {
	c := framework.NewInProcess(t, 1)
	cl := c.Client(t, 0)
	owner := func(name string) *corralpb.Object {
		resp, err := cl.Apply(ctx(t), &corralpb.ApplyRequest{Objects: decode(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: "+name+"}\ndata: {a: b}\n")})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetResults()[0].GetObject()
	}
	dependent := func(name string, o *corralpb.Object) {
		d := decode(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: "+name+", labels: {app: web}}\n")[0]
		api.Meta(d).OwnerReferences = []*corralpb.OwnerReference{{ApiVersion: "v1", Kind: "ConfigMap", Name: api.Meta(o).Name, Uid: api.Meta(o).Uid}}
		if _, err := cl.Apply(ctx(t), &corralpb.ApplyRequest{Objects: []*corralpb.Object{d}}); err != nil {
			t.Fatal(err)
		}
	}
	fg := owner("fg")
	dependent("fg-a", fg)
	// Foreground: the owner stays, marked, while dependents exist.
	if _, err := cl.Delete(ctx(t), &corralpb.DeleteRequest{Kind: "ConfigMap", Name: "fg", PropagationPolicy: "Foreground"}); err != nil {
		t.Fatal(err)
	}
	got, err := cl.Get(ctx(t), &corralpb.GetRequest{Kind: "ConfigMap", Name: "fg"})
	if err != nil {
		t.Fatalf("foreground delete removed the owner at once: %v", err)
	}
	if m := api.Meta(got.GetObject()); m.DeletionTimestamp == nil || !strings.Contains(strings.Join(m.Finalizers, ","), "foregroundDeletion") {
		t.Fatalf("foreground delete did not mark the owner: %v", m)
	}
	// Orphan: the owner goes, the dependents stay without the reference.
	or := owner("or")
	dependent("or-a", or)
	dependent("or-b", or)
	if _, err := cl.Delete(ctx(t), &corralpb.DeleteRequest{Kind: "ConfigMap", Name: "or", PropagationPolicy: "Orphan"}); err != nil {
		t.Fatal(err)
	}
	_, err = cl.Get(ctx(t), &corralpb.GetRequest{Kind: "ConfigMap", Name: "or"})
	wantCode(t, err, codes.NotFound, `configmaps "or" not found`)
	for _, name := range []string{"or-a", "or-b"} {
		d, err := cl.Get(ctx(t), &corralpb.GetRequest{Kind: "ConfigMap", Name: name})
		if err != nil {
			t.Fatalf("orphaned dependent %s: %v", name, err)
		}
		if len(api.Meta(d.GetObject()).OwnerReferences) != 0 {
			t.Fatalf("orphaned %s keeps its owner reference", name)
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

// TestPodSpecIsImmutable: an agent runs a pod as it was created, so apply
// and update refuse a change to a pod's spec, naming the field, and store
// nothing; its metadata may change.
func TestPodSpecIsImmutable(t *testing.T) {
	c := framework.NewInProcess(t, 1)
	cl := c.Client(t, 0)
	const pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: web, labels: {app: web}}\nspec:\n  nodeName: w1\n  containers:\n  - {name: app, image: nginx:1.25}\n"
	for _, tc := range []struct{ doc, action string }{{pod, "created"}, {pod, "unchanged"},
		{strings.Replace(pod, "{app: web}", "{app: web, tier: edge}", 1), "configured"}} {
		resp, err := cl.Apply(ctx(t), &corralpb.ApplyRequest{Objects: decode(t, tc.doc)})
		if err != nil || resp.GetResults()[0].GetAction() != tc.action {
			t.Fatalf("apply: %v, %v; want %s", resp, err, tc.action)
		}
	}
	_, err := cl.Apply(ctx(t), &corralpb.ApplyRequest{Objects: decode(t, strings.Replace(pod, "nginx:1.25", "nginx:1.26", 1))})
	wantCode(t, err, codes.InvalidArgument, `Pod "web" is invalid`, "spec: Forbidden: pod updates may not change the spec")
	got, err := cl.Get(ctx(t), &corralpb.GetRequest{Kind: "Pod", Name: "web"})
	if err != nil {
		t.Fatal(err)
	}
	changed := proto.Clone(got.GetObject()).(*corralpb.Object)
	changed.GetPod().Spec.NodeName = "w2"
	_, err = cl.Update(ctx(t), &corralpb.UpdateRequest{Object: changed})
	wantCode(t, err, codes.InvalidArgument, "spec: Forbidden")
	after, err := cl.Get(ctx(t), &corralpb.GetRequest{Kind: "Pod", Name: "web"})
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(after.GetObject(), got.GetObject()) {
		t.Fatalf("a refused update changed the pod:\n%v\nwas\n%v", after.GetObject(), got.GetObject())
	}
}
