package server_test

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/corral-dev/corral/api"
	"github.com/corral-dev/corral/events"
	"github.com/corral-dev/corral/pki"
	corralpb "github.com/corral-dev/corral/proto"
	"github.com/corral-dev/corral/server"
	"github.com/corral-dev/corral/test/framework"
)

// secured is a one-server cluster under attack: its CA (with the key,
// to issue certificates as an agent's or a user's would be), its API
// address and an admin client.
type secured struct {
	c     *framework.InProcess
	ca    *pki.CA
	addr  string
	admin corralpb.ClusterClient
}

// as returns a connection to the API port presenting a certificate of the
// cluster CA for id.
func (s *secured) as(t *testing.T, id pki.Identity) *grpc.ClientConn {
	t.Helper()
	return dialServer(t, s.addr, issue(t, s.ca, id, time.Hour))
}

// TestSecurity runs the rules of mutual TLS and authorization, one subtest
// each, against one in-process server over real TCP.
func TestSecurity(t *testing.T) {
	c := framework.NewInProcess(t, 1)
	s := &secured{c: c, ca: c.CA(t), addr: c.APIAddr(0), admin: c.Client(t, 0)}
	for _, tc := range []struct {
		name string
		run  func(*testing.T, *secured)
	}{
		{"NoClientCertificate", testNoClientCertificate},
		{"CertificateOfAnotherCA", testCertificateOfAnotherCA},
		{"ExpiredCertificate", testExpiredCertificate},
		{"PlaintextAPIClient", testPlaintextAPIClient},
		{"RaftPortPlaintext", testRaftPortPlaintext},
		{"RaftPortAdmitsServersOnly", testRaftPortAdmitsServersOnly},
		{"CertifyWrongToken", testCertifyWrongToken},
		{"CertifyRotatedToken", testCertifyRotatedToken},
		{"TokenOfAnotherCluster", testTokenOfAnotherCluster},
		{"NodeNameTakeover", testNodeNameTakeover},
		{"Renewal", testRenewal},
		{"NodeAuthorizer", testNodeAuthorizer},
		{"ViewUser", testViewUser},
		{"PeerAPI", testPeerAPI},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, s) })
	}
}

func testNoClientCertificate(t *testing.T, s *secured) {
	conn := dialServer(t, s.addr, anonymous(s.ca))
	_, err := corralpb.NewClusterClient(conn).List(ctx(t), &corralpb.ListRequest{Kind: "Namespace"})
	wantCode(t, err, codes.Unauthenticated, "no client certificate")
	_, err = corralpb.NewNodeAPIClient(conn).Register(ctx(t), &corralpb.RegisterRequest{Node: agentNode("w1", nil)})
	wantCode(t, err, codes.Unauthenticated, "no client certificate")
	_, err = corralpb.NewNodeAPIClient(conn).Heartbeat(ctx(t), &corralpb.HeartbeatRequest{NodeName: "w1"})
	wantCode(t, err, codes.Unauthenticated, "no client certificate")
}

// wantHandshakeRefused checks that a call failed in the TLS handshake: the
// connection never came up. (Why the server refused is not always in the
// message: in TLS 1.3 the client's handshake ends before the server has
// checked the client's certificate, and gRPC's first write can meet the
// closed connection before its read meets the server's alert. refusal
// finds the reason reliably.)
func wantHandshakeRefused(t *testing.T, err error, contains ...string) {
	t.Helper()
	wantCode(t, err, codes.Unavailable)
	msg := status.Convert(err).Message()
	for _, c := range contains {
		if !strings.Contains(msg, c) {
			t.Fatalf("error %q does not mention %q", msg, c)
		}
	}
}

// refusal is why the server at addr refuses a TLS connection presenting
// creds' certificate: the alert it sends after the handshake, read
// without writing anything first. It fails the test if the server takes
// the connection (sends data or waits for the client's).
func refusal(t *testing.T, addr string, creds *pki.Credentials) error {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
		creds.ClientConfig(pki.ServerName, pki.OnlyRole(pki.RoleServer)))
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	_, err = conn.Read(make([]byte, 1))
	var nerr net.Error
	if err == nil || (errors.As(err, &nerr) && nerr.Timeout()) {
		t.Fatalf("%s took the TLS connection (read: %v)", addr, err)
	}
	return err
}

// wantRefusal checks that the server at addr refuses creds in the TLS
// handshake, with an alert that says want.
func wantRefusal(t *testing.T, addr string, creds *pki.Credentials, want string) {
	t.Helper()
	if err := refusal(t, addr, creds); !strings.Contains(err.Error(), want) {
		t.Fatalf("the TLS handshake with %s: %v, want it refused with %q", addr, err, want)
	}
}

func testCertificateOfAnotherCA(t *testing.T, s *secured) {
	other, err := pki.NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := other.Issue(pki.Identity{Role: pki.RoleAdmin, Name: "admin"}, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// The client trusts the cluster's CA, so it is the server that refuses.
	cert, err := pki.KeyPair(certPEM, keyPEM, other.Cert)
	if err != nil {
		t.Fatal(err)
	}
	creds := anonymous(s.ca)
	creds.SetCertificate(cert)
	_, err = corralpb.NewClusterClient(dialServer(t, s.addr, creds)).List(ctx(t), &corralpb.ListRequest{Kind: "Namespace"})
	wantHandshakeRefused(t, err)
	wantRefusal(t, s.addr, creds, "remote error: tls: unknown certificate authority")
}

func testExpiredCertificate(t *testing.T, s *secured) {
	creds := issue(t, s.ca, pki.Identity{Role: pki.RoleAdmin, Name: "admin"}, -time.Minute)
	if leaf := creds.Leaf(); !leaf.NotAfter.Before(time.Now()) {
		t.Fatalf("the test certificate is not expired: not after %v", leaf.NotAfter)
	}
	_, err := corralpb.NewClusterClient(dialServer(t, s.addr, creds)).List(ctx(t), &corralpb.ListRequest{Kind: "Namespace"})
	wantHandshakeRefused(t, err)
	wantRefusal(t, s.addr, creds, "remote error: tls: expired certificate")
}

func testPlaintextAPIClient(t *testing.T, s *secured) {
	conn, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	_, err = corralpb.NewClusterClient(conn).List(ctx(t), &corralpb.ListRequest{Kind: "Namespace"})
	wantCode(t, err, codes.Unavailable)
	// Not even the public calls answer in plaintext.
	_, err = corralpb.NewPeerClient(conn).Info(ctx(t), &corralpb.InfoRequest{})
	wantCode(t, err, codes.Unavailable)
}

func testNodeAuthorizer(t *testing.T, s *secured) {
	applied, err := s.admin.Apply(ctx(t), &corralpb.ApplyRequest{Objects: decode(t, podsYAML)})
	if err != nil {
		t.Fatal(err)
	}
	elsewhere := applied.GetResults()[1].GetObject() // bound to w2
	w1 := corralpb.NewNodeAPIClient(s.as(t, pki.Identity{Role: pki.RoleNode, Name: "w1"}))

	t.Run("AssignmentsOfAnotherNode", func(t *testing.T) {
		stream, err := w1.Assignments(ctx(t), &corralpb.AssignmentsRequest{NodeName: "w2"})
		if err == nil {
			_, err = stream.Recv()
		}
		wantCode(t, err, codes.PermissionDenied, `system:node:w1 may not act for node "w2"`)
	})
	t.Run("HeartbeatAsAnotherNode", func(t *testing.T) {
		_, err := w1.Heartbeat(ctx(t), &corralpb.HeartbeatRequest{NodeName: "w2"})
		wantCode(t, err, codes.PermissionDenied, `system:node:w1 may not act for node "w2"`)
	})
	t.Run("StatusOfAPodOfAnotherNode", func(t *testing.T) {
		_, err := w1.UpdateStatus(ctx(t), &corralpb.UpdateStatusRequest{NodeName: "w1", Pods: []*corralpb.PodStatusUpdate{{
			Namespace: "default", Name: "elsewhere", Uid: api.Meta(elsewhere).Uid, Status: &corralpb.PodStatus{Phase: "Failed"}}}})
		wantCode(t, err, codes.PermissionDenied, `node "w1" may not write the status of pod default/elsewhere bound to "w2"`)
		got, err := s.admin.Get(ctx(t), &corralpb.GetRequest{Kind: "Pod", Name: "elsewhere"})
		if err != nil {
			t.Fatal(err)
		}
		if phase := got.GetObject().GetPod().GetStatus().GetPhase(); phase == "Failed" {
			t.Fatal("the refused status was written")
		}
	})
	t.Run("EventsAboutAnotherNode", func(t *testing.T) {
		ev := &corralpb.Event{InvolvedObject: &corralpb.ObjectReference{Kind: "Node", Name: "w2"}, Reason: "NodeNotReady",
			Type: events.TypeWarning, Message: "m", Source: &corralpb.EventSource{Component: "kubelet"}}
		_, err := w1.RecordEvents(ctx(t), &corralpb.RecordEventsRequest{NodeName: "w1", Events: []*corralpb.Event{ev}})
		wantCode(t, err, codes.PermissionDenied, `node "w1" may not record events about Node "w2"`)
	})
	t.Run("ClusterAPI", func(t *testing.T) {
		cl := corralpb.NewClusterClient(s.as(t, pki.Identity{Role: pki.RoleNode, Name: "w1"}))
		_, err := cl.List(ctx(t), &corralpb.ListRequest{Kind: "Pod"})
		wantCode(t, err, codes.PermissionDenied, "system:node:w1 may not call List")
	})
	t.Run("UsersMayNotCallTheNodeAPI", func(t *testing.T) {
		nc := corralpb.NewNodeAPIClient(s.as(t, pki.Identity{Role: pki.RoleAdmin, Name: "root"}))
		_, err := nc.Heartbeat(ctx(t), &corralpb.HeartbeatRequest{NodeName: "w1"})
		wantCode(t, err, codes.PermissionDenied, "it is for node agents")
	})
}

func testViewUser(t *testing.T, s *secured) {
	key, err := pki.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.NewCSR(key, pki.Identity{Role: pki.RoleView, Name: "viewer"})
	if err != nil {
		t.Fatal(err)
	}
	user, err := s.admin.CreateUser(ctx(t), &corralpb.CreateUserRequest{Name: "viewer", Role: "view", Csr: csr})
	if err != nil {
		t.Fatal(err)
	}
	if string(user.GetCaPem()) != string(s.ca.CertPEM) || len(user.GetServers()) != 1 || user.GetServers()[0] != s.addr {
		t.Fatalf("create user: CA or servers wrong: %v", user.GetServers())
	}
	keyPEM, err := pki.EncodeKey(key)
	if err != nil {
		t.Fatal(err)
	}
	creds := credsFor(t, s.ca, user.GetCertPem(), keyPEM)
	if id, err := pki.IdentityOf(creds.Leaf()); err != nil || id != (pki.Identity{Role: pki.RoleView, Name: "viewer"}) {
		t.Fatalf("the user certificate names %v (%v)", id, err)
	}
	view := corralpb.NewClusterClient(dialServer(t, s.addr, creds))

	if _, err := view.List(ctx(t), &corralpb.ListRequest{Kind: "Namespace"}); err != nil {
		t.Fatalf("list as a viewer: %v", err)
	}
	if _, err := view.Get(ctx(t), &corralpb.GetRequest{Kind: "Namespace", Name: "default"}); err != nil {
		t.Fatalf("get as a viewer: %v", err)
	}
	const readOnly = `user "viewer" (role view) may only read`
	cm := decode(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: viewer-was-here}\ndata: {a: b}\n")
	_, err = view.Apply(ctx(t), &corralpb.ApplyRequest{Objects: cm})
	wantCode(t, err, codes.PermissionDenied, readOnly, "Apply needs the admin role")
	_, err = view.Create(ctx(t), &corralpb.CreateRequest{Object: cm[0]})
	wantCode(t, err, codes.PermissionDenied, readOnly, "Create needs the admin role")
	_, err = view.Delete(ctx(t), &corralpb.DeleteRequest{Kind: "Namespace", Name: "default"})
	wantCode(t, err, codes.PermissionDenied, readOnly, "Delete needs the admin role")
	_, err = view.Token(ctx(t), &corralpb.TokenRequest{Role: "agent"})
	wantCode(t, err, codes.PermissionDenied, readOnly, "Token needs the admin role")
	_, err = view.CreateUser(ctx(t), &corralpb.CreateUserRequest{Name: "me-too", Role: "admin", Csr: csr})
	wantCode(t, err, codes.PermissionDenied, readOnly)
	snap, err := view.Snapshot(ctx(t), &corralpb.SnapshotRequest{})
	if err == nil {
		_, err = snap.Recv()
	}
	wantCode(t, err, codes.PermissionDenied, readOnly, "Snapshot needs the admin role")
	exec, err := view.Exec(ctx(t))
	if err == nil {
		_, err = exec.Recv()
	}
	wantCode(t, err, codes.PermissionDenied, readOnly, "Exec needs the admin role")
	fwd, err := view.PortForward(ctx(t))
	if err == nil {
		_, err = fwd.Recv()
	}
	wantCode(t, err, codes.PermissionDenied, readOnly, "PortForward needs the admin role")
	if _, err := s.admin.Get(ctx(t), &corralpb.GetRequest{Kind: "ConfigMap", Name: "viewer-was-here"}); status.Code(err) != codes.NotFound {
		t.Fatalf("the viewer's config map: %v, want NotFound", err)
	}
}

func testPeerAPI(t *testing.T, s *secured) {
	// Discovery facts are public: no certificate needed.
	info, err := corralpb.NewPeerClient(dialServer(t, s.addr, anonymous(s.ca))).Info(ctx(t), &corralpb.InfoRequest{})
	if err != nil || info.GetName() != "server-1" {
		t.Fatalf("peer info without a certificate: %v, %v", info, err)
	}
	entry := &corralpb.LogEntry{PutMembers: []*corralpb.Member{{Name: "evil", RaftAddr: "127.0.0.1:1", ApiAddr: "127.0.0.1:2"}}}
	for _, id := range []pki.Identity{{Role: pki.RoleNode, Name: "w1"}, {Role: pki.RoleAdmin, Name: "root"}} {
		peer := corralpb.NewPeerClient(s.as(t, id))
		_, err := peer.Join(ctx(t), &corralpb.JoinRequest{Member: entry.PutMembers[0]})
		wantCode(t, err, codes.PermissionDenied, id.String()+" may not call Join: it is for servers")
		_, err = peer.Forward(ctx(t), &corralpb.ForwardRequest{Entry: entry})
		wantCode(t, err, codes.PermissionDenied, id.String()+" may not call Forward: it is for servers")
	}
	_, err = corralpb.NewPeerClient(dialServer(t, s.addr, anonymous(s.ca))).Forward(ctx(t), &corralpb.ForwardRequest{Entry: entry})
	wantCode(t, err, codes.Unauthenticated)
	members, err := s.admin.Members(ctx(t), &corralpb.MembersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range members.GetMembers() {
		if m.GetName() == "evil" {
			t.Fatalf("a refused peer call added a member: %v", members.GetMembers())
		}
	}
}

// TestPrivateFiles checks the modes of the files that hold keys and
// credentials, and that a server refuses a CA key others may read.
func TestPrivateFiles(t *testing.T) {
	c := framework.NewInProcess(t, 1)
	cfg := c.Config(0)
	c.JoinToken(t) // the token file is written just after admin.conf
	keys, err := filepath.Glob(filepath.Join(cfg.DataDir, "tls", "*.key"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ca.key", "server.key"} {
		if !contains(names(keys), want) {
			t.Fatalf("keys in %s/tls: %v, want %s among them", cfg.DataDir, names(keys), want)
		}
	}
	for _, path := range append([]string{filepath.Join(cfg.DataDir, "admin.conf"), filepath.Join(cfg.DataDir, "token")}, keys...) {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if perm := st.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s: mode %#o, want 0600", path, perm)
		}
	}
	if st, err := os.Stat(filepath.Join(cfg.DataDir, "tls")); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("%s/tls: %v (%v), want mode 0700", cfg.DataDir, st.Mode(), err)
	}

	t.Run("CAKeyOpenToOthers", func(t *testing.T) {
		c.Kill(t, 0)
		caKey := filepath.Join(cfg.DataDir, "tls", "ca.key")
		if err := os.Chmod(caKey, 0o644); err != nil {
			t.Fatal(err)
		}
		srv, err := server.Start(cfg)
		if err == nil {
			_ = srv.Stop()
			t.Fatal("a server started with a CA key others may read")
		}
		for _, want := range []string{caKey, "0644"} {
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("start with ca.key at 0644: %v; want it to name %q", err, want)
			}
		}
	})
}

func names(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = filepath.Base(p)
	}
	return out
}
