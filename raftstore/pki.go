package raftstore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"time"

	"github.com/hashicorp/go-memdb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/corral-dev/corral/pki"
	"github.com/corral-dev/corral/pki/join"
	corralpb "github.com/corral-dev/corral/proto"
)

// A server's TLS identity: DATA_DIR/tls holds the cluster CA (ca.crt, and
// ca.key once the server has it) and the server's own certificate
// (server.crt, server.key). How a server gets them:
//
//	lone server (expect 1, no join)  creates the CA itself
//	bootstrap-expect N > 1           creates a candidate CA; when the N
//	                                 servers are found, every one takes the
//	                                 lowest-named server's (BootstrapCA,
//	                                 sealed with the shared --token)
//	joining an existing cluster      Certificates.Certify with the server
//	                                 token; the CA key arrives by Raft
//
// Each server issues its own certificate from the CA and renews it at
// 50–80 % of its validity. The leader writes the CA into the cluster
// config when the cluster bootstraps.

// sealBootstrapCA is the purpose BootstrapCA answers are sealed for.
const sealBootstrapCA = "bootstrap-ca"

// serverCertName is the file name of a server's own certificate in
// DATA_DIR/tls.
const serverCertName = "server"

func (s *Server) tlsDir() pki.Dir { return pki.Dir(s.cfg.DataDir + "/tls") }

// Credentials are the server's TLS identity, for its listeners and its
// peer connections.
func (s *Server) Credentials() *pki.Credentials { return s.creds }

// initTLS loads or creates the server's CA and certificate before Raft
// starts. existing says whether the data dir holds Raft state.
func (s *Server) initTLS(existing bool) error {
	fallback, err := pki.SelfSigned(time.Now())
	if err != nil {
		return err
	}
	s.creds.SetFallback(fallback)
	dir := s.tlsDir()
	ca, err := dir.LoadCA()
	switch {
	case err == nil:
		return s.loadCA(ca)
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("load cluster CA: %w", err)
	case existing:
		return fmt.Errorf("%s holds Raft state but no cluster CA in %s: it was made by a corral without mutual TLS; start a new cluster and load a snapshot into it", s.cfg.DataDir, dir)
	}
	if s.cfg.BootstrapExpect == 0 || (s.cfg.BootstrapExpect == 1 && len(s.knownAddrs) > 0) {
		if s.token.Secret == "" {
			return errors.New("joining an existing cluster needs --token (corral token show --role server on a server of it)")
		}
		return nil // Certify when discovery finds the cluster
	}
	if s.cfg.BootstrapExpect > 1 && (s.token.Secret == "" || s.token.CAHash != "") {
		return fmt.Errorf("bootstrap-expect %d needs --token: a secret of at least %d characters shared by the servers that bootstrap together (for example from: openssl rand -hex 16)", s.cfg.BootstrapExpect, pki.MinSecretLen)
	}
	if ca, err = pki.NewCA(time.Now()); err != nil {
		return err
	}
	if err := s.installCA(ca); err != nil {
		return err
	}
	return s.issueOwn(ca)
}

// setCA makes ca the CA this server trusts and signs with.
func (s *Server) setCA(ca *pki.CA) {
	s.caMu.Lock()
	s.localCA = ca
	s.caMu.Unlock()
	s.creds.SetCA(ca.Cert)
}

// installCA saves ca in DATA_DIR/tls and makes it this server's.
func (s *Server) installCA(ca *pki.CA) error {
	if err := s.tlsDir().SaveCA(ca); err != nil {
		return err
	}
	s.setCA(ca)
	return nil
}

// loadCA makes ca, read from DATA_DIR/tls, this server's CA with the
// certificate saved beside it, or a new one when that is missing or
// expired and the server holds the CA key.
func (s *Server) loadCA(ca *pki.CA) error {
	s.setCA(ca)
	dir := s.tlsDir()
	cert, err := dir.LoadKeyPair(serverCertName, ca)
	if err == nil && cert.Leaf.CheckSignatureFrom(ca.Cert) == nil && time.Now().Before(cert.Leaf.NotAfter) {
		s.creds.SetCertificate(cert)
		return nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("load server certificate: %w", err)
	}
	if ca.Key == nil {
		return fmt.Errorf("the server certificate in %s is missing or expired and this server does not hold the CA key: remove %s and join again with --token", dir, dir)
	}
	return s.issueOwn(ca)
}

// issueOwn issues, saves and installs this server's certificate.
func (s *Server) issueOwn(ca *pki.CA) error {
	certPEM, keyPEM, err := ca.Issue(pki.Identity{Role: pki.RoleServer, Name: s.cfg.Name}, time.Now(), s.cfg.CertValidity, s.hosts()...)
	if err != nil {
		return err
	}
	if err := s.tlsDir().SavePair(serverCertName, certPEM, keyPEM); err != nil {
		return err
	}
	cert, err := pki.KeyPair(certPEM, keyPEM, ca.Cert)
	if err != nil {
		return err
	}
	s.creds.SetCertificate(cert)
	return nil
}

// hosts are the addresses this server's certificate names besides
// corral-server.
func (s *Server) hosts() []string {
	var out []string
	for _, a := range []string{s.cfg.APIAddr, s.cfg.RaftAddr} {
		if h, _, err := net.SplitHostPort(a); err == nil && h != "" {
			out = append(out, h)
		}
	}
	return out
}

// CA returns the cluster CA with its key: the replicated one once the
// cluster config holds it, else the one this server started with.
func (s *Server) CA() (*pki.CA, error) {
	if cc, err := s.State().ClusterConfig(nil); err == nil && len(cc.GetCaKeyPem()) > 0 {
		return pki.ParseCA(cc.GetCaCertPem(), cc.GetCaKeyPem())
	}
	s.caMu.Lock()
	defer s.caMu.Unlock()
	if s.localCA == nil || s.localCA.Key == nil {
		return nil, errors.New("this server does not hold the cluster CA yet")
	}
	return s.localCA, nil
}

// keepTLS runs for the server's life: it writes the CA key to disk once
// the replicated config holds it (a server that joined learns it that
// way) and renews the server's certificate at 50–80 % of its validity.
func (s *Server) keepTLS(ctx context.Context) {
	for {
		ws := memdb.NewWatchSet()
		cc, _ := s.State().ClusterConfig(ws)
		s.saveReplicatedCA(cc)
		wait := time.Minute
		if leaf := s.creds.Leaf(); leaf != nil {
			if d := time.Until(pki.RenewAt(leaf, rand.Float64())); d < wait {
				wait = max(d, 0)
			}
		}
		wctx, cancel := context.WithTimeout(ctx, wait)
		expired := ws.WatchCtx(wctx) != nil
		cancel()
		if ctx.Err() != nil {
			return
		}
		if !expired {
			continue // the config changed
		}
		leaf := s.creds.Leaf()
		if leaf == nil || time.Now().Before(pki.RenewAt(leaf, 0)) {
			continue
		}
		ca, err := s.CA()
		if err != nil {
			s.log.Warn("renew server certificate", "err", err)
			continue
		}
		if err := s.issueOwn(ca); err != nil {
			s.log.Error("renew server certificate", "err", err)
			continue
		}
		s.log.Info("renewed server certificate", "not_after", s.creds.Leaf().NotAfter)
	}
}

func (s *Server) saveReplicatedCA(cc *corralpb.ClusterConfig) {
	if len(cc.GetCaKeyPem()) == 0 {
		return
	}
	s.caMu.Lock()
	have := s.localCA != nil && s.localCA.Key != nil && string(s.localCA.CertPEM) == string(cc.GetCaCertPem())
	s.caMu.Unlock()
	if have {
		return
	}
	ca, err := pki.ParseCA(cc.GetCaCertPem(), cc.GetCaKeyPem())
	if err != nil {
		s.log.Error("the replicated cluster CA does not parse", "err", err)
		return
	}
	if err := s.installCA(ca); err != nil {
		s.log.Error("save cluster CA", "err", err)
	}
}

// BootstrapCA hands this server's CA, sealed with the bootstrap token, to
// another server bootstrapping the same cluster. It answers only while the
// bootstrap token is still the server token (before a rotation).
func (p *peerService) BootstrapCA(context.Context, *corralpb.BootstrapCARequest) (*corralpb.BootstrapCAResponse, error) {
	s := p.s
	secret := s.token.Secret
	if s.cfg.BootstrapExpect <= 1 || secret == "" || s.token.CAHash != "" {
		return nil, status.Error(codes.FailedPrecondition, "this server is not bootstrapping a cluster with a shared token")
	}
	if cc, _ := s.State().ClusterConfig(nil); cc != nil && cc.GetServerSecret() != secret {
		return nil, status.Error(codes.FailedPrecondition, "the bootstrap token was rotated: join with the server token")
	}
	ca, err := s.CA()
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	body, err := proto.Marshal(&corralpb.ClusterConfig{CaCertPem: ca.CertPEM, CaKeyPem: ca.KeyPEM})
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	sealed, err := pki.Seal(secret, sealBootstrapCA, body)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &corralpb.BootstrapCAResponse{Sealed: sealed}, nil
}

// adoptBootstrapCA takes the CA of another server bootstrapping the same
// cluster: the lowest-named one (every server picks the same), or one
// that already bootstrapped.
func (s *Server) adoptBootstrapCA(ctx context.Context, lowest memberInfo) error {
	c, err := s.open.client(lowest.apiAddr)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := c.BootstrapCA(cctx, &corralpb.BootstrapCARequest{})
	if err != nil {
		return fmt.Errorf("get the cluster CA from %s: %w", lowest.name, err)
	}
	body, err := pki.Open(s.token.Secret, sealBootstrapCA, resp.GetSealed())
	if err != nil {
		return fmt.Errorf("the cluster CA from %s: %w", lowest.name, err)
	}
	var cc corralpb.ClusterConfig
	if err := proto.Unmarshal(body, &cc); err != nil {
		return fmt.Errorf("the cluster CA from %s: %w", lowest.name, err)
	}
	ca, err := pki.ParseCA(cc.GetCaCertPem(), cc.GetCaKeyPem())
	if err != nil {
		return fmt.Errorf("the cluster CA from %s: %w", lowest.name, err)
	}
	s.caMu.Lock()
	same := s.localCA != nil && string(s.localCA.CertPEM) == string(ca.CertPEM)
	s.caMu.Unlock()
	if same {
		return nil
	}
	if err := s.installCA(ca); err != nil {
		return err
	}
	s.log.Info("took the cluster CA of another bootstrapping server", "from", lowest.name, "ca_sha256", ca.Digest())
	return s.issueOwn(ca)
}

// certify gets this server's certificate from an existing cluster through
// the server at addr, with the server token (see package join).
func (s *Server) certify(ctx context.Context, addr string) error {
	req, err := join.NewRequest(pki.Identity{Role: pki.RoleServer, Name: s.cfg.Name}, s.token)
	if err != nil {
		return err
	}
	got, err := join.Certify(ctx, addr, s.token, req)
	if err != nil {
		return fmt.Errorf("certify through %s: %w", addr, err)
	}
	cert, err := got.KeyPair()
	if err != nil {
		return err
	}
	if err := s.installCA(got.CA); err != nil {
		return err
	}
	if err := s.tlsDir().SavePair(serverCertName, got.CertPEM, got.KeyPEM); err != nil {
		return err
	}
	s.creds.SetCertificate(cert)
	s.log.Info("got a server certificate from the cluster", "via", addr, "ca_sha256", got.CA.Digest())
	return nil
}

// raftTLS wraps the Raft stream layer in mutual TLS that admits servers only.
func (s *Server) raftTLS() (server, client *tls.Config) {
	only := pki.OnlyRole(pki.RoleServer)
	return s.creds.ServerConfig(tls.RequireAndVerifyClientCert, only), s.creds.ClientConfig(pki.ServerName, only)
}

// errIdentityHeld is the error of a refused binding.
var errIdentityHeld = errors.New("held by another key")

// Bind records that name's certificate is for the key with digest keyHash,
// replacing the binding to replaces (a renewal) if given. A name held by
// another key is refused with errIdentityHeld (wrapped).
func (s *Server) Bind(ctx context.Context, name, keyHash, replaces string) error {
	res, err := s.writeEntry(ctx, &corralpb.LogEntry{PutIdentities: []*corralpb.Identity{{Name: name, PublicKeySha256: keyHash, Replaces: replaces}}})
	if err != nil {
		return err
	}
	if len(res.GetIdentityConflicts()) > 0 {
		return fmt.Errorf("%s: %w", name, errIdentityHeld)
	}
	return nil
}

// IsIdentityHeld reports whether err is Bind's refusal.
func IsIdentityHeld(err error) bool { return errors.Is(err, errIdentityHeld) }
