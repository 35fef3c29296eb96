package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

// deleteOptions are the flags of `corral delete`.
type deleteOptions struct {
	g              *globals
	files          []string
	recursive      bool
	selector       string
	all            bool
	allNamespaces  bool
	cascade        string
	ignoreNotFound bool
}

// newDeleteCommand returns `corral delete`.
func newDeleteCommand(g *globals) *cobra.Command {
	o := &deleteOptions{g: g}
	cmd := &cobra.Command{
		Use:   "delete ([-f FILENAME] | TYPE [(NAME | -l label | --all)])",
		Short: "Delete resources by file names, stdin, resources and names, or by resources and label selector",
		Example: `  corral delete ds nginx-daemonset
  corral delete ds nginx-daemonset --cascade=orphan
  corral delete -f daemonset-basic.yml
  corral delete pods -l app=nginx-daemon`,
	}
	cmd.RunE = g.dryRunE(cmd, func(ctx context.Context, args []string, mode string) error {
		return o.run(ctx, args, mode)
	})
	fs := cmd.Flags()
	fs.StringSliceVarP(&o.files, "filename", "f", nil, "containing the resource to delete")
	fs.BoolVarP(&o.recursive, "recursive", "R", false, "Process the directory used in -f, --filename recursively")
	fs.StringVarP(&o.selector, "selector", "l", "", "Selector (label query) to filter on")
	fs.BoolVar(&o.all, "all", false, "Delete all resources, in the namespace of the specified resource types")
	fs.BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "If present, list the requested object(s) across all namespaces")
	fs.StringVar(&o.cascade, "cascade", "background", `Must be "background", "orphan", or "foreground". Defaults to background.`)
	fs.Lookup("cascade").NoOptDefVal = "background"
	fs.BoolVar(&o.ignoreNotFound, "ignore-not-found", false, "Treat \"resource not found\" as a successful delete")
	addDryRunFlag(cmd)
	return cmd
}

// propagationPolicy maps --cascade to the API's propagation policy.
func propagationPolicy(cascade string) (string, error) {
	switch cascade {
	case "background", "true", "":
		return "Background", nil
	case "foreground":
		return "Foreground", nil
	case "orphan", "false":
		return "Orphan", nil
	}
	return "", kubectlErrorf(`invalid cascade value (%v). Must be "background", "foreground", or "orphan".`, cascade)
}

// run executes `corral delete`.
func (o *deleteOptions) run(ctx context.Context, args []string, mode string) error {
	policy, err := propagationPolicy(o.cascade)
	if err != nil {
		return err
	}
	targets, err := o.targets(ctx, args)
	if err != nil {
		return err
	}
	if len(targets) == 0 {
		o.g.warnf("No resources found\n")
		return nil
	}
	failed := false
	for _, t := range targets {
		if err := o.deleteOne(ctx, t, policy, mode); err != nil {
			if o.ignoreNotFound && isCode(err, codes.NotFound) {
				continue
			}
			o.g.printErr(err)
			failed = true
		}
	}
	if failed {
		return errReported
	}
	return nil
}

// targets resolves files, TYPE NAME arguments, -l and --all to objects.
func (o *deleteOptions) targets(ctx context.Context, args []string) ([]target, error) {
	if len(o.files) > 0 {
		if len(args) > 0 {
			return nil, errors.New("cannot specify resource arguments together with -f")
		}
		return o.fileTargets()
	}
	if len(args) == 0 {
		return nil, kubectlError("You must provide one or more resources by argument or filename.")
	}
	sels, err := parseResourceArgs(args)
	if err != nil {
		return nil, err
	}
	return o.g.targetObjects(ctx, sels, o.selector, o.all, o.allNamespaces)
}

// fileTargets names the objects of the -f files.
func (o *deleteOptions) fileTargets() ([]target, error) {
	objs, err := o.g.decodeFiles(o.files, o.recursive)
	if err != nil {
		return nil, err
	}
	out := make([]target, 0, len(objs))
	for _, obj := range objs {
		if err := setNamespace(obj, o.g.namespace); err != nil {
			return nil, err
		}
		k, ok := api.KindByName(api.KindOf(obj))
		if !ok {
			return nil, fmt.Errorf("unknown kind %q", api.KindOf(obj))
		}
		md := api.Meta(obj)
		out = append(out, target{kind: k, namespace: md.GetNamespace(), name: md.GetName()})
	}
	return out, nil
}

// deleteOne deletes one object and prints kubectl's message.
func (o *deleteOptions) deleteOne(ctx context.Context, t target, policy, mode string) error {
	if mode == dryRunClient {
		if _, err := o.g.getObject(ctx, t.kind.Kind, t.namespace, t.name); err != nil {
			return err
		}
	} else {
		err := o.g.do(ctx, func(ctx context.Context, c corralpb.ClusterClient) error {
			_, err := c.Delete(ctx, &corralpb.DeleteRequest{
				Kind:              t.kind.Kind,
				Namespace:         t.namespace,
				Name:              t.name,
				PropagationPolicy: policy,
				DryRun:            mode == dryRunServer,
			})
			return err
		})
		if err != nil {
			return fmt.Errorf("delete %s %q: %w", kindString(t.kind), t.name, err)
		}
	}
	o.g.printf("%s %q deleted%s\n", kindString(t.kind), t.name, dryRunSuffix(mode))
	return nil
}
