package server_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
	"github.com/corral-dev/corral/server"
	"github.com/corral-dev/corral/test/framework"
)

func agentNode(name string, labels map[string]string, taints ...*corralpb.Taint) *corralpb.Node {
	return &corralpb.Node{
		Metadata: &corralpb.ObjectMeta{Name: name, Labels: labels},
		Spec:     &corralpb.NodeSpec{Taints: taints},
		Status: &corralpb.NodeStatus{
			Capacity:   map[string]string{"cpu": "2", "memory": "4Gi", "pods": "110"},
			Conditions: []*corralpb.NodeCondition{{Type: "Ready", Status: "True", Reason: "KubeletReady"}},
		},
	}
}

func getNode(t *testing.T, c framework.Cluster, name string) *corralpb.Node {
	t.Helper()
	resp, err := c.Client(t, 0).Get(ctx(t), &corralpb.GetRequest{Kind: "Node", Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetObject().GetNode()
}

func readyStatus(n *corralpb.Node) string {
	for _, c := range n.GetStatus().GetConditions() {
		if c.GetType() == "Ready" {
			return c.GetStatus()
		}
	}
	return ""
}

func TestRegisterKeepsCLILabelsAndFlagsWin(t *testing.T) {
	c := framework.NewInProcess(t, 1)
	nc := nodeClient(t, c, 0, "w1")
	// A node registers as itself only.
	_, err := nodeClient(t, c, 0, "w2").Register(ctx(t), &corralpb.RegisterRequest{Node: agentNode("w1", nil)})
	wantCode(t, err, codes.PermissionDenied, `system:node:w2 may not act for node "w1"`)
	flags := map[string]string{"zone": "a"}
	taint := &corralpb.Taint{Key: "dedicated", Value: "edge", Effect: "NoSchedule"}
	if _, err := nc.Register(ctx(t), &corralpb.RegisterRequest{Node: agentNode("w1", flags, taint)}); err != nil {
		t.Fatal(err)
	}
	n := getNode(t, c, "w1")
	if n.GetMetadata().GetLabels()["zone"] != "a" || len(n.GetSpec().GetTaints()) != 1 || n.GetStatus().GetCapacity()["cpu"] != "2" {
		t.Fatalf("registered node: %v", n)
	}
	// A user labels the node; the agent restarts with a changed flag.
	n.Metadata.Labels["disktype"] = "ssd"
	n.Metadata.Labels["zone"] = "user-set"
	if _, err := c.Client(t, 0).Update(ctx(t), &corralpb.UpdateRequest{Object: api.Wrap(n)}); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Register(ctx(t), &corralpb.RegisterRequest{Node: agentNode("w1", map[string]string{"zone": "b"}, taint)}); err != nil {
		t.Fatal(err)
	}
	n = getNode(t, c, "w1")
	if n.GetMetadata().GetLabels()["disktype"] != "ssd" || n.GetMetadata().GetLabels()["zone"] != "b" || len(n.GetSpec().GetTaints()) != 1 {
		t.Fatalf("after re-registration: labels %v taints %v", n.GetMetadata().GetLabels(), n.GetSpec().GetTaints())
	}
}

func TestMissedHeartbeatsMarkNodeUnknownAndBack(t *testing.T) {
	grace := 2 * time.Second
	c := framework.NewInProcess(t, 3, func(cfg *server.Config) { cfg.NodeGracePeriod = grace })
	// The agents talk to a follower: heartbeats reach the leader through it.
	leader := framework.Leader(t, c)
	follower := (leader + 1) % 3
	clients := map[string]corralpb.NodeAPIClient{}
	for _, name := range []string{"alive", "silent"} {
		clients[name] = nodeClient(t, c, follower, name)
		if _, err := clients[name].Register(ctx(t), &corralpb.RegisterRequest{Node: agentNode(name, nil)}); err != nil {
			t.Fatal(err)
		}
	}
	beat := func(stop <-chan struct{}, name string) {
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
				_, _ = clients[name].Heartbeat(context.Background(), &corralpb.HeartbeatRequest{NodeName: name})
			}
		}
	}
	stopAlive := make(chan struct{})
	defer close(stopAlive)
	go beat(stopAlive, "alive")
	framework.WaitFor(t, "silent node Unknown", 5*grace, func() bool {
		return readyStatus(getNode(t, c, "silent")) == "Unknown"
	})
	n := getNode(t, c, "silent")
	if len(n.GetSpec().GetTaints()) != 1 || n.GetSpec().GetTaints()[0].GetKey() != "node.kubernetes.io/unreachable" {
		t.Fatalf("unknown node taints: %v", n.GetSpec().GetTaints())
	}
	if readyStatus(getNode(t, c, "alive")) != "True" {
		t.Fatal("a heartbeating node went Unknown")
	}
	stopSilent := make(chan struct{})
	defer close(stopSilent)
	go beat(stopSilent, "silent")
	framework.WaitFor(t, "silent node Ready again", 5*grace, func() bool {
		n := getNode(t, c, "silent")
		return readyStatus(n) == "True" && len(n.GetSpec().GetTaints()) == 0
	})
	// A leader change does not mark the healthy nodes Unknown.
	c.Kill(t, leader)
	newLeader := framework.Leader(t, c)
	deadline := time.Now().Add(2 * grace)
	for time.Now().Before(deadline) {
		for _, name := range []string{"alive", "silent"} {
			resp, err := c.Client(t, newLeader).Get(ctx(t), &corralpb.GetRequest{Kind: "Node", Name: name})
			if err == nil && readyStatus(resp.GetObject().GetNode()) != "True" {
				t.Fatalf("node %s is %s after a leader change", name, readyStatus(resp.GetObject().GetNode()))
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestAssignmentsStreamFullSetThenChanges(t *testing.T) {
	c := framework.NewInProcess(t, 1)
	cl := c.Client(t, 0)
	objs := decode(t, `
apiVersion: v1
kind: ConfigMap
metadata: {name: conf}
data: {a: "1"}
---
apiVersion: v1
kind: Pod
metadata: {name: p1}
spec:
  nodeName: w1
  containers: [{name: c, image: nginx:1.25}]
  volumes: [{name: v, configMap: {name: conf}}]
---
apiVersion: v1
kind: Pod
metadata: {name: elsewhere}
spec:
  nodeName: w2
  containers: [{name: c, image: nginx:1.25}]
`)
	if _, err := cl.Apply(ctx(t), &corralpb.ApplyRequest{Objects: objs}); err != nil {
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
	if err != nil {
		t.Fatal(err)
	}
	if !first.GetComplete() || len(first.GetItems()) != 2 || first.GetItems()[0].GetPod().GetMetadata().GetName() != "p1" ||
		first.GetItems()[1].GetConfigMap().GetData()["a"] != "1" {
		t.Fatalf("full set: %v", first)
	}
	// A ConfigMap change reaches the node; deleting the pod removes it.
	cm := decode(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: conf}\ndata: {a: \"2\"}\n")
	if _, err := cl.Apply(ctx(t), &corralpb.ApplyRequest{Objects: cm}); err != nil {
		t.Fatal(err)
	}
	msg, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if msg.GetComplete() || msg.GetItems()[0].GetConfigMap().GetData()["a"] != "2" {
		t.Fatalf("config map change: %v", msg)
	}
	if _, err := cl.Delete(ctx(t), &corralpb.DeleteRequest{Kind: "Pod", Name: "p1"}); err != nil {
		t.Fatal(err)
	}
	msg, err = stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if r := msg.GetItems()[0].GetRemoved(); r.GetKind() != "Pod" || r.GetName() != "p1" {
		t.Fatalf("pod removal: %v", msg)
	}
	// Status from the node lands on the pod; a pod of another node is refused.
	other, err := cl.Get(ctx(t), &corralpb.GetRequest{Kind: "Pod", Name: "elsewhere"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = nc.UpdateStatus(ctx(t), &corralpb.UpdateStatusRequest{NodeName: "w1", Pods: []*corralpb.PodStatusUpdate{{
		Namespace: "default", Name: "elsewhere", Uid: api.Meta(other.GetObject()).Uid, Status: &corralpb.PodStatus{Phase: "Running"}}}})
	wantCode(t, err, codes.PermissionDenied, `node "w1" may not write the status of pod default/elsewhere`)
	resp, err := nodeClient(t, c, 0, "w2").UpdateStatus(ctx(t), &corralpb.UpdateStatusRequest{NodeName: "w2", Pods: []*corralpb.PodStatusUpdate{
		{Namespace: "default", Name: "elsewhere", Uid: api.Meta(other.GetObject()).Uid, Status: &corralpb.PodStatus{Phase: "Running", PodIp: "10.42.0.5"}},
		{Namespace: "default", Name: "p1", Uid: "deleted-pod", Status: &corralpb.PodStatus{Phase: "Running"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetGone()) != 1 || resp.GetGone()[0].GetName() != "p1" {
		t.Fatalf("gone: %v", resp.GetGone())
	}
	got, err := cl.Get(ctx(t), &corralpb.GetRequest{Kind: "Pod", Name: "elsewhere"})
	if err != nil {
		t.Fatal(err)
	}
	if s := got.GetObject().GetPod().GetStatus(); s.GetPhase() != "Running" || s.GetPodIp() != "10.42.0.5" {
		t.Fatalf("pod status after update: %v", s)
	}
}

// TestReportStatusAnswersEachReportInOrder: the status stream answers each
// report as UpdateStatus would, in the order sent, and a refused report
// ends the stream with UpdateStatus's error; the agent's next stream works.
func TestReportStatusAnswersEachReportInOrder(t *testing.T) {
	c := framework.NewInProcess(t, 1)
	cl := c.Client(t, 0)
	objs := decode(t, `
apiVersion: v1
kind: Pod
metadata: {name: a}
spec:
  nodeName: w1
  containers: [{name: c, image: nginx:1.25}]
---
apiVersion: v1
kind: Pod
metadata: {name: b}
spec:
  nodeName: w1
  containers: [{name: c, image: nginx:1.25}]
`)
	if _, err := cl.Apply(ctx(t), &corralpb.ApplyRequest{Objects: objs}); err != nil {
		t.Fatal(err)
	}
	uid := func(name string) string {
		resp, err := cl.Get(ctx(t), &corralpb.GetRequest{Kind: "Pod", Name: name})
		if err != nil {
			t.Fatal(err)
		}
		return api.Meta(resp.GetObject()).GetUid()
	}
	running := func(name, ip string) *corralpb.PodStatusUpdate {
		return &corralpb.PodStatusUpdate{Namespace: "default", Name: name, Uid: uid(name), Status: &corralpb.PodStatus{Phase: "Running", PodIp: ip}}
	}
	nc := nodeClient(t, c, 0, "w1")
	open := func() corralpb.NodeAPI_ReportStatusClient {
		sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		t.Cleanup(cancel)
		stream, err := nc.ReportStatus(sctx)
		if err != nil {
			t.Fatal(err)
		}
		return stream
	}
	stream := open()
	// Two reports sent back to back are answered in order: only the
	// second names a pod that is gone.
	reports := []*corralpb.UpdateStatusRequest{
		{NodeName: "w1", Pods: []*corralpb.PodStatusUpdate{running("a", "10.42.0.7")}},
		{NodeName: "w1", Pods: []*corralpb.PodStatusUpdate{running("b", "10.42.0.8"),
			{Namespace: "default", Name: "deleted", Uid: "deleted-pod", Status: &corralpb.PodStatus{Phase: "Running"}}}},
	}
	for _, r := range reports {
		if err := stream.Send(r); err != nil {
			t.Fatal(err)
		}
	}
	for i, want := range []string{"", "deleted"} {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		var gone []string
		for _, g := range resp.GetGone() {
			gone = append(gone, g.GetName())
		}
		if strings.Join(gone, ",") != want {
			t.Fatalf("answer %d: gone %v, want %q", i, gone, want)
		}
	}
	for name, ip := range map[string]string{"a": "10.42.0.7", "b": "10.42.0.8"} {
		got, err := cl.Get(ctx(t), &corralpb.GetRequest{Kind: "Pod", Name: name})
		if err != nil {
			t.Fatal(err)
		}
		if s := got.GetObject().GetPod().GetStatus(); s.GetPhase() != "Running" || s.GetPodIp() != ip {
			t.Fatalf("pod %s status after its report: %v", name, s)
		}
	}
	// A report for another node ends the stream with UpdateStatus's error.
	if err := stream.Send(&corralpb.UpdateStatusRequest{NodeName: "w2"}); err != nil {
		t.Fatal(err)
	}
	_, err := stream.Recv()
	wantCode(t, err, codes.PermissionDenied, `may not act for node "w2"`)
	// The next stream reports again.
	stream = open()
	if err := stream.Send(&corralpb.UpdateStatusRequest{NodeName: "w1", Pods: []*corralpb.PodStatusUpdate{running("a", "10.42.0.9")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("after CloseSend the server ends the stream: got %v, want EOF", err)
	}
	got, err := cl.Get(ctx(t), &corralpb.GetRequest{Kind: "Pod", Name: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if ip := got.GetObject().GetPod().GetStatus().GetPodIp(); ip != "10.42.0.9" {
		t.Fatalf("pod a's IP after the new stream's report: %q", ip)
	}
}

// TestStopDoesNotWaitForEndlessStreams: a stopping server lets its calls
// finish but does not wait for the streams that end only when their client
// leaves (an agent's assignments and status streams, a watch): it cuts
// them, and their clients see Unavailable and go to another server.
func TestStopDoesNotWaitForEndlessStreams(t *testing.T) {
	defer server.SetStopGrace(time.Hour)() // only the streams ending could end Stop
	c := framework.NewInProcess(t, 1)
	cl := c.Client(t, 0)
	nc := nodeClient(t, c, 0, "w1")
	sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	assignments, err := nc.Assignments(sctx, &corralpb.AssignmentsRequest{NodeName: "w1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := assignments.Recv(); err != nil {
		t.Fatal(err)
	}
	reports, err := nc.ReportStatus(sctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := reports.Send(&corralpb.UpdateStatusRequest{NodeName: "w1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := reports.Recv(); err != nil {
		t.Fatal(err)
	}
	watch, err := cl.Watch(sctx, &corralpb.WatchRequest{Kind: "ConfigMap"})
	if err != nil {
		t.Fatal(err)
	}
	cm := decode(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: seen}\n")
	if _, err := cl.Apply(ctx(t), &corralpb.ApplyRequest{Objects: cm}); err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Recv(); err != nil { // the server has taken the watch
		t.Fatal(err)
	}
	stopped := make(chan struct{})
	go func() { defer close(stopped); c.Kill(t, 0) }()
	select {
	case <-stopped:
	case <-time.After(30 * time.Second):
		t.Fatal("Stop is waiting for streams that end only when their client leaves")
	}
	_, err = assignments.Recv()
	wantCode(t, err, codes.Unavailable)
	_, err = reports.Recv()
	wantCode(t, err, codes.Unavailable)
	_, err = watch.Recv()
	wantCode(t, err, codes.Unavailable)
}

// TestHeartbeatPeriodIsAQuarterOfTheGracePeriod: agents are asked to
// heartbeat four times per node monitor grace period, as the kubelet renews
// its node lease four times per lease duration, so an agent that heartbeats
// as asked is never marked Unknown, whatever the grace period.
func TestHeartbeatPeriodIsAQuarterOfTheGracePeriod(t *testing.T) {
	for _, tc := range []struct{ grace, want time.Duration }{
		{0, 10 * time.Second}, // the default grace period, 40 s
		{2 * time.Second, 500 * time.Millisecond},
		{10 * time.Minute, 10 * time.Second},
	} {
		if got := server.HeartbeatPeriod(tc.grace); got != tc.want {
			t.Errorf("HeartbeatPeriod(%s) = %s, want %s", tc.grace, got, tc.want)
		}
	}

	grace := 2 * time.Second
	c := framework.NewInProcess(t, 1, func(cfg *server.Config) { cfg.NodeGracePeriod = grace })
	nc := nodeClient(t, c, 0, "asked")
	reg, err := nc.Register(ctx(t), &corralpb.RegisterRequest{Node: agentNode("asked", nil)})
	if err != nil {
		t.Fatal(err)
	}
	hb, err := nc.Heartbeat(ctx(t), &corralpb.HeartbeatRequest{NodeName: "asked"})
	if err != nil {
		t.Fatal(err)
	}
	want := (grace / 4).Milliseconds()
	if reg.GetHeartbeatPeriodMs() != want || hb.GetPeriodMs() != want {
		t.Fatalf("with a %s grace period the agent is asked to heartbeat every %d ms (register) and %d ms (heartbeat), want %d ms",
			grace, reg.GetHeartbeatPeriodMs(), hb.GetPeriodMs(), want)
	}

	// A simulated agent heartbeats at the period it is asked for: its node
	// stays Ready for three grace periods.
	fleet := framework.NewSimFleet(t, c.CA(t), c.APIAddrs())
	agent := fleet.Start(framework.SimAgentConfig{Name: "sim"})
	framework.WaitFor(t, "sim registered", 10*time.Second, agent.Registered)
	for end := time.Now().Add(3 * grace); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if st := readyStatus(getNode(t, c, "sim")); st != "True" {
			t.Fatalf("node sim, heartbeating as asked, is Ready=%s with a %s grace period", st, grace)
		}
	}
}
