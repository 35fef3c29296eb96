package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"
)

// Validity defaults.
const (
	// CAValidity is how long a new cluster CA is valid.
	CAValidity = 10 * 365 * 24 * time.Hour
	// DefaultCertValidity is how long node and server certificates are
	// valid; they are renewed at 50–80 % of it.
	DefaultCertValidity = 90 * 24 * time.Hour
	// UserCertValidity is how long user (admin, view) certificates are
	// valid; they are not renewed automatically.
	UserCertValidity = 365 * 24 * time.Hour
	// clockSkew back-dates certificates so that a peer whose clock is a
	// little behind still accepts them.
	clockSkew = 5 * time.Minute
)

// CA is a certificate authority: a self-signed certificate and, on
// servers, its key.
type CA struct {
	Cert    *x509.Certificate
	CertPEM []byte
	// Key is nil where the key is not held (agents, CLI).
	Key    crypto.Signer
	KeyPEM []byte
}

// NewCA creates a cluster CA valid from now for CAValidity.
func NewCA(now time.Time) (*CA, error) {
	key, err := NewKey()
	if err != nil {
		return nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "corral-ca", Organization: []string{"corral"}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	keyPEM, err := EncodeKey(key)
	if err != nil {
		return nil, err
	}
	return ParseCA(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM)
}

// ParseCA reads a CA certificate and, when keyPEM is not empty, its key.
func ParseCA(certPEM, keyPEM []byte) (*CA, error) {
	cert, err := ParseCert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	if !cert.IsCA {
		return nil, errors.New("CA certificate: not a CA")
	}
	ca := &CA{Cert: cert, CertPEM: certPEM}
	if len(keyPEM) == 0 {
		return ca, nil
	}
	key, err := ParseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	if !publicKeysEqual(key.Public(), cert.PublicKey) {
		return nil, errors.New("CA key does not match the CA certificate")
	}
	ca.Key, ca.KeyPEM = key, keyPEM
	return ca, nil
}

// Digest is the hex SHA-256 of the CA certificate (DER): what join tokens pin.
func (ca *CA) Digest() string { return CertDigest(ca.Cert) }

// CertDigest is the hex SHA-256 of a certificate's DER.
func CertDigest(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

// Pool is a pool holding the CA alone.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// SignCSR issues a certificate for id to the key of a PKCS#10 request
// (DER). The request's own subject and names are ignored: the CA decides
// who the holder is. hosts are extra IP addresses or DNS names for server
// certificates.
func (ca *CA) SignCSR(csrDER []byte, id Identity, now time.Time, validity time.Duration, hosts ...string) ([]byte, error) {
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, fmt.Errorf("parse certificate request: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("certificate request: bad signature: %w", err)
	}
	return ca.sign(csr.PublicKey, id, now, validity, hosts)
}

// Issue creates a key and a certificate for id (servers issue their own
// and admin.conf's this way); it returns both PEM encoded.
func (ca *CA) Issue(id Identity, now time.Time, validity time.Duration, hosts ...string) (certPEM, keyPEM []byte, err error) {
	key, err := NewKey()
	if err != nil {
		return nil, nil, err
	}
	if certPEM, err = ca.sign(key.Public(), id, now, validity, hosts); err != nil {
		return nil, nil, err
	}
	if keyPEM, err = EncodeKey(key); err != nil {
		return nil, nil, err
	}
	return certPEM, keyPEM, nil
}

func (ca *CA) sign(pub any, id Identity, now time.Time, validity time.Duration, hosts []string) ([]byte, error) {
	if ca.Key == nil {
		return nil, errors.New("sign: this CA has no key here")
	}
	subject, err := id.subject()
	if err != nil {
		return nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	notAfter := now.Add(validity)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	skew := min(clockSkew, validity/10)
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      subject,
		NotBefore:    now.Add(-skew),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if validity <= 0 {
		// An already-expired certificate: only tests ask for one.
		tmpl.NotBefore, tmpl.NotAfter = now.Add(validity-time.Minute), now.Add(validity)
	}
	switch id.Role {
	case RoleServer:
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
		tmpl.DNSNames = []string{ServerName, "localhost"}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	case RoleNode:
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
		tmpl.DNSNames = []string{id.Name}
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("sign certificate for %s: %w", id, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// IssueCredentials issues a key and certificate for id and returns
// credentials that present them (with the CA in the chain) and trust ca.
func (ca *CA) IssueCredentials(id Identity, now time.Time, validity time.Duration) (*Credentials, error) {
	certPEM, keyPEM, err := ca.Issue(id, now, validity)
	if err != nil {
		return nil, err
	}
	cert, err := KeyPair(certPEM, keyPEM, ca.Cert)
	if err != nil {
		return nil, err
	}
	return NewCredentials(ca.Cert, cert), nil
}

// NewKey creates an ECDSA P-256 key.
func NewKey() (*ecdsa.PrivateKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	return k, nil
}

// EncodeKey PEM-encodes a private key (PKCS#8).
func EncodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParseKey reads a PEM private key (PKCS#8, or SEC 1 EC).
func ParseKey(keyPEM []byte) (crypto.Signer, error) {
	b, _ := pem.Decode(keyPEM)
	if b == nil {
		return nil, errors.New("no PEM block")
	}
	if k, err := x509.ParsePKCS8PrivateKey(b.Bytes); err == nil {
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("unsupported key type %T", k)
		}
		return s, nil
	}
	k, err := x509.ParseECPrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse key: %w", err)
	}
	return k, nil
}

// ParseCert reads the first certificate of a PEM bundle.
func ParseCert(certPEM []byte) (*x509.Certificate, error) {
	b, _ := pem.Decode(certPEM)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(b.Bytes)
}

// NewCSR makes a PKCS#10 request (DER) for key, naming id for the
// record (the CA decides the subject).
func NewCSR(key crypto.Signer, id Identity) ([]byte, error) {
	subject, err := id.subject()
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: subject}, key)
	if err != nil {
		return nil, fmt.Errorf("create certificate request: %w", err)
	}
	return der, nil
}

// KeyDigest is the hex SHA-256 of a public key's PKIX DER: what binds a
// node name to its key.
func KeyDigest(pub any) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("encode public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}

// CSRKeyDigest is KeyDigest of the key a request is for.
func CSRKeyDigest(csrDER []byte) (string, error) {
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return "", fmt.Errorf("parse certificate request: %w", err)
	}
	return KeyDigest(csr.PublicKey)
}

// KeyPair joins a PEM certificate (and the CA that issued it, sent along so
// that joining peers can check a token's pin) with its key.
func KeyPair(certPEM, keyPEM []byte, ca *x509.Certificate) (*tls.Certificate, error) {
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load key pair: %w", err)
	}
	if ca != nil {
		c.Certificate = append(c.Certificate[:1:1], ca.Raw)
	}
	return &c, nil
}

// RenewAt is when a certificate should be renewed: at 50 % + r·30 % of its
// validity, r in [0,1) drawn by the caller (swarmkit's rule).
func RenewAt(cert *x509.Certificate, r float64) time.Time {
	life := cert.NotAfter.Sub(cert.NotBefore)
	return cert.NotBefore.Add(time.Duration(float64(life) * (0.5 + 0.3*r)))
}

func randomSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

func publicKeysEqual(a, b any) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	e, ok := a.(equaler)
	return ok && e.Equal(b)
}
