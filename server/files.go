package server

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/hashicorp/go-memdb"
	"sigs.k8s.io/yaml"

	"github.com/corral-dev/corral/pki"
)

// ClientConfig is the CLI configuration file (admin.conf), the same format
// as the CLI's own (cli.Config): the servers, the cluster CA, and a client
// certificate with its key, all PEM.
type ClientConfig struct {
	APIVersion               string   `json:"apiVersion"`
	Kind                     string   `json:"kind"`
	Servers                  []string `json:"servers"`
	CertificateAuthorityData []byte   `json:"certificateAuthorityData,omitempty"`
	ClientCertificateData    []byte   `json:"clientCertificateData,omitempty"`
	ClientKeyData            []byte   `json:"clientKeyData,omitempty"`
}

// adminUser is the name in the admin certificates servers write.
const adminUser = "admin"

// writeClientFiles keeps DATA_DIR/admin.conf (the CLI config: every
// server's API address, this one first, the CA and an admin certificate)
// and DATA_DIR/token (the agent join token) in step with the replicated
// cluster configuration and member list. Both are mode 0600. The admin
// certificate is issued anew when the CA or the servers change and when
// two thirds of its validity have passed.
func (s *Server) writeClientFiles(ctx context.Context) {
	for {
		st := s.rs.State()
		ws := memdb.NewWatchSet()
		ws.Add(st.AbandonCh())
		cc, err1 := st.ClusterConfig(ws)
		members, err2 := st.Members(ws)
		if err1 == nil && err2 == nil && cc != nil && len(cc.GetCaKeyPem()) > 0 {
			servers := []string{s.cfg.APIAddr}
			var others []string
			for _, m := range members {
				if m.GetApiAddr() != s.cfg.APIAddr {
					others = append(others, m.GetApiAddr())
				}
			}
			sort.Strings(others)
			if err := s.writeFiles(append(servers, others...), cc.GetCaCertPem(), cc.GetCaKeyPem(), cc.GetAgentSecret()); err != nil {
				s.log.Error("write client files", "err", err)
			}
		}
		tctx, cancel := context.WithTimeout(ctx, time.Hour)
		err := ws.WatchCtx(tctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		_ = err // a timeout: look at the certificate's age again
	}
}

func (s *Server) writeFiles(servers []string, caPEM, caKeyPEM []byte, agentSecret string) error {
	ca, err := pki.ParseCA(caPEM, caKeyPEM)
	if err != nil {
		return fmt.Errorf("cluster CA: %w", err)
	}
	token := pki.Token{Role: pki.TokenAgent, CAHash: ca.Digest(), Secret: agentSecret}.String()
	if err := writeIfChanged(filepath.Join(s.cfg.DataDir, "token"), []byte(token+"\n")); err != nil {
		return err
	}
	path := filepath.Join(s.cfg.DataDir, "admin.conf")
	if current(path, servers, caPEM) {
		return nil
	}
	certPEM, keyPEM, err := ca.Issue(pki.Identity{Role: pki.RoleAdmin, Name: adminUser}, time.Now(), pki.UserCertValidity)
	if err != nil {
		return err
	}
	data, err := yaml.Marshal(ClientConfig{
		APIVersion: "corral/v1", Kind: "Config", Servers: servers,
		CertificateAuthorityData: caPEM, ClientCertificateData: certPEM, ClientKeyData: keyPEM,
	})
	if err != nil {
		return fmt.Errorf("encode admin.conf: %w", err)
	}
	return pki.WritePrivate(path, data)
}

// current reports whether the admin.conf at path names these servers and
// this CA, and holds an admin certificate from it with a third or more of
// its validity left.
func current(path string, servers []string, caPEM []byte) bool {
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	var conf ClientConfig
	if yaml.Unmarshal(data, &conf) != nil || !slices.Equal(conf.Servers, servers) || !bytes.Equal(conf.CertificateAuthorityData, caPEM) {
		return false
	}
	cert, err := pki.ParseCert(conf.ClientCertificateData)
	if err != nil {
		return false
	}
	life := cert.NotAfter.Sub(cert.NotBefore)
	return time.Now().Before(cert.NotAfter.Add(-life / 3))
}

// writeIfChanged replaces path atomically with data at mode 0600, unless
// it already holds exactly that.
func writeIfChanged(path string, data []byte) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	return pki.WritePrivate(path, data)
}
