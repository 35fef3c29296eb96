package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
	"github.com/corral-dev/corral/raftstore"
	"github.com/corral-dev/corral/raftstore/state"
	"github.com/corral-dev/corral/scheduler"
)

// HeartbeatPeriod is how often agents are asked to heartbeat for a node
// monitor grace period (zero: scheduler.DefaultNodeGracePeriod): a quarter
// of it, at most 10 s. The kubelet renews its node lease every quarter of
// the lease's duration, 10 s by default, and the node controller waits a
// grace period of 40 s: a node is marked Unknown only after it missed four
// heartbeats in a row.
func HeartbeatPeriod(grace time.Duration) time.Duration {
	if grace <= 0 {
		grace = scheduler.DefaultNodeGracePeriod
	}
	return min(grace/4, 10*time.Second)
}

// nodeService implements the node API agents speak.
type nodeService struct {
	corralpb.UnimplementedNodeAPIServer
	rs    *raftstore.Server
	log   *slog.Logger
	hb    *heartbeatBuffer
	hub   *assignHub
	cidrs cidrAllocator
	// period is how often agents are asked to heartbeat (HeartbeatPeriod).
	period time.Duration
}

// Register creates the agent's Node or updates it: labels and taints the
// agent names (its flags) win, others set with the CLI are kept, and the
// status is the agent's.
func (n *nodeService) Register(ctx context.Context, req *corralpb.RegisterRequest) (*corralpb.RegisterResponse, error) {
	if err := checkNode(ctx, req.GetNode().GetMetadata().GetName()); err != nil {
		return nil, err
	}
	in := proto.Clone(req.GetNode()).(*corralpb.Node)
	obj := api.Wrap(in)
	api.SetDefaults(obj)
	setTypeMeta(obj, mustKind("Node"))
	if err := api.Validate(obj); err != nil {
		return nil, toStatus(err)
	}
	name := in.GetMetadata().GetName()
	var out *corralpb.Object
	var cluster netip.Prefix
	err := retry(ctx, func() error {
		st, err := n.rs.ConsistentRead(ctx)
		if err != nil {
			return toStatus(err)
		}
		if cluster, err = clusterCIDR(st); err != nil {
			return toStatus(err)
		}
		existing, err := st.Get(nil, "Node", "", name)
		if err != nil {
			return toStatus(err)
		}
		op := &corralpb.Op{Type: corralpb.Op_PUT}
		if existing == nil {
			o := proto.Clone(obj).(*corralpb.Object)
			prepareCreate(o, time.Now())
			o.GetNode().Status = in.GetStatus()
			op.Object, op.Precondition = o, corralpb.Op_MUST_NOT_EXIST
		} else {
			op.Object = mergeRegistration(existing, in)
			op.Precondition, op.ResourceVersion = corralpb.Op_RESOURCE_VERSION, api.Meta(existing).ResourceVersion
		}
		allocated := false
		if spec := op.Object.GetNode().GetSpec(); spec.GetPodCidr() == "" {
			allocated = true
			p, err := n.cidrs.allocate(st, cluster)
			if err != nil {
				return status.Errorf(codes.ResourceExhausted, "register node %s: spec.podCIDR: %v", name, err)
			}
			if spec == nil {
				spec = &corralpb.NodeSpec{}
				op.Object.GetNode().Spec = spec
			}
			spec.PodCidr, spec.PodCidrs = p.String(), []string{p.String()}
		}
		res, err := (&clusterService{rs: n.rs}).commit(ctx, &corralpb.Batch{Ops: []*corralpb.Op{op}})
		if allocated && err != nil && strings.Contains(err.Error(), state.PodCIDRTaken) {
			return errRetry // another registration took the CIDR first
		}
		if err != nil {
			return err
		}
		out = res.GetObjects()[0]
		return nil
	})
	if err != nil {
		return nil, err
	}
	n.hb.seen(name)
	n.log.Info("node registered", "node", name)
	return &corralpb.RegisterResponse{Node: out.GetNode(), HeartbeatPeriodMs: n.period.Milliseconds(),
		ClusterCidr: cluster.String()}, nil
}

// mergeRegistration lays an agent's registration over the stored node.
func mergeRegistration(existing *corralpb.Object, in *corralpb.Node) *corralpb.Object {
	out := proto.Clone(existing).(*corralpb.Object)
	node := out.GetNode()
	if node.Metadata.Labels == nil {
		node.Metadata.Labels = map[string]string{}
	}
	for k, v := range in.GetMetadata().GetLabels() {
		node.Metadata.Labels[k] = v
	}
	if node.Spec == nil {
		node.Spec = &corralpb.NodeSpec{}
	}
	for _, t := range in.GetSpec().GetTaints() {
		node.Spec.Taints = slices.DeleteFunc(node.Spec.Taints, func(x *corralpb.Taint) bool {
			return x.GetKey() == t.GetKey() && x.GetEffect() == t.GetEffect()
		})
		node.Spec.Taints = append(node.Spec.Taints, t)
	}
	node.Status = in.GetStatus()
	return out
}

// Heartbeat records that the node's agent is alive.
func (n *nodeService) Heartbeat(ctx context.Context, req *corralpb.HeartbeatRequest) (*corralpb.HeartbeatResponse, error) {
	if err := checkNode(ctx, req.GetNodeName()); err != nil {
		return nil, err
	}
	n.hb.seen(req.GetNodeName())
	return &corralpb.HeartbeatResponse{PeriodMs: n.period.Milliseconds()}, nil
}

// UpdateStatus writes the status of the node's pods and optionally the
// node's, in one Raft entry: each pod is its own batch in it, so that one
// deleted pod does not hold back the others, and the group committer packs
// the entry with other nodes' into few Raft entries.
func (n *nodeService) UpdateStatus(ctx context.Context, req *corralpb.UpdateStatusRequest) (*corralpb.UpdateStatusResponse, error) {
	if err := checkNode(ctx, req.GetNodeName()); err != nil {
		return nil, err
	}
	node := req.GetNodeName()
	resp := &corralpb.UpdateStatusResponse{}
	gone := func(u *corralpb.PodStatusUpdate) {
		resp.Gone = append(resp.Gone, &corralpb.ObjectKey{Kind: "Pod", Namespace: u.GetNamespace(), Name: u.GetName()})
	}
	known, err := n.statusTargets(ctx, node, req.GetPods())
	if err != nil {
		return nil, err
	}
	var written []*corralpb.PodStatusUpdate
	var batches []*corralpb.Batch
	for _, u := range req.GetPods() {
		if !known[u] {
			gone(u)
			continue
		}
		pod := &corralpb.Pod{Metadata: &corralpb.ObjectMeta{Namespace: u.GetNamespace(), Name: u.GetName()}, Status: u.GetStatus()}
		written = append(written, u)
		batches = append(batches, &corralpb.Batch{Ops: []*corralpb.Op{{Type: corralpb.Op_STATUS,
			Object: api.Wrap(pod), Uid: u.GetUid()}}, OmitObjects: true})
	}
	if ns := req.GetNodeStatus(); ns != nil {
		nodeObj := &corralpb.Node{Metadata: &corralpb.ObjectMeta{Name: node}, Status: ns}
		batches = append(batches, &corralpb.Batch{Ops: []*corralpb.Op{{Type: corralpb.Op_STATUS, Object: api.Wrap(nodeObj)}},
			OmitObjects: true})
	}
	if len(batches) == 0 {
		return resp, nil
	}
	res, err := n.rs.WriteEntry(ctx, &corralpb.LogEntry{Batches: batches})
	if err != nil {
		return nil, toStatus(err)
	}
	results := res.GetResults()
	if len(results) != len(batches) {
		return nil, status.Errorf(codes.Internal, "raft entry returned %d results for %d status batches", len(results), len(batches))
	}
	for i, u := range written {
		if c := results[i].GetCode(); c == corralpb.ErrorCode_NOT_FOUND || c == corralpb.ErrorCode_CONFLICT {
			gone(u)
		}
	}
	if len(batches) > len(written) {
		if err := resultError(results[len(written)]); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

// ReportStatus answers each UpdateStatusRequest on the stream, in order,
// as UpdateStatus would: an agent's long-lived stream saves each report a
// call's stream setup, headers and trailers on both sides. A report that
// fails ends the stream with UpdateStatus's error; the agent opens another
// and reports again.
func (n *nodeService) ReportStatus(stream corralpb.NodeAPI_ReportStatusServer) error {
	ctx := stream.Context()
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		resp, err := n.UpdateStatus(ctx, req)
		if err != nil {
			return err
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

// statusTargets reports which of the updates name a pod that exists with
// their uid, failing if one is bound to another node. This server's state
// answers for most (a pod's uid and node never change, and the write
// checks the uid again); only the pods it does not know yet, perhaps
// created a moment ago elsewhere, need a linearizable read.
func (n *nodeService) statusTargets(ctx context.Context, node string, updates []*corralpb.PodStatusUpdate) (map[*corralpb.PodStatusUpdate]bool, error) {
	known := make(map[*corralpb.PodStatusUpdate]bool, len(updates))
	check := func(st *state.Store, us []*corralpb.PodStatusUpdate) ([]*corralpb.PodStatusUpdate, error) {
		var missing []*corralpb.PodStatusUpdate
		for _, u := range us {
			cur, err := st.Get(nil, "Pod", u.GetNamespace(), u.GetName())
			if err != nil {
				return nil, toStatus(err)
			}
			if cur == nil || api.Meta(cur).Uid != u.GetUid() {
				missing = append(missing, u)
				continue
			}
			if bound := cur.GetPod().GetSpec().GetNodeName(); bound != node {
				return nil, status.Errorf(codes.PermissionDenied, "node %q may not write the status of pod %s/%s bound to %q",
					node, u.GetNamespace(), u.GetName(), bound)
			}
			known[u] = true
		}
		return missing, nil
	}
	missing, err := check(n.rs.State(), updates)
	if err != nil || len(missing) == 0 {
		return known, err
	}
	st, err := n.rs.ConsistentRead(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	_, err = check(st, missing)
	return known, err
}

func mustKind(name string) api.Kind {
	k, ok := api.KindByName(name)
	if !ok {
		panic("unknown kind " + name)
	}
	return k
}

// heartbeatBuffer coalesces heartbeats: a follower reports the nodes it
// heard from to the leader once per flush interval, in one call.
type heartbeatBuffer struct {
	rs    *raftstore.Server
	log   *slog.Logger
	mu    sync.Mutex
	nodes map[string]bool
	kick  chan struct{}
}

func newHeartbeatBuffer(rs *raftstore.Server, log *slog.Logger) *heartbeatBuffer {
	return &heartbeatBuffer{rs: rs, log: log, nodes: map[string]bool{}, kick: make(chan struct{}, 1)}
}

func (h *heartbeatBuffer) seen(node string) {
	h.mu.Lock()
	h.nodes[node] = true
	h.mu.Unlock()
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// run flushes at most once per interval; a failed report is kept for the
// next flush.
func (h *heartbeatBuffer) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.kick:
		}
		h.mu.Lock()
		nodes := make([]string, 0, len(h.nodes))
		for n := range h.nodes {
			nodes = append(nodes, n)
		}
		h.nodes = map[string]bool{}
		h.mu.Unlock()
		rctx, cancel := context.WithTimeout(ctx, interval)
		err := h.rs.ReportHeartbeats(rctx, nodes)
		cancel()
		if err != nil {
			h.log.Debug("report heartbeats", "nodes", len(nodes), "err", err)
			h.mu.Lock()
			for _, n := range nodes {
				h.nodes[n] = true
			}
			h.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
