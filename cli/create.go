package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

// createOptions are the flags shared by `corral create` and its
// subcommands.
type createOptions struct {
	g         *globals
	files     []string
	recursive bool
	out       outputFlags
}

// newCreateCommand returns `corral create` with its namespace and
// configmap subcommands.
func newCreateCommand(g *globals) *cobra.Command {
	o := &createOptions{g: g}
	cmd := &cobra.Command{
		Use:   "create -f FILENAME",
		Short: "Create a resource from a file or from stdin",
		Example: `  corral create -f daemonset-basic.yml
  corral create namespace monitoring
  corral create configmap kube-proxy --from-file=config.conf`,
	}
	cmd.RunE = g.dryRunE(cmd, func(ctx context.Context, args []string, mode string) error {
		if len(args) > 0 {
			return fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath())
		}
		return o.fromFiles(ctx, mode)
	})
	fs := cmd.Flags()
	fs.StringSliceVarP(&o.files, "filename", "f", nil, "Filename, directory, or - for stdin, of the objects to create")
	fs.BoolVarP(&o.recursive, "recursive", "R", false, "Process the directory used in -f, --filename recursively")
	addDryRunFlag(cmd)
	o.out.addFlags(fs, false)
	cmd.AddCommand(newCreateNamespaceCommand(g), newCreateConfigMapCommand(g))
	return cmd
}

// fromFiles creates every object of the -f files, one request each.
func (o *createOptions) fromFiles(ctx context.Context, mode string) error {
	if len(o.files) == 0 {
		return errors.New("must specify one of -f and -k")
	}
	objs, err := o.g.readManifests(o.files, o.recursive, "create")
	if err != nil {
		return err
	}
	failed := false
	for _, obj := range objs {
		if err := o.create(ctx, obj, mode); err != nil {
			o.g.printErr(err)
			failed = true
		}
	}
	if failed {
		return errReported
	}
	return nil
}

// create sends one object (unless a client dry run) and prints the result
// as kubectl does: "namespace/x created", or the object with -o.
func (o *createOptions) create(ctx context.Context, obj *corralpb.Object, mode string) error {
	p, err := o.out.newPrinter()
	if err != nil {
		return err
	}
	stored := obj
	if mode != dryRunClient {
		if stored, err = o.g.createObject(ctx, obj, mode == dryRunServer); err != nil {
			return err
		}
		if stored == nil {
			stored = obj
		}
	}
	if p.format != formatTable {
		return p.printObjects(o.g.out, []*corralpb.Object{stored}, true)
	}
	o.g.printf("%s created%s\n", api.Ref(stored), dryRunSuffix(mode))
	return nil
}

// newCreateNamespaceCommand returns `corral create namespace`.
func newCreateNamespaceCommand(g *globals) *cobra.Command {
	o := &createOptions{g: g}
	cmd := &cobra.Command{
		Use:     "namespace NAME [--dry-run=server|client|none]",
		Aliases: []string{"ns"},
		Short:   "Create a namespace with the specified name",
		Example: "  corral create namespace monitoring",
	}
	cmd.RunE = g.dryRunE(cmd, func(ctx context.Context, args []string, mode string) error {
		if len(args) != 1 {
			return errors.New("exactly one NAME is required, got " + fmt.Sprint(len(args)))
		}
		obj := api.Wrap(&corralpb.Namespace{Metadata: &corralpb.ObjectMeta{Name: args[0]}})
		api.SetDefaults(obj)
		if err := api.Validate(obj); err != nil {
			return err
		}
		return o.create(ctx, obj, mode)
	})
	addDryRunFlag(cmd)
	o.out.addFlags(cmd.Flags(), false)
	return cmd
}
