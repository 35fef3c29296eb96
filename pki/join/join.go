// Package join is the client side of Certificates.Certify with a join
// token, shared by agents getting their node certificate and servers
// joining a running cluster: a new key and certificate request, a TLS
// connection that checks the server's CA against the token's hash before
// anything is sent, an HMAC proving the token's secret (which never
// travels), and an answer that opens only with that secret.
package join

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/proto"

	"github.com/corral-dev/corral/pki"
	corralpb "github.com/corral-dev/corral/proto"
)

// Purpose is what a Certify request's MAC and its answer's seal are bound
// to; the servers use it too.
const Purpose = "certify"

// Timeout bounds one Certify call.
const Timeout = 15 * time.Second

// Request is a key and the Certify request for it, proving the token.
type Request struct {
	ID     pki.Identity
	Key    crypto.Signer
	KeyPEM []byte
	Req    *corralpb.CertifyRequest
}

// NewRequest makes a key for id and the request that proves tok's secret.
func NewRequest(id pki.Identity, tok pki.Token) (*Request, error) {
	key, err := pki.NewKey()
	if err != nil {
		return nil, err
	}
	keyPEM, err := pki.EncodeKey(key)
	if err != nil {
		return nil, err
	}
	csr, err := pki.NewCSR(key, id)
	if err != nil {
		return nil, err
	}
	return &Request{ID: id, Key: key, KeyPEM: keyPEM, Req: &corralpb.CertifyRequest{
		Role: string(id.Role), Name: id.Name, Csr: csr, Mac: pki.MAC(tok.Secret, Purpose, csr),
	}}, nil
}

// Issued is a certificate a server signed, with its key and CA.
type Issued struct {
	CA      *pki.CA
	Cert    *x509.Certificate
	CertPEM []byte
	KeyPEM  []byte
}

// KeyPair is the TLS certificate to present: the leaf, then the CA.
func (i *Issued) KeyPair() (*tls.Certificate, error) {
	return pki.KeyPair(i.CertPEM, i.KeyPEM, i.CA.Cert)
}

// Credentials trust the issuing CA and present the certificate.
func (i *Issued) Credentials() (*pki.Credentials, error) {
	pair, err := i.KeyPair()
	if err != nil {
		return nil, err
	}
	return pki.NewCredentials(i.CA.Cert, pair), nil
}

// Certify sends r to the server at addr, which must present the CA tok
// pins (any CA when it pins none: the sealed answer then proves the
// server), and checks what comes back. A gRPC error is returned as is, so
// that callers can tell a refusal from an outage.
func Certify(ctx context.Context, addr string, tok pki.Token, r *Request) (*Issued, error) {
	conn, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(credentials.NewTLS(pki.PinnedConfig(tok.CAHash))))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	cctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	resp, err := corralpb.NewCertificatesClient(conn).Certify(cctx, r.Req)
	if err != nil {
		return nil, err
	}
	plain, err := pki.Open(tok.Secret, Purpose, resp.GetSealed())
	if err != nil {
		return nil, err
	}
	var inner corralpb.CertifyResponse
	if err := proto.Unmarshal(plain, &inner); err != nil {
		return nil, fmt.Errorf("certify response: %w", err)
	}
	ca, err := pki.ParseCA(inner.GetCaPem(), nil)
	if err != nil {
		return nil, err
	}
	if tok.CAHash != "" && ca.Digest() != tok.CAHash {
		return nil, errors.New("the server answered with a CA that the join token does not pin")
	}
	cert, err := Check(ca, inner.GetCertPem(), r.Key.Public(), r.ID, time.Now())
	if err != nil {
		return nil, err
	}
	return &Issued{CA: ca, Cert: cert, CertPEM: inner.GetCertPem(), KeyPEM: r.KeyPEM}, nil
}

// Check parses certPEM and checks that ca signed it, for pub, naming id,
// and that it has not expired at now.
func Check(ca *pki.CA, certPEM []byte, pub crypto.PublicKey, id pki.Identity, now time.Time) (*x509.Certificate, error) {
	what := string(id.Role) + " certificate"
	cert, err := pki.ParseCert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := cert.CheckSignatureFrom(ca.Cert); err != nil {
		return nil, fmt.Errorf("%s: not signed by the cluster CA: %w", what, err)
	}
	if got, err := pki.IdentityOf(cert); err != nil || got != id {
		return nil, fmt.Errorf("%s: issued to %s, not %s", what, cert.Subject.CommonName, id)
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if k, ok := pub.(equaler); !ok || !k.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("%s: not for this key", what)
	}
	if !now.Before(cert.NotAfter) {
		return nil, fmt.Errorf("%s: expired at %s", what, cert.NotAfter.Format(time.RFC3339))
	}
	return cert, nil
}
