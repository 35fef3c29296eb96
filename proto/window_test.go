package corralpb_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"

	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	corralpb "github.com/corral-dev/corral/proto"
)

// echoCluster answers Create with the object it was sent.
type echoCluster struct {
	corralpb.UnimplementedClusterServer
}

func (echoCluster) Create(_ context.Context, req *corralpb.CreateRequest) (*corralpb.ObjectResponse, error) {
	return &corralpb.ObjectResponse{Object: req.GetObject()}, nil
}

// tappedConn keeps a copy of every byte read from and written to a
// connection.
type tappedConn struct {
	net.Conn
	mu            sync.Mutex
	read, written bytes.Buffer
}

func (c *tappedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.read.Write(p[:n])
	c.mu.Unlock()
	return n, err
}

func (c *tappedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.mu.Lock()
	c.written.Write(p[:n])
	c.mu.Unlock()
	return n, err
}

// pings counts the PING frames, acknowledgements excluded, in an HTTP/2
// byte stream. A frame cut off at the end is not counted.
func pings(t *testing.T, stream []byte) int {
	t.Helper()
	fr := http2.NewFramer(nil, bytes.NewReader(stream))
	n := 0
	for {
		f, err := fr.ReadFrame()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return n
		}
		if err != nil {
			t.Fatalf("parse HTTP/2 frames: %v", err)
		}
		if p, ok := f.(*http2.PingFrame); ok && !p.IsAck() {
			n++
		}
	}
}

// TestFlowWindowOptionsSendNoPings checks what the fixed windows are for:
// a client and server with them exchange messages without gRPC's
// bandwidth-estimation pings, which gRPC's defaults send for nearly every
// message of a connection with one call at a time.
func TestFlowWindowOptionsSendNoPings(t *testing.T) {
	for _, tc := range []struct {
		name      string
		server    []grpc.ServerOption
		dial      []grpc.DialOption
		wantPings bool
	}{
		{name: "gRPC defaults", wantPings: true},
		{name: "FlowWindow", server: corralpb.FlowWindowServerOptions(), dial: corralpb.FlowWindowDialOptions()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			g := grpc.NewServer(tc.server...)
			corralpb.RegisterClusterServer(g, echoCluster{})
			served := make(chan struct{})
			go func() { defer close(served); _ = g.Serve(lis) }()
			t.Cleanup(func() { g.Stop(); <-served })

			var tap *tappedConn
			dial := func(ctx context.Context, addr string) (net.Conn, error) {
				c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
				if err != nil {
					return nil, err
				}
				tap = &tappedConn{Conn: c}
				return tap, nil
			}
			conn, err := grpc.NewClient("passthrough:///"+lis.Addr().String(), append(tc.dial,
				grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithContextDialer(dial))...)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			cl := corralpb.NewClusterClient(conn)
			obj := &corralpb.Object{Kind: &corralpb.Object_ConfigMap{ConfigMap: &corralpb.ConfigMap{
				Metadata: &corralpb.ObjectMeta{Name: "x", Namespace: "default"}, Data: map[string]string{"k": "v"}}}}
			for i := 0; i < 20; i++ {
				if _, err := cl.Create(context.Background(), &corralpb.CreateRequest{Object: obj}); err != nil {
					t.Fatal(err)
				}
			}
			_ = conn.Close()

			tap.mu.Lock()
			defer tap.mu.Unlock()
			written := tap.written.Bytes()
			if !bytes.HasPrefix(written, []byte(http2.ClientPreface)) {
				t.Fatalf("the client did not open with the HTTP/2 preface: %q", written[:min(len(written), 24)])
			}
			fromClient := pings(t, written[len(http2.ClientPreface):])
			fromServer := pings(t, tap.read.Bytes())
			if tc.wantPings && fromClient+fromServer == 0 {
				t.Fatalf("20 calls with gRPC's dynamic windows sent no pings: the estimator this option turns off is gone, and FlowWindow may not be needed")
			}
			if !tc.wantPings && fromClient+fromServer != 0 {
				t.Fatalf("20 calls sent %d pings from the client and %d from the server, want none", fromClient, fromServer)
			}
			t.Logf("pings: %d from the client, %d from the server", fromClient, fromServer)
		})
	}
}
