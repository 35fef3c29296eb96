package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/corral-dev/corral/pki"
)

func TestUserCreateWritesAWorkingConfig(t *testing.T) {
	fake := newFakeCluster()
	fake.userServers = []string{"10.0.0.1:7443", "10.0.0.2:7443"}
	h := newHarness(t, fake)
	file := filepath.Join(t.TempDir(), "alice.conf")
	out := h.mustRun("user", "create", "alice", "--role", "view", "--output-file", file)
	if out != `user "alice" (view) created: config written to `+file+"\n" {
		t.Fatalf("user create printed %q", out)
	}
	st, err := os.Stat(file)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("config file: %v %v", st, err)
	}
	cfg, err := ReadConfig(file)
	if err != nil {
		t.Fatalf("read the written config: %v", err)
	}
	if len(fake.users) != 1 || len(fake.signed) != 1 {
		t.Fatalf("%d CreateUser calls, %d certificates signed", len(fake.users), len(fake.signed))
	}
	req := fake.users[0]
	if req.GetName() != "alice" || req.GetRole() != "view" {
		t.Fatalf("request: name %q role %q", req.GetName(), req.GetRole())
	}
	if !reflect.DeepEqual(cfg.Servers, fake.userServers) || !bytes.Equal(cfg.CertificateAuthorityData, h.ca.CertPEM) ||
		!bytes.Equal(cfg.ClientCertificateData, fake.signed[0]) {
		t.Fatalf("config: servers %v, CA is the cluster's: %v, certificate is the signed one: %v", cfg.Servers,
			bytes.Equal(cfg.CertificateAuthorityData, h.ca.CertPEM), bytes.Equal(cfg.ClientCertificateData, fake.signed[0]))
	}
	// The key is the one the CSR was for: only its public half left.
	key, err := pki.ParseKey(cfg.ClientKeyData)
	if err != nil {
		t.Fatal(err)
	}
	keyDigest, err := pki.KeyDigest(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	if csrDigest, err := pki.CSRKeyDigest(req.GetCsr()); err != nil || csrDigest != keyDigest {
		t.Fatalf("the config's key is not the key the CSR was for (%v)", err)
	}
	cert, err := pki.ParseCert(cfg.ClientCertificateData)
	if err != nil {
		t.Fatal(err)
	}
	if certDigest, _ := pki.KeyDigest(cert.PublicKey); certDigest != keyDigest {
		t.Fatal("the config's certificate is not for its key")
	}
	// The new config works (its servers are made up: --server points at the fake).
	if _, errOut, code := h.run("--config", file, "--server", h.addr, "get", "ds"); code != 0 || errOut != "No resources found in default namespace.\n" {
		t.Fatalf("get with the new config: exit %d %q", code, errOut)
	}
	if got := fake.sortedAuth(); !reflect.DeepEqual(got, []string{"alice (view)"}) {
		t.Fatalf("identities seen: %v", got)
	}
}

func TestUserCreatePrintsTheConfigWithoutOutputFile(t *testing.T) {
	fake := newFakeCluster()
	h := newHarness(t, fake)
	out := h.mustRun("user", "create", "bob", "--role=admin")
	var cfg Config
	if err := yaml.Unmarshal([]byte(out), &cfg); err != nil {
		t.Fatalf("stdout is not a config: %v\n%s", err, out)
	}
	if cfg.APIVersion != ConfigAPIVersion || cfg.Kind != ConfigKind || len(cfg.ClientKeyData) == 0 ||
		!bytes.Equal(cfg.ClientCertificateData, fake.signed[0]) {
		t.Fatalf("printed config:\n%s", out)
	}
	// Without servers in the answer, the config names the servers dialed.
	if !reflect.DeepEqual(cfg.Servers, []string{h.addr}) {
		t.Fatalf("servers %v, want %v", cfg.Servers, []string{h.addr})
	}
	pair, err := pki.KeyPair(cfg.ClientCertificateData, cfg.ClientKeyData, nil)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := pki.IdentityOf(pair.Leaf); err != nil || id != (pki.Identity{Role: pki.RoleAdmin, Name: "bob"}) {
		t.Fatalf("identity %v %v", id, err)
	}
}

func TestUserCreateRefusals(t *testing.T) {
	fake := newFakeCluster()
	h := newHarness(t, fake)
	existing := writeFile(t, "taken.conf", "keep me\n")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"user", "create", "carol", "--role", "view", "--output-file", existing}, "error: " + existing + " already exists: refusing to overwrite it\n"},
		{[]string{"user", "create", "carol", "--role", "root"}, "error: invalid --role \"root\": must be admin or view\n"},
		{[]string{"user", "create", "carol", "--role", "server"}, "error: invalid --role \"server\": must be admin or view\n"},
		{[]string{"user", "create", "carol"}, "error: --role is required: admin or view\n"},
		{[]string{"user", "create", "--role", "view"}, "error: exactly one user NAME is required\n"},
	}
	for _, c := range cases {
		if _, errOut, code := h.run(c.args...); code != 1 || errOut != c.want {
			t.Errorf("%v: exit %d %q, want %q", c.args, code, errOut, c.want)
		}
	}
	if data, err := os.ReadFile(existing); err != nil || string(data) != "keep me\n" {
		t.Fatalf("the existing file was touched: %q %v", data, err)
	}
	if len(fake.users) != 0 {
		t.Fatalf("%d CreateUser calls reached the server", len(fake.users))
	}
	// A viewer may not create users: Forbidden, and no file is left.
	h.writeConfig(h.config, h.userConfig(pki.Identity{Role: pki.RoleView, Name: "viewer"}, h.addr))
	file := filepath.Join(t.TempDir(), "dave.conf")
	_, errOut, code := h.run("user", "create", "dave", "--role", "admin", "--output-file", file)
	if code != 1 || !strings.HasPrefix(errOut, "Error from server (Forbidden): viewer (view) may not create users") {
		t.Fatalf("viewer creating a user: exit %d %q", code, errOut)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Fatalf("a refused user create left %s: %v", file, err)
	}
}
