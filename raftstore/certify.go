package raftstore

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/corral-dev/corral/pki"
	"github.com/corral-dev/corral/pki/join"
	corralpb "github.com/corral-dev/corral/proto"
)

// CertificatesService returns the Certificates API for the caller to
// register on its gRPC server (the API port).
func (s *Server) CertificatesService() corralpb.CertificatesServer { return &certService{s: s} }

type certService struct {
	corralpb.UnimplementedCertificatesServer
	s *Server
}

// dnsSubdomain is what node and server names must be: they are DNS names
// in certificates (RFC 1123 subdomain, as Kubernetes' node names).
var dnsSubdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

// reservedNames are DNS names that server certificates carry: a node
// certificate naming one would pass for a server.
var reservedNames = map[string]bool{pki.ServerName: true, "localhost": true}

// BindingName is the identities-table key of a node or server name.
func BindingName(id pki.Identity) string { return string(id.Role) + ":" + id.Name }

// Certify issues a node or server certificate. A caller that holds a
// valid certificate of that very identity renews it (with a new key); any
// other caller must prove the join token's secret with a MAC over its
// request, and gets the answer sealed with that secret. Either way the name
// is bound to the request's key first: a name held by another key is
// refused (AlreadyExists).
func (c *certService) Certify(ctx context.Context, req *corralpb.CertifyRequest) (*corralpb.CertifyResponse, error) {
	s := c.s
	role, err := pki.ParseRole(req.GetRole())
	if err != nil || (role != pki.RoleNode && role != pki.RoleServer) {
		return nil, status.Errorf(codes.InvalidArgument, "certify: role %q: want node or server", req.GetRole())
	}
	if len(req.GetName()) > 253 || !dnsSubdomain.MatchString(req.GetName()) {
		return nil, status.Errorf(codes.InvalidArgument, "certify: name %q: must be a lowercase RFC 1123 subdomain (letters, digits, '-' and '.')", req.GetName())
	}
	if reservedNames[req.GetName()] {
		return nil, status.Errorf(codes.InvalidArgument, "certify: name %q is reserved", req.GetName())
	}
	id := pki.Identity{Role: role, Name: req.GetName()}
	keyHash, err := pki.CSRKeyDigest(req.GetCsr())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "certify %s: %v", id, err)
	}
	cc, err := s.State().ClusterConfig(nil)
	if err != nil || cc == nil || len(cc.GetCaKeyPem()) == 0 {
		return nil, status.Error(codes.Unavailable, "certify: the cluster is not bootstrapped yet")
	}
	ca, err := pki.ParseCA(cc.GetCaCertPem(), cc.GetCaKeyPem())
	if err != nil {
		return nil, status.Errorf(codes.Internal, "certify: the cluster CA: %v", err)
	}
	if caller, leaf, err := pki.FromContext(ctx); err == nil && caller == id {
		old, err := pki.KeyDigest(leaf.PublicKey)
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "renew %s: %v", id, err)
		}
		if err := s.bindFor(ctx, id, keyHash, old); err != nil {
			if status.Code(err) == codes.AlreadyExists {
				return nil, status.Errorf(codes.PermissionDenied, "renew %s: the name is no longer bound to this certificate (the node was deleted or the server removed): join again with a token", id)
			}
			return nil, err
		}
		certPEM, err := ca.SignCSR(req.GetCsr(), id, time.Now(), s.cfg.CertValidity)
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "renew %s: %v", id, err)
		}
		s.log.Info("renewed certificate", "identity", id.String())
		return &corralpb.CertifyResponse{CertPem: certPEM, CaPem: ca.CertPEM}, nil
	}
	secret := cc.GetAgentSecret()
	if role == pki.RoleServer {
		secret = cc.GetServerSecret()
	}
	if len(req.GetMac()) == 0 || !pki.CheckMAC(secret, join.Purpose, req.GetCsr(), req.GetMac()) {
		s.log.Warn("certify refused: bad join token", "identity", id.String())
		return nil, status.Errorf(codes.Unauthenticated, "certify %s: invalid join token: wrong, or rotated (corral token show --role %s)", id, tokenRole(role))
	}
	if err := s.bindFor(ctx, id, keyHash, ""); err != nil {
		return nil, err
	}
	certPEM, err := ca.SignCSR(req.GetCsr(), id, time.Now(), s.cfg.CertValidity)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "certify %s: %v", id, err)
	}
	body, err := proto.Marshal(&corralpb.CertifyResponse{CertPem: certPEM, CaPem: ca.CertPEM})
	if err != nil {
		return nil, status.Errorf(codes.Internal, "certify %s: %v", id, err)
	}
	sealed, err := pki.Seal(secret, join.Purpose, body)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "certify %s: %v", id, err)
	}
	s.log.Info("issued certificate", "identity", id.String())
	return &corralpb.CertifyResponse{Sealed: sealed}, nil
}

func (s *Server) bindFor(ctx context.Context, id pki.Identity, keyHash, replaces string) error {
	err := s.Bind(ctx, BindingName(id), keyHash, replaces)
	switch {
	case err == nil:
		return nil
	case IsIdentityHeld(err):
		what := "node"
		if id.Role == pki.RoleServer {
			what = "server"
		}
		return status.Errorf(codes.AlreadyExists, "certify %s: the %s name %q is already held by another certificate; to give it to a new machine, delete the %s first (corral delete node %s, or corral cluster remove-server %s)",
			id, what, id.Name, what, id.Name, id.Name)
	}
	return status.Errorf(codes.Unavailable, "certify %s: %v", id, fmt.Errorf("record the name's key: %w", err))
}

func tokenRole(r pki.Role) string {
	if r == pki.RoleServer {
		return pki.TokenServer
	}
	return pki.TokenAgent
}
