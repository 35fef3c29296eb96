package bench

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/corral-dev/corral/pki"
	corralpb "github.com/corral-dev/corral/proto"
	"github.com/corral-dev/corral/server"
)

// echoCluster answers Create with the object it was sent, doing nothing
// else: the cost of the API's transport alone.
type echoCluster struct {
	corralpb.UnimplementedClusterServer
}

func (echoCluster) Create(_ context.Context, req *corralpb.CreateRequest) (*corralpb.ObjectResponse, error) {
	return &corralpb.ObjectResponse{Object: req.GetObject()}, nil
}

// floorCA makes a cluster CA for a floor benchmark and issues its server
// certificate.
func floorCA(b *testing.B, server string) (*pki.CA, *pki.Credentials) {
	b.Helper()
	ca, err := pki.NewCA(time.Now())
	if err != nil {
		b.Fatal(err)
	}
	creds, err := ca.IssueCredentials(pki.Identity{Role: pki.RoleServer, Name: server}, time.Now(), time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	return ca, creds
}

// serveFloor serves, until the benchmark ends, a gRPC server built as
// server.Start builds the API server (its TLS, with a client certificate
// verified when given, and server.TransportOptions) with only
// what register puts on it, and returns its address.
func serveFloor(b *testing.B, creds *pki.Credentials, register func(*grpc.Server)) string {
	b.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	g := grpc.NewServer(append(server.TransportOptions(),
		grpc.Creds(credentials.NewTLS(creds.ServerConfig(tls.VerifyClientCertIfGiven, nil, "h2"))))...)
	register(g)
	go func() { _ = g.Serve(lis) }()
	b.Cleanup(g.Stop)
	return lis.Addr().String()
}

// BenchmarkTransportFloor is BenchmarkAPIWrites with nothing behind the
// API: the same creates, from the same clients over one connection, to a
// gRPC server with the API's TLS (a server certificate, the client's
// verified) and buffer options that answers each with the object it got.
// No validation, no Raft, no store. It is the ceiling any server behind
// this API could reach on the machine, printed beside BenchmarkAPIWrites.
func BenchmarkTransportFloor(b *testing.B) {
	ca, serverCreds := floorCA(b, "echo")
	clientCreds, err := ca.IssueCredentials(pki.Identity{Role: pki.RoleAdmin, Name: "bench"}, time.Now(), time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	addr := serveFloor(b, serverCreds, func(g *grpc.Server) { corralpb.RegisterClusterServer(g, echoCluster{}) })
	for _, clients := range []int{1, 64, 256} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(
				credentials.NewTLS(clientCreds.ClientConfig(pki.ServerName, pki.OnlyRole(pki.RoleServer)))))
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			cl := corralpb.NewClusterClient(conn)
			drive(b, clients, func(n, i int) error {
				_, err := cl.Create(context.Background(), &corralpb.CreateRequest{Object: configMap(fmt.Sprintf("cm-%d-%d", n, i))})
				return err
			})
		})
	}
}
