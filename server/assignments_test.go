package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
	"github.com/corral-dev/corral/test/framework"
)

// The agent's own status reports are not echoed back in its assignments;
// a change it must see (a label, for the downward API) is.
func TestAssignmentsSkipStatusEchoes(t *testing.T) {
	c := framework.NewInProcess(t, 1)
	cl := c.Client(t, 0)
	pod := decode(t, "apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {a: \"1\"}}\nspec:\n  nodeName: w1\n  containers: [{name: c, image: nginx:1.25}]\n")
	if _, err := cl.Apply(ctx(t), &corralpb.ApplyRequest{Objects: pod}); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	nc := nodeClient(t, c, 0, "w1")
	stream, err := nc.Assignments(sctx, &corralpb.AssignmentsRequest{NodeName: "w1"})
	if err != nil {
		t.Fatal(err)
	}
	first, err := stream.Recv()
	if err != nil || len(first.GetItems()) != 1 {
		t.Fatalf("full set: %v, %v", first, err)
	}
	uid := first.GetItems()[0].GetPod().GetMetadata().GetUid()
	if _, err := nc.UpdateStatus(ctx(t), &corralpb.UpdateStatusRequest{NodeName: "w1", Pods: []*corralpb.PodStatusUpdate{{
		Namespace: "default", Name: "p", Uid: uid, Status: &corralpb.PodStatus{Phase: "Running"}}}}); err != nil {
		t.Fatal(err)
	}
	got, err := cl.Get(ctx(t), &corralpb.GetRequest{Kind: "Pod", Namespace: "default", Name: "p"})
	if err != nil || got.GetObject().GetPod().GetStatus().GetPhase() != "Running" {
		t.Fatalf("status not stored: %v, %v", got, err)
	}
	p := got.GetObject().GetPod()
	p.Metadata.Labels["a"] = "2"
	if _, err := cl.Update(ctx(t), &corralpb.UpdateRequest{Object: api.Wrap(p)}); err != nil {
		t.Fatal(err)
	}
	msg, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if it := msg.GetItems(); len(it) != 1 || it[0].GetPod().GetMetadata().GetLabels()["a"] != "2" {
		t.Fatalf("the next message after a status report and a label change: %v, want only the label change", msg)
	}
}
