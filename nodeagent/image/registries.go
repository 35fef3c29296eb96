package image

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"sigs.k8s.io/yaml"
)

// Registries is the agent's registry configuration, read from a file shaped like K3s's
// registries.yaml:
//
//	mirrors:
//	  docker.io:
//	    endpoint: ["http://10.0.0.1:5000"]
//	    rewrite:
//	      "^rancher/(.*)": "mirrored/rancher/$1"
//	  "*":
//	    endpoint: ["http://10.0.0.1:5000"]
//	configs:
//	  "10.0.0.1:5000":
//	    auth: {username: u, password: p}
//	    tls: {insecure_skip_verify: true}
//
// A pull tries the endpoints of the registry's own mirror entry (or of "*" when the
// registry has none) in order, then the registry itself, as containerd does.
type Registries struct {
	// Mirrors maps a registry name ("docker.io", "registry.k8s.io", "host:port" or "*")
	// to the endpoints that serve it.
	Mirrors map[string]Mirror `json:"mirrors,omitempty"`
	// Configs maps a registry or endpoint host ("host" or "host:port") to its
	// credentials and TLS settings.
	Configs map[string]RegistryConfig `json:"configs,omitempty"`
}

// Mirror lists the endpoints that serve one registry.
type Mirror struct {
	// Endpoints are URLs ("http://10.0.0.1:5000", "https://mirror.example"), tried in
	// order. http:// endpoints are spoken to in plain HTTP. A path other than "/v2" is
	// not supported.
	Endpoints []string `json:"endpoint,omitempty"`
	// Rewrites maps a regular expression over the repository path ("library/nginx") to
	// its replacement ("$1" expansion) used at this mirror's endpoints only. Patterns are
	// tried in lexical order and the first match applies.
	Rewrites map[string]string `json:"rewrite,omitempty"`
}

// RegistryConfig holds credentials and TLS settings for one host.
type RegistryConfig struct {
	// Auth holds the credentials; nil means anonymous.
	Auth *Auth `json:"auth,omitempty"`
	// TLS holds TLS settings; nil means the system's defaults.
	TLS *TLSConfig `json:"tls,omitempty"`
}

// Auth holds registry credentials; the fields mean what they mean in
// ~/.docker/config.json.
type Auth struct {
	// Username and Password are basic credentials.
	Username string `json:"username,omitempty"`
	// Password goes with Username.
	Password string `json:"password,omitempty"`
	// Auth is base64("username:password").
	Auth string `json:"auth,omitempty"`
	// IdentityToken is an OAuth2 refresh token exchanged for a registry token.
	IdentityToken string `json:"identitytoken,omitempty"`
}

// TLSConfig holds TLS settings for an https endpoint.
type TLSConfig struct {
	// InsecureSkipVerify disables verification of the server's certificate.
	InsecureSkipVerify bool `json:"insecure_skip_verify,omitempty"`
	// CAFile is a PEM bundle of extra roots to trust.
	CAFile string `json:"ca_file,omitempty"`
	// CertFile and KeyFile are a client certificate and key in PEM.
	CertFile string `json:"cert_file,omitempty"`
	// KeyFile goes with CertFile.
	KeyFile string `json:"key_file,omitempty"`
}

// LoadRegistries reads a registries.yaml file. A missing file is an empty
// configuration: every registry is pulled from directly.
func LoadRegistries(path string) (*Registries, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &Registries{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read registries config: %w", err)
	}
	r, err := ParseRegistries(data)
	if err != nil {
		return nil, fmt.Errorf("registries config %s: %w", path, err)
	}
	return r, nil
}

// ParseRegistries parses and checks registries.yaml content. Unknown fields, endpoints
// that are not http(s) URLs and rewrite patterns that do not compile are errors naming
// the field.
func ParseRegistries(data []byte) (*Registries, error) {
	var r Registries
	if err := yaml.UnmarshalStrict(data, &r); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	for key, m := range r.Mirrors {
		for i, ep := range m.Endpoints {
			if _, _, err := parseEndpoint(ep); err != nil {
				return nil, fmt.Errorf("mirrors[%q].endpoint[%d]: %w", key, i, err)
			}
		}
		for pat := range m.Rewrites {
			if _, err := regexp.Compile(pat); err != nil {
				return nil, fmt.Errorf("mirrors[%q].rewrite[%q]: %w", key, pat, err)
			}
		}
	}
	return &r, nil
}

// parseEndpoint splits an endpoint URL into its host and whether it is plain HTTP.
func parseEndpoint(ep string) (host string, plain bool, err error) {
	raw := ep
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", false, fmt.Errorf("endpoint %q: %w", ep, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", false, fmt.Errorf("endpoint %q: scheme must be http or https", ep)
	}
	if u.Host == "" {
		return "", false, fmt.Errorf("endpoint %q: no host", ep)
	}
	if p := strings.TrimSuffix(u.Path, "/"); p != "" && p != "/v2" {
		return "", false, fmt.Errorf("endpoint %q: path %q is not supported", ep, u.Path)
	}
	return u.Host, u.Scheme == "http", nil
}

// endpoint is one place a pull may fetch a reference from.
type endpoint struct {
	name   string         // as shown in errors and logs
	ref    name.Reference // the reference at this endpoint
	host   string         // the key for Configs
	mirror bool
}

// mirrorFor returns the mirror entry serving registry: its own, or "*".
func (r *Registries) mirrorFor(registry string) (Mirror, bool) {
	for _, k := range registryKeys(registry) {
		if m, ok := r.Mirrors[k]; ok {
			return m, true
		}
	}
	m, ok := r.Mirrors["*"]
	return m, ok
}

// endpoints lists where to fetch ref from: the mirror endpoints in order, then the
// registry itself unless skipUpstream is set or a mirror endpoint already is that host.
func (r *Registries) endpoints(ref name.Reference, skipUpstream bool) ([]endpoint, error) {
	registry := ref.Context().RegistryStr()
	var eps []endpoint
	upstreamListed := false
	if m, ok := r.mirrorFor(registry); ok {
		repo, err := rewriteRepository(m.Rewrites, ref.Context().RepositoryStr())
		if err != nil {
			return nil, err
		}
		for _, raw := range m.Endpoints {
			host, plain, err := parseEndpoint(raw)
			if err != nil {
				return nil, err
			}
			mref, err := mirrorReference(ref, host, plain, repo)
			if err != nil {
				return nil, err
			}
			eps = append(eps, endpoint{name: raw, ref: mref, host: host, mirror: true})
			upstreamListed = upstreamListed || slices.Contains(registryKeys(registry), host)
		}
	}
	if !skipUpstream && !upstreamListed {
		eps = append(eps, endpoint{name: registry, ref: ref, host: registry})
	}
	if len(eps) == 0 {
		return nil, fmt.Errorf("no endpoint for registry %s: it has no mirror and the default endpoint is disabled", registry)
	}
	return eps, nil
}

// rewriteRepository applies the first matching rewrite rule, patterns in lexical order.
func rewriteRepository(rules map[string]string, repo string) (string, error) {
	pats := make([]string, 0, len(rules))
	for p := range rules {
		pats = append(pats, p)
	}
	slices.Sort(pats)
	for _, p := range pats {
		re, err := regexp.Compile(p)
		if err != nil {
			return "", fmt.Errorf("rewrite %q: %w", p, err)
		}
		if re.MatchString(repo) {
			return re.ReplaceAllString(repo, rules[p]), nil
		}
	}
	return repo, nil
}

// mirrorReference is ref's tag or digest in repository repo at host.
func mirrorReference(ref name.Reference, host string, plain bool, repo string) (name.Reference, error) {
	var opts []name.Option
	if plain {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(host, opts...)
	if err != nil {
		return nil, fmt.Errorf("mirror host %q: %w", host, err)
	}
	r := reg.Repo(repo)
	if d, ok := ref.(name.Digest); ok {
		return r.Digest(d.DigestStr()), nil
	}
	return r.Tag(ref.Identifier()), nil
}

// config returns the Configs entry for host; Docker Hub answers to its aliases.
func (r *Registries) config(host string) RegistryConfig {
	keys := registryKeys(host)
	if host == "registry-1.docker.io" {
		keys = append(keys, dockerHubAlias, dockerHub)
	}
	for _, k := range keys {
		if c, ok := r.Configs[k]; ok {
			return c
		}
	}
	return RegistryConfig{}
}

// authenticator turns credentials into go-containerregistry's form.
func (a *Auth) authenticator() authn.Authenticator {
	if a == nil || *a == (Auth{}) {
		return authn.Anonymous
	}
	return authn.FromConfig(authn.AuthConfig{
		Username:      a.Username,
		Password:      a.Password,
		Auth:          a.Auth,
		IdentityToken: a.IdentityToken,
	})
}

// transports caches one http.RoundTripper per distinct TLS configuration.
type transports struct {
	mu    sync.Mutex
	cache map[TLSConfig]http.RoundTripper
}

// get returns the transport for TLS settings c (nil: the default transport).
func (t *transports) get(c *TLSConfig) (http.RoundTripper, error) {
	if c == nil || *c == (TLSConfig{}) {
		return remote.DefaultTransport, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if rt, ok := t.cache[*c]; ok {
		return rt, nil
	}
	cfg := &tls.Config{InsecureSkipVerify: c.InsecureSkipVerify, MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read ca_file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s: no certificate found", c.CAFile)
		}
		cfg.RootCAs = pool
	}
	if c.CertFile != "" || c.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	base, ok := remote.DefaultTransport.(*http.Transport)
	if !ok {
		base = http.DefaultTransport.(*http.Transport)
	}
	tr := base.Clone()
	tr.TLSClientConfig = cfg
	if t.cache == nil {
		t.cache = map[TLSConfig]http.RoundTripper{}
	}
	t.cache[*c] = tr
	return tr, nil
}
