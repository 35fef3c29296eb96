package server

import (
	"context"
	"errors"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/corral-dev/corral/pki"
	corralpb "github.com/corral-dev/corral/proto"
)

// Authorization. Every call on the API port is TLS; who the caller is
// comes from its verified client certificate (pki.FromContext), and what
// it may call from its role:
//
//	admin   every cluster API call
//	view    cluster API reads: get, list, watch, members, version, logs
//	node    the node API, as itself only (the handlers check the node
//	        name, and that pods and events are its own: Kubernetes' Node
//	        authorizer rules)
//	server  the peer API (joining, write forwarding, read indexes)
//
// A few calls need no certificate: Certificates.Certify (proved by the
// join token's MAC instead), Peer.Info (public discovery facts) and
// Peer.BootstrapCA (its answer is sealed with the bootstrap token).
// Anything else without a certificate is Unauthenticated; a certificate
// whose role may not make the call is PermissionDenied, and logged.

// access is who may make a call.
type access int

const (
	accessNone   access = iota // unknown method: nobody
	accessPublic               // no certificate needed
	accessRead                 // admin or view
	accessWrite                // admin
	accessNode                 // a node identity
	accessPeer                 // a server identity
)

var methodAccess = func() map[string]access {
	m := map[string]access{}
	add := func(service string, a access, methods ...string) {
		for _, name := range methods {
			m["/"+service+"/"+name] = a
		}
	}
	cluster := corralpb.Cluster_ServiceDesc.ServiceName
	add(cluster, accessRead, "Get", "List", "Watch", "Members", "Version", "Logs")
	add(cluster, accessWrite, "Apply", "Create", "Update", "Delete", "RemoveServer", "Snapshot", "Exec", "PortForward", "Token", "CreateUser")
	node := corralpb.NodeAPI_ServiceDesc.ServiceName
	add(node, accessNode, "Register", "Heartbeat", "Assignments", "UpdateStatus", "ReportStatus", "RecordEvents")
	peer := corralpb.Peer_ServiceDesc.ServiceName
	add(peer, accessPublic, "Info", "BootstrapCA")
	add(peer, accessPeer, "Join", "Forward", "ReadIndex", "RemovePeer", "Heartbeats")
	add(corralpb.Certificates_ServiceDesc.ServiceName, accessPublic, "Certify")
	return m
}()

// verb is the short name of a gRPC method for messages.
func verb(method string) string { return method[strings.LastIndex(method, "/")+1:] }

func (s *Server) authorize(ctx context.Context, method string) error {
	a := methodAccess[method]
	if a == accessPublic {
		return nil
	}
	id, _, err := pki.FromContext(ctx)
	if errors.Is(err, pki.ErrNoCertificate) {
		return status.Error(codes.Unauthenticated, "the server has asked for the client to provide credentials: no client certificate (use an admin.conf a server wrote, or one from corral user create)")
	}
	if err != nil {
		return status.Errorf(codes.Unauthenticated, "the client certificate names no corral identity: %v", err)
	}
	var ok bool
	switch a {
	case accessRead:
		ok = id.Role == pki.RoleAdmin || id.Role == pki.RoleView
	case accessWrite:
		ok = id.Role == pki.RoleAdmin
	case accessNode:
		ok = id.Role == pki.RoleNode
	case accessPeer:
		ok = id.Role == pki.RoleServer
	}
	if ok {
		return nil
	}
	s.log.Warn("permission denied", "identity", id.String(), "method", method)
	switch {
	case id.Role == pki.RoleView && a == accessWrite:
		return status.Errorf(codes.PermissionDenied, "user %q (role view) may only read: %s needs the admin role", id.Name, verb(method))
	case a == accessNone:
		return status.Errorf(codes.PermissionDenied, "%s may not call %s", id, method)
	}
	return status.Errorf(codes.PermissionDenied, "%s may not call %s: it is for %s", id, verb(method), accessNames[a])
}

var accessNames = map[access]string{
	accessRead: "users", accessWrite: "admin users", accessNode: "node agents", accessPeer: "servers",
}

// checkNode lets a node identity act only as its own node.
func checkNode(ctx context.Context, name string) error {
	id, _, err := pki.FromContext(ctx)
	if err != nil || id.Role != pki.RoleNode {
		return status.Error(codes.Unauthenticated, "a node certificate is required")
	}
	if name == "" {
		return invalidf("node name is required")
	}
	if id.Name != name {
		return status.Errorf(codes.PermissionDenied, "%s may not act for node %q", id, name)
	}
	return nil
}

func (s *Server) unaryAuth(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if err := s.calls.begin(true); err != nil {
		return nil, err
	}
	defer s.calls.end()
	if err := s.authorize(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	return h(ctx, req)
}

func (s *Server) streamAuth(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	counted := !endless[info.FullMethod]
	if err := s.calls.begin(counted); err != nil {
		return err
	}
	if counted {
		var once sync.Once
		end := func() { once.Do(s.calls.end) }
		defer end()
		if info.FullMethod == corralpb.Cluster_Logs_FullMethodName {
			ss = &logsStream{ServerStream: ss, follows: end}
		}
	}
	if err := s.authorize(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	return h(srv, ss)
}

// logsStream is a Logs call's stream, which stops counting among the calls
// a stopping server waits for once its request asks to follow: from then
// on the call ends only when its client leaves, as a watch does.
type logsStream struct {
	grpc.ServerStream
	follows func()
}

func (l *logsStream) RecvMsg(m any) error {
	err := l.ServerStream.RecvMsg(m)
	if req, ok := m.(*corralpb.LogsRequest); ok && err == nil && req.GetFollow() {
		l.follows()
	}
	return err
}
