package framework

import (
	"testing"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

// A pod as the servers assign it: labels, owner, tolerations, affinity,
// several containers, a status.
const assignedPod = `
apiVersion: v1
kind: Pod
metadata:
  name: fluentd-abcde
  namespace: kube-system
  uid: 2d0c5a5e-0000-4000-8000-000000000001
  labels: {name: fluentd, controller-revision-hash: 7d9f8c6b5}
  ownerReferences:
  - {apiVersion: apps/v1, kind: DaemonSet, name: fluentd, uid: 2d0c5a5e-0000-4000-8000-000000000002, controller: true}
spec:
  nodeName: node-1
  hostNetwork: true
  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms:
        - matchFields: [{key: metadata.name, operator: In, values: [node-1]}]
  tolerations:
  - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute}
  - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute}
  containers:
  - name: fluentd
    image: fluentd:v1.16
    args: [-c, /etc/fluent/fluent.conf]
    resources: {requests: {cpu: 100m, memory: 200Mi}}
  - name: sidecar
    image: busybox:1.36
status:
  phase: Running
  podIP: 10.0.0.7
`

func TestAssignmentsCodecDecodesWhatTheAgentReads(t *testing.T) {
	objs, err := api.Decode([]byte(assignedPod), "pod.yaml")
	if err != nil {
		t.Fatal(err)
	}
	full := &corralpb.AssignmentsMessage{Complete: true, ResourceVersion: "42", Items: []*corralpb.Assignment{
		{Item: &corralpb.Assignment_Pod{Pod: objs[0].GetPod()}},
		{Item: &corralpb.Assignment_ConfigMap{ConfigMap: &corralpb.ConfigMap{
			Metadata: &corralpb.ObjectMeta{Name: "conf", Namespace: "kube-system"}, Data: map[string]string{"a": "b"}}}},
		{Item: &corralpb.Assignment_Removed{Removed: &corralpb.ObjectKey{Kind: "Pod", Namespace: "default", Name: "old-xyz12"}}},
		{Item: &corralpb.Assignment_Route{Route: &corralpb.NodeRoute{NodeName: "node-2", PodCidr: "10.42.2.0/24", NodeIp: "10.0.0.2"}}},
	}}
	data, err := proto.Marshal(full)
	if err != nil {
		t.Fatal(err)
	}

	got := &corralpb.AssignmentsMessage{}
	if err := newAssignmentsCodec().Unmarshal(mem.BufferSlice{mem.SliceBuffer(data)}, got); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	want := &corralpb.AssignmentsMessage{Complete: true, ResourceVersion: "42", Items: []*corralpb.Assignment{
		{Item: &corralpb.Assignment_Pod{Pod: &corralpb.Pod{
			Metadata: &corralpb.ObjectMeta{Name: "fluentd-abcde", Namespace: "kube-system", Uid: "2d0c5a5e-0000-4000-8000-000000000001"},
			Spec: &corralpb.PodSpec{NodeName: "node-1", HostNetwork: true, Containers: []*corralpb.Container{
				{Name: "fluentd", Image: "fluentd:v1.16"}, {Name: "sidecar", Image: "busybox:1.36"}}},
		}}},
		{Item: &corralpb.Assignment_Removed{Removed: &corralpb.ObjectKey{Kind: "Pod", Namespace: "default", Name: "old-xyz12"}}},
	}}
	if !proto.Equal(got, want) {
		t.Fatalf("decoded\n%v\nwant\n%v", got, want)
	}

	// Truncated anywhere, the message is refused, as proto.Unmarshal
	// refuses it.
	for n := 1; n < len(data); n++ {
		cut := data[:n]
		if proto.Unmarshal(cut, &corralpb.AssignmentsMessage{}) == nil {
			continue // ends on a field boundary
		}
		if err := newAssignmentsCodec().Unmarshal(mem.BufferSlice{mem.SliceBuffer(cut)}, &corralpb.AssignmentsMessage{}); err == nil {
			t.Fatalf("the first %d of %d bytes decoded without an error", n, len(data))
		}
	}

	// Other messages go through the proto codec whole.
	req := &corralpb.AssignmentsRequest{NodeName: "node-1", Routes: true}
	if data, err = proto.Marshal(req); err != nil {
		t.Fatal(err)
	}
	gotReq := &corralpb.AssignmentsRequest{}
	if err := newAssignmentsCodec().Unmarshal(mem.BufferSlice{mem.SliceBuffer(data)}, gotReq); err != nil || !proto.Equal(gotReq, req) {
		t.Fatalf("request: got %v, %v; want %v", gotReq, err, req)
	}
}
