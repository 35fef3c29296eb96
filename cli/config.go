package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"
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

// Config is the CLI's config file (YAML):
//
//	apiVersion: corral/v1
//	kind: Config
//	servers: [10.0.0.1:7443, 10.0.0.2:7443]
//	token: <admin bearer token>
type Config struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Servers    []string `json:"servers"`
	Token      string   `json:"token,omitempty"`
}

// ReadConfig reads and checks a config file.
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
	return &c, nil
}

// WriteConfig writes c to path with mode 0600, atomically (temp file and
// rename), filling in apiVersion and kind. Servers use it for admin.conf.
func WriteConfig(path string, c *Config) error {
	out := *c
	out.APIVersion, out.Kind = ConfigAPIVersion, ConfigKind
	data, err := yaml.Marshal(&out)
	if err != nil {
		return fmt.Errorf("encode config: %w", err)
	}
	return writeFileAtomic(path, data, 0o600)
}

// writeFileAtomic writes data to a temporary file beside path, syncs it and
// renames it into place.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create temp file for %s: %w", path, err)
	}
	tmp := f.Name()
	cleanup := func(err error) error {
		_ = f.Close()      // already failing; the close error adds nothing
		_ = os.Remove(tmp) // best effort: the temp file is garbage either way
		return err
	}
	if _, err := f.Write(data); err != nil {
		return cleanup(fmt.Errorf("write %s: %w", tmp, err))
	}
	if err := f.Chmod(mode); err != nil {
		return cleanup(fmt.Errorf("chmod %s: %w", tmp, err))
	}
	if err := f.Sync(); err != nil {
		return cleanup(fmt.Errorf("sync %s: %w", tmp, err))
	}
	if err := f.Close(); err != nil {
		return cleanup(fmt.Errorf("close %s: %w", tmp, err))
	}
	if err := os.Rename(tmp, path); err != nil {
		return cleanup(fmt.Errorf("rename %s to %s: %w", tmp, path, err))
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

// connection resolves the servers and token this invocation talks to:
// --server and --token override what the config file says.
func (g *globals) connection() (servers []string, token string, err error) {
	path, _, err := g.findConfig()
	if err != nil {
		return nil, "", err
	}
	var cfg *Config
	if path != "" {
		if cfg, err = ReadConfig(path); err != nil {
			return nil, "", err
		}
		servers, token = cfg.Servers, cfg.Token
	}
	if g.servers != "" {
		servers = splitList(g.servers)
	}
	if g.token != "" {
		token = g.token
	}
	if len(servers) == 0 {
		if path == "" {
			return nil, "", fmt.Errorf("no configuration found (looked in %s); pass --server HOST:PORT", configLookupOrder)
		}
		return nil, "", fmt.Errorf("config %s names no servers; pass --server HOST:PORT", path)
	}
	return servers, token, nil
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
