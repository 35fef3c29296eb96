package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/corral-dev/corral/pki"
)

// Config file identity.
const (
	// ConfigAPIVersion is the apiVersion of a CLI config file.
	ConfigAPIVersion = "corral/v1"
	// ConfigKind is the kind of a CLI config file.
	ConfigKind = "Config"
)

// DefaultAdminConf is the last place the CLI looks for its config: the
// admin.conf a default single-server install writes.
const DefaultAdminConf = "/var/lib/corral/admin.conf"

// Where the CLI looks for its config, after --config and $CORRAL_CONFIG.
const (
	configEnv         = "CORRAL_CONFIG"
	userConfigPath    = ".corral/config" // under the home directory
	configLookupOrder = "--config, $CORRAL_CONFIG, ~/.corral/config, " + DefaultAdminConf
)

// Config is the CLI's config file (YAML), a kubeconfig cut down to one
// cluster and one user:
//
//	apiVersion: corral/v1
//	kind: Config
//	servers: [10.0.0.1:7443, 10.0.0.2:7443]
//	certificateAuthorityData: <base64 of the cluster CA certificate, PEM>
//	clientCertificateData: <base64 of the user's certificate, PEM>
//	clientKeyData: <base64 of the user's private key, PEM>
//
// The CLI talks to the servers over mutual TLS only: it trusts a server
// whose certificate chains to certificateAuthorityData and names
// "corral-server", and presents clientCertificateData, whose subject says
// who the user is and whether they are an admin or a viewer (package
// pki). A server writes an admin's config to DATA_DIR/admin.conf; `corral
// user create` makes one for another user. A file holding clientKeyData
// must be readable and writable by its owner alone (mode 0600): ReadConfig
// refuses it otherwise, as ssh refuses an open private key. The global
// flags --certificate-authority, --client-certificate and --client-key
// (PEM files) override the data fields.
type Config struct {
	APIVersion               string   `json:"apiVersion"`
	Kind                     string   `json:"kind"`
	Servers                  []string `json:"servers"`
	CertificateAuthorityData []byte   `json:"certificateAuthorityData,omitempty"`
	ClientCertificateData    []byte   `json:"clientCertificateData,omitempty"`
	ClientKeyData            []byte   `json:"clientKeyData,omitempty"`

	// legacyToken records that the file still holds the bearer token of
	// earlier releases, which no server accepts any more; the error for
	// a missing client certificate says so.
	legacyToken bool
}

// legacyConfig holds the fields of earlier config formats.
type legacyConfig struct {
	Token string `json:"token"`
}

// ReadConfig reads and checks a config file. A file that holds a client
// key is refused unless only its owner may read it.
func ReadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	var c Config
	if err := yaml.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("parse config %s: %w", path, err)
	}
	if c.APIVersion != "" && c.APIVersion != ConfigAPIVersion {
		return nil, fmt.Errorf("config %s: apiVersion %q is not %q", path, c.APIVersion, ConfigAPIVersion)
	}
	if c.Kind != "" && c.Kind != ConfigKind {
		return nil, fmt.Errorf("config %s: kind %q is not %q", path, c.Kind, ConfigKind)
	}
	if len(c.ClientKeyData) > 0 {
		if err := pki.CheckPrivate(path); err != nil {
			return nil, err
		}
	}
	var legacy legacyConfig
	if err := yaml.Unmarshal(data, &legacy); err == nil { // the same document parsed above
		c.legacyToken = legacy.Token != ""
	}
	return &c, nil
}

// encodeConfig renders c as YAML, filling in apiVersion and kind.
func encodeConfig(c *Config) ([]byte, error) {
	out := *c
	out.APIVersion, out.Kind = ConfigAPIVersion, ConfigKind
	data, err := yaml.Marshal(&out)
	if err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	return data, nil
}

// WriteConfig writes c to path with mode 0600, atomically (temp file and
// rename), filling in apiVersion and kind. Servers use it for admin.conf.
func WriteConfig(path string, c *Config) error {
	data, err := encodeConfig(c)
	if err != nil {
		return err
	}
	return pki.WritePrivate(path, data)
}

// writeNewConfig writes c to path with mode 0600 unless path exists: it
// never replaces a file. A partly written file is removed.
func writeNewConfig(path string, c *Config) error {
	data, err := encodeConfig(c)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s already exists: refusing to overwrite it", path)
	}
	if err != nil {
		return fmt.Errorf("create config: %w", err)
	}
	fail := func(err error) error {
		_ = f.Close()       // already failing
		_ = os.Remove(path) // we created it; a partial config is worse than none
		return err
	}
	if _, err := f.Write(data); err != nil {
		return fail(fmt.Errorf("write %s: %w", path, err))
	}
	if err := f.Sync(); err != nil {
		return fail(fmt.Errorf("sync %s: %w", path, err))
	}
	if err := f.Close(); err != nil {
		return fail(fmt.Errorf("close %s: %w", path, err))
	}
	return nil
}

// findConfig returns the path of the config file to use and whether it was
// named explicitly (--config or $CORRAL_CONFIG). An implicit candidate that
// does not exist is skipped; "" means none was found.
func (g *globals) findConfig() (path string, explicit bool, err error) {
	if g.configPath != "" {
		return g.configPath, true, nil
	}
	if p := g.getenv(configEnv); p != "" {
		return p, true, nil
	}
	var candidates []string
	if home, herr := g.homeDir(); herr == nil && home != "" {
		candidates = append(candidates, filepath.Join(home, userConfigPath))
	}
	if g.adminConf != "" {
		candidates = append(candidates, g.adminConf)
	}
	for _, p := range candidates {
		_, serr := os.Stat(p)
		switch {
		case serr == nil:
			return p, false, nil
		case errors.Is(serr, fs.ErrNotExist):
			continue
		default:
			return "", false, fmt.Errorf("config %s: %w", p, serr)
		}
	}
	return "", false, nil
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
