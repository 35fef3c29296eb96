package pki

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func newCA(t *testing.T) *CA {
	t.Helper()
	ca, err := NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func TestIdentityRoundTrip(t *testing.T) {
	ca := newCA(t)
	for _, id := range []Identity{
		{Role: RoleServer, Name: "s1"}, {Role: RoleNode, Name: "worker-1"},
		{Role: RoleAdmin, Name: "alice"}, {Role: RoleView, Name: "bob@example.com"},
	} {
		certPEM, _, err := ca.Issue(id, time.Now(), time.Hour)
		if err != nil {
			t.Fatalf("%v: %v", id, err)
		}
		cert, err := ParseCert(certPEM)
		if err != nil {
			t.Fatal(err)
		}
		got, err := IdentityOf(cert)
		if err != nil || got != id {
			t.Errorf("IdentityOf(issued for %v) = %v, %v", id, got, err)
		}
		wantServerAuth := id.Role == RoleServer || id.Role == RoleNode
		if HasUsage(cert, x509.ExtKeyUsageServerAuth) != wantServerAuth || !HasUsage(cert, x509.ExtKeyUsageClientAuth) {
			t.Errorf("%v: usages %v", id, cert.ExtKeyUsage)
		}
	}
	if _, err := IdentityOf(ca.Cert); !errors.Is(err, ErrNoIdentity) {
		t.Errorf("the CA certificate has identity: %v", err)
	}
	if _, _, err := ca.Issue(Identity{Role: "root", Name: "x"}, time.Now(), time.Hour); err == nil {
		t.Error("issued a certificate for an unknown role")
	}
}

// The CA decides the subject: a request naming another identity gets the
// one the CA was asked to sign for.
func TestSignCSRIgnoresTheRequestedSubject(t *testing.T) {
	ca := newCA(t)
	key, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := NewCSR(key, Identity{Role: RoleAdmin, Name: "mallory"})
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := ca.SignCSR(csr, Identity{Role: RoleNode, Name: "w1"}, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := ParseCert(certPEM)
	if id, _ := IdentityOf(cert); id != (Identity{Role: RoleNode, Name: "w1"}) {
		t.Fatalf("identity %v", id)
	}
	want, _ := KeyDigest(key.Public())
	if got, _ := CSRKeyDigest(csr); got != want {
		t.Fatalf("CSR key digest %s, want %s", got, want)
	}
	if got, _ := KeyDigest(cert.PublicKey); got != want {
		t.Fatal("the certificate is not for the request's key")
	}
	csr[len(csr)-1] ^= 1
	if _, err := ca.SignCSR(csr, Identity{Role: RoleNode, Name: "w1"}, time.Now(), time.Hour); err == nil {
		t.Fatal("signed a request with a broken signature")
	}
}

func TestTokens(t *testing.T) {
	ca := newCA(t)
	tok := Token{Role: TokenAgent, CAHash: ca.Digest(), Secret: NewSecret()}
	got, err := ParseToken(tok.String())
	if err != nil || got != tok {
		t.Fatalf("ParseToken(%s) = %v, %v", tok, got, err)
	}
	bare := strings.Repeat("s", MinSecretLen)
	if got, err := ParseToken(bare); err != nil || got != (Token{Secret: bare}) {
		t.Fatalf("bare secret: %v, %v", got, err)
	}
	for _, bad := range []string{
		"", "short", "CRL1::agent::abc::" + NewSecret(), "CRL1::root::" + ca.Digest() + "::" + NewSecret(),
		"CRL1::agent::" + ca.Digest() + "::short", "CRL1::agent::" + ca.Digest(), strings.Repeat("s", MinSecretLen-1) + " ",
	} {
		if _, err := ParseToken(bad); err == nil {
			t.Errorf("ParseToken(%q) succeeded", bad)
		}
	}
}

func TestMACAndSeal(t *testing.T) {
	data := []byte("csr")
	mac := MAC("secret-1", "certify", data)
	if !CheckMAC("secret-1", "certify", data, mac) {
		t.Fatal("MAC does not check")
	}
	for _, bad := range []struct{ secret, purpose, data string }{
		{"secret-2", "certify", "csr"}, {"secret-1", "other", "csr"}, {"secret-1", "certify", "csr2"},
	} {
		if CheckMAC(bad.secret, bad.purpose, []byte(bad.data), mac) {
			t.Errorf("MAC checks with %+v", bad)
		}
	}
	sealed, err := Seal("secret-1", "ca", []byte("payload"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Open("secret-1", "ca", sealed); err != nil || string(got) != "payload" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := Open("secret-2", "ca", sealed); !errors.Is(err, ErrSealBroken) {
		t.Fatalf("opened with the wrong secret: %v", err)
	}
	if _, err := Open("secret-1", "other", sealed); !errors.Is(err, ErrSealBroken) {
		t.Fatalf("opened for another purpose: %v", err)
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := Open("secret-1", "ca", sealed); !errors.Is(err, ErrSealBroken) {
		t.Fatalf("opened a tampered message: %v", err)
	}
}

func TestRenewAtIsBetweenHalfAndEightyPercent(t *testing.T) {
	now := time.Now()
	cert := &x509.Certificate{NotBefore: now, NotAfter: now.Add(100 * time.Hour)}
	if got := RenewAt(cert, 0); !got.Equal(now.Add(50 * time.Hour)) {
		t.Errorf("RenewAt(0) = %v after issue", got.Sub(now))
	}
	if got := RenewAt(cert, 0.9999); got.Before(now.Add(79*time.Hour)) || got.After(now.Add(80*time.Hour)) {
		t.Errorf("RenewAt(1) = %v after issue", got.Sub(now))
	}
}

func TestDirFilesArePrivate(t *testing.T) {
	ca := newCA(t)
	d := Dir(filepath.Join(t.TempDir(), "tls"))
	if err := d.SaveCA(ca); err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, _ := ca.Issue(Identity{Role: RoleNode, Name: "w1"}, time.Now(), time.Hour)
	if err := d.SavePair("node", certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"ca.crt", "ca.key", "node.crt", "node.key"} {
		st, err := os.Stat(d.Path(f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v", f, err, st.Mode().Perm())
		}
	}
	loaded, err := d.LoadCA()
	if err != nil || loaded.Key == nil || !bytes.Equal(loaded.CertPEM, ca.CertPEM) {
		t.Fatalf("LoadCA: %v", err)
	}
	if err := os.Chmod(d.Path("ca.key"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := d.LoadCA(); err == nil || !strings.Contains(err.Error(), "ca.key") || !strings.Contains(err.Error(), "0644") {
		t.Fatalf("LoadCA of a 0644 key: %v", err)
	}
	if err := os.Chmod(d.Path("node.key"), 0o640); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.LoadPair("node"); err == nil {
		t.Fatal("loaded a key open to the group")
	}
}

// handshake runs one TLS handshake over a pipe and returns both sides'
// errors.
func handshake(t *testing.T, server, client *tls.Config) (serverErr, clientErr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	b, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	a, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	_ = a.SetDeadline(deadline)
	_ = b.SetDeadline(deadline)
	done := make(chan error, 1)
	go func() {
		s := tls.Server(a, server)
		err := s.Handshake()
		if err == nil {
			// TLS 1.3 clients finish before the server has checked
			// their certificate: read to see the server's verdict.
			_, err = s.Read(make([]byte, 1))
			if errors.Is(err, io.EOF) {
				err = nil
			}
		}
		_ = a.Close()
		done <- err
	}()
	c := tls.Client(b, client)
	clientErr = c.Handshake()
	if clientErr == nil {
		_, clientErr = c.Write([]byte{1})
	}
	_ = c.Close()
	return <-done, clientErr
}

func creds(t *testing.T, ca *CA, id Identity, validity time.Duration) *Credentials {
	t.Helper()
	c, err := ca.IssueCredentials(id, time.Now(), validity)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestMutualTLS(t *testing.T) {
	ca, other := newCA(t), newCA(t)
	server := creds(t, ca, Identity{Role: RoleServer, Name: "s1"}, time.Hour)
	raftLike := server.ServerConfig(tls.RequireAndVerifyClientCert, OnlyRole(RoleServer))
	peer := creds(t, ca, Identity{Role: RoleServer, Name: "s2"}, time.Hour)
	if se, ce := handshake(t, raftLike, peer.ClientConfig(ServerName, OnlyRole(RoleServer))); se != nil || ce != nil {
		t.Fatalf("server to server: %v / %v", se, ce)
	}
	for name, client := range map[string]*Credentials{
		"node":       creds(t, ca, Identity{Role: RoleNode, Name: "w1"}, time.Hour),
		"another CA": creds(t, other, Identity{Role: RoleServer, Name: "s2"}, time.Hour),
		"expired":    creds(t, ca, Identity{Role: RoleServer, Name: "s2"}, -time.Minute),
		"no cert":    func() *Credentials { c := &Credentials{}; c.SetCA(ca.Cert); return c }(),
	} {
		if se, _ := handshake(t, raftLike, client.ClientConfig(ServerName, nil)); se == nil {
			t.Errorf("%s: the server accepted it", name)
		}
	}
	// The client refuses a server of another CA, and a node posing as one.
	if _, ce := handshake(t, creds(t, other, Identity{Role: RoleServer, Name: "x"}, time.Hour).ServerConfig(tls.VerifyClientCertIfGiven, nil), peer.ClientConfig(ServerName, nil)); ce == nil {
		t.Error("client accepted a server of another CA")
	}
	node := creds(t, ca, Identity{Role: RoleNode, Name: "w1"}, time.Hour)
	if _, ce := handshake(t, node.ServerConfig(tls.VerifyClientCertIfGiven, nil), peer.ClientConfig("w1", OnlyRole(RoleServer))); ce == nil {
		t.Error("client accepted a node where it wanted a server")
	}
	// A token's pin accepts this CA's servers only.
	apiLike := server.ServerConfig(tls.VerifyClientCertIfGiven, nil)
	if _, ce := handshake(t, apiLike, PinnedConfig(ca.Digest())); ce != nil {
		t.Errorf("pinned to the right CA: %v", ce)
	}
	if _, ce := handshake(t, apiLike, PinnedConfig(other.Digest())); ce == nil {
		t.Error("pinned to another CA, the client went on")
	}
	if _, ce := handshake(t, node.ServerConfig(tls.VerifyClientCertIfGiven, nil), PinnedConfig(ca.Digest())); ce == nil {
		t.Error("pinned client accepted a node certificate as a server")
	}
	// TLS 1.2 is refused.
	old := peer.ClientConfig(ServerName, nil)
	old.MaxVersion = tls.VersionTLS12
	if _, ce := handshake(t, apiLike, old); ce == nil {
		t.Error("a TLS 1.2 client was accepted")
	}
}

// A client sends its certificate alone: the server verifies it against the
// CA it holds and keeps what was sent, parsed, for the connection's life.
// A server still sends the CA along (tokens pin it).
func TestClientPresentsItsCertificateAlone(t *testing.T) {
	ca := newCA(t)
	server := creds(t, ca, Identity{Role: RoleServer, Name: "s1"}, time.Hour)
	node := creds(t, ca, Identity{Role: RoleNode, Name: "w1"}, time.Hour)
	base := server.ServerConfig(tls.RequireAndVerifyClientCert, OnlyRole(RoleNode))
	sent := make(chan int, 1)
	cfg := base.Clone()
	cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		c, err := base.GetConfigForClient(hello)
		if err != nil {
			return nil, err
		}
		verify := c.VerifyConnection
		c.VerifyConnection = func(cs tls.ConnectionState) error {
			sent <- len(cs.PeerCertificates)
			return verify(cs)
		}
		return c, nil
	}
	client := node.ClientConfig(ServerName, OnlyRole(RoleServer))
	serverChain := make(chan int, 1)
	client.VerifyConnection = func(cs tls.ConnectionState) error {
		serverChain <- len(cs.PeerCertificates)
		return node.ClientConfig(ServerName, OnlyRole(RoleServer)).VerifyConnection(cs)
	}
	if se, ce := handshake(t, cfg, client); se != nil || ce != nil {
		t.Fatalf("handshake: %v / %v", se, ce)
	}
	if n := <-sent; n != 1 {
		t.Errorf("the node sent %d certificates, want its own alone", n)
	}
	if n := <-serverChain; n != 2 {
		t.Errorf("the server sent %d certificates, want its own and the CA", n)
	}
}
