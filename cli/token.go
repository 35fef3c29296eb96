package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/corral-dev/corral/pki"
	corralpb "github.com/corral-dev/corral/proto"
)

// newTokenCommand returns `corral token` with show and rotate.
func newTokenCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Show or rotate the join tokens that agents and servers join the cluster with",
		Args:  cobra.ArbitraryArgs,
		RunE:  g.groupRunE(),
	}
	cmd.AddCommand(newTokenShowCommand(g), newTokenRotateCommand(g))
	return cmd
}

// newTokenShowCommand returns `corral token show`.
func newTokenShowCommand(g *globals) *cobra.Command {
	role := pki.TokenAgent
	cmd := &cobra.Command{
		Use:   "show [--role agent|server]",
		Short: "Print the join token for new agents (or, with --role server, new servers)",
		Long: `Print a join token: CRL1::ROLE::CAHASH::SECRET.

The token carries the SHA-256 of the cluster CA, so a joining machine checks
the server it talks to before it proves it knows the secret. Anyone holding an
agent token can join a node; anyone holding a server token can join a server.
Only admins may read tokens.`,
		Example: `  # Join a node
  corral agent --server 10.0.0.1:7443 --token "$(corral token show)"

  # Join a server
  corral token show --role server`,
		RunE: g.runE(func(ctx context.Context, args []string) error {
			return g.token(ctx, args, role, false)
		}),
	}
	addTokenRoleFlag(cmd, &role)
	return cmd
}

// newTokenRotateCommand returns `corral token rotate`.
func newTokenRotateCommand(g *globals) *cobra.Command {
	role := pki.TokenAgent
	cmd := &cobra.Command{
		Use:   "rotate [--role agent|server]",
		Short: "Replace a join token: the old token stops working, issued certificates stay valid",
		Long: `Replace the secret of a join token and print the new token.

The old token stops working at once: machines that have not joined yet need
the new one. Agents and servers that already joined keep their certificates,
which stay valid and are renewed as usual, so nothing running is disturbed.`,
		Example: `  # Rotate the agent token after a leak
  corral token rotate

  # Rotate the server token
  corral token rotate --role server`,
		RunE: g.runE(func(ctx context.Context, args []string) error {
			return g.token(ctx, args, role, true)
		}),
	}
	addTokenRoleFlag(cmd, &role)
	return cmd
}

// addTokenRoleFlag adds --role to a token subcommand.
func addTokenRoleFlag(cmd *cobra.Command, role *string) {
	cmd.Flags().StringVar(role, "role", pki.TokenAgent, "Which token: agent (joins nodes) or server (joins servers)")
}

// token shows or rotates the join token of role and prints it.
func (g *globals) token(ctx context.Context, args []string, role string, rotate bool) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(args, " "))
	}
	if role != pki.TokenAgent && role != pki.TokenServer {
		return fmt.Errorf("invalid --role %q: must be %s or %s", role, pki.TokenAgent, pki.TokenServer)
	}
	var token string
	err := g.do(ctx, func(ctx context.Context, c corralpb.ClusterClient) error {
		resp, err := c.Token(ctx, &corralpb.TokenRequest{Role: role, Rotate: rotate})
		if err != nil {
			if rotate {
				return fmt.Errorf("rotate %s token: %w", role, err)
			}
			return fmt.Errorf("show %s token: %w", role, err)
		}
		token = resp.GetToken()
		return nil
	})
	if err != nil {
		return err
	}
	g.printf("%s\n", token)
	return nil
}
