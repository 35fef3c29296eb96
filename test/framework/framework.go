// Package framework runs corral clusters for tests behind one small
// interface, so that a test body is written once and runs both against
// in-process servers (fast, layer 3) and against real `corral server`
// processes (layer 4), as etcd's tests/framework does.
package framework

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"sigs.k8s.io/yaml"

	"github.com/corral-dev/corral/pki"
	corralpb "github.com/corral-dev/corral/proto"
	"github.com/corral-dev/corral/server"
)

// Cluster is a running corral cluster under test.
type Cluster interface {
	// Size is the number of servers, running or not.
	Size() int
	// Client returns a cluster API client talking to server i only.
	Client(t testing.TB, i int) corralpb.ClusterClient
	// Kill stops server i abruptly (kill -9 for processes).
	Kill(t testing.TB, i int)
	// Restart starts server i again from its data dir with the same flags.
	Restart(t testing.TB, i int)
	// Running reports whether server i runs.
	Running(i int) bool
	// AdminConf is the path of an admin.conf a CLI can use.
	AdminConf() string
}

// Leader returns the index of the running server that leads, asking the
// running servers until one reports a leader that is running.
func Leader(t testing.TB, c Cluster) int {
	t.Helper()
	leader := -1
	WaitFor(t, "a leader", 20*time.Second, func() bool {
		for i := 0; i < c.Size(); i++ {
			if !c.Running(i) {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			resp, err := c.Client(t, i).Members(ctx, &corralpb.MembersRequest{})
			cancel()
			if err != nil {
				continue
			}
			for _, m := range resp.GetMembers() {
				if m.GetRaftState() != "Leader" {
					continue
				}
				for j := 0; j < c.Size(); j++ {
					if c.Running(j) && serverName(j) == m.GetName() {
						leader = j
						return true
					}
				}
			}
		}
		return false
	})
	return leader
}

// serverName is the name the frameworks give server i.
func serverName(i int) string { return fmt.Sprintf("server-%d", i+1) }

// WaitFor polls cond every 20 ms until it holds or timeout passes.
func WaitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freeAddrs picks n loopback addresses with distinct free ports for
// servers that will listen on them later. The ports are random and below
// the kernel's ephemeral range: a port the kernel hands out (to an
// outgoing connection, or to a listener on port 0 in a test running beside
// this one) could otherwise be taken between this choice and the server's
// listen.
func freeAddrs(t testing.TB, n int) []string {
	t.Helper()
	lo, hi := 15000, ephemeralStart()
	var out []string
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for tries := 0; len(out) < n; tries++ {
		addr := "127.0.0.1:0" // no room below the ephemeral range: let the kernel choose
		if hi-lo >= 1000 {
			addr = fmt.Sprintf("127.0.0.1:%d", lo+rand.IntN(hi-lo))
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			if tries > 1000 {
				t.Fatalf("no free loopback port: %v", err)
			}
			continue // taken: pick another
		}
		ls = append(ls, l)
		out = append(out, l.Addr().String())
	}
	return out
}

// FreePort is one port as freeAddrs picks them.
func FreePort(t testing.TB) int {
	t.Helper()
	_, port, _ := net.SplitHostPort(freeAddrs(t, 1)[0])
	p, _ := strconv.Atoi(port)
	return p
}

// ephemeralStart is the first port of the kernel's ephemeral range.
func ephemeralStart() int {
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	if f := strings.Fields(string(data)); len(f) == 2 {
		if v, err := strconv.Atoi(f[0]); err == nil {
			return v
		}
	}
	return 32768
}

// dial returns a client for addr that authenticates with the admin
// certificate of the admin.conf at conf.
func dial(t testing.TB, addr, conf string) corralpb.ClusterClient {
	t.Helper()
	creds := AdminCredentials(t, conf)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(
		credentials.NewTLS(creds.ClientConfig(pki.ServerName, pki.OnlyRole(pki.RoleServer)))))
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return corralpb.NewClusterClient(conn)
}

// AdminCredentials reads the CA and the client certificate of an
// admin.conf.
func AdminCredentials(t testing.TB, path string) *pki.Credentials {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	var conf server.ClientConfig
	if err := yaml.Unmarshal(data, &conf); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	ca, err := pki.ParseCA(conf.CertificateAuthorityData, nil)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	cert, err := pki.KeyPair(conf.ClientCertificateData, conf.ClientKeyData, nil)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return pki.NewCredentials(ca.Cert, cert)
}

// ClusterCA reads the cluster CA, with its key, from a server's data dir
// (DATA_DIR/tls), waiting until the server has it.
func ClusterCA(t testing.TB, dataDir string) *pki.CA {
	t.Helper()
	var ca *pki.CA
	WaitFor(t, "the cluster CA key in "+dataDir, 20*time.Second, func() bool {
		var err error
		ca, err = pki.Dir(filepath.Join(dataDir, "tls")).LoadCA()
		return err == nil && ca.Key != nil
	})
	return ca
}

// BootstrapSecret makes the shared secret a test cluster's servers
// bootstrap with.
func BootstrapSecret() string { return pki.NewSecret() }
