package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/corral-dev/corral/api"
	"github.com/corral-dev/corral/events"
	corralpb "github.com/corral-dev/corral/proto"
	"github.com/corral-dev/corral/server"
	"github.com/corral-dev/corral/test/framework"
)

const podsYAML = `
apiVersion: v1
kind: Pod
metadata: {name: mine}
spec:
  nodeName: w1
  containers: [{name: c, image: nginx:1.25}]
---
apiVersion: v1
kind: Pod
metadata: {name: elsewhere}
spec:
  nodeName: w2
  containers: [{name: c, image: nginx:1.25}]
`

// listEvents returns the stored events in namespace ("" for all).
func listEvents(t *testing.T, c framework.Cluster, i int, ns string) []*corralpb.Event {
	t.Helper()
	resp, err := c.Client(t, i).List(ctx(t), &corralpb.ListRequest{Kind: "Event", Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	var out []*corralpb.Event
	for _, o := range resp.GetItems() {
		out = append(out, o.GetEvent())
	}
	return out
}

func TestAgentEventsAreCountedThroughAFollower(t *testing.T) {
	c := framework.NewInProcess(t, 3)
	cl := c.Client(t, 0)
	applied, err := cl.Apply(ctx(t), &corralpb.ApplyRequest{Objects: decode(t, podsYAML)})
	if err != nil {
		t.Fatal(err)
	}
	mine := applied.GetResults()[0].GetObject()
	follower := (framework.Leader(t, c) + 1) % 3
	nc := nodeClient(t, c, follower, "w1")

	// The agent's recorder: a Buffer sending to NodeAPI.RecordEvents.
	send := func(ctx context.Context, evs []*corralpb.Event) error {
		_, err := nc.RecordEvents(ctx, &corralpb.RecordEventsRequest{NodeName: "w1", Events: evs})
		return err
	}
	rec := events.NewBuffer(send, &corralpb.EventSource{Component: "kubelet", Host: "w1"}, nil, nil)
	rctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = rec.Run(rctx) }()
	defer func() { cancel(); <-done }()

	rec.Event(mine, events.TypeNormal, "Pulled", `Container image "nginx:1.25" already present on machine`)
	var first *corralpb.Event
	framework.WaitFor(t, "the event stored", 10*time.Second, func() bool {
		evs := listEvents(t, c, follower, "default")
		if len(evs) == 1 {
			first = evs[0]
		}
		return first != nil
	})
	m := first.GetMetadata()
	if first.GetCount() != 1 || !strings.HasPrefix(m.GetName(), "mine.") || len(m.GetName()) != len("mine.")+16 ||
		m.GetUid() == "" || m.GetCreationTimestamp() == nil || first.GetReportingComponent() != "kubelet" ||
		first.GetReportingInstance() != "w1" || first.GetInvolvedObject().GetUid() != api.Meta(mine).Uid {
		t.Fatalf("first event: %v", first)
	}
	rec.Event(mine, events.TypeNormal, "Pulled", `Container image "nginx:1.25" already present on machine`)
	framework.WaitFor(t, "the count raised", 10*time.Second, func() bool {
		evs := listEvents(t, c, follower, "default")
		return len(evs) == 1 && evs[0].GetCount() == 2
	})
	second := listEvents(t, c, follower, "default")[0]
	if second.GetMetadata().GetName() != m.GetName() ||
		!second.GetLastTimestamp().AsTime().After(first.GetLastTimestamp().AsTime()) ||
		!second.GetFirstTimestamp().AsTime().Equal(first.GetFirstTimestamp().AsTime()) {
		t.Fatalf("after the second report: %v (first %v)", second, first)
	}

	// The node authorizer's rule: its own Node and pods, nothing else.
	other, err := cl.Get(ctx(t), &corralpb.GetRequest{Kind: "Pod", Name: "elsewhere"})
	if err != nil {
		t.Fatal(err)
	}
	record := func(node string, evs ...*corralpb.Event) error {
		_, err := nc.RecordEvents(ctx(t), &corralpb.RecordEventsRequest{NodeName: node, Events: evs})
		return err
	}
	about := func(ref *corralpb.ObjectReference, reason string) *corralpb.Event {
		return &corralpb.Event{InvolvedObject: ref, Reason: reason, Type: events.TypeNormal, Message: "m",
			Source: &corralpb.EventSource{Component: "kubelet"}}
	}
	nodeEvent := about(&corralpb.ObjectReference{Kind: "Node", Name: "w1", Uid: "w1"}, "NodeReady")
	wantCode(t, record("w1", nodeEvent, about(events.Reference(other.GetObject()), "Started")),
		codes.PermissionDenied, `node "w1" may not record events about pod default/elsewhere bound to "w2"`)
	wantCode(t, record("w1", about(&corralpb.ObjectReference{Kind: "Node", Name: "w2"}, "NodeReady")),
		codes.PermissionDenied, `node "w1" may not record events about Node "w2"`)
	wantCode(t, record("w1", about(&corralpb.ObjectReference{Kind: "DaemonSet", Namespace: "default", Name: "web"}, "X")),
		codes.PermissionDenied)
	wantCode(t, record("w2", about(&corralpb.ObjectReference{Kind: "Node", Name: "w2"}, "NodeReady")),
		codes.PermissionDenied, `system:node:w1 may not act for node "w2"`)
	wantCode(t, record("w1", about(&corralpb.ObjectReference{Kind: "Node", Name: "w1"}, "")), codes.InvalidArgument, "events[0]: reason: Required value")
	wantCode(t, record("w1", about(&corralpb.ObjectReference{Kind: "Pod", Name: "mine"}, "Started")), codes.InvalidArgument, "involvedObject.namespace")
	if evs := listEvents(t, c, 0, ""); len(evs) != 1 {
		t.Fatalf("refused calls wrote events: %v", evs)
	}
	// Allowed: its Node (stored in "default") and a pod deleted meanwhile.
	gone := about(&corralpb.ObjectReference{Kind: "Pod", Namespace: "default", Name: "deleted", Uid: "old"}, "Killing")
	if err := record("w1", nodeEvent, gone); err != nil {
		t.Fatal(err)
	}
	evs := listEvents(t, c, follower, "default")
	if len(evs) != 3 {
		t.Fatalf("events: %v", evs)
	}
	for _, e := range evs {
		if e.GetSource().GetHost() != "w1" {
			t.Fatalf("source host not filled in: %v", e)
		}
	}
}

func TestEventTTLAndInProcessRecorder(t *testing.T) {
	c := framework.NewInProcess(t, 1, func(cfg *server.Config) {
		cfg.EventTTL = 10 * time.Minute
		cfg.EventTTLPeriod = 100 * time.Millisecond
	})
	cl := c.Client(t, 0)
	// An event last seen long ago, as a user could have applied it.
	old := &corralpb.Event{
		Metadata:       &corralpb.ObjectMeta{Name: "ancient", Namespace: "default"},
		InvolvedObject: &corralpb.ObjectReference{Kind: "Node", Name: "w1"},
		Reason:         "NodeReady", Type: events.TypeNormal, Count: 3,
		FirstTimestamp: timestamppb.New(time.Now().Add(-3 * time.Hour)),
		LastTimestamp:  timestamppb.New(time.Now().Add(-time.Hour)),
	}
	if _, err := cl.Create(ctx(t), &corralpb.CreateRequest{Object: api.Wrap(old)}); err != nil {
		t.Fatal(err)
	}
	// The controller's path: events recorded in process.
	ds := decode(t, dsYAML)[0]
	api.Meta(ds).Namespace, api.Meta(ds).Uid = "default", "ds-uid"
	ref := events.Reference(ds)
	fresh := &corralpb.Event{InvolvedObject: ref, Reason: "SuccessfulCreate", Message: "Created pod: web-abcde",
		Type: events.TypeNormal, Source: &corralpb.EventSource{Component: "daemonset-controller"}}
	for i := 0; i < 2; i++ {
		if err := c.Server(0).RecordEvents(ctx(t), []*corralpb.Event{fresh}); err != nil {
			t.Fatal(err)
		}
	}
	framework.WaitFor(t, "the old event expired", 10*time.Second, func() bool {
		evs := listEvents(t, c, 0, "")
		return len(evs) == 1 && evs[0].GetInvolvedObject().GetKind() == "DaemonSet"
	})
	got := listEvents(t, c, 0, "")[0]
	if got.GetCount() != 2 || !strings.HasPrefix(got.GetMetadata().GetName(), "web.") ||
		got.GetReportingComponent() != "daemonset-controller" || got.GetMessage() != "Created pod: web-abcde" {
		t.Fatalf("controller event: %v", got)
	}
}
