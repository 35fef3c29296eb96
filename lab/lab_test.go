package lab

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestMirrorPath(t *testing.T) {
	for ref, want := range map[string]string{
		"nginx:1.25":                         "library/nginx:1.25",
		"fluent/fluentd:v1.16":               "fluent/fluentd:v1.16",
		"prom/node-exporter:latest":          "prom/node-exporter:latest",
		"registry.k8s.io/kube-proxy:v1.28.0": "kube-proxy:v1.28.0",
		"monitoring-agent":                   "library/monitoring-agent:latest",
		"example.com:5000/team/app:2":        "team/app:2",
	} {
		got, err := MirrorPath(ref)
		if err != nil || got != want {
			t.Errorf("MirrorPath(%q) = %q, %v; want %q", ref, got, err, want)
		}
	}
	if _, err := MirrorPath("UPPER:case"); err == nil {
		t.Error("MirrorPath accepted an invalid reference")
	}
}

func TestNamesFitInterfaceNames(t *testing.T) {
	nm := namesFor("/var/lib/corral-lab")
	for _, n := range []string{nm.bridge(), nm.hostVeth(254), nm.peerVeth(254)} {
		if len(n) > 15 {
			t.Errorf("link name %q is longer than IFNAMSIZ-1", n)
		}
	}
	if namesFor("/a").hash == namesFor("/b").hash {
		t.Error("two directories got the same names")
	}
	a, _ := nm.defaultPrefix()
	if a < 16 || a > 239 {
		t.Errorf("second octet %d out of 16..239", a)
	}
}

func TestNextAddressSkipsUsed(t *testing.T) {
	st := &State{Prefix: "10.1.2", Nodes: []*Node{{Index: 1, Address: "10.1.2.10"}, {Index: 2, Address: "10.1.2.11"}}}
	if idx, addr := st.nextAddress(); idx != 3 || addr != "10.1.2.12" {
		t.Fatalf("nextAddress = %d %s, want 3 10.1.2.12", idx, addr)
	}
}

func TestStandinLayer(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "corral")
	if err := os.WriteFile(bin, []byte("#!binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := standinLayer(bin)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(bytes.NewReader(data))
	seen := map[string]*tar.Header{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		seen[h.Name] = h
	}
	for _, p := range []string{"tmp/", "etc/passwd", "etc/group", standinPath, "usr/local/bin/kube-proxy"} {
		if seen[p] == nil {
			t.Errorf("layer lacks %s", p)
		}
	}
	if h := seen["usr/local/bin/kube-proxy"]; h != nil && (h.Typeflag != tar.TypeLink || h.Linkname != standinPath) {
		t.Errorf("kube-proxy is %v -> %q, want a hard link to %s", h.Typeflag, h.Linkname, standinPath)
	}
	img, err := StandinImage(bin)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if len(cf.Config.Entrypoint) != 1 || cf.Config.Entrypoint[0] != "/"+standinPath {
		t.Errorf("entrypoint %q", cf.Config.Entrypoint)
	}
	found := false
	for _, e := range cf.Config.Env {
		found = found || e == "CORRAL_STANDIN=1"
	}
	if !found {
		t.Errorf("env %q lacks CORRAL_STANDIN=1", cf.Config.Env)
	}
}

func TestStateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	st := &State{Dir: dir, Prefix: "10.9.9", Nodes: []*Node{{Name: "server-1", Role: RoleServer, Index: 1, Address: "10.9.9.10"}}}
	if _, err := st.addAgent("worker-1", "disktype=ssd"); err != nil {
		t.Fatal(err)
	}
	if err := st.save(); err != nil {
		t.Fatal(err)
	}
	got, err := loadState(dir)
	if err != nil || got == nil {
		t.Fatalf("loadState: %v", err)
	}
	w := got.Node("worker-1")
	if w == nil || w.Role != RoleAgent || w.Address != "10.9.9.11" {
		t.Fatalf("worker-1 = %+v", w)
	}
	if none, err := loadState(t.TempDir()); none != nil || err != nil {
		t.Fatalf("loadState of an empty dir = %v, %v", none, err)
	}
}

func TestStandinForHostNetworkImages(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "corral")
	if err := os.WriteFile(bin, []byte("#!binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	base, err := StandinImage(bin)
	if err != nil {
		t.Fatal(err)
	}
	for ref, want := range map[string]string{"prom/node-exporter:latest": "WORKLOAD_LISTEN=:9100", "nginx:1.25": ""} {
		img, err := StandinFor(base, ref)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		for _, e := range cf.Config.Env {
			if len(e) > 16 && e[:16] == "WORKLOAD_LISTEN=" {
				got = e
			}
		}
		if got != want {
			t.Errorf("%s: listen env %q, want %q", ref, got, want)
		}
	}
}
