package cli

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/corral-dev/corral/api"
)

// newAPIResourcesCommand returns `corral api-resources`.
func newAPIResourcesCommand(g *globals) *cobra.Command {
	noHeaders := false
	output := ""
	cmd := &cobra.Command{
		Use:   "api-resources",
		Short: "Print the supported API resources",
		RunE: g.runE(func(_ context.Context, _ []string) error {
			return printAPIResources(g, noHeaders, output)
		}),
	}
	cmd.Flags().BoolVar(&noHeaders, "no-headers", false, "When using the default output format, don't print headers")
	cmd.Flags().StringVarP(&output, "output", "o", "", "Output format: wide or name")
	return cmd
}

// printAPIResources prints the kinds like kubectl: sorted by group, then
// resource name.
func printAPIResources(g *globals, noHeaders bool, output string) error {
	kinds := api.Kinds()
	sort.SliceStable(kinds, func(i, j int) bool {
		if kinds[i].Group != kinds[j].Group {
			return kinds[i].Group < kinds[j].Group
		}
		return kinds[i].Resource < kinds[j].Resource
	})
	switch output {
	case "name":
		for _, k := range kinds {
			g.printf("%s\n", k.GroupResource())
		}
		return nil
	case "", "wide":
	default:
		return fmt.Errorf("--output %v is not available", output)
	}
	tw := newTabWriter(g.out)
	if !noHeaders {
		fmt.Fprintln(tw, "NAME\tSHORTNAMES\tAPIVERSION\tNAMESPACED\tKIND")
	}
	for _, k := range kinds {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.Resource, strings.Join(k.ShortNames, ","), k.APIVersion(), strconv.FormatBool(k.Namespaced), k.Kind)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write api resources: %w", err)
	}
	return nil
}
