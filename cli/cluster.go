package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	corralpb "github.com/corral-dev/corral/proto"
)

// newClusterCommand returns `corral cluster` with its Raft membership
// subcommands.
func newClusterCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Inspect and change the set of servers (Raft members)",
		Args:  cobra.ArbitraryArgs,
		RunE:  g.groupRunE(),
	}
	cmd.AddCommand(newClusterMembersCommand(g), newClusterRemoveServerCommand(g))
	return cmd
}

// newClusterMembersCommand returns `corral cluster members`.
func newClusterMembersCommand(g *globals) *cobra.Command {
	noHeaders := false
	cmd := &cobra.Command{
		Use:   "members",
		Short: "List the servers of the cluster and their Raft state",
		RunE: g.runE(func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unexpected arguments: %s", strings.Join(args, " "))
			}
			var members []*corralpb.ServerMember
			err := g.do(ctx, func(ctx context.Context, c corralpb.ClusterClient) error {
				resp, err := c.Members(ctx, &corralpb.MembersRequest{})
				if err != nil {
					return fmt.Errorf("list members: %w", err)
				}
				members = resp.GetMembers()
				return nil
			})
			if err != nil {
				return err
			}
			return printMembers(g, members, noHeaders)
		}),
	}
	cmd.Flags().BoolVar(&noHeaders, "no-headers", false, "Don't print headers")
	return cmd
}

// printMembers writes the members table.
func printMembers(g *globals, members []*corralpb.ServerMember, noHeaders bool) error {
	tw := newTabWriter(g.out)
	if !noHeaders {
		fmt.Fprintln(tw, "NAME\tRAFT-ADDRESS\tAPI-ADDRESS\tSTATE\tVOTER\tLAST-INDEX")
	}
	for _, m := range members {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", m.GetName(), orNone(m.GetRaftAddr()), orNone(m.GetApiAddr()),
			m.GetRaftState(), strconv.FormatBool(m.GetVoter()), strconv.FormatUint(m.GetLastIndex(), 10))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write members: %w", err)
	}
	return nil
}

// newClusterRemoveServerCommand returns `corral cluster remove-server`.
func newClusterRemoveServerCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "remove-server NAME",
		Short:   "Remove a server from the Raft configuration",
		Example: "  corral cluster remove-server server3",
		RunE: g.runE(func(ctx context.Context, args []string) error {
			if len(args) != 1 {
				return errors.New("exactly one server NAME is required")
			}
			err := g.do(ctx, func(ctx context.Context, c corralpb.ClusterClient) error {
				if _, err := c.RemoveServer(ctx, &corralpb.RemoveServerRequest{Name: args[0]}); err != nil {
					return fmt.Errorf("remove server %s: %w", args[0], err)
				}
				return nil
			})
			if err != nil {
				return err
			}
			g.printf("server %q removed\n", args[0])
			return nil
		}),
	}
}
