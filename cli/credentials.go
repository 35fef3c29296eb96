package cli

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/corral-dev/corral/pki"
)

// connection is what one invocation dials: the servers, and the TLS
// material that proves who the user is and which servers to trust. Each
// piece comes from a flag or from the config file; the from fields say
// which, for error messages.
type connection struct {
	servers []string
	caPEM   []byte
	certPEM []byte
	keyPEM  []byte

	caFrom, certFrom, keyFrom string
	// config is the config file read, "" when none was found.
	config string
	// legacyToken is set when the config still holds a bearer token.
	legacyToken bool
}

// connection resolves the servers and credentials this invocation uses:
// --server, --certificate-authority, --client-certificate and --client-key
// override what the config file says.
func (g *globals) connection() (*connection, error) {
	path, _, err := g.findConfig()
	if err != nil {
		return nil, err
	}
	c := &connection{config: path}
	if path != "" {
		cfg, err := ReadConfig(path)
		if err != nil {
			return nil, err
		}
		c.servers = cfg.Servers
		c.caPEM, c.certPEM, c.keyPEM = cfg.CertificateAuthorityData, cfg.ClientCertificateData, cfg.ClientKeyData
		from := "config " + path
		c.caFrom, c.certFrom, c.keyFrom = from, from, from
		c.legacyToken = cfg.legacyToken
	}
	if g.servers != "" {
		c.servers = splitList(g.servers)
	}
	if len(c.servers) == 0 {
		if path == "" {
			return nil, fmt.Errorf("no configuration found (looked in %s); pass --server HOST:PORT", configLookupOrder)
		}
		return nil, fmt.Errorf("config %s names no servers; pass --server HOST:PORT", path)
	}
	if err := readFlagFile(&c.caPEM, &c.caFrom, "certificate-authority", g.caFile, false); err != nil {
		return nil, err
	}
	if err := readFlagFile(&c.certPEM, &c.certFrom, "client-certificate", g.certFile, false); err != nil {
		return nil, err
	}
	if err := readFlagFile(&c.keyPEM, &c.keyFrom, "client-key", g.keyFile, true); err != nil {
		return nil, err
	}
	return c, nil
}

// readFlagFile replaces *data with the contents of the PEM file a flag
// names, if it names one. A private key file must be its owner's alone.
func readFlagFile(data *[]byte, from *string, flag, path string, private bool) error {
	if path == "" {
		return nil
	}
	if private {
		if err := pki.CheckPrivate(path); err != nil {
			return err
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("--%s: %w", flag, err)
	}
	*data, *from = b, "--"+flag+" "+path
	return nil
}

// whereToGetConfig ends the errors for missing credentials.
const whereToGetConfig = "use the admin.conf a server wrote, or one from `corral user create`"

// credentials checks the TLS material and builds the credentials to dial
// with: the cluster CA to verify servers against, and the user's
// certificate to present.
func (c *connection) credentials() (*pki.Credentials, error) {
	switch {
	case len(c.certPEM) == 0 && strings.HasPrefix(c.keyFrom, "--"):
		return nil, errors.New("--client-key needs --client-certificate")
	case len(c.certPEM) == 0:
		return nil, c.missing("client certificate", "--client-certificate and --client-key")
	case len(c.keyPEM) == 0 && strings.HasPrefix(c.certFrom, "--"):
		return nil, errors.New("--client-certificate needs --client-key")
	case len(c.keyPEM) == 0:
		return nil, c.missing("client key", "--client-key")
	}
	if len(c.caPEM) == 0 {
		return nil, c.missing("certificate authority", "--certificate-authority")
	}
	ca, err := pki.ParseCA(c.caPEM, nil)
	if err != nil {
		return nil, fmt.Errorf("certificate authority from %s: %w", c.caFrom, err)
	}
	from := c.certFrom
	if c.keyFrom != c.certFrom {
		from += " and " + c.keyFrom
	}
	pair, err := pki.KeyPair(c.certPEM, c.keyPEM, nil)
	if err != nil {
		return nil, fmt.Errorf("client certificate from %s: %w", from, err)
	}
	// A server refuses a client certificate after the TLS 1.3 handshake
	// has completed on the client's side, so the client sees only a
	// broken connection: check here what the server would check.
	if _, err := pair.Leaf.Verify(x509.VerifyOptions{
		Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, CurrentTime: time.Now(),
	}); err != nil {
		if c.caFrom != c.certFrom {
			return nil, fmt.Errorf("client certificate from %s (checked against the certificate authority from %s): %w", c.certFrom, c.caFrom, err)
		}
		return nil, fmt.Errorf("client certificate from %s: %w", c.certFrom, err)
	}
	return pki.NewCredentials(ca.Cert, pair), nil
}

// missing is the error for a piece of TLS material that neither the
// config nor a flag gave.
func (c *connection) missing(what, flags string) error {
	if c.config == "" {
		return fmt.Errorf("no %s: pass %s, or --config with the admin.conf a server wrote or one from `corral user create`", what, flags)
	}
	msg := fmt.Sprintf("config %s has no %s: %s", c.config, what, whereToGetConfig)
	if c.legacyToken {
		msg += " (its bearer token is no longer accepted: corral authenticates users by client certificate)"
	}
	return errors.New(msg)
}
