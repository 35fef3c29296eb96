package server_test

import (
	"crypto"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/proto"

	"github.com/corral-dev/corral/pki"
	corralpb "github.com/corral-dev/corral/proto"
)

// agentToken reads the cluster's agent join token, rotating it first if
// asked.
func (s *secured) agentToken(t *testing.T, rotate bool) pki.Token {
	t.Helper()
	resp, err := s.admin.Token(ctx(t), &corralpb.TokenRequest{Role: pki.TokenAgent, Rotate: rotate})
	if err != nil {
		t.Fatalf("token (rotate %v): %v", rotate, err)
	}
	tok, err := pki.ParseToken(resp.GetToken())
	if err != nil {
		t.Fatal(err)
	}
	if tok.Role != pki.TokenAgent || tok.CAHash != s.ca.Digest() {
		t.Fatalf("agent token %s: want role agent and the CA hash %s", tok, s.ca.Digest())
	}
	return tok
}

// pinned returns a Certificates client as a joining machine has one: TLS
// that trusts the server only if its CA has the SHA-256 caHash, and no
// client certificate.
func (s *secured) pinned(t *testing.T, caHash string) corralpb.CertificatesClient {
	t.Helper()
	conn, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(credentials.NewTLS(pki.PinnedConfig(caHash))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return corralpb.NewCertificatesClient(conn)
}

// joining is a machine about to certify as node name with its own key.
type joining struct {
	name string
	key  crypto.Signer
	csr  []byte
}

func newJoining(t *testing.T, name string) *joining {
	t.Helper()
	key, err := pki.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.NewCSR(key, pki.Identity{Role: pki.RoleNode, Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return &joining{name: name, key: key, csr: csr}
}

// request is its Certify request, with a MAC made with secret ("" for none).
func (j *joining) request(secret string) *corralpb.CertifyRequest {
	req := &corralpb.CertifyRequest{Role: string(pki.RoleNode), Name: j.name, Csr: j.csr}
	if secret != "" {
		req.Mac = pki.MAC(secret, "certify", j.csr)
	}
	return req
}

// certify asks for a certificate with the token and returns the
// credentials the sealed answer makes, checking the certificate.
func (s *secured) certify(t *testing.T, j *joining, tok pki.Token) *pki.Credentials {
	t.Helper()
	resp, err := s.pinned(t, tok.CAHash).Certify(ctx(t), j.request(tok.Secret))
	if err != nil {
		t.Fatalf("certify %s: %v", j.name, err)
	}
	if len(resp.GetCertPem()) != 0 {
		t.Fatal("a certificate answered to a token travels in clear")
	}
	body, err := pki.Open(tok.Secret, "certify", resp.GetSealed())
	if err != nil {
		t.Fatalf("open the answer: %v", err)
	}
	var inner corralpb.CertifyResponse
	if err := proto.Unmarshal(body, &inner); err != nil {
		t.Fatal(err)
	}
	if string(inner.GetCaPem()) != string(s.ca.CertPEM) {
		t.Fatal("the answer's CA is not the cluster's")
	}
	return j.creds(t, s.ca, inner.GetCertPem())
}

// creds are the credentials of j's key with certPEM, checked to name j.
func (j *joining) creds(t *testing.T, ca *pki.CA, certPEM []byte) *pki.Credentials {
	t.Helper()
	keyPEM, err := pki.EncodeKey(j.key)
	if err != nil {
		t.Fatal(err)
	}
	creds := credsFor(t, ca, certPEM, keyPEM)
	if id, err := pki.IdentityOf(creds.Leaf()); err != nil || id != (pki.Identity{Role: pki.RoleNode, Name: j.name}) {
		t.Fatalf("the certificate names %v (%v), want node %s", id, err, j.name)
	}
	if err := creds.Leaf().CheckSignatureFrom(ca.Cert); err != nil {
		t.Fatalf("the certificate is not the cluster CA's: %v", err)
	}
	return creds
}

func testCertifyWrongToken(t *testing.T, s *secured) {
	tok := s.agentToken(t, false)
	j := newJoining(t, "wrong-token")
	_, err := s.pinned(t, tok.CAHash).Certify(ctx(t), j.request(pki.NewSecret()))
	wantCode(t, err, codes.Unauthenticated, "invalid join token")
	_, err = s.pinned(t, tok.CAHash).Certify(ctx(t), j.request(""))
	wantCode(t, err, codes.Unauthenticated, "invalid join token")
	// A MAC made for another request does not carry over.
	other := newJoining(t, "wrong-token")
	req := j.request("")
	req.Mac = pki.MAC(tok.Secret, "certify", other.csr)
	_, err = s.pinned(t, tok.CAHash).Certify(ctx(t), req)
	wantCode(t, err, codes.Unauthenticated, "invalid join token")
	// The agent token does not make servers.
	req = j.request(tok.Secret)
	req.Role = string(pki.RoleServer)
	_, err = s.pinned(t, tok.CAHash).Certify(ctx(t), req)
	wantCode(t, err, codes.Unauthenticated, "invalid join token")
}

func testCertifyRotatedToken(t *testing.T, s *secured) {
	old := s.agentToken(t, false)
	s.certify(t, newJoining(t, "before-rotation"), old)
	next := s.agentToken(t, true)
	if next.Secret == old.Secret {
		t.Fatal("rotation kept the secret")
	}
	if again := s.agentToken(t, false); again.Secret != next.Secret {
		t.Fatal("the token shown after a rotation is not the rotated one")
	}
	_, err := s.pinned(t, old.CAHash).Certify(ctx(t), newJoining(t, "after-rotation").request(old.Secret))
	wantCode(t, err, codes.Unauthenticated, "invalid join token", "rotated")
	s.certify(t, newJoining(t, "after-rotation"), next)
}

func testTokenOfAnotherCluster(t *testing.T, s *secured) {
	tok := s.agentToken(t, false)
	other, err := pki.NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.pinned(t, other.Digest()).Certify(ctx(t), newJoining(t, "misled").request(tok.Secret))
	wantHandshakeRefused(t, err, "authentication handshake failed", "does not match the join token's CA hash")
}

func testNodeNameTakeover(t *testing.T, s *secured) {
	tok := s.agentToken(t, false)
	a := newJoining(t, "taken")
	credsA := s.certify(t, a, tok)
	// Certifying again with the same key is idempotent (an agent retrying).
	s.certify(t, a, tok)
	b := newJoining(t, "taken")
	_, err := s.pinned(t, tok.CAHash).Certify(ctx(t), b.request(tok.Secret))
	wantCode(t, err, codes.AlreadyExists, `the node name "taken" is already held by another certificate`, "corral delete node taken")

	nc := corralpb.NewNodeAPIClient(dialServer(t, s.addr, credsA))
	if _, err := nc.Register(ctx(t), &corralpb.RegisterRequest{Node: agentNode("taken", nil)}); err != nil {
		t.Fatalf("register with the certified key: %v", err)
	}
	if _, err := s.admin.Delete(ctx(t), &corralpb.DeleteRequest{Kind: "Node", Name: "taken", DryRun: true}); err != nil {
		t.Fatal(err)
	}
	_, err = s.pinned(t, tok.CAHash).Certify(ctx(t), b.request(tok.Secret))
	wantCode(t, err, codes.AlreadyExists)
	if _, err := s.admin.Delete(ctx(t), &corralpb.DeleteRequest{Kind: "Node", Name: "taken"}); err != nil {
		t.Fatal(err)
	}
	s.certify(t, b, tok)
	// Now a's key is the one refused.
	_, err = s.pinned(t, tok.CAHash).Certify(ctx(t), a.request(tok.Secret))
	wantCode(t, err, codes.AlreadyExists)
}

func testRenewal(t *testing.T, s *secured) {
	tok := s.agentToken(t, false)
	holder := s.certify(t, newJoining(t, "renewer"), tok)
	certs := corralpb.NewCertificatesClient(dialServer(t, s.addr, holder))

	// The holder renews over its mutual TLS connection, without a token.
	next := newJoining(t, "renewer")
	resp, err := certs.Certify(ctx(t), next.request(""))
	if err != nil {
		t.Fatalf("renew: %v", err)
	}
	if len(resp.GetSealed()) != 0 || string(resp.GetCaPem()) != string(s.ca.CertPEM) {
		t.Fatalf("renewal answer: sealed %d bytes, CA %q", len(resp.GetSealed()), resp.GetCaPem())
	}
	renewed := next.creds(t, s.ca, resp.GetCertPem())
	if renewed.Leaf().SerialNumber.Cmp(holder.Leaf().SerialNumber) == 0 {
		t.Fatal("renewal returned the old certificate")
	}
	// The name is now bound to the new key: the token alone cannot take it.
	_, err = s.pinned(t, tok.CAHash).Certify(ctx(t), newJoining(t, "renewer").request(tok.Secret))
	wantCode(t, err, codes.AlreadyExists)

	// Another node's certificate renews nothing but its own.
	other := corralpb.NewCertificatesClient(s.as(t, pki.Identity{Role: pki.RoleNode, Name: "someone-else"}))
	_, err = other.Certify(ctx(t), newJoining(t, "renewer").request(""))
	wantCode(t, err, codes.Unauthenticated, "invalid join token")
	// Nor does a user's, for a server name.
	admin := corralpb.NewCertificatesClient(s.as(t, pki.Identity{Role: pki.RoleAdmin, Name: "renewer"}))
	req := newJoining(t, "renewer").request("")
	req.Role = string(pki.RoleServer)
	_, err = admin.Certify(ctx(t), req)
	wantCode(t, err, codes.Unauthenticated, "invalid join token")
}
