package cli

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/corral-dev/corral/pki"
	corralpb "github.com/corral-dev/corral/proto"
)

// newUserCommand returns `corral user` with create.
func newUserCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Create users: client certificates for the CLI",
		Args:  cobra.ArbitraryArgs,
		RunE:  g.groupRunE(),
	}
	cmd.AddCommand(newUserCreateCommand(g))
	return cmd
}

// userCreateOptions are the flags of `corral user create`.
type userCreateOptions struct {
	g          *globals
	role       string
	outputFile string
}

// newUserCreateCommand returns `corral user create`.
func newUserCreateCommand(g *globals) *cobra.Command {
	o := &userCreateOptions{g: g}
	cmd := &cobra.Command{
		Use:   "create NAME --role admin|view [--output-file FILE]",
		Short: "Create a user's key and certificate, and write a config file for them",
		Long: `Create a user: make a private key on this machine, have the cluster CA sign a
certificate for it naming the user and their role, and write a complete CLI
config (servers, CA, certificate and key) to --output-file, or to standard
output without it. The key never leaves this machine.

Roles: admin may do everything; view may only read. The certificate is valid
for a year. Hand the config over with care: whoever holds it is that user to
the cluster. Only admins may create users.`,
		Example: `  # A read-only user
  corral user create alice --role view --output-file alice.conf

  # Another admin, printed to standard output (umask keeps the key private)
  (umask 077; corral user create bob --role admin > bob.conf)`,
		RunE: g.runE(o.run),
	}
	cmd.Flags().StringVar(&o.role, "role", "", "The user's role: admin (everything) or view (read only); required")
	cmd.Flags().StringVar(&o.outputFile, "output-file", "", "Write the config to this file (mode 0600; never overwritten) instead of standard output")
	return cmd
}

// run creates the user named by args.
func (o *userCreateOptions) run(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return errors.New("exactly one user NAME is required")
	}
	name := args[0]
	role, err := userRole(o.role)
	if err != nil {
		return err
	}
	if o.outputFile != "" {
		if _, err := os.Lstat(o.outputFile); err == nil {
			return fmt.Errorf("%s already exists: refusing to overwrite it", o.outputFile)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("--output-file: %w", err)
		}
	}
	id := pki.Identity{Role: role, Name: name}
	key, err := pki.NewKey()
	if err != nil {
		return err
	}
	csr, err := pki.NewCSR(key, id)
	if err != nil {
		return err
	}
	keyPEM, err := pki.EncodeKey(key)
	if err != nil {
		return err
	}
	var resp *corralpb.CreateUserResponse
	err = o.g.do(ctx, func(ctx context.Context, c corralpb.ClusterClient) error {
		resp, err = c.CreateUser(ctx, &corralpb.CreateUserRequest{Name: name, Role: string(role), Csr: csr})
		if err != nil {
			return fmt.Errorf("create user %s: %w", name, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := checkUserCert(resp.GetCertPem(), keyPEM, resp.GetCaPem(), id); err != nil {
		return fmt.Errorf("create user %s: the server's answer: %w", name, err)
	}
	servers := resp.GetServers()
	if len(servers) == 0 {
		servers = o.g.dialed
	}
	cfg := &Config{
		Servers:                  servers,
		CertificateAuthorityData: resp.GetCaPem(),
		ClientCertificateData:    resp.GetCertPem(),
		ClientKeyData:            keyPEM,
	}
	if o.outputFile == "" {
		data, err := encodeConfig(cfg)
		if err != nil {
			return err
		}
		o.g.printf("%s", data)
		return nil
	}
	if err := writeNewConfig(o.outputFile, cfg); err != nil {
		return err
	}
	o.g.printf("user %q (%s) created: config written to %s\n", name, role, o.outputFile)
	return nil
}

// userRole parses --role: users are admins or viewers, never servers or
// nodes.
func userRole(s string) (pki.Role, error) {
	switch r := pki.Role(s); r {
	case pki.RoleAdmin, pki.RoleView:
		return r, nil
	case "":
		return "", errors.New("--role is required: admin or view")
	}
	return "", fmt.Errorf("invalid --role %q: must be admin or view", s)
}

// checkUserCert checks what the server signed: a certificate for the key
// made here, naming the identity asked for, that chains to the CA sent
// along and may be used by a client.
func checkUserCert(certPEM, keyPEM, caPEM []byte, want pki.Identity) error {
	ca, err := pki.ParseCA(caPEM, nil)
	if err != nil {
		return err
	}
	pair, err := pki.KeyPair(certPEM, keyPEM, nil)
	if err != nil {
		return fmt.Errorf("certificate: %w", err)
	}
	if _, err := pair.Leaf.Verify(x509.VerifyOptions{
		Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		return fmt.Errorf("certificate: %w", err)
	}
	got, err := pki.IdentityOf(pair.Leaf)
	if err != nil {
		return fmt.Errorf("certificate: %w", err)
	}
	if got != want {
		return fmt.Errorf("the certificate is for %s, not %s", got, want)
	}
	return nil
}
