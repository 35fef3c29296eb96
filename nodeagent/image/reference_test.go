package image

import (
	"errors"
	"strings"
	"testing"
)

func TestParseReference(t *testing.T) {
	const d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	tests := []struct {
		in, want string
	}{
		{"nginx:1.25", "index.docker.io/library/nginx:1.25"},
		{"nginx", "index.docker.io/library/nginx:latest"},
		{"docker.io/library/nginx", "index.docker.io/library/nginx:latest"},
		{"rancher/pause:3.6", "index.docker.io/rancher/pause:3.6"},
		{"registry.k8s.io/kube-proxy:v1.28.0", "registry.k8s.io/kube-proxy:v1.28.0"},
		{"localhost:5000/app", "localhost:5000/app:latest"},
		{"10.0.0.1:5000/team/app:v2", "10.0.0.1:5000/team/app:v2"},
		{"nginx@" + d, "index.docker.io/library/nginx@" + d},
		{"nginx:1.25@" + d, "index.docker.io/library/nginx@" + d},
	}
	for _, tt := range tests {
		r, err := ParseReference(tt.in)
		if err != nil {
			t.Errorf("ParseReference(%q): %v", tt.in, err)
			continue
		}
		if r.Name() != tt.want {
			t.Errorf("ParseReference(%q) = %q, want %q", tt.in, r.Name(), tt.want)
		}
	}
	for _, bad := range []string{"", " nginx", "Nginx:1", "nginx:", "nginx@sha256:123", "a//b"} {
		if _, err := ParseReference(bad); !errors.Is(err, ErrInvalidImageName) {
			t.Errorf("ParseReference(%q) error = %v, want ErrInvalidImageName", bad, err)
		}
	}
}

func TestResolvePolicy(t *testing.T) {
	const d = "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	tests := []struct {
		policy, ref, want string
	}{
		{"", "nginx", PullAlways},
		{"", "nginx:latest", PullAlways},
		{"", "nginx:1.25", PullIfNotPresent},
		{"", "nginx" + d, PullIfNotPresent},
		{"Never", "nginx", PullNever},
		{"Always", "nginx:1.25", PullAlways},
		{"IfNotPresent", "nginx", PullIfNotPresent},
	}
	for _, tt := range tests {
		r, err := ParseReference(tt.ref)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ResolvePolicy(tt.policy, r)
		if err != nil || got != tt.want {
			t.Errorf("ResolvePolicy(%q, %q) = %q, %v; want %q", tt.policy, tt.ref, got, err, tt.want)
		}
	}
	r, _ := ParseReference("nginx")
	if _, err := ResolvePolicy("always", r); !errors.Is(err, ErrInvalidPolicy) {
		t.Errorf("ResolvePolicy(always) error = %v, want ErrInvalidPolicy", err)
	}
}

func TestParseRegistries(t *testing.T) {
	good := `
mirrors:
  docker.io:
    endpoint:
      - "http://10.0.0.1:5000"
      - "https://mirror.example/v2"
    rewrite:
      "^rancher/(.*)": "mirrored/rancher/$1"
  "*":
    endpoint: ["http://10.0.0.2:5000"]
configs:
  "10.0.0.1:5000":
    auth:
      username: user
      password: pass
    tls:
      insecure_skip_verify: true
  "registry.example":
    auth:
      identitytoken: tok
`
	r, err := ParseRegistries([]byte(good))
	if err != nil {
		t.Fatalf("ParseRegistries: %v", err)
	}
	if got := r.Mirrors["docker.io"].Endpoints; len(got) != 2 {
		t.Errorf("docker.io endpoints = %v", got)
	}
	if c := r.Configs["10.0.0.1:5000"]; c.Auth == nil || c.Auth.Username != "user" || c.TLS == nil || !c.TLS.InsecureSkipVerify {
		t.Errorf("configs[10.0.0.1:5000] = %+v", c)
	}
	if c := r.Configs["registry.example"]; c.Auth == nil || c.Auth.IdentityToken != "tok" {
		t.Errorf("configs[registry.example] = %+v", c)
	}

	bad := map[string]string{
		"unknown field":    "mirrors:\n  docker.io:\n    endpoints: [\"http://x\"]\n",
		"bad scheme":       "mirrors:\n  docker.io:\n    endpoint: [\"ftp://x\"]\n",
		"path":             "mirrors:\n  docker.io:\n    endpoint: [\"https://x/some/path\"]\n",
		"bad rewrite":      "mirrors:\n  docker.io:\n    endpoint: [\"https://x\"]\n    rewrite:\n      \"(\": \"y\"\n",
		"bad auth field":   "configs:\n  x:\n    auth:\n      user: u\n",
		"not a yaml map":   "mirrors: [1, 2]\n",
		"endpoint no host": "mirrors:\n  x:\n    endpoint: [\"http://\"]\n",
	}
	for what, doc := range bad {
		if _, err := ParseRegistries([]byte(doc)); err == nil {
			t.Errorf("%s: ParseRegistries accepted %q", what, doc)
		}
	}
}

func TestEndpoints(t *testing.T) {
	regs := &Registries{Mirrors: map[string]Mirror{
		"docker.io": {
			Endpoints: []string{"http://10.0.0.1:5000", "mirror.example"},
			Rewrites:  map[string]string{"^rancher/(.*)$": "mirrored/$1"},
		},
		"*":                 {Endpoints: []string{"http://10.0.0.2:5000"}},
		"self.example:5000": {Endpoints: []string{"http://self.example:5000"}},
		"registry.k8s.io":   {},
	}}
	tests := []struct {
		ref          string
		skipUpstream bool
		want         []string
	}{
		{"nginx:1.25", false, []string{
			"10.0.0.1:5000/library/nginx:1.25 http", "mirror.example/library/nginx:1.25 https",
			"index.docker.io/library/nginx:1.25 https"}},
		{"rancher/pause:3.6", true, []string{
			"10.0.0.1:5000/mirrored/pause:3.6 http", "mirror.example/mirrored/pause:3.6 https"}},
		{"quay.io/team/app:v1", false, []string{
			"10.0.0.2:5000/team/app:v1 http", "quay.io/team/app:v1 https"}},
		{"self.example:5000/app:v1", false, []string{"self.example:5000/app:v1 http"}},
		{"registry.k8s.io/pause:3.9", false, []string{"registry.k8s.io/pause:3.9 https"}},
	}
	for _, tt := range tests {
		r, err := ParseReference(tt.ref)
		if err != nil {
			t.Fatal(err)
		}
		eps, err := regs.endpoints(r, tt.skipUpstream)
		if err != nil {
			t.Fatalf("endpoints(%s): %v", tt.ref, err)
		}
		var got []string
		for _, ep := range eps {
			got = append(got, ep.ref.Name()+" "+ep.ref.Context().Scheme())
		}
		if strings.Join(got, "; ") != strings.Join(tt.want, "; ") {
			t.Errorf("endpoints(%s) =\n  %v\nwant\n  %v", tt.ref, got, tt.want)
		}
	}
	r, _ := ParseReference("registry.k8s.io/pause:3.9")
	if _, err := regs.endpoints(r, true); err == nil {
		t.Error("endpoints with no mirror and upstream disabled: no error")
	}
}
