package server_test

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/corral-dev/corral/pki"
)

// probeStream is a Raft stream layer for a probing transport: it listens
// on a loopback port of its own and dials with dial.
type probeStream struct {
	net.Listener
	dial func(addr string, timeout time.Duration) (net.Conn, error)
}

var _ raft.StreamLayer = probeStream{}

func (p probeStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return p.dial(string(addr), timeout)
}

// raftProbe sends the server at addr an AppendEntries of term 0, which a
// Raft server answers (refusing it, with its own term) and otherwise
// ignores, through hashicorp/raft's own transport over connections dial
// makes. It returns the server's term.
func raftProbe(t *testing.T, addr string, dial func(string, time.Duration) (net.Conn, error)) (uint64, error) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	trans := raft.NewNetworkTransport(probeStream{Listener: lis, dial: dial}, 1, 5*time.Second, io.Discard)
	t.Cleanup(func() { _ = trans.Close() })
	req := &raft.AppendEntriesRequest{
		RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("probe"), Addr: []byte(lis.Addr().String())},
	}
	var resp raft.AppendEntriesResponse
	if err := trans.AppendEntries("probe", raft.ServerAddress(addr), req, &resp); err != nil {
		return 0, err
	}
	if resp.Success {
		t.Fatal("a Raft server accepted entries of term 0")
	}
	return resp.Term, nil
}

func plainDial(addr string, timeout time.Duration) (net.Conn, error) {
	return net.DialTimeout("tcp", addr, timeout)
}

// tlsDial dials as a server does its peers, presenting creds' certificate.
func tlsDial(creds *pki.Credentials) func(string, time.Duration) (net.Conn, error) {
	return func(addr string, timeout time.Duration) (net.Conn, error) {
		d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: timeout}, Config: creds.ClientConfig(pki.ServerName, pki.OnlyRole(pki.RoleServer))}
		return d.Dial("tcp", addr)
	}
}

func testRaftPortPlaintext(t *testing.T, s *secured) {
	addr := s.c.Server(0).Raft().RaftAddr()
	// Raft-looking bytes in clear: an AppendEntries (type 0) with a
	// msgpack map. The server closes the connection without a reply.
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte("\x00\x81\xa4Term\x01")); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(conn)
	var nerr net.Error
	switch {
	case errors.As(err, &nerr) && nerr.Timeout():
		t.Fatal("the Raft port kept a plaintext connection open")
	case err != nil && !errors.Is(err, syscall.ECONNRESET):
		t.Fatalf("read from the Raft port: %v", err)
	case len(got) > 0:
		t.Fatalf("the Raft port answered plaintext with %q", got)
	}
	if _, err := raftProbe(t, addr, plainDial); err == nil {
		t.Fatal("a plaintext Raft transport got an answer")
	}
}

func testRaftPortAdmitsServersOnly(t *testing.T, s *secured) {
	addr := s.c.Server(0).Raft().RaftAddr()
	for _, id := range []pki.Identity{{Role: pki.RoleNode, Name: "w1"}, {Role: pki.RoleAdmin, Name: "admin"}} {
		creds := issue(t, s.ca, id, time.Hour)
		wantRefusal(t, addr, creds, "remote error: tls: bad certificate")
		if _, err := raftProbe(t, addr, tlsDial(creds)); err == nil {
			t.Fatalf("%s got an answer from Raft", id)
		}
	}
	wantRefusal(t, addr, anonymous(s.ca), "remote error: tls: certificate required")
	// A server certificate of the cluster is answered by Raft itself.
	term, err := raftProbe(t, addr, tlsDial(issue(t, s.ca, pki.Identity{Role: pki.RoleServer, Name: "probe"}, time.Hour)))
	if err != nil || term == 0 {
		t.Fatalf("a server certificate on the Raft port: term %d, %v; want a Raft answer", term, err)
	}
}
