package nodeagent

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	corralpb "github.com/corral-dev/corral/proto"
)

func portPod(name string, age time.Duration, ports ...*corralpb.ContainerPort) *corralpb.Pod {
	return &corralpb.Pod{
		Metadata: &corralpb.ObjectMeta{Name: name, Namespace: "default", Uid: name,
			CreationTimestamp: timestamppb.New(time.Unix(1_800_000_000, 0).Add(-age))},
		Spec: &corralpb.PodSpec{Containers: []*corralpb.Container{{Name: "c", Ports: ports}}},
	}
}

func TestAdmitPods(t *testing.T) {
	p := func(hostPort int32, proto, ip string) *corralpb.ContainerPort {
		return &corralpb.ContainerPort{ContainerPort: 80, HostPort: hostPort, Protocol: proto, HostIp: ip}
	}
	for _, tc := range []struct {
		name     string
		pods     []*corralpb.Pod
		running  map[string]bool
		rejected []string
	}{
		{"no host ports", []*corralpb.Pod{portPod("a", 2, p(0, "", "")), portPod("b", 1, p(0, "", ""))}, nil, nil},
		{"older pod wins", []*corralpb.Pod{portPod("new", time.Second, p(9100, "", "")), portPod("old", time.Hour, p(9100, "", ""))}, nil, []string{"new"}},
		{"running pod keeps its port", []*corralpb.Pod{portPod("old", time.Hour, p(9100, "", "")), portPod("runs", time.Second, p(9100, "", ""))},
			map[string]bool{"runs": true}, []string{"old"}},
		{"other protocol", []*corralpb.Pod{portPod("a", 2, p(53, "TCP", "")), portPod("b", 1, p(53, "UDP", ""))}, nil, nil},
		{"distinct host IPs", []*corralpb.Pod{portPod("a", 2, p(80, "", "10.0.0.1")), portPod("b", 1, p(80, "", "10.0.0.2"))}, nil, nil},
		{"wildcard against one IP", []*corralpb.Pod{portPod("a", 2, p(80, "", "10.0.0.1")), portPod("b", 1, p(80, "", ""))}, nil, []string{"b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, rejected := admitPods(tc.pods, tc.running)
			var got []string
			for _, r := range rejected {
				got = append(got, r.GetMetadata().GetName())
			}
			if len(got) != len(tc.rejected) || (len(got) > 0 && got[0] != tc.rejected[0]) {
				t.Fatalf("rejected %v, want %v", got, tc.rejected)
			}
		})
	}
}
