package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/corral-dev/corral/pki"
	corralpb "github.com/corral-dev/corral/proto"
)

// Logs, exec and port-forward reach a pod through the agent of its node:
// CLI → any server → that agent's AgentAPI, at the node's InternalIP and
// status.daemonEndpoints.kubeletEndpoint.Port, over mutual TLS: the server
// presents its server certificate and accepts only the node certificate of
// that very node. The server relays the streams both ways until
// either side ends; cancelling the CLI's call cancels the agent's.

// agentTarget is where the agent API of a pod's node is served.
type agentTarget struct {
	node string
	addr string
}

// Logs streams a container's logs from the agent of the pod's node.
func (s *clusterService) Logs(req *corralpb.LogsRequest, stream corralpb.Cluster_LogsServer) error {
	ctx := stream.Context()
	req = proto.Clone(req).(*corralpb.LogsRequest)
	if req.Namespace == "" {
		req.Namespace = "default"
	}
	target, err := s.agentFor(ctx, req.GetNamespace(), req.GetPod())
	if err != nil {
		return err
	}
	conn, err := s.agents.get(target.node, target.addr)
	if err != nil {
		return target.unreachable(err)
	}
	up, err := corralpb.NewAgentAPIClient(conn).Logs(ctx, req)
	if err != nil {
		return target.upstream(conn, err)
	}
	for {
		chunk, err := up.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return target.upstream(conn, err)
		}
		if err := stream.Send(chunk); err != nil {
			return fmt.Errorf("send logs of %s/%s: %w", req.GetNamespace(), req.GetPod(), err)
		}
	}
}

// Exec runs a command in a container through the agent of the pod's node.
// The first message must be start; the rest are relayed as they come.
func (s *clusterService) Exec(stream corralpb.Cluster_ExecServer) error {
	first, err := recvFirst(stream, "exec")
	if err != nil {
		return err
	}
	if first.GetStart() == nil {
		return invalidf("exec: the first message must be start")
	}
	if first.GetStart().GetNamespace() == "" {
		first = proto.Clone(first).(*corralpb.ExecInput)
		first.GetStart().Namespace = "default"
	}
	start := first.GetStart()
	return relayToAgent(s, stream, first, start.GetNamespace(), start.GetPod(), "exec output", corralpb.AgentAPIClient.Exec)
}

// PortForward carries one TCP connection to a port of a pod through the
// agent of the pod's node. The first frame must be start; the rest are
// relayed as they come, both ways.
func (s *clusterService) PortForward(stream corralpb.Cluster_PortForwardServer) error {
	first, err := recvFirst(stream, "port-forward")
	if err != nil {
		return err
	}
	if first.GetStart() == nil {
		return invalidf("port-forward: the first message must be start")
	}
	if p := first.GetStart().GetPort(); p < 1 || p > 65535 {
		return invalidf("port-forward: port: Invalid value: %d: must be between 1 and 65535, inclusive", p)
	}
	if first.GetStart().GetNamespace() == "" {
		first = proto.Clone(first).(*corralpb.PortForwardFrame)
		first.GetStart().Namespace = "default"
	}
	start := first.GetStart()
	return relayToAgent(s, stream, first, start.GetNamespace(), start.GetPod(), "port-forward data", corralpb.AgentAPIClient.PortForward)
}

// recvFirst reads the first message of a call what, which must come.
func recvFirst[In, Out any](stream grpc.BidiStreamingServer[In, Out], what string) (*In, error) {
	first, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return nil, invalidf("%s: the stream ended before its start message", what)
	}
	return first, err
}

// relayToAgent opens the same call (open) on the agent of the node of pod
// ns/name, sends it first, and relays the rest both ways until the agent
// ends its side; what names the agent's messages in errors.
func relayToAgent[In, Out any](s *clusterService, stream grpc.BidiStreamingServer[In, Out], first *In, ns, name, what string,
	open func(corralpb.AgentAPIClient, context.Context, ...grpc.CallOption) (grpc.BidiStreamingClient[In, Out], error)) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	target, err := s.agentFor(ctx, ns, name)
	if err != nil {
		return err
	}
	conn, err := s.agents.get(target.node, target.addr)
	if err != nil {
		return target.unreachable(err)
	}
	up, err := open(corralpb.NewAgentAPIClient(conn), ctx)
	if err != nil {
		return target.upstream(conn, err)
	}
	if err := up.Send(first); err != nil && !errors.Is(err, io.EOF) {
		return target.upstream(conn, err)
	}
	go relayUp(stream, up, cancel)
	for {
		out, err := up.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return target.upstream(conn, err)
		}
		if err := stream.Send(out); err != nil {
			return fmt.Errorf("send %s of %s/%s: %w", what, ns, name, err)
		}
	}
}

// relayUp passes the caller's exec or port-forward messages to the agent until the
// caller's stream ends (the half-close is passed on) or fails (cancel
// ends the agent's call); an agent that ended its side makes Send fail and
// the relay stop.
func relayUp[In, Out any](stream grpc.BidiStreamingServer[In, Out], up grpc.BidiStreamingClient[In, Out], cancel context.CancelFunc) {
	for {
		in, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				_ = up.CloseSend() // only fails on a stream already gone
			} else {
				cancel()
			}
			return
		}
		if err := up.Send(in); err != nil {
			return
		}
	}
}

// agentFor finds the pod (consistent read), its node and that node's agent
// address.
func (s *clusterService) agentFor(ctx context.Context, ns, name string) (*agentTarget, error) {
	if name == "" {
		return nil, invalidf("pod name is required")
	}
	st, err := s.rs.ConsistentRead(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	obj, err := st.Get(nil, "Pod", ns, name)
	if err != nil {
		return nil, toStatus(err)
	}
	if obj == nil {
		return nil, notFound(mustKind("Pod"), name)
	}
	nodeName := obj.GetPod().GetSpec().GetNodeName()
	if nodeName == "" {
		return nil, invalidf("pod %s does not have a host assigned", name)
	}
	nodeObj, err := st.Get(nil, "Node", "", nodeName)
	if err != nil {
		return nil, toStatus(err)
	}
	if nodeObj == nil {
		return nil, notFound(mustKind("Node"), nodeName)
	}
	node := nodeObj.GetNode()
	ip := internalIP(node)
	port := node.GetStatus().GetDaemonEndpoints().GetKubeletEndpoint().GetPort()
	if ip == "" || port <= 0 {
		return nil, status.Errorf(codes.Unavailable,
			"node %q has no agent API address (status.addresses InternalIP and status.daemonEndpoints.kubeletEndpoint.Port): is its agent running?", nodeName)
	}
	addr := net.JoinHostPort(ip, strconv.Itoa(int(port)))
	return &agentTarget{node: nodeName, addr: addr}, nil
}

// unreachable is the error for an agent that cannot be dialed or answered
// with a transport failure.
func (t *agentTarget) unreachable(err error) error {
	msg := err.Error()
	if s, ok := status.FromError(err); ok {
		msg = s.Message()
	}
	// Keep the dial error itself, not gRPC's wrapping of it.
	const marker = "Error while dialing: "
	if i := strings.LastIndex(msg, marker); i >= 0 {
		msg = strings.TrimRight(msg[i+len(marker):], "\"")
	}
	return status.Errorf(codes.Unavailable, "error dialing backend: the agent of node %q at %s is unreachable: %s", t.node, t.addr, msg)
}

// upstream maps an error of the agent's call: statuses the agent sent pass
// through; a transport failure says which node's agent could not be
// reached (and lets the next call reconnect at once); an agent refusing
// this server is the servers' problem, not the caller's.
func (t *agentTarget) upstream(conn *grpc.ClientConn, err error) error {
	s, ok := status.FromError(err)
	if !ok {
		return status.Errorf(codes.Internal, "agent of node %q: %v", t.node, err)
	}
	switch s.Code() {
	case codes.Unavailable:
		if conn.GetState() == connectivity.TransientFailure {
			conn.ResetConnectBackoff()
		}
		return t.unreachable(err)
	case codes.Unauthenticated, codes.PermissionDenied:
		return status.Errorf(codes.Internal, "the agent of node %q refused this server: %s", t.node, s.Message())
	}
	return err
}

// agentConns caches one client connection per node and agent address. gRPC
// reconnects a connection by itself, so an entry stays valid across agent
// restarts.
type agentConns struct {
	creds *pki.Credentials
	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
}

func newAgentConns(creds *pki.Credentials) *agentConns {
	return &agentConns{creds: creds, conns: map[string]*grpc.ClientConn{}}
}

// get returns the connection to node's agent at addr, creating it on first
// use. It accepts only that node's certificate.
func (a *agentConns) get(node, addr string) (*grpc.ClientConn, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	key := node + "\x00" + addr
	if c, ok := a.conns[key]; ok {
		return c, nil
	}
	allow := func(id pki.Identity) error {
		if id != (pki.Identity{Role: pki.RoleNode, Name: node}) {
			return fmt.Errorf("the agent at %s presented %s, not node %q's certificate", addr, id, node)
		}
		return nil
	}
	c, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(credentials.NewTLS(a.creds.ClientConfig(node, allow))),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           grpcbackoff.Config{BaseDelay: 200 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 3 * time.Second},
			MinConnectTimeout: 5 * time.Second,
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("connect to agent at %s: %w", addr, err)
	}
	a.conns[key] = c
	return c, nil
}

// close closes every cached connection.
func (a *agentConns) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for addr, c := range a.conns {
		_ = c.Close() // only fails for a connection already closed
		delete(a.conns, addr)
	}
}
