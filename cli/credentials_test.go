package cli

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/corral-dev/corral/pki"
)

// otherCA makes a CA of another cluster.
func otherCA(t *testing.T) *pki.CA {
	t.Helper()
	ca, err := pki.NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// writePEM writes data to a 0600 file in a temp dir and returns its path.
func writePEM(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigWithoutClientCertificate(t *testing.T) {
	fake := newFakeCluster()
	h := newHarness(t, fake)
	h.writeConfig(h.config, &Config{Servers: []string{h.addr}, CertificateAuthorityData: h.ca.CertPEM})
	_, errOut, code := h.run("get", "ds")
	want := "error: config " + h.config + " has no client certificate: use the admin.conf a server wrote, or one from `corral user create`\n"
	if code != 1 || errOut != want {
		t.Fatalf("exit %d\n got %q\nwant %q", code, errOut, want)
	}
	// A config of the bearer-token days says why its token no longer works.
	if err := os.WriteFile(h.config, []byte("apiVersion: corral/v1\nkind: Config\nservers: ["+h.addr+"]\ntoken: s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := h.run("get", "ds"); code != 1 || !strings.Contains(errOut, "has no client certificate") || !strings.Contains(errOut, "bearer token is no longer accepted") {
		t.Fatalf("legacy config: exit %d %q", code, errOut)
	}
	// No config at all: the flags to pass.
	_, errOut, code = h.run("--config", "", "--server", h.addr, "get", "ds")
	if code != 1 || !strings.HasPrefix(errOut, "error: no client certificate: pass --client-certificate and --client-key") {
		t.Fatalf("no config: exit %d %q", code, errOut)
	}
	if got := fake.sortedAuth(); len(got) != 0 {
		t.Fatalf("a call without credentials reached the server: %v", got)
	}
}

func TestOtherClustersCertificatesFailToConnect(t *testing.T) {
	fake := newFakeCluster()
	h := newHarness(t, fake)
	// A config of another cluster: the server's certificate is not from its CA.
	other := otherCA(t)
	certPEM, keyPEM, err := other.Issue(testAdmin, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	h.writeConfig(h.config, &Config{Servers: []string{h.addr}, CertificateAuthorityData: other.CertPEM, ClientCertificateData: certPEM, ClientKeyData: keyPEM})
	_, errOut, code := h.run("get", "ds")
	if code != 1 || !strings.HasPrefix(errOut, "Unable to connect to the server: TLS handshake failed: ") || !strings.Contains(errOut, "x509: certificate signed by unknown authority") {
		t.Fatalf("another cluster's config: exit %d %q", code, errOut)
	}
	// This cluster's certificate with another cluster's CA, or the
	// reverse: refused before dialing.
	good := h.userConfig(testAdmin, h.addr)
	mixed := *good
	mixed.CertificateAuthorityData = other.CertPEM
	h.writeConfig(h.config, &mixed)
	if _, errOut, code := h.run("get", "ds"); code != 1 || !strings.HasPrefix(errOut, "error: client certificate from config "+h.config+": x509: certificate signed by unknown authority") {
		t.Fatalf("mixed config: exit %d %q", code, errOut)
	}
	mixed = *good
	mixed.ClientCertificateData, mixed.ClientKeyData = certPEM, keyPEM
	h.writeConfig(h.config, &mixed)
	if _, errOut, code := h.run("get", "ds"); code != 1 || !strings.Contains(errOut, "certificate signed by unknown authority") {
		t.Fatalf("foreign client certificate: exit %d %q", code, errOut)
	}
	// An expired certificate says so.
	expired := *good
	expired.ClientCertificateData, expired.ClientKeyData, err = h.ca.Issue(testAdmin, time.Now(), -time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	h.writeConfig(h.config, &expired)
	if _, errOut, code := h.run("get", "ds"); code != 1 || !strings.Contains(errOut, "x509: certificate has expired") {
		t.Fatalf("expired certificate: exit %d %q", code, errOut)
	}
	if got := fake.sortedAuth(); len(got) != 0 {
		t.Fatalf("calls reached the server: %v", got)
	}
}

func TestTLSFlagsOverrideTheConfig(t *testing.T) {
	fake := newFakeCluster()
	h := newHarness(t, fake)
	flagUser := pki.Identity{Role: pki.RoleView, Name: "from-flags"}
	flagCfg := h.userConfig(flagUser)
	caFile := writePEM(t, "ca.crt", h.ca.CertPEM)
	certFile := writePEM(t, "user.crt", flagCfg.ClientCertificateData)
	keyFile := writePEM(t, "user.key", flagCfg.ClientKeyData)

	// The config trusts another CA and has no certificate: the flags give
	// all three.
	h.writeConfig(h.config, &Config{Servers: []string{h.addr}, CertificateAuthorityData: otherCA(t).CertPEM})
	if _, errOut, code := h.run("get", "ds"); code != 1 || !strings.Contains(errOut, "has no client certificate") {
		t.Fatalf("without flags: exit %d %q", code, errOut)
	}
	h.mustRun("--certificate-authority", caFile, "--client-certificate", certFile, "--client-key", keyFile, "get", "ds")
	// The config's certificate is replaced by the flags'.
	h.writeConfig(h.config, h.userConfig(testAdmin, h.addr))
	h.mustRun("--client-certificate", certFile, "--client-key", keyFile, "get", "ds")
	// No config file at all.
	h.mustRun("--config", "", "--server", h.addr, "--certificate-authority", caFile, "--client-certificate", certFile, "--client-key", keyFile, "get", "ds")
	if got := fake.sortedAuth(); !reflect.DeepEqual(got, []string{flagUser.String()}) {
		t.Fatalf("identities seen: %v, want only the flags' user", got)
	}

	// The CA flag alone: the config's CA no longer matches its certificate.
	if _, errOut, code := h.run("--certificate-authority", writePEM(t, "other.crt", otherCA(t).CertPEM), "get", "ds"); code != 1 ||
		!strings.Contains(errOut, "checked against the certificate authority from --certificate-authority ") {
		t.Fatalf("foreign --certificate-authority: exit %d %q", code, errOut)
	}
	// A certificate without its key.
	if _, errOut, code := h.run("--config", "", "--server", h.addr, "--certificate-authority", caFile, "--client-certificate", certFile, "get", "ds"); code != 1 ||
		errOut != "error: --client-certificate needs --client-key\n" {
		t.Fatalf("--client-certificate alone: exit %d %q", code, errOut)
	}
	// A key file others may read is refused, as ssh refuses one.
	if err := os.Chmod(keyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := h.run("--client-certificate", certFile, "--client-key", keyFile, "get", "ds"); code != 1 ||
		!strings.Contains(errOut, keyFile+" holds a key or credentials but is open to others") {
		t.Fatalf("open key file: exit %d %q", code, errOut)
	}
	if _, errOut, code := h.run("--client-certificate", filepath.Join(t.TempDir(), "missing.crt"), "get", "ds"); code != 1 ||
		!strings.HasPrefix(errOut, "error: --client-certificate: open ") {
		t.Fatalf("missing file: exit %d %q", code, errOut)
	}
}

func TestReadConfigRefusesAnOpenKey(t *testing.T) {
	h := newHarness(t, newFakeCluster())
	if err := os.Chmod(h.config, 0o640); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := h.run("get", "ds")
	if code != 1 || errOut != "error: "+h.config+" holds a key or credentials but is open to others (mode 0640): run chmod 600 "+h.config+"\n" {
		t.Fatalf("group-readable config: exit %d %q", code, errOut)
	}
	// Without a key the file holds nothing secret.
	open := writeFile(t, "public.conf", "apiVersion: corral/v1\nkind: Config\nservers: [a:1]\n")
	if _, err := ReadConfig(open); err != nil {
		t.Fatalf("a 0644 config without a key: %v", err)
	}
}

func TestWriteConfigRoundTrip(t *testing.T) {
	h := newHarness(t, newFakeCluster())
	want := h.userConfig(testAdmin, "a:1", "b:2")
	path := filepath.Join(t.TempDir(), "admin.conf")
	if err := WriteConfig(path, want); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode: %v %v", st, err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{"apiVersion: corral/v1\n", "kind: Config\n", "certificateAuthorityData: ", "clientCertificateData: ", "clientKeyData: "} {
		if !strings.Contains(string(data), field) {
			t.Errorf("written config lacks %q:\n%s", field, data)
		}
	}
	got, err := ReadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	want.APIVersion, want.Kind = ConfigAPIVersion, ConfigKind
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
	}
}
