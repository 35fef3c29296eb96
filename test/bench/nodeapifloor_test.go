package bench

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	corralpb "github.com/corral-dev/corral/proto"
	"github.com/corral-dev/corral/scheduler"
	"github.com/corral-dev/corral/test/framework"
)

// floorNodeAPI is the node API with nothing behind it: it registers any
// node, and once the rollout starts sends each node's assignments stream
// the one pod prepared for it, and counts the statuses that come back.
type floorNodeAPI struct {
	corralpb.UnimplementedNodeAPIServer
	pods      map[string]*corralpb.Pod // by node, read-only
	start     chan struct{}            // closed to send the pods
	following atomic.Int64             // streams that got their full set
	reported  sync.Map                 // node name → struct{}, once its pod's status came
	running   atomic.Int64
	done      chan struct{} // closed when every pod's status came
}

func (f *floorNodeAPI) Register(context.Context, *corralpb.RegisterRequest) (*corralpb.RegisterResponse, error) {
	return &corralpb.RegisterResponse{HeartbeatPeriodMs: 10_000}, nil
}

func (f *floorNodeAPI) Heartbeat(context.Context, *corralpb.HeartbeatRequest) (*corralpb.HeartbeatResponse, error) {
	return &corralpb.HeartbeatResponse{PeriodMs: 10_000}, nil
}

func (f *floorNodeAPI) Assignments(req *corralpb.AssignmentsRequest, stream corralpb.NodeAPI_AssignmentsServer) error {
	if err := stream.Send(&corralpb.AssignmentsMessage{Complete: true, ResourceVersion: "1"}); err != nil {
		return err
	}
	f.following.Add(1)
	defer f.following.Add(-1)
	select {
	case <-f.start:
	case <-stream.Context().Done():
		return nil
	}
	if pod := f.pods[req.GetNodeName()]; pod != nil {
		msg := &corralpb.AssignmentsMessage{ResourceVersion: "2", Items: []*corralpb.Assignment{{Item: &corralpb.Assignment_Pod{Pod: pod}}}}
		if err := stream.Send(msg); err != nil {
			return err
		}
	}
	<-stream.Context().Done()
	return nil
}

func (f *floorNodeAPI) UpdateStatus(_ context.Context, req *corralpb.UpdateStatusRequest) (*corralpb.UpdateStatusResponse, error) {
	pod := f.pods[req.GetNodeName()]
	for _, u := range req.GetPods() {
		if pod == nil || u.GetUid() != pod.GetMetadata().GetUid() || u.GetStatus().GetPhase() != "Running" {
			continue
		}
		if _, dup := f.reported.LoadOrStore(req.GetNodeName(), struct{}{}); !dup && f.running.Add(1) == int64(len(f.pods)) {
			close(f.done)
		}
	}
	return &corralpb.UpdateStatusResponse{}, nil
}

// ReportStatus answers each report on the stream as UpdateStatus does.
func (f *floorNodeAPI) ReportStatus(stream corralpb.NodeAPI_ReportStatusServer) error {
	for {
		req, err := stream.Recv()
		if err != nil {
			return nil // the agent closed the stream or went away
		}
		resp, _ := f.UpdateStatus(stream.Context(), req) // never fails
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

// BenchmarkNodeAPIFloor is BenchmarkFleet's rollout with nothing behind the
// node API: the same simulated agents (a child process, mutual TLS, one
// connection each) spread over three gRPC servers in this process built
// with the API's options, and each agent sent one pod, as the controller
// creates it, on its assignments stream. The agents answer as in
// BenchmarkFleet. No Raft, no store, no controller, no status writes: the
// part of a rollout no server behind this API can avoid on this machine.
// Reported, from the sends to the last Running status: running-ms,
// servers-cpu-s (this process) and agents-cpu-s, beside BenchmarkFleet's
// figures.
func BenchmarkNodeAPIFloor(b *testing.B) {
	for _, n := range []int{100, 1000, 5000} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) { benchNodeAPIFloor(b, n) })
	}
}

func benchNodeAPIFloor(b *testing.B, n int) {
	b.StopTimer()
	watchdog(b, 8*time.Minute)
	ca, serverCreds := floorCA(b, "floor")
	for i := 0; i < b.N; i++ {
		api := &floorNodeAPI{pods: floorPods(b, fmt.Sprintf("fleet-%d", i), n), start: make(chan struct{}), done: make(chan struct{})}
		var addrs []string
		for range 3 {
			addrs = append(addrs, serveFloor(b, serverCreds, func(g *grpc.Server) { corralpb.RegisterNodeAPIServer(g, api) }))
		}
		agents := startFleetProcess(b, fleetSpec{CACert: ca.CertPEM, CAKey: ca.KeyPEM, Addrs: addrs, Nodes: n, Prefix: "sim"})
		framework.WaitFor(b, fmt.Sprintf("%d agents following their assignments", n), time.Minute+time.Duration(n)*20*time.Millisecond,
			func() bool { return api.following.Load() == int64(n) })
		agents.do(b, "gc")
		serversCPU0, agentsCPU0 := cpuTime(b, os.Getpid()), cpuTime(b, agents.Pid)
		start := time.Now()
		b.StartTimer()
		close(api.start)
		select {
		case <-api.done:
		case <-time.After(3 * time.Minute):
			b.Fatalf("%d of %d pods Running after 3 minutes", api.running.Load(), n)
		}
		b.StopTimer()
		running := time.Since(start)
		serversCPU, agentsCPU := cpuTime(b, os.Getpid())-serversCPU0, cpuTime(b, agents.Pid)-agentsCPU0
		b.ReportMetric(ms(running), "running-ms")
		b.ReportMetric(serversCPU.Seconds(), "servers-cpu-s")
		b.ReportMetric(agentsCPU.Seconds(), "agents-cpu-s")
	}
}

// floorPods is the pod the fleet DaemonSet puts on each of n simulated
// nodes (sim-00000, ...), named, stamped and with the uid the store gives.
func floorPods(b *testing.B, name string, n int) map[string]*corralpb.Pod {
	b.Helper()
	ds := fleetDaemonSet(b, name, "nginx:1.25").GetDaemonSet()
	now := timestamppb.Now()
	pods := make(map[string]*corralpb.Pod, n)
	for i := range n {
		node := fmt.Sprintf("sim-%05d", i)
		p := scheduler.NewDaemonPod(ds, node, "6d4f9b8c7")
		p.Metadata.Name = fmt.Sprintf("%s-%05d", name, i)
		p.Metadata.Uid = fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
		p.Metadata.ResourceVersion = "2"
		p.Metadata.CreationTimestamp = now
		p.Status = &corralpb.PodStatus{Phase: "Pending"}
		pods[node] = p
	}
	return pods
}
