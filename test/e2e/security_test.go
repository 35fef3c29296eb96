package e2e

import (
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/corral-dev/corral/internal/roottest"
	"github.com/corral-dev/corral/pki"
	"github.com/corral-dev/corral/test/framework"
)

// TestAgentRenewsItsCertificate runs a real agent against a server that
// issues 4-second certificates: the agent renews its node certificate at
// 50-80 % of that, again and again, while its pod keeps running untouched
// and logs and exec keep reaching it through the servers (which accept
// only the node's current, unexpired certificate).
func TestAgentRenewsItsCertificate(t *testing.T) {
	roottest.Require(t, "real containers")
	c := framework.NewProcesses(t, 1, "--cert-validity", "4s")
	conf := c.AdminConf()
	reg := framework.NewRegistry(t)
	ref := reg.Push(t, "workload:1", framework.WorkloadImage(t))
	agentDir := filepath.Join(t.TempDir(), "agent")
	node := uniqueName("renew")
	startAgentProc(t, node, c.APIAddr(0), filepath.Join(filepath.Dir(conf), "token"), agentDir)
	podFile := filepath.Join(t.TempDir(), "pod.yml")
	writeFile(t, podFile, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: steady}
spec:
  nodeName: %s
  containers:
  - name: app
    image: %s
`, node, ref))
	ok(t, conf, "apply", "-f", podFile)
	var cid string
	framework.WaitFor(t, "the pod Running", 60*time.Second, func() bool {
		p := getPod(t, conf, "steady")
		if p == nil || p.Status.Phase != "Running" || len(p.Status.ContainerStatuses) != 1 || !p.Status.ContainerStatuses[0].Ready {
			return false
		}
		cid = p.Status.ContainerStatuses[0].ContainerID
		return true
	})
	certFile := filepath.Join(agentDir, "tls", "node.crt")
	first := readCert(t, certFile)
	if id, err := pki.IdentityOf(first); err != nil || id != (pki.Identity{Role: pki.RoleNode, Name: node}) {
		t.Fatalf("the agent's certificate names %v (%v), want node %s", id, err, node)
	}
	if st, err := os.Stat(filepath.Join(agentDir, "tls", "node.key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("node.key: %v", err)
	}
	// Three certificates later the first has long expired.
	serials := map[string]bool{first.SerialNumber.String(): true}
	framework.WaitFor(t, "two renewals past the first certificate's expiry", 30*time.Second, func() bool {
		cur := readCert(t, certFile)
		serials[cur.SerialNumber.String()] = true
		return len(serials) >= 3 && time.Now().After(first.NotAfter)
	})
	cur := readCert(t, certFile)
	if time.Now().After(cur.NotAfter) {
		t.Fatalf("the agent's current certificate expired at %v", cur.NotAfter)
	}
	p := getPod(t, conf, "steady")
	if got := p.Status.ContainerStatuses[0]; got.ContainerID != cid || got.RestartCount != 0 {
		t.Fatalf("after renewals the container is %s (restarts %d), want %s untouched", got.ContainerID, got.RestartCount, cid)
	}
	out := ok(t, conf, "get", "node", node)
	if !strings.Contains(out, " Ready ") {
		t.Fatalf("node after renewals:\n%s", out)
	}
	// The server dials the agent API afresh: it verifies the renewed
	// certificate.
	if env := ok(t, conf, "exec", "steady", "--", "/workload", "env"); !strings.Contains(env, "PATH=") {
		t.Fatalf("exec after renewals: %q", env)
	}
	if logs := ok(t, conf, "logs", "steady"); !strings.Contains(logs, "workload: pid") {
		t.Fatalf("logs after renewals:\n%s", logs)
	}
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := pki.ParseCert(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return cert
}

// TestUsersAndTokensThroughTheCLI drives the security verbs of the real
// binary against real server processes: tokens are shown and rotated by
// admins only, and a view user made with `user create` reads but cannot
// write, with kubectl's Forbidden.
func TestUsersAndTokensThroughTheCLI(t *testing.T) {
	c := framework.NewProcesses(t, 3)
	conf := c.AdminConf()
	agentTok := strings.TrimSpace(ok(t, conf, "token", "show"))
	serverTok := strings.TrimSpace(ok(t, conf, "token", "show", "--role", "server"))
	for tok, role := range map[string]string{agentTok: "agent", serverTok: "server"} {
		parsed, err := pki.ParseToken(tok)
		if err != nil || parsed.Role != role {
			t.Fatalf("token show --role %s = %q (%v)", role, tok, err)
		}
	}
	fileTok, err := os.ReadFile(filepath.Join(filepath.Dir(conf), "token"))
	if err != nil || strings.TrimSpace(string(fileTok)) != agentTok {
		t.Fatalf("DATA_DIR/token = %q (%v), want the agent token %q", fileTok, err, agentTok)
	}
	rotated := strings.TrimSpace(ok(t, conf, "token", "rotate"))
	if rotated == agentTok || strings.TrimSpace(ok(t, confFor(t, c, 2), "token", "show")) != rotated {
		t.Fatalf("after rotate: %q, shown by another server: want the new token", rotated)
	}
	framework.WaitFor(t, "servers to rewrite DATA_DIR/token", 10*time.Second, func() bool {
		b, _ := os.ReadFile(filepath.Join(filepath.Dir(conf), "token"))
		return strings.TrimSpace(string(b)) == rotated
	})

	viewConf := filepath.Join(t.TempDir(), "ann.conf")
	if out := ok(t, conf, "user", "create", "ann", "--role", "view", "--output-file", viewConf); !strings.Contains(out, "ann") {
		t.Fatalf("user create: %q", out)
	}
	if st, err := os.Stat(viewConf); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v", viewConf, err)
	}
	ok(t, conf, "create", "configmap", "shared", "--from-literal", "k=v")
	if out := ok(t, viewConf, "get", "configmap", "shared"); !strings.Contains(out, "shared") {
		t.Fatalf("view user get: %q", out)
	}
	for _, args := range [][]string{
		{"delete", "configmap", "shared"},
		{"create", "configmap", "mine", "--from-literal", "k=v"},
		{"token", "show"},
		{"user", "create", "eve", "--role", "admin", "--output-file", filepath.Join(t.TempDir(), "eve.conf")},
	} {
		errOut := fails(t, viewConf, args...)
		if !strings.Contains(errOut, "Error from server (Forbidden)") || !strings.Contains(errOut, "view") {
			t.Errorf("view user: corral %s: stderr %q, want Forbidden", strings.Join(args, " "), errOut)
		}
	}
	ok(t, conf, "get", "configmap", "shared") // nothing the view user tried took effect
	fails(t, conf, "get", "configmap", "mine")
}
