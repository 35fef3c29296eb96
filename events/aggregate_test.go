package events

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

var (
	t0  = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	now = t0.Add(90 * time.Second)
)

func podRef() *corralpb.ObjectReference {
	return &corralpb.ObjectReference{Kind: "Pod", Namespace: "kube-system", Name: "fluentd-x7k2p", Uid: "uid-1", ApiVersion: "v1"}
}

// seen is an event as the server stores it: named, counted, first seen at
// t0 and last seen at last.
func seen(name string, count int32, last time.Time, change func(*corralpb.Event)) *corralpb.Event {
	e := &corralpb.Event{
		ApiVersion: "v1", Kind: "Event",
		Metadata:       &corralpb.ObjectMeta{Name: name, Namespace: "kube-system", Uid: "ev-" + name, ResourceVersion: "7"},
		InvolvedObject: podRef(), Reason: "Pulled", Message: `Successfully pulled image "fluentd:v1"`, Type: TypeNormal,
		Source:         &corralpb.EventSource{Component: "kubelet", Host: "w1"},
		FirstTimestamp: timestamppb.New(t0), LastTimestamp: timestamppb.New(last), Count: count,
		ReportingComponent: "kubelet", ReportingInstance: "w1",
	}
	if change != nil {
		change(e)
	}
	return e
}

// incoming is an event as a Buffer sends it.
func incoming(change func(*corralpb.Event)) *corralpb.Event {
	e := &corralpb.Event{
		InvolvedObject: podRef(), Reason: "Pulled", Message: `Successfully pulled image "fluentd:v1"`, Type: TypeNormal,
		Source: &corralpb.EventSource{Component: "kubelet", Host: "w1"},
		Count:  1, FirstTimestamp: timestamppb.New(now.Add(-time.Second)), LastTimestamp: timestamppb.New(now.Add(-time.Second)),
	}
	if change != nil {
		change(e)
	}
	return e
}

func TestAggregate(t *testing.T) {
	newName := Name("fluentd-x7k2p", now)
	tests := []struct {
		name      string
		existing  []*corralpb.Event
		in        *corralpb.Event
		wantNew   bool
		wantName  string
		wantCount int32
	}{
		{"nothing stored", nil, incoming(nil), true, newName, 1},
		{"same event again", []*corralpb.Event{seen("a", 4, t0, nil)}, incoming(nil), false, "a", 5},
		{"merged count from a buffer", []*corralpb.Event{seen("a", 4, t0, nil)},
			incoming(func(e *corralpb.Event) { e.Count = 3 }), false, "a", 7},
		{"new event keeps the buffer's count", nil, incoming(func(e *corralpb.Event) { e.Count = 3 }), true, newName, 3},
		{"most recently seen of two matches",
			[]*corralpb.Event{seen("old", 2, t0, nil), seen("recent", 1, t0.Add(time.Minute), nil), seen("older", 9, t0.Add(-time.Minute), nil)},
			incoming(nil), false, "recent", 2},
		{"other reason", []*corralpb.Event{seen("a", 1, t0, nil)},
			incoming(func(e *corralpb.Event) { e.Reason = "Pulling" }), true, newName, 1},
		{"other message", []*corralpb.Event{seen("a", 1, t0, nil)},
			incoming(func(e *corralpb.Event) { e.Message = "other" }), true, newName, 1},
		{"other type", []*corralpb.Event{seen("a", 1, t0, nil)},
			incoming(func(e *corralpb.Event) { e.Type = TypeWarning }), true, newName, 1},
		{"other uid (a recreated pod)", []*corralpb.Event{seen("a", 1, t0, nil)},
			incoming(func(e *corralpb.Event) { e.InvolvedObject.Uid = "uid-2" }), true, newName, 1},
		{"other kind", []*corralpb.Event{seen("a", 1, t0, nil)},
			incoming(func(e *corralpb.Event) { e.InvolvedObject.Kind = "DaemonSet" }), true, newName, 1},
		{"other container", []*corralpb.Event{seen("a", 1, t0, nil)},
			incoming(func(e *corralpb.Event) { e.InvolvedObject.FieldPath = "spec.containers{app}" }), true, newName, 1},
		{"other host", []*corralpb.Event{seen("a", 1, t0, nil)},
			incoming(func(e *corralpb.Event) { e.Source.Host = "w2" }), true, newName, 1},
		{"other component", []*corralpb.Event{seen("a", 1, t0, nil)},
			incoming(func(e *corralpb.Event) { e.Source.Component = "daemonset-controller" }), true, newName, 1},
		{"resourceVersion of the object does not matter", []*corralpb.Event{seen("a", 1, t0, nil)},
			incoming(func(e *corralpb.Event) { e.InvolvedObject.ResourceVersion = "99" }), false, "a", 2},
		{"stored count zero counts as one", []*corralpb.Event{seen("a", 0, t0, nil)}, incoming(nil), false, "a", 2},
		{"combined events are one whatever their latest message",
			[]*corralpb.Event{seen("a", 1, t0, nil), seen("c", 4, t0, func(e *corralpb.Event) { e.Message = api.CombinedEventPrefix + "Created pod: x" })},
			incoming(func(e *corralpb.Event) { e.Message = api.CombinedEventPrefix + "Created pod: y" }), false, "c", 5},
		{"a combined event is not its plain message", []*corralpb.Event{seen("a", 1, t0, nil)},
			incoming(func(e *corralpb.Event) { e.Message = api.CombinedEventPrefix + e.Message }), true, newName, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := make([]*corralpb.Event, len(tt.existing))
			for i, e := range tt.existing {
				before[i] = proto.Clone(e).(*corralpb.Event)
			}
			inBefore := proto.Clone(tt.in).(*corralpb.Event)
			put, isNew := Aggregate(tt.existing, tt.in, now)
			if isNew != tt.wantNew || put.GetMetadata().GetName() != tt.wantName || put.GetCount() != tt.wantCount {
				t.Fatalf("got new=%v name=%q count=%d, want new=%v name=%q count=%d",
					isNew, put.GetMetadata().GetName(), put.GetCount(), tt.wantNew, tt.wantName, tt.wantCount)
			}
			if !put.GetLastTimestamp().AsTime().Equal(now) {
				t.Errorf("lastTimestamp = %v, want %v", put.GetLastTimestamp().AsTime(), now)
			}
			if put.GetMessage() != tt.in.GetMessage() {
				t.Errorf("message = %q, want the incoming %q", put.GetMessage(), tt.in.GetMessage())
			}
			if !isNew && !put.GetFirstTimestamp().AsTime().Equal(t0) {
				t.Errorf("firstTimestamp of an existing event changed to %v", put.GetFirstTimestamp().AsTime())
			}
			for i := range tt.existing {
				if !proto.Equal(before[i], tt.existing[i]) {
					t.Errorf("existing[%d] changed", i)
				}
			}
			if !proto.Equal(inBefore, tt.in) {
				t.Error("incoming changed")
			}
		})
	}
}

func TestAggregateNewEvent(t *testing.T) {
	in := incoming(func(e *corralpb.Event) { e.Metadata = &corralpb.ObjectMeta{Name: "ignored", Uid: "client-uid"} })
	put, isNew := Aggregate(nil, in, now)
	want := &corralpb.Event{
		ApiVersion: "v1", Kind: "Event",
		Metadata:       &corralpb.ObjectMeta{Name: Name("fluentd-x7k2p", now), Namespace: "kube-system"},
		InvolvedObject: podRef(), Reason: "Pulled", Message: `Successfully pulled image "fluentd:v1"`, Type: TypeNormal,
		Source:         &corralpb.EventSource{Component: "kubelet", Host: "w1"},
		FirstTimestamp: timestamppb.New(now), LastTimestamp: timestamppb.New(now), Count: 1,
		ReportingComponent: "kubelet", ReportingInstance: "w1",
	}
	if !isNew || !proto.Equal(put, want) {
		t.Fatalf("new event:\n got %v\nwant %v", put, want)
	}
	if put.LastTimestamp == put.FirstTimestamp {
		t.Error("first and last timestamps share one message")
	}
}

func TestAggregateNodeEventGoesToDefault(t *testing.T) {
	in := incoming(func(e *corralpb.Event) {
		e.InvolvedObject = &corralpb.ObjectReference{Kind: "Node", Name: "w1", Uid: "w1"}
		e.Reason = "NodeReady"
	})
	put, _ := Aggregate(nil, in, now)
	if m := put.GetMetadata(); m.GetNamespace() != "default" || m.GetName() != Name("w1", now) {
		t.Fatalf("node event stored as %s/%s", m.GetNamespace(), m.GetName())
	}
}

func TestName(t *testing.T) {
	tests := []struct {
		at   time.Time
		want string
	}{
		{time.Unix(0, 0x17a2b3c4d5e6f708), "web.17a2b3c4d5e6f708"},
		{time.Unix(0, 0xff), "web.00000000000000ff"},
	}
	for _, tt := range tests {
		if got := Name("web", tt.at); got != tt.want {
			t.Errorf("Name(web, %d) = %q, want %q", tt.at.UnixNano(), got, tt.want)
		}
	}
}

func TestTruncate(t *testing.T) {
	long := strings.Repeat("a", MaxMessageLength-1) + "é" // é is two bytes
	tests := []struct {
		in   string
		want int
	}{
		{"short", 5},
		{strings.Repeat("a", MaxMessageLength), MaxMessageLength},
		{strings.Repeat("a", MaxMessageLength+5), MaxMessageLength},
		{long, MaxMessageLength - 1},
	}
	for _, tt := range tests {
		if got := truncate(tt.in); len(got) != tt.want {
			t.Errorf("truncate(%d bytes) = %d bytes, want %d", len(tt.in), len(got), tt.want)
		}
	}
}

func TestLastSeen(t *testing.T) {
	tests := []struct {
		name string
		ev   *corralpb.Event
		want time.Time
		ok   bool
	}{
		{"last", &corralpb.Event{FirstTimestamp: timestamppb.New(t0), LastTimestamp: timestamppb.New(now)}, now, true},
		{"first", &corralpb.Event{FirstTimestamp: timestamppb.New(t0)}, t0, true},
		{"created", &corralpb.Event{Metadata: &corralpb.ObjectMeta{CreationTimestamp: timestamppb.New(t0)}}, t0, true},
		{"none", &corralpb.Event{}, time.Time{}, false},
	}
	for _, tt := range tests {
		got, ok := LastSeen(tt.ev)
		if !got.Equal(tt.want) || ok != tt.ok {
			t.Errorf("%s: LastSeen = %v, %v; want %v, %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
}

func TestReference(t *testing.T) {
	pod := &corralpb.Object{Kind: &corralpb.Object_Pod{Pod: &corralpb.Pod{
		Metadata: &corralpb.ObjectMeta{Namespace: "ns", Name: "p", Uid: "u", ResourceVersion: "3"}}}}
	ds := &corralpb.Object{Kind: &corralpb.Object_DaemonSet{DaemonSet: &corralpb.DaemonSet{
		Metadata: &corralpb.ObjectMeta{Namespace: "ns", Name: "d", Uid: "u2"}}}}
	tests := []struct {
		obj  *corralpb.Object
		want *corralpb.ObjectReference
	}{
		{pod, &corralpb.ObjectReference{Kind: "Pod", ApiVersion: "v1", Namespace: "ns", Name: "p", Uid: "u", ResourceVersion: "3"}},
		{ds, &corralpb.ObjectReference{Kind: "DaemonSet", ApiVersion: "apps/v1", Namespace: "ns", Name: "d", Uid: "u2"}},
		{&corralpb.Object{}, nil},
	}
	for _, tt := range tests {
		if got := Reference(tt.obj); !proto.Equal(got, tt.want) {
			t.Errorf("Reference = %v, want %v", got, tt.want)
		}
	}
}
