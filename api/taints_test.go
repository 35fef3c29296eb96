package api

import (
	"testing"

	"google.golang.org/protobuf/proto"

	corralpb "github.com/corral-dev/corral/proto"
)

func TestToleratesTaint(t *testing.T) {
	cp := &corralpb.Taint{Key: "node-role.kubernetes.io/control-plane", Effect: "NoSchedule"}
	gpu := &corralpb.Taint{Key: "gpu", Value: "nvidia", Effect: "NoExecute"}
	tests := []struct {
		name  string
		tol   *corralpb.Toleration
		taint *corralpb.Taint
		want  bool
	}{
		{"Exists with key and effect", &corralpb.Toleration{Key: cp.Key, Operator: "Exists", Effect: "NoSchedule"}, cp, true},
		{"Exists with key, any effect", &corralpb.Toleration{Key: cp.Key, Operator: "Exists"}, cp, true},
		{"Exists without key: everything", &corralpb.Toleration{Operator: "Exists"}, gpu, true},
		{"Exists without key, effect filter", &corralpb.Toleration{Operator: "Exists", Effect: "NoSchedule"}, gpu, false},
		{"effect mismatch", &corralpb.Toleration{Key: cp.Key, Operator: "Exists", Effect: "NoExecute"}, cp, false},
		{"key mismatch", &corralpb.Toleration{Key: "other", Operator: "Exists"}, cp, false},
		{"Equal same value", &corralpb.Toleration{Key: "gpu", Operator: "Equal", Value: "nvidia", Effect: "NoExecute"}, gpu, true},
		{"Equal other value", &corralpb.Toleration{Key: "gpu", Operator: "Equal", Value: "amd"}, gpu, false},
		{"empty operator is Equal", &corralpb.Toleration{Key: "gpu", Value: "nvidia"}, gpu, true},
		{"empty operator, empty values (seed fluentd)", &corralpb.Toleration{Key: cp.Key, Effect: "NoSchedule"}, cp, true},
		{"unknown operator", &corralpb.Toleration{Key: "gpu", Operator: "In", Value: "nvidia"}, gpu, false},
		{"nil toleration", nil, cp, false},
	}
	for _, tt := range tests {
		if got := ToleratesTaint(tt.tol, tt.taint); got != tt.want {
			t.Errorf("%s: got %v", tt.name, got)
		}
	}
}

func TestFindUntoleratedTaint(t *testing.T) {
	cp := &corralpb.Taint{Key: "node-role.kubernetes.io/control-plane", Effect: "NoSchedule"}
	soft := &corralpb.Taint{Key: "busy", Effect: "PreferNoSchedule"}
	evict := &corralpb.Taint{Key: "node.kubernetes.io/unreachable", Effect: "NoExecute"}
	taints := []*corralpb.Taint{soft, cp, evict}
	tests := []struct {
		name    string
		tols    []*corralpb.Toleration
		effects []string
		want    *corralpb.Taint
	}{
		{"nothing tolerated", nil, nil, soft},
		{"filtered by effect", nil, []string{"NoSchedule", "NoExecute"}, cp},
		{"control plane tolerated", []*corralpb.Toleration{{Key: cp.Key, Operator: "Exists"}}, []string{"NoSchedule", "NoExecute"}, evict},
		{"all tolerated", []*corralpb.Toleration{{Operator: "Exists"}}, nil, nil},
		{"NoExecute only", []*corralpb.Toleration{{Key: evict.Key, Operator: "Exists"}}, []string{"NoExecute"}, nil},
	}
	for _, tt := range tests {
		got, found := FindUntoleratedTaint(taints, tt.tols, tt.effects...)
		if found != (tt.want != nil) || got != tt.want {
			t.Errorf("%s: got %v, %v; want %v", tt.name, got, found, tt.want)
		}
	}
}

func TestParseTaint(t *testing.T) {
	tests := []struct {
		in      string
		want    *corralpb.Taint
		wantErr bool
	}{
		{"dedicated=gpu:NoSchedule", &corralpb.Taint{Key: "dedicated", Value: "gpu", Effect: "NoSchedule"}, false},
		{"node-role.kubernetes.io/control-plane:NoSchedule", &corralpb.Taint{Key: "node-role.kubernetes.io/control-plane", Effect: "NoSchedule"}, false},
		{"k=:PreferNoSchedule", &corralpb.Taint{Key: "k", Effect: "PreferNoSchedule"}, false},
		{"k=v:NoExecute", &corralpb.Taint{Key: "k", Value: "v", Effect: "NoExecute"}, false},
		{"k=v", nil, true},
		{"k=v:Sometimes", nil, true},
		{"k=v:NoSchedule:x", nil, true},
		{"k=v=w:NoSchedule", nil, true},
		{":NoSchedule", nil, true},
		{"bad key=v:NoSchedule", nil, true},
		{"k=bad value:NoSchedule", nil, true},
	}
	for _, tt := range tests {
		got, err := ParseTaint(tt.in)
		if (err != nil) != tt.wantErr || (!tt.wantErr && !proto.Equal(got, tt.want)) {
			t.Errorf("ParseTaint(%q) = %v, %v", tt.in, got, err)
		}
	}
}
