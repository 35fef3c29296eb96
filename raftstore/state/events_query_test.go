package state

import (
	"slices"
	"testing"

	"github.com/hashicorp/go-memdb"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

// eventObj is an event called name about the object kind ns/about.
func eventObj(ns, name, kind, about string) *corralpb.Object {
	return &corralpb.Object{Kind: &corralpb.Object_Event{Event: &corralpb.Event{
		ApiVersion: "v1", Kind: "Event", Metadata: meta(ns, name),
		InvolvedObject: &corralpb.ObjectReference{Kind: kind, Namespace: ns, Name: about},
		Reason:         "Started", Type: "Normal", Count: 1,
	}}}
}

func TestEventsAbout(t *testing.T) {
	s := newStoreWithNamespaces(t, "default", "defaults", "kube-system")
	applyOK(t, s, 2,
		createOp(eventObj("default", "web.17a0000000000001", "Pod", "web")),
		createOp(eventObj("default", "web.17a0000000000002", "Pod", "web")),
		// A pod called "web.x": its events share the prefix but are not
		// about "web".
		createOp(eventObj("default", "web.x.17a0000000000003", "Pod", "web.x")),
		createOp(eventObj("default", "web-1.17a0000000000004", "Pod", "web-1")),
		createOp(eventObj("default", "wea.17a0000000000005", "Pod", "wea")),
		createOp(eventObj("defaults", "web.17a0000000000006", "Pod", "web")),
		createOp(eventObj("kube-system", "web.17a0000000000007", "Pod", "web")),
		// Named otherwise: not found by the name's prefix.
		createOp(eventObj("default", "custom", "Pod", "web")),
		createOp(eventObj("default", "n1.17a0000000000008", "Node", "n1")),
	)
	tests := []struct {
		ns, name string
		want     []string
	}{
		{"default", "web", []string{"default/web.17a0000000000001", "default/web.17a0000000000002"}},
		{"default", "web.x", []string{"default/web.x.17a0000000000003"}},
		{"default", "web-1", []string{"default/web-1.17a0000000000004"}},
		{"defaults", "web", []string{"defaults/web.17a0000000000006"}},
		{"kube-system", "web", []string{"kube-system/web.17a0000000000007"}},
		{"default", "n1", []string{"default/n1.17a0000000000008"}},
		{"default", "we", nil},
		{"default", "zzz", nil},
		{"missing", "web", nil},
	}
	for _, tt := range tests {
		got, err := s.EventsAbout(nil, tt.ns, tt.name)
		if err != nil {
			t.Fatalf("EventsAbout(%q, %q): %v", tt.ns, tt.name, err)
		}
		if !slices.Equal(names(got), tt.want) && !(len(got) == 0 && len(tt.want) == 0) {
			t.Errorf("EventsAbout(%q, %q) = %v, want %v", tt.ns, tt.name, names(got), tt.want)
		}
	}
}

func TestEventsAboutWatch(t *testing.T) {
	s := newStoreWithNamespaces(t, "default")
	ws := memdb.NewWatchSet()
	if _, err := s.EventsAbout(ws, "default", "web"); err != nil {
		t.Fatal(err)
	}
	// (A change elsewhere may fire it too, as with every memdb watch.)
	applyOK(t, s, 2, createOp(eventObj("default", "web.1", "Pod", "web")))
	if !fired(ws) {
		t.Fatal("watch did not fire for a new event about the object")
	}
}

func TestEventsLike(t *testing.T) {
	s := newStoreWithNamespaces(t, "default", "kube-system")
	msg := func(o *corralpb.Object, reason, m string) *corralpb.Object {
		o.GetEvent().Reason, o.GetEvent().Message = reason, m
		return o
	}
	applyOK(t, s, 2,
		createOp(msg(eventObj("default", "ds.1", "DaemonSet", "ds"), "SuccessfulCreate", "Created pod: ds-a")),
		createOp(msg(eventObj("default", "ds.2", "DaemonSet", "ds"), "SuccessfulCreate", "Created pod: ds-b")),
		createOp(msg(eventObj("default", "ds.3", "DaemonSet", "ds"), "SuccessfulCreate", "Created pod: ds-a")),
		createOp(msg(eventObj("default", "ds.4", "DaemonSet", "ds"), "SuccessfulDelete", "Created pod: ds-a")),
		createOp(msg(eventObj("kube-system", "ds.5", "DaemonSet", "ds"), "SuccessfulCreate", "Created pod: ds-a")),
		createOp(msg(eventObj("default", "ds2.6", "DaemonSet", "ds2"), "SuccessfulCreate", "Created pod: ds-a")),
	)
	got, err := s.EventsLike(nil, "default", "ds", "SuccessfulCreate", "Created pod: ds-a")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"default/ds.1", "default/ds.3"}; !slices.Equal(names(got), want) {
		t.Fatalf("EventsLike = %v, want %v", names(got), want)
	}
	if got, _ := s.EventsLike(nil, "default", "ds", "SuccessfulCreate", "Created pod: ds-c"); len(got) != 0 {
		t.Fatalf("EventsLike for an unseen message = %v", names(got))
	}
	// A combined event is found by any combined message: its latest
	// message changes at every occurrence.
	applyOK(t, s, 3, createOp(msg(eventObj("default", "ds.7", "DaemonSet", "ds"), "SuccessfulCreate", api.CombinedEventPrefix+"Created pod: ds-x")))
	if got, _ := s.EventsLike(nil, "default", "ds", "SuccessfulCreate", api.CombinedEventPrefix+"Created pod: ds-y"); !slices.Equal(names(got), []string{"default/ds.7"}) {
		t.Fatalf("EventsLike for a combined message = %v", names(got))
	}
}
