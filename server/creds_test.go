package server_test

import (
	"crypto/tls"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/corral-dev/corral/nodeagent"
	"github.com/corral-dev/corral/pki"
	corralpb "github.com/corral-dev/corral/proto"
	"github.com/corral-dev/corral/test/framework"
)

// issue makes credentials that trust ca and present a certificate it
// issues to id, valid for validity from now (negative: already expired).
func issue(t *testing.T, ca *pki.CA, id pki.Identity, validity time.Duration) *pki.Credentials {
	t.Helper()
	creds, err := ca.IssueCredentials(id, time.Now(), validity)
	if err != nil {
		t.Fatalf("issue a certificate for %s: %v", id, err)
	}
	return creds
}

// credsFor makes credentials that trust ca and present certPEM with keyPEM.
func credsFor(t *testing.T, ca *pki.CA, certPEM, keyPEM []byte) *pki.Credentials {
	t.Helper()
	cert, err := pki.KeyPair(certPEM, keyPEM, ca.Cert)
	if err != nil {
		t.Fatal(err)
	}
	return pki.NewCredentials(ca.Cert, cert)
}

// anonymous makes credentials that trust ca and present no certificate.
func anonymous(ca *pki.CA) *pki.Credentials {
	creds := &pki.Credentials{}
	creds.SetCA(ca.Cert)
	return creds
}

// dialServer returns a connection to a server's API port over TLS with
// creds, accepting only a server certificate of creds' CA.
func dialServer(t *testing.T, addr string, creds *pki.Credentials) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(
		credentials.NewTLS(creds.ClientConfig(pki.ServerName, pki.OnlyRole(pki.RoleServer)))))
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// nodeClient returns a node API client of server i authenticated as node
// name, with a node certificate from the cluster CA.
func nodeClient(t *testing.T, c *framework.InProcess, i int, name string) corralpb.NodeAPIClient {
	t.Helper()
	creds := issue(t, c.CA(t), pki.Identity{Role: pki.RoleNode, Name: name}, time.Hour)
	return corralpb.NewNodeAPIClient(dialServer(t, c.APIAddr(i), creds))
}

// serveAgentAt serves the agent API over h on lis as node's agent does:
// mutual TLS presenting creds' certificate, admitting servers only. It
// stops at cleanup.
func serveAgentAt(t *testing.T, lis net.Listener, h nodeagent.Containers, creds *pki.Credentials) {
	t.Helper()
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(
		creds.ServerConfig(tls.RequireAndVerifyClientCert, pki.OnlyRole(pki.RoleServer), "h2"))))
	corralpb.RegisterAgentAPIServer(srv, nodeagent.NewAgentAPI(h, nil))
	go func() { _ = srv.Serve(lis) }() // returns when stopped
	t.Cleanup(srv.Stop)
}
