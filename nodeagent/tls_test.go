package nodeagent

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/corral-dev/corral/pki"
	"github.com/corral-dev/corral/pki/join"
	corralpb "github.com/corral-dev/corral/proto"
)

// testCA makes a cluster CA.
func testCA(t *testing.T) *pki.CA {
	t.Helper()
	ca, err := pki.NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// testCreds issues a certificate of ca to id and returns credentials that
// present it (with the CA in the chain) and trust ca.
func testCreds(t *testing.T, ca *pki.CA, id pki.Identity) *pki.Credentials {
	t.Helper()
	c, err := ca.IssueCredentials(id, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// fakeCertifier is a server's Certificates as the contract has it: with a
// MAC of the join token's secret it signs and seals; without one the
// caller must hold a certificate of the node it asks for. A node name
// belongs to the first key certified for it.
type fakeCertifier struct {
	corralpb.UnimplementedCertificatesServer
	ca       *pki.CA
	secret   string
	validity time.Duration

	mu sync.Mutex
	// holders maps node names to the digest of their key.
	holders map[string]string
	calls   int
	// failRenewals is how many renewals to answer Unavailable first.
	failRenewals int
}

var _ corralpb.CertificatesServer = (*fakeCertifier)(nil)

func (f *fakeCertifier) Certify(ctx context.Context, req *corralpb.CertifyRequest) (*corralpb.CertifyResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	id := pki.Identity{Role: pki.RoleNode, Name: req.GetName()}
	if req.GetRole() != string(pki.RoleNode) {
		return nil, status.Error(codes.InvalidArgument, "only node certificates here")
	}
	digest, err := pki.CSRKeyDigest(req.GetCsr())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	renewal := len(req.GetMac()) == 0
	if renewal {
		caller, leaf, err := pki.FromContext(ctx)
		if err != nil || caller != id {
			return nil, status.Errorf(codes.Unauthenticated, "renewal of %s by %v: %v", id, caller, err)
		}
		// As the servers do: the renewing session's key must be the one
		// the name is bound to now.
		if held, _ := pki.KeyDigest(leaf.PublicKey); f.holders[id.Name] != held {
			return nil, status.Errorf(codes.PermissionDenied, "renew %s: the name is no longer bound to this certificate", id)
		}
		if f.failRenewals > 0 {
			f.failRenewals--
			return nil, status.Error(codes.Unavailable, "no leader")
		}
	} else {
		if !pki.CheckMAC(f.secret, join.Purpose, req.GetCsr(), req.GetMac()) {
			return nil, status.Error(codes.Unauthenticated, "invalid join token: get the current one with corral token show")
		}
		if h, ok := f.holders[id.Name]; ok && h != digest {
			return nil, status.Errorf(codes.AlreadyExists, "node %q is held by another key: delete the node to free its name", id.Name)
		}
	}
	certPEM, err := f.ca.SignCSR(req.GetCsr(), id, time.Now(), f.validity)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	f.holders[id.Name] = digest
	plain := &corralpb.CertifyResponse{CertPem: certPEM, CaPem: f.ca.CertPEM}
	if renewal {
		return plain, nil
	}
	b, err := proto.Marshal(plain)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	sealed, err := pki.Seal(f.secret, join.Purpose, b)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &corralpb.CertifyResponse{Sealed: sealed}, nil
}

func (f *fakeCertifier) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// serveCertifier serves a fakeCertifier of ca on loopback as a server does:
// TLS with a server certificate of ca (chain [leaf, CA]), client
// certificates verified when given.
func serveCertifier(t *testing.T, ca *pki.CA, secret string, validity time.Duration) (*fakeCertifier, string) {
	t.Helper()
	f := &fakeCertifier{ca: ca, secret: secret, validity: validity, holders: map[string]string{}}
	creds := testCreds(t, ca, pki.Identity{Role: pki.RoleServer, Name: "s1"})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(creds.ServerConfig(tls.VerifyClientCertIfGiven, nil, "h2"))))
	corralpb.RegisterCertificatesServer(srv, f)
	go func() { _ = srv.Serve(lis) }() // returns when stopped
	t.Cleanup(srv.Stop)
	return f, lis.Addr().String()
}

// joinToken is an agent join token for secret pinning ca.
func joinToken(ca *pki.CA, secret string) string {
	return pki.Token{Role: pki.TokenAgent, CAHash: ca.Digest(), Secret: secret}.String()
}

// logRecorder is a slog handler that keeps records' levels and messages.
type logRecorder struct {
	mu   sync.Mutex
	recs []string
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec.Level.String()+" "+rec.Message)
	return nil
}

func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *logRecorder) WithGroup(string) slog.Handler      { return r }

// count is how many records were "LEVEL message".
func (r *logRecorder) count(levelMsg string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, s := range r.recs {
		if strings.HasPrefix(s, levelMsg) {
			n++
		}
	}
	return n
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
