package nodeagent

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/corral-dev/corral/pki"
	corralpb "github.com/corral-dev/corral/proto"
)

const testSecret = "0123456789abcdef0123456789abcdef"

func certCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// wantPrivate checks that dir holds files, each with mode 0600.
func wantPrivate(t *testing.T, dir pki.Dir, files ...string) {
	t.Helper()
	for _, f := range files {
		st, err := os.Stat(dir.Path(f))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %#o, want 0600", f, st.Mode().Perm())
		}
	}
}

// wantNode checks that creds present a certificate of ca for node name.
func wantNode(t *testing.T, creds *pki.Credentials, ca *pki.CA, name string) {
	t.Helper()
	if !creds.Ready() || !creds.CA().Equal(ca.Cert) {
		t.Fatalf("credentials not ready or trusting another CA")
	}
	id, err := pki.IdentityOf(creds.Leaf())
	if err != nil || id != (pki.Identity{Role: pki.RoleNode, Name: name}) {
		t.Fatalf("certificate names %v (%v), want node %s", id, err, name)
	}
}

func TestLoadOrCertify(t *testing.T) {
	ca := testCA(t)
	fake, addr := serveCertifier(t, ca, testSecret, time.Hour)
	dir := pki.Dir(filepath.Join(t.TempDir(), "tls"))
	token := joinToken(ca, testSecret)

	creds, err := LoadOrCertify(certCtx(t, 20*time.Second), dir, "w1", []string{addr}, token, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantNode(t, creds, ca, "w1")
	wantPrivate(t, dir, "ca.crt", "node.crt", "node.key")
	if n := fake.callCount(); n != 1 {
		t.Fatalf("%d Certify calls, want 1", n)
	}
	// The credentials work over mutual TLS: the fake renews only for a
	// caller that presents a certificate of node w1.
	conn, err := DialServers([]string{addr}, creds)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := certCtx(t, 20*time.Second)
	if _, err := renew(ctx, corralpb.NewCertificatesClient(conn), creds, dir, "w1"); err != nil {
		t.Fatalf("renew with the new credentials: %v", err)
	}
	serial := creds.Leaf().SerialNumber

	// Next start: loaded from disk, with or without the token, without
	// asking a server.
	calls := fake.callCount()
	for _, token := range []string{token, ""} {
		again, err := LoadOrCertify(ctx, dir, "w1", []string{addr}, token, nil)
		if err != nil {
			t.Fatal(err)
		}
		wantNode(t, again, ca, "w1")
		if again.Leaf().SerialNumber.Cmp(serial) != 0 {
			t.Fatalf("loaded serial %v, want the saved %v", again.Leaf().SerialNumber, serial)
		}
	}
	if n := fake.callCount(); n != calls {
		t.Fatalf("loading from disk made %d Certify calls", n-calls)
	}

	// Another node name in the same directory: certified anew.
	if _, err := LoadOrCertify(ctx, dir, "w2", []string{addr}, "", nil); err == nil || !strings.Contains(err.Error(), "no --token") {
		t.Fatalf("w2 without a token: %v", err)
	}
	other, err := LoadOrCertify(ctx, dir, "w2", []string{addr}, token, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantNode(t, other, ca, "w2")
}

func TestLoadOrCertifyWithoutToken(t *testing.T) {
	dir := pki.Dir(t.TempDir())
	_, err := LoadOrCertify(certCtx(t, 5*time.Second), dir, "w1", []string{"127.0.0.1:1"}, "", nil)
	if err == nil || err.Error() != "no node certificate in "+string(dir)+" and no --token to get one" {
		t.Fatalf("got %v", err)
	}
	if _, err := LoadOrCertify(certCtx(t, 5*time.Second), dir, "w1", []string{"127.0.0.1:1"}, "short", nil); err == nil {
		t.Fatal("a malformed token was accepted")
	}
}

func TestLoadOrCertifyReplacesUnusableCertificate(t *testing.T) {
	ca := testCA(t)
	token := joinToken(ca, testSecret)
	save := func(t *testing.T, dir pki.Dir, ca *pki.CA, validity time.Duration) {
		t.Helper()
		certPEM, keyPEM, err := ca.Issue(pki.Identity{Role: pki.RoleNode, Name: "w1"}, time.Now(), validity)
		if err != nil {
			t.Fatal(err)
		}
		if err := dir.SaveCA(&pki.CA{Cert: ca.Cert, CertPEM: ca.CertPEM}); err != nil {
			t.Fatal(err)
		}
		if err := dir.SavePair("node", certPEM, keyPEM); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name     string
		ca       *pki.CA
		validity time.Duration
	}{
		{"expired", ca, -time.Minute},
		{"another cluster's", testCA(t), time.Hour},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fake, addr := serveCertifier(t, ca, testSecret, time.Hour)
			dir := pki.Dir(t.TempDir())
			save(t, dir, c.ca, c.validity)
			creds, err := LoadOrCertify(certCtx(t, 20*time.Second), dir, "w1", []string{addr}, token, nil)
			if err != nil {
				t.Fatal(err)
			}
			wantNode(t, creds, ca, "w1")
			if fake.callCount() != 1 {
				t.Fatal("not certified anew")
			}
			loaded, err := dir.LoadCA()
			if err != nil || !loaded.Cert.Equal(ca.Cert) {
				t.Fatalf("saved CA is not the cluster's: %v", err)
			}
		})
	}
	// An expired certificate and no token: the error says why.
	dir := pki.Dir(t.TempDir())
	save(t, dir, ca, -time.Minute)
	_, err := LoadOrCertify(certCtx(t, 5*time.Second), dir, "w1", []string{"127.0.0.1:1"}, "", nil)
	if err == nil || !strings.Contains(err.Error(), "expired") || !strings.Contains(err.Error(), "no --token") {
		t.Fatalf("got %v", err)
	}
}

func TestLoadOrCertifyRefusals(t *testing.T) {
	ca := testCA(t)
	_, addr := serveCertifier(t, ca, testSecret, time.Hour)
	// Another machine already holds w1.
	if _, err := LoadOrCertify(certCtx(t, 20*time.Second), pki.Dir(t.TempDir()), "w1", []string{addr}, joinToken(ca, testSecret), nil); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, token, node string
		code              codes.Code
		msg               string
	}{
		{"wrong secret", joinToken(ca, "ffffffffffffffffffffffffffffffff"), "w2", codes.Unauthenticated, "invalid join token"},
		{"name held by another key", joinToken(ca, testSecret), "w1", codes.AlreadyExists, "delete the node"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := pki.Dir(t.TempDir())
			// A dead address first: it is skipped, and the refusal is final.
			_, err := LoadOrCertify(certCtx(t, 20*time.Second), dir, c.node, []string{"127.0.0.1:1", addr}, c.token, nil)
			if status.Code(err) != c.code || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("got %v, want %v containing %q", err, c.code, c.msg)
			}
			if _, err := os.Stat(dir.Path("node.crt")); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("a certificate was saved after a refusal: %v", err)
			}
		})
	}
}

func TestLoadOrCertifyRefusesServerOfAnotherCA(t *testing.T) {
	ca := testCA(t)
	fake, addr := serveCertifier(t, ca, testSecret, time.Hour)
	// The token pins another CA: the TLS handshake fails before any call.
	token := joinToken(testCA(t), testSecret)
	start := time.Now()
	_, err := LoadOrCertify(certCtx(t, 2*time.Second), pki.Dir(t.TempDir()), "w1", []string{addr}, token, nil)
	if err == nil || !strings.Contains(err.Error(), "does not match the join token") {
		t.Fatalf("got %v", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("retrying went on past the context's end")
	}
	if n := fake.callCount(); n != 0 {
		t.Fatalf("the server of another CA got %d Certify calls", n)
	}
}

func TestRenewCertificates(t *testing.T) {
	cases := []struct {
		name         string
		failRenewals int
	}{
		{"first try", 0},
		{"after failures", 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			testRenew(t, c.failRenewals)
		})
	}
}

func testRenew(t *testing.T, failRenewals int) {
	ca := testCA(t)
	fake, addr := serveCertifier(t, ca, testSecret, 3*time.Second)
	dir := pki.Dir(t.TempDir())
	creds, err := LoadOrCertify(certCtx(t, 20*time.Second), dir, "w1", []string{addr}, joinToken(ca, testSecret), nil)
	if err != nil {
		t.Fatal(err)
	}
	fake.mu.Lock()
	fake.failRenewals = failRenewals
	fake.mu.Unlock()
	rec := &logRecorder{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); RenewCertificates(ctx, []string{addr}, creds, dir, "w1", slog.New(rec)) }()
	stop := func() { cancel(); <-done }
	defer stop()

	// Two renewals, each before the certificate it replaces expires.
	for i := range 2 {
		old := creds.Leaf()
		var renewedAt time.Time
		waitFor(t, "renewal", 10*time.Second, func() bool {
			if creds.Leaf().SerialNumber.Cmp(old.SerialNumber) != 0 {
				renewedAt = time.Now()
				return true
			}
			return false
		})
		if !renewedAt.Before(old.NotAfter) {
			t.Fatalf("renewal %d at %s, after the old certificate expired at %s", i, renewedAt, old.NotAfter)
		}
		wantNode(t, creds, ca, "w1")
		certPEM, _, err := dir.LoadPair("node")
		if err != nil {
			t.Fatal(err)
		}
		saved, err := pki.ParseCert(certPEM)
		if err != nil || saved.SerialNumber.Cmp(creds.Leaf().SerialNumber) != 0 {
			t.Fatalf("the saved certificate is not the renewed one (%v)", err)
		}
		wantPrivate(t, dir, "node.crt", "node.key")
	}
	// Stopping waits for the loop to return: a renewal seen in creds has
	// been logged by then (it is logged just after it is installed).
	stop()
	if n := rec.count("INFO renewed node certificate"); n < 2 {
		t.Fatalf("%d renewals logged, want 2", n)
	}
	if failRenewals > 0 && rec.count("WARN renew node certificate")+rec.count("ERROR renew node certificate") < failRenewals {
		t.Fatalf("failures not logged: %v", rec.recs)
	}
	// The next start loads the renewed certificate.
	loaded, err := LoadOrCertify(certCtx(t, 5*time.Second), dir, "w1", nil, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Leaf().NotAfter.Before(time.Now()) {
		t.Fatal("the saved certificate has expired")
	}
}
