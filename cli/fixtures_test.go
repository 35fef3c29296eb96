package cli

import (
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

// testNow is the clock of the printer tests.
var testNow = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

// ago returns a timestamp d before testNow.
func ago(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(testNow.Add(-d)) }

// seedDaemonSet is the tutorial's nginx-daemonset after it converged on
// three nodes, created 30s before testNow.
func seedDaemonSet() *corralpb.DaemonSet {
	return &corralpb.DaemonSet{
		Metadata: &corralpb.ObjectMeta{
			Name: "nginx-daemonset", Namespace: "default", Uid: "ds-uid",
			Labels:            map[string]string{"app": "nginx-daemon"},
			CreationTimestamp: ago(30 * time.Second),
		},
		Spec: &corralpb.DaemonSetSpec{
			Selector: &corralpb.LabelSelector{MatchLabels: map[string]string{"app": "nginx-daemon"}},
			Template: &corralpb.PodTemplateSpec{
				Metadata: &corralpb.ObjectMeta{Labels: map[string]string{"app": "nginx-daemon"}},
				Spec: &corralpb.PodSpec{Containers: []*corralpb.Container{{
					Name: "nginx", Image: "nginx:1.25",
					Ports: []*corralpb.ContainerPort{{ContainerPort: 80, Protocol: "TCP"}},
				}}},
			},
		},
		Status: &corralpb.DaemonSetStatus{
			DesiredNumberScheduled: 3, CurrentNumberScheduled: 3, NumberReady: 3,
			UpdatedNumberScheduled: 3, NumberAvailable: 3,
		},
	}
}

// seedPod is one running pod of the seed DaemonSet on a node.
func seedPod(name, node, ip string) *corralpb.Pod {
	ctl := true
	return &corralpb.Pod{
		Metadata: &corralpb.ObjectMeta{
			Name: name, Namespace: "default",
			Labels:            map[string]string{"app": "nginx-daemon"},
			CreationTimestamp: ago(30 * time.Second),
			OwnerReferences:   []*corralpb.OwnerReference{{ApiVersion: "apps/v1", Kind: "DaemonSet", Name: "nginx-daemonset", Uid: "ds-uid", Controller: &ctl}},
		},
		Spec: &corralpb.PodSpec{NodeName: node, Containers: []*corralpb.Container{{Name: "nginx", Image: "nginx:1.25"}}},
		Status: &corralpb.PodStatus{
			Phase: "Running", PodIp: ip, PodIps: []*corralpb.PodIP{{Ip: ip}}, HostIp: "10.0.0.1",
			Conditions: []*corralpb.PodCondition{{Type: "Ready", Status: "True"}},
			ContainerStatuses: []*corralpb.ContainerStatus{{
				Name: "nginx", Ready: true,
				State: &corralpb.ContainerState{Running: &corralpb.ContainerStateRunning{StartedAt: ago(25 * time.Second)}},
			}},
		},
	}
}

// seedEvent is a SuccessfulCreate event of the seed DaemonSet, 2m old.
func seedEvent(pod string) *corralpb.Event {
	return &corralpb.Event{
		Metadata:       &corralpb.ObjectMeta{Name: "nginx-daemonset." + pod, Namespace: "default"},
		InvolvedObject: &corralpb.ObjectReference{Kind: "DaemonSet", Namespace: "default", Name: "nginx-daemonset", ApiVersion: "apps/v1"},
		Reason:         "SuccessfulCreate",
		Message:        "Created pod: " + pod,
		Source:         &corralpb.EventSource{Component: "daemonset-controller"},
		FirstTimestamp: ago(2 * time.Minute),
		LastTimestamp:  ago(2 * time.Minute),
		Count:          1,
		Type:           "Normal",
	}
}

// testNode is a ready node with an internal IP.
func testNode(name string, ready bool, lbls map[string]string) *corralpb.Node {
	st := "True"
	if !ready {
		st = "Unknown"
	}
	return &corralpb.Node{
		Metadata: &corralpb.ObjectMeta{Name: name, Labels: lbls, CreationTimestamp: ago(50 * time.Hour)},
		Spec:     &corralpb.NodeSpec{},
		Status: &corralpb.NodeStatus{
			Conditions: []*corralpb.NodeCondition{{Type: "Ready", Status: st}},
			Addresses:  []*corralpb.NodeAddress{{Type: "InternalIP", Address: "10.0.0.11"}, {Type: "Hostname", Address: name}},
			NodeInfo:   &corralpb.NodeSystemInfo{KubeletVersion: "v0.1.0", OsImage: "Debian GNU/Linux 12", KernelVersion: "6.1.0", ContainerRuntimeVersion: "corral://v0.1.0"},
			Capacity:   map[string]string{"cpu": "2", "memory": "4Gi"},
		},
	}
}

// objs wraps inner messages into Objects.
func objs(ms ...proto.Message) []*corralpb.Object {
	out := make([]*corralpb.Object, 0, len(ms))
	for _, m := range ms {
		out = append(out, api.Wrap(m))
	}
	return out
}
