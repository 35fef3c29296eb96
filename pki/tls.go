package pki

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// Credentials are a process's TLS identity: the cluster CA it trusts and
// the certificate it presents, both replaceable while connections go on
// (a renewed certificate is used by the next handshake). The zero value
// trusts nothing and presents nothing.
type Credentials struct {
	mu   sync.RWMutex
	ca   *x509.Certificate
	pool *x509.CertPool
	cert *tls.Certificate
	// clientCert is cert without the CA sent along with it: a server
	// checks a client against the CA it holds, and each connection keeps
	// every certificate the client sent, parsed, for its lifetime.
	clientCert *tls.Certificate
	// fallback is what a server presents before it has a certificate of
	// the cluster (bootstrap discovery): self-signed, trusted by no one.
	fallback *tls.Certificate
}

// NewCredentials trusts ca and presents cert.
func NewCredentials(ca *x509.Certificate, cert *tls.Certificate) *Credentials {
	c := &Credentials{}
	c.SetCA(ca)
	c.SetCertificate(cert)
	return c
}

// SetCA sets the CA that peers' certificates must chain to.
func (c *Credentials) SetCA(ca *x509.Certificate) {
	p := x509.NewCertPool()
	p.AddCert(ca)
	c.mu.Lock()
	c.ca, c.pool = ca, p
	c.mu.Unlock()
}

// SetCertificate sets the certificate presented from the next handshake on.
func (c *Credentials) SetCertificate(cert *tls.Certificate) {
	var client *tls.Certificate
	if cert != nil {
		leafOnly := *cert
		leafOnly.Certificate = cert.Certificate[:min(1, len(cert.Certificate)):min(1, len(cert.Certificate))]
		client = &leafOnly
	}
	c.mu.Lock()
	c.cert, c.clientCert = cert, client
	c.mu.Unlock()
}

// SetFallback sets the certificate a server presents before it has one.
func (c *Credentials) SetFallback(cert *tls.Certificate) {
	c.mu.Lock()
	c.fallback = cert
	c.mu.Unlock()
}

// CA returns the trusted CA, or nil.
func (c *Credentials) CA() *x509.Certificate {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.ca
}

// Leaf returns the presented certificate, or nil.
func (c *Credentials) Leaf() *x509.Certificate {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.cert == nil {
		return nil
	}
	return c.cert.Leaf
}

// Ready reports whether there is a CA and a certificate.
func (c *Credentials) Ready() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.ca != nil && c.cert != nil
}

func (c *Credentials) snapshot() (*x509.CertPool, *tls.Certificate) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.cert != nil {
		return c.pool, c.cert
	}
	return c.pool, c.fallback
}

// Allow decides whether a verified peer may connect at all; nil allows
// every identity.
type Allow func(Identity) error

// OnlyRole allows one role.
func OnlyRole(r Role) Allow {
	return func(id Identity) error {
		if id.Role != r {
			return fmt.Errorf("%s may not connect here: only %ss may", id, r)
		}
		return nil
	}
}

// baseConfig is TLS 1.3 only: its suites are all AEADs with ECDHE.
func baseConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS13}
}

// ServerConfig is a listener's TLS: it presents the current certificate and
// verifies clients' against the current CA. auth is
// tls.RequireAndVerifyClientCert (Raft, agent API) or
// tls.VerifyClientCertIfGiven (the API port, where the CLI's joining calls
// come without one and each call is then authorized by its identity).
// nextProtos is the ALPN list ("h2" for gRPC).
func (c *Credentials) ServerConfig(auth tls.ClientAuthType, allow Allow, nextProtos ...string) *tls.Config {
	base := baseConfig()
	base.NextProtos = nextProtos
	base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		pool, cert := c.snapshot()
		if cert == nil {
			return nil, errors.New("no certificate yet: this server has not joined a cluster")
		}
		cfg := baseConfig()
		cfg.NextProtos = nextProtos
		cfg.Certificates = []tls.Certificate{*cert}
		cfg.ClientAuth = auth
		if pool == nil {
			pool = x509.NewCertPool() // trusts nothing: any client certificate fails
		}
		cfg.ClientCAs = pool
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.VerifiedChains) == 0 || allow == nil {
				return nil
			}
			id, err := IdentityOf(cs.VerifiedChains[0][0])
			if err != nil {
				return err
			}
			return allow(id)
		}
		return cfg, nil
	}
	return base
}

// ClientConfig is a client's TLS toward serverName (ServerName for
// servers, a node's name for its agent): it presents the current
// certificate, if any (alone: a server has the CA), and accepts only a
// peer whose certificate chains to the current CA, names serverName, and
// passes allow.
func (c *Credentials) ClientConfig(serverName string, allow Allow) *tls.Config {
	cfg := baseConfig()
	// The CA may change (a server that joins learns it), so the chain is
	// verified by hand against the current one.
	cfg.InsecureSkipVerify = true
	cfg.ServerName = serverName
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		c.mu.RLock()
		defer c.mu.RUnlock()
		if c.clientCert == nil {
			return &tls.Certificate{}, nil
		}
		return c.clientCert, nil
	}
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		pool, _ := c.snapshot()
		if pool == nil {
			return errors.New("no cluster CA to verify the server with")
		}
		id, err := verifyPeer(cs.PeerCertificates, pool, serverName, x509.ExtKeyUsageServerAuth)
		if err != nil {
			return err
		}
		if allow != nil {
			return allow(id)
		}
		return nil
	}
	return cfg
}

// PinnedConfig is the TLS of a machine joining with a token: it trusts a
// server only if the server's chain holds a CA whose SHA-256 is caHash
// and the server's certificate chains to it. It presents no certificate.
// With caHash "" (a bare bootstrap secret) it verifies nothing: what the
// server answers must then be sealed with the secret.
func PinnedConfig(caHash string) *tls.Config {
	cfg := baseConfig()
	cfg.InsecureSkipVerify = true
	cfg.ServerName = ServerName
	if caHash == "" {
		return cfg
	}
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		for _, c := range cs.PeerCertificates[min(1, len(cs.PeerCertificates)):] {
			if c.IsCA && CertDigest(c) == caHash {
				p := x509.NewCertPool()
				p.AddCert(c)
				id, err := verifyPeer(cs.PeerCertificates, p, ServerName, x509.ExtKeyUsageServerAuth)
				if err == nil && id.Role != RoleServer {
					err = fmt.Errorf("%s is not a server", id)
				}
				return err
			}
		}
		return errors.New("the server's CA does not match the join token's CA hash: wrong token, or not this cluster")
	}
	return cfg
}

// AnyServerConfig is the TLS of bootstrap discovery between servers that
// may not share a CA yet: it verifies nothing, so only public facts
// (Peer.Info) and sealed answers travel over it.
func AnyServerConfig() *tls.Config {
	return PinnedConfig("")
}

func verifyPeer(certs []*x509.Certificate, roots *x509.CertPool, name string, usage x509.ExtKeyUsage) (Identity, error) {
	if len(certs) == 0 {
		return Identity{}, errors.New("the peer presented no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	chains, err := certs[0].Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: inter, DNSName: name,
		KeyUsages: []x509.ExtKeyUsage{usage}, CurrentTime: time.Now(),
	})
	if err != nil {
		return Identity{}, fmt.Errorf("verify peer certificate: %w", err)
	}
	return IdentityOf(chains[0][0])
}

// SelfSigned makes a throwaway self-signed server certificate (the
// fallback a server presents during bootstrap discovery).
func SelfSigned(now time.Time) (*tls.Certificate, error) {
	ca, err := NewCA(now)
	if err != nil {
		return nil, err
	}
	return KeyPair(ca.CertPEM, ca.KeyPEM, nil)
}

// ErrNoCertificate means a call came without a verified client certificate.
var ErrNoCertificate = errors.New("no client certificate")

// FromContext returns the verified identity of a gRPC call's peer, and its
// certificate.
func FromContext(ctx context.Context) (Identity, *x509.Certificate, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return Identity{}, nil, ErrNoCertificate
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.VerifiedChains) == 0 {
		return Identity{}, nil, ErrNoCertificate
	}
	leaf := info.State.VerifiedChains[0][0]
	id, err := IdentityOf(leaf)
	return id, leaf, err
}

// HasUsage reports whether cert may be used for usage.
func HasUsage(cert *x509.Certificate, usage x509.ExtKeyUsage) bool {
	return slices.Contains(cert.ExtKeyUsage, usage)
}
