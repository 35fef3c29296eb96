package api

import (
	"testing"

	"google.golang.org/protobuf/proto"

	corralpb "github.com/corral-dev/corral/proto"
)

func TestLookupKind(t *testing.T) {
	tests := []struct {
		name string
		want string // "" for no match
	}{
		{"DaemonSet", "DaemonSet"},
		{"daemonset", "DaemonSet"},
		{"daemonsets", "DaemonSet"},
		{"ds", "DaemonSet"},
		{"DS", "DaemonSet"},
		{"daemonsets.apps", "DaemonSet"},
		{"daemonset.apps", "DaemonSet"},
		{"ds.apps", "DaemonSet"},
		{"daemonsets.v1.apps", "DaemonSet"},
		{"daemonsets.apps/v1", "DaemonSet"},
		{"DaemonSet.apps", "DaemonSet"},
		{"daemonsets.core", ""},
		{"daemonsets.apps/v2", ""},
		{"pod", "Pod"},
		{"pods", "Pod"},
		{"po", "Pod"},
		{"pods.v1", "Pod"},
		{"pods.core", "Pod"},
		{"pods.apps", ""},
		{"node", "Node"},
		{"nodes", "Node"},
		{"no", "Node"},
		{"event", "Event"},
		{"events", "Event"},
		{"ev", "Event"},
		{"configmap", "ConfigMap"},
		{"configmaps", "ConfigMap"},
		{"cm", "ConfigMap"},
		{"namespace", "Namespace"},
		{"namespaces", "Namespace"},
		{"ns", "Namespace"},
		{"controllerrevision", "ControllerRevision"},
		{"controllerrevisions", "ControllerRevision"},
		{"controllerrevisions.apps", "ControllerRevision"},
		{"priorityclass", "PriorityClass"},
		{"priorityclasses", "PriorityClass"},
		{"pc", "PriorityClass"},
		{"priorityclasses.scheduling.k8s.io", "PriorityClass"},
		{"priorityclasses.v1.scheduling.k8s.io", "PriorityClass"},
		{"  Pods ", "Pod"},
		{"", ""},
		{"deployments", ""},
		{"svc", ""},
	}
	for _, tt := range tests {
		k, ok := LookupKind(tt.name)
		if ok != (tt.want != "") || k.Kind != tt.want {
			t.Errorf("LookupKind(%q) = %q, %v; want %q", tt.name, k.Kind, ok, tt.want)
		}
	}
}

func TestKindTable(t *testing.T) {
	tests := []struct {
		kind, apiVersion, groupResource string
		namespaced                      bool
	}{
		{"Namespace", "v1", "namespaces", false},
		{"Node", "v1", "nodes", false},
		{"Pod", "v1", "pods", true},
		{"ConfigMap", "v1", "configmaps", true},
		{"Event", "v1", "events", true},
		{"DaemonSet", "apps/v1", "daemonsets.apps", true},
		{"ControllerRevision", "apps/v1", "controllerrevisions.apps", true},
		{"PriorityClass", "scheduling.k8s.io/v1", "priorityclasses.scheduling.k8s.io", false},
	}
	if got := len(Kinds()); got != len(tests) {
		t.Fatalf("Kinds() has %d kinds, want %d", got, len(tests))
	}
	for i, tt := range tests {
		k, ok := KindByName(tt.kind)
		if !ok {
			t.Fatalf("KindByName(%q) not found", tt.kind)
		}
		if k.APIVersion() != tt.apiVersion || k.GroupResource() != tt.groupResource || k.Namespaced != tt.namespaced {
			t.Errorf("%s: got %s %s %v", tt.kind, k.APIVersion(), k.GroupResource(), k.Namespaced)
		}
		if Kinds()[i].Kind != tt.kind {
			t.Errorf("Kinds()[%d] = %s, want %s (stable order)", i, Kinds()[i].Kind, tt.kind)
		}
		o, err := NewObject(tt.kind)
		if err != nil {
			t.Fatal(err)
		}
		if KindOf(o) != tt.kind || Meta(o) == nil {
			t.Errorf("NewObject(%q): kind %q, meta %v", tt.kind, KindOf(o), Meta(o))
		}
		if w := Wrap(Inner(o)); !proto.Equal(w, o) {
			t.Errorf("Wrap(Inner(o)) differs for %s", tt.kind)
		}
	}
	if _, ok := KindByName("daemonset"); ok {
		t.Error("KindByName must be exact")
	}
	if _, err := NewObject("Deployment"); err == nil {
		t.Error("NewObject(Deployment) should fail")
	}
}

func TestObjectHelpers(t *testing.T) {
	ds := Wrap(&corralpb.DaemonSet{Metadata: &corralpb.ObjectMeta{Name: "nginx", Namespace: "web"}})
	if got := Ref(ds); got != "daemonset.apps/nginx" {
		t.Errorf("Ref = %q", got)
	}
	if got := Key(ds); !proto.Equal(got, &corralpb.ObjectKey{Kind: "DaemonSet", Namespace: "web", Name: "nginx"}) {
		t.Errorf("Key = %v", got)
	}
	node := Wrap(&corralpb.Node{Metadata: &corralpb.ObjectMeta{Name: "n1", Namespace: "ignored"}})
	if got := Key(node); got.Namespace != "" || got.Name != "n1" {
		t.Errorf("Key(node) = %v", got)
	}
	if got := Ref(node); got != "node/n1" {
		t.Errorf("Ref(node) = %q", got)
	}
	pc := Wrap(&corralpb.PriorityClass{Metadata: &corralpb.ObjectMeta{Name: "high"}})
	if got := Ref(pc); got != "priorityclass.scheduling.k8s.io/high" {
		t.Errorf("Ref(pc) = %q", got)
	}

	bare := Wrap(&corralpb.Pod{})
	if Key(bare).Name != "" || bare.GetPod().Metadata != nil {
		t.Error("Key must not allocate metadata")
	}
	Meta(bare).Name = "p"
	if bare.GetPod().GetMetadata().GetName() != "p" {
		t.Error("Meta must allocate and return the object's metadata")
	}

	empty := &corralpb.Object{}
	if KindOf(empty) != "" || Meta(empty) != nil || Inner(empty) != nil || Key(empty) != nil || Ref(empty) != "" {
		t.Error("helpers on an empty object")
	}
	defer func() {
		if recover() == nil {
			t.Error("Wrap of a non-object message should panic")
		}
	}()
	Wrap(&corralpb.ObjectMeta{})
}
