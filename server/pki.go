package server

import (
	"context"
	"regexp"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/corral-dev/corral/pki"
	corralpb "github.com/corral-dev/corral/proto"
	"github.com/corral-dev/corral/raftstore"
)

// Token shows or rotates a join token. Rotation replaces the secret in
// the replicated cluster config: the old token stops working on every
// server at once; certificates issued with it stay valid.
func (s *clusterService) Token(ctx context.Context, req *corralpb.TokenRequest) (*corralpb.TokenResponse, error) {
	role := req.GetRole()
	if role == "" {
		role = pki.TokenAgent
	}
	if role != pki.TokenAgent && role != pki.TokenServer {
		return nil, invalidf("token: role %q: supported values: \"agent\", \"server\"", role)
	}
	st, err := s.rs.ConsistentRead(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	cc, err := st.ClusterConfig(nil)
	if err != nil || cc == nil || len(cc.GetCaCertPem()) == 0 {
		return nil, status.Error(codes.Unavailable, "token: the cluster is not bootstrapped yet")
	}
	ca, err := pki.ParseCA(cc.GetCaCertPem(), nil)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "token: the cluster CA: %v", err)
	}
	secret := cc.GetAgentSecret()
	if role == pki.TokenServer {
		secret = cc.GetServerSecret()
	}
	if req.GetRotate() {
		next := proto.Clone(cc).(*corralpb.ClusterConfig)
		secret = pki.NewSecret()
		if role == pki.TokenServer {
			next.ServerSecret = secret
		} else {
			next.AgentSecret = secret
		}
		if _, err := s.rs.WriteEntry(ctx, &corralpb.LogEntry{ClusterConfig: next}); err != nil {
			return nil, toStatus(err)
		}
		id, _, _ := pki.FromContext(ctx)
		s.log.Info("rotated join token", "role", role, "by", id.String())
	}
	return &corralpb.TokenResponse{Token: pki.Token{Role: role, CAHash: ca.Digest(), Secret: secret}.String()}, nil
}

// userName is what user names may be: they land in certificate subjects
// and in logs.
var userName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// CreateUser signs a user's certificate request. The key stays with the
// user; the certificate is valid for pki.UserCertValidity and cannot be
// revoked before then (as Kubernetes' client certificates): give view
// where view will do.
func (s *clusterService) CreateUser(ctx context.Context, req *corralpb.CreateUserRequest) (*corralpb.CreateUserResponse, error) {
	if !userName.MatchString(req.GetName()) {
		return nil, invalidf("user %q: name must be 1-64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit", req.GetName())
	}
	role, err := pki.ParseRole(req.GetRole())
	if err != nil || (role != pki.RoleAdmin && role != pki.RoleView) {
		return nil, invalidf("user %s: role %q: supported values: \"admin\", \"view\"", req.GetName(), req.GetRole())
	}
	if _, err := s.rs.ConsistentRead(ctx); err != nil {
		return nil, toStatus(err)
	}
	ca, err := s.rs.CA()
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "user %s: %v", req.GetName(), err)
	}
	id := pki.Identity{Role: role, Name: req.GetName()}
	certPEM, err := ca.SignCSR(req.GetCsr(), id, time.Now(), pki.UserCertValidity)
	if err != nil {
		return nil, invalidf("user %s: %v", req.GetName(), err)
	}
	var servers []string
	if ms, err := s.rs.State().Members(nil); err == nil {
		for _, m := range ms {
			servers = append(servers, m.GetApiAddr())
		}
	}
	by, _, _ := pki.FromContext(ctx)
	s.log.Info("issued user certificate", "user", req.GetName(), "role", string(role), "by", by.String())
	return &corralpb.CreateUserResponse{CertPem: certPEM, CaPem: ca.CertPEM, Servers: servers}, nil
}

// freeNodeName drops the binding of a deleted node's name to its key, so
// that a new machine can join under the name (K3s frees a node's password
// the same way). The node's current certificate stays valid until it
// expires.
func (s *clusterService) freeNodeName(ctx context.Context, name string) {
	key := raftstore.BindingName(pki.Identity{Role: pki.RoleNode, Name: name})
	if _, err := s.rs.WriteEntry(ctx, &corralpb.LogEntry{DeleteIdentities: []string{key}}); err != nil {
		s.log.Warn("free the deleted node's name", "node", name, "err", err)
	}
}
