package server

import (
	"context"
	"crypto/subtle"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	corralpb "github.com/corral-dev/corral/proto"
)

// clusterPrefix is the gRPC method prefix of the cluster API. Calls to it
// must carry the cluster's admin token (from admin.conf) as a bearer token.
var clusterPrefix = "/" + corralpb.Cluster_ServiceDesc.ServiceName + "/"

func (s *Server) authorize(ctx context.Context, method string) error {
	if !strings.HasPrefix(method, clusterPrefix) {
		return nil
	}
	cc, err := s.rs.State().ClusterConfig(nil)
	if err == nil && cc == nil {
		// A server that just joined may not have applied the bootstrap
		// entry yet: catch up with the leader before judging.
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, rerr := s.rs.ConsistentRead(rctx)
		cancel()
		if rerr == nil {
			cc, err = st.ClusterConfig(nil)
		}
	}
	if err != nil || cc == nil {
		return status.Error(codes.Unavailable, "the cluster is not bootstrapped yet: waiting for its servers")
	}
	md, _ := metadata.FromIncomingContext(ctx)
	var token string
	if v := md.Get("authorization"); len(v) > 0 {
		token = strings.TrimPrefix(v[0], "Bearer ")
	}
	if token == "" {
		return status.Error(codes.Unauthenticated, "the server has asked for the client to provide credentials (no token: use the admin.conf the server wrote)")
	}
	if subtle.ConstantTimeCompare([]byte(token), []byte(cc.GetAdminToken())) != 1 {
		return status.Error(codes.Unauthenticated, "invalid credentials: the token does not belong to this cluster")
	}
	return nil
}

func (s *Server) unaryAuth(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if err := s.authorize(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	return h(ctx, req)
}

func (s *Server) streamAuth(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if err := s.authorize(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	return h(srv, ss)
}
