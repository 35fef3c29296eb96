package server

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/hashicorp/go-memdb"
	"sigs.k8s.io/yaml"
)

// ClientConfig is the CLI configuration file (admin.conf).
type ClientConfig struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Servers    []string `json:"servers"`
	Token      string   `json:"token"`
}

// writeClientFiles keeps DATA_DIR/admin.conf (the CLI config: every server's
// API address, this one first, and the admin token) and DATA_DIR/token (the
// join token) in step with the replicated cluster configuration and member
// list. Both are mode 0600.
func (s *Server) writeClientFiles(ctx context.Context) {
	for {
		st := s.rs.State()
		ws := memdb.NewWatchSet()
		ws.Add(st.AbandonCh())
		cc, err1 := st.ClusterConfig(ws)
		members, err2 := st.Members(ws)
		if err1 == nil && err2 == nil && cc != nil {
			servers := []string{s.cfg.APIAddr}
			var others []string
			for _, m := range members {
				if m.GetApiAddr() != s.cfg.APIAddr {
					others = append(others, m.GetApiAddr())
				}
			}
			sort.Strings(others)
			conf := ClientConfig{APIVersion: "corral/v1", Kind: "Config", Servers: append(servers, others...), Token: cc.GetAdminToken()}
			if err := s.writeFiles(conf, cc.GetJoinToken()); err != nil {
				s.log.Error("write client files", "err", err)
			}
		}
		if err := ws.WatchCtx(ctx); err != nil {
			return
		}
	}
}

func (s *Server) writeFiles(conf ClientConfig, joinToken string) error {
	data, err := yaml.Marshal(conf)
	if err != nil {
		return fmt.Errorf("encode admin.conf: %w", err)
	}
	if err := writeIfChanged(filepath.Join(s.cfg.DataDir, "admin.conf"), data); err != nil {
		return err
	}
	return writeIfChanged(filepath.Join(s.cfg.DataDir, "token"), []byte(joinToken+"\n"))
}

// writeIfChanged replaces path atomically (temp file and rename) with data
// at mode 0600, unless it already holds exactly that.
func writeIfChanged(path string, data []byte) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
