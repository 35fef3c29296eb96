package nodeagent

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/corral-dev/corral/pki"
	"github.com/corral-dev/corral/pki/join"
	corralpb "github.com/corral-dev/corral/proto"
)

// The node's identity is a certificate of the cluster CA naming
// system:node:NAME, kept in a pki.Dir as node.crt and node.key beside the
// CA's ca.crt. The first start gets it with a join token (LoadOrCertify);
// the running agent renews it over a fresh mutual-TLS connection
// (RenewCertificates):
//
//	no valid certificate ──token: Certify (pinned TLS, HMAC, sealed answer)──▶ certified
//	certified ──RenewAt (50–80 % of validity)──▶ Certify over mTLS ──▶ certified (new key, same CA)
//	                                                   └─ fails: retry 1 s … 1 min, errors logged near expiry

// certName names the node's pair in its pki.Dir: node.crt and node.key.
const certName = "node"

// save writes the CA, then the pair. A crash between the two leaves a pair
// the CA does not verify, which the next start certifies anew.
func save(dir pki.Dir, c *join.Issued) error {
	if err := dir.SaveCA(&pki.CA{Cert: c.CA.Cert, CertPEM: c.CA.CertPEM}); err != nil {
		return fmt.Errorf("save CA certificate: %w", err)
	}
	if err := dir.SavePair(certName, c.CertPEM, c.KeyPEM); err != nil {
		return fmt.Errorf("save node certificate: %w", err)
	}
	return nil
}

// LoadOrCertify returns the node's TLS credentials: the certificate saved
// in dir when it names node name, is signed by the saved CA, has not
// expired and, when token pins a CA, the saved CA is that one; otherwise a
// new certificate that a server signs for the join token (saved in dir
// with mode 0600 before it is returned).
//
// Certifying tries servers in turn until one answers, retrying with
// backoff while none is reachable (or none presents the CA the token
// pins) until ctx ends. A server's refusal (a wrong or rotated token, a
// node name held by another node's key) ends it at once with the server's
// message and gRPC code.
func LoadOrCertify(ctx context.Context, dir pki.Dir, name string, servers []string, token string, log *slog.Logger) (*pki.Credentials, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var tok pki.Token
	if token != "" {
		t, err := pki.ParseToken(token)
		if err != nil {
			return nil, err
		}
		tok = t
	}
	saved, err := loadIssued(dir, name, time.Now())
	if err == nil && tok.CAHash != "" && saved.CA.Digest() != tok.CAHash {
		err = errors.New("its CA is not the one the join token pins")
	}
	if err == nil {
		log.Info("loaded node certificate", "node", name, "not_after", saved.Cert.NotAfter)
		return saved.Credentials()
	}
	if token == "" {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no node certificate in %s and no --token to get one", dir)
		}
		return nil, fmt.Errorf("the node certificate in %s cannot be used (%v) and there is no --token to get a new one", dir, err)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		log.Warn("saved node certificate unusable; certifying with the join token", "node", name, "dir", string(dir), "err", err)
	}
	got, err := certify(ctx, servers, tok, name, log)
	if err != nil {
		return nil, err
	}
	if err := save(dir, got); err != nil {
		return nil, err
	}
	log.Info("node certified", "node", name, "not_after", got.Cert.NotAfter)
	return got.Credentials()
}

// loadIssued reads the saved CA and pair and checks them for node name.
func loadIssued(dir pki.Dir, name string, now time.Time) (*join.Issued, error) {
	ca, err := dir.LoadCA()
	if err != nil {
		return nil, err
	}
	certPEM, keyPEM, err := dir.LoadPair(certName)
	if err != nil {
		return nil, err
	}
	key, err := pki.ParseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("node key: %w", err)
	}
	cert, err := join.Check(ca, certPEM, key.Public(), nodeID(name), now)
	if err != nil {
		return nil, err
	}
	return &join.Issued{CA: ca, Cert: cert, CertPEM: certPEM, KeyPEM: keyPEM}, nil
}

func nodeID(name string) pki.Identity { return pki.Identity{Role: pki.RoleNode, Name: name} }

// refusedError is a server's refusal to certify: its message is shown as
// the server wrote it, and status.Code reads its code.
type refusedError struct {
	addr string
	st   *status.Status
}

func (e *refusedError) Error() string {
	return fmt.Sprintf("server %s refused to certify this node (%s): %s", e.addr, e.st.Code(), e.st.Message())
}

// GRPCStatus makes status.Code and status.FromError see the server's status.
func (e *refusedError) GRPCStatus() *status.Status { return e.st }

// refusal reports whether a Certify error is final: retrying with the same
// token and key cannot succeed.
func refusal(err error) bool {
	switch status.Code(err) {
	case codes.Unauthenticated, codes.PermissionDenied, codes.AlreadyExists, codes.InvalidArgument:
		return true
	}
	return false
}

// certify has any of servers sign a new key for node name with the join
// token.
func certify(ctx context.Context, servers []string, tok pki.Token, name string, log *slog.Logger) (*join.Issued, error) {
	if len(servers) == 0 {
		return nil, errors.New("certify node: no server addresses")
	}
	req, err := join.NewRequest(nodeID(name), tok)
	if err != nil {
		return nil, err
	}
	b := newBackoff(500*time.Millisecond, 30*time.Second)
	var last error
	for {
		for _, addr := range servers {
			got, err := join.Certify(ctx, addr, tok, req)
			if err == nil {
				return got, nil
			}
			if refusal(err) {
				return nil, &refusedError{addr: addr, st: status.Convert(err)}
			}
			if ctx.Err() != nil {
				break
			}
			last = fmt.Errorf("%s: %w", addr, err)
			log.Warn("certify node", "node", name, "server", addr, "err", err)
		}
		if !b.wait(ctx) {
			if last == nil {
				return nil, fmt.Errorf("certify node %s: %w", name, context.Cause(ctx))
			}
			return nil, fmt.Errorf("certify node %s: %w (last error: %v)", name, context.Cause(ctx), last)
		}
	}
}

// RenewCertificates keeps the node certificate in creds valid until ctx
// ends. At pki.RenewAt of the current one (a random 50–80 % of its
// validity) it makes a new key, has a server sign it over a connection of
// its own (the current certificate authenticates the request), saves the pair in dir and
// hands it to creds: the next TLS handshake presents it, and connections
// already open go on untouched. Failures are retried after 1 s, doubling
// to 1 min but never waiting past expiry; they are logged as warnings, and
// as errors once expiry is a retry or two away.
func RenewCertificates(ctx context.Context, servers []string, creds *pki.Credentials, dir pki.Dir, name string, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for {
		leaf := creds.Leaf()
		if leaf == nil {
			log.Error("no node certificate to renew", "node", name)
			return
		}
		if !sleepCtx(ctx, time.Until(pki.RenewAt(leaf, rand.Float64()))) {
			return
		}
		b := newBackoff(time.Second, time.Minute)
		for {
			cert, err := renewOver(ctx, servers, creds, dir, name)
			if err == nil {
				log.Info("renewed node certificate", "node", name, "not_after", cert.NotAfter)
				break
			}
			if ctx.Err() != nil {
				return
			}
			d, level := b.next(), slog.LevelWarn
			if left := time.Until(leaf.NotAfter); left <= 0 {
				level = slog.LevelError
			} else if d >= left/2 {
				d, level = max(left/2, 200*time.Millisecond), slog.LevelError
			}
			log.Log(ctx, level, "renew node certificate", "node", name, "not_after", leaf.NotAfter, "retry_in", d, "err", err)
			if !sleepCtx(ctx, d) {
				return
			}
		}
	}
}

// renewOver renews over a connection of its own: the server knows the
// renewing node by the certificate of the TLS session, which must be the
// current one (the agent's long-lived connections still carry the one
// they were opened with, which the server no longer binds the name to
// after the first renewal).
func renewOver(ctx context.Context, servers []string, creds *pki.Credentials, dir pki.Dir, name string) (*x509.Certificate, error) {
	conn, err := DialServers(servers, creds)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return renew(ctx, corralpb.NewCertificatesClient(conn), creds, dir, name)
}

// renew has a server sign a new key, saves it and puts it in creds.
func renew(ctx context.Context, client corralpb.CertificatesClient, creds *pki.Credentials, dir pki.Dir, name string) (*x509.Certificate, error) {
	req, err := join.NewRequest(nodeID(name), pki.Token{})
	if err != nil {
		return nil, err
	}
	req.Req.Mac = nil // the current certificate authenticates a renewal
	rctx, cancel := context.WithTimeout(ctx, join.Timeout)
	defer cancel()
	resp, err := client.Certify(rctx, req.Req)
	if err != nil {
		return nil, err
	}
	ca, err := pki.ParseCA(resp.GetCaPem(), nil)
	if err != nil {
		return nil, err
	}
	if cur := creds.CA(); cur == nil || !cur.Equal(ca.Cert) {
		return nil, errors.New("the server answered with another CA than the cluster CA this node trusts")
	}
	cert, err := join.Check(ca, resp.GetCertPem(), req.Key.Public(), nodeID(name), time.Now())
	if err != nil {
		return nil, err
	}
	got := &join.Issued{CA: ca, Cert: cert, CertPEM: resp.GetCertPem(), KeyPEM: req.KeyPEM}
	pair, err := got.KeyPair()
	if err != nil {
		return nil, err
	}
	if err := dir.SavePair(certName, got.CertPEM, got.KeyPEM); err != nil {
		return nil, fmt.Errorf("save node certificate: %w", err)
	}
	creds.SetCertificate(pair)
	return cert, nil
}
