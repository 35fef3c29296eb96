package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

// Values of --dry-run.
const (
	dryRunNone   = "none"
	dryRunClient = "client"
	dryRunServer = "server"
)

// applyOptions are the flags of `corral apply`.
type applyOptions struct {
	g         *globals
	files     []string
	recursive bool
	out       outputFlags
}

// newApplyCommand returns `corral apply`.
func newApplyCommand(g *globals) *cobra.Command {
	o := &applyOptions{g: g}
	cmd := &cobra.Command{
		Use:   "apply -f FILENAME",
		Short: "Apply a configuration to a resource by file name or stdin",
		Long: `Apply a configuration to resources by file name or stdin. Every object is decoded,
defaulted and validated locally first; nothing is sent if any is invalid. The objects
are then applied atomically in one request: all of them, or none.`,
		Example: `  corral apply -f daemonset-basic.yml
  corral apply -f manifests/ -R
  cat ds.yaml | corral apply -f -`,
	}
	cmd.RunE = g.dryRunE(cmd, func(ctx context.Context, _ []string, mode string) error {
		return o.apply(ctx, mode)
	})
	fs := cmd.Flags()
	fs.StringSliceVarP(&o.files, "filename", "f", nil, "The files that contain the configurations to apply (files, directories, or - for stdin)")
	fs.BoolVarP(&o.recursive, "recursive", "R", false, "Process the directory used in -f, --filename recursively")
	addDryRunFlag(cmd)
	o.out.addFlags(fs, false)
	return cmd
}

// addDryRunFlag registers kubectl's --dry-run[=client|server|none].
func addDryRunFlag(cmd *cobra.Command) {
	cmd.Flags().String("dry-run", dryRunNone, `Must be "none", "server", or "client". If client strategy, only print the object that would be sent, without sending it. If server strategy, submit server-side request without persisting the resource.`)
	cmd.Flags().Lookup("dry-run").NoOptDefVal = dryRunClient
}

// dryRunMode reads and checks --dry-run.
func dryRunMode(cmd *cobra.Command) (string, error) {
	v, err := cmd.Flags().GetString("dry-run")
	if err != nil {
		return "", fmt.Errorf("read --dry-run: %w", err)
	}
	switch v {
	case dryRunNone, dryRunClient, dryRunServer:
		return v, nil
	case "", "false":
		return dryRunNone, nil
	case "true":
		return dryRunClient, nil
	}
	return "", kubectlErrorf(`Invalid dry-run value (%v). Must be "none", "server", or "client".`, v)
}

// dryRunE adapts the body of a command with --dry-run to cobra, as runE
// does, handing it the mode read and checked from cmd's flag.
func (g *globals) dryRunE(cmd *cobra.Command, fn func(ctx context.Context, args []string, mode string) error) func(*cobra.Command, []string) error {
	return g.runE(func(ctx context.Context, args []string) error {
		mode, err := dryRunMode(cmd)
		if err != nil {
			return err
		}
		return fn(ctx, args, mode)
	})
}

// dryRunSuffix is what kubectl appends to its messages in dry-run mode.
func dryRunSuffix(mode string) string {
	switch mode {
	case dryRunClient:
		return " (dry run)"
	case dryRunServer:
		return " (server dry run)"
	}
	return ""
}

// apply decodes, checks and applies the files.
func (o *applyOptions) apply(ctx context.Context, mode string) error {
	if len(o.files) == 0 {
		return errors.New("must specify one of -f and -k")
	}
	p, err := o.out.newPrinter()
	if err != nil {
		return err
	}
	objs, err := o.g.readManifests(o.files, o.recursive, "apply")
	if err != nil {
		return err
	}
	results, err := o.send(ctx, objs, mode)
	if err != nil {
		return err
	}
	out := make([]*corralpb.Object, 0, len(results))
	for i, r := range results {
		obj := r.GetObject()
		if obj == nil && i < len(objs) {
			obj = objs[i] // a server may omit the object it was sent
		}
		out = append(out, obj)
	}
	if p.format != formatTable {
		return p.printObjects(o.g.out, out, len(out) == 1)
	}
	for i, r := range results {
		o.g.printf("%s %s%s\n", api.Ref(out[i]), r.GetAction(), dryRunSuffix(mode))
	}
	return nil
}

// readManifests decodes the -f files and prepares their objects for verb
// (apply, create, diff, replace); no object at all is an error, as in
// kubectl ("no objects passed to apply").
func (g *globals) readManifests(files []string, recursive bool, verb string) ([]*corralpb.Object, error) {
	objs, err := g.decodeFiles(files, recursive)
	if err != nil {
		return nil, err
	}
	if len(objs) == 0 {
		return nil, fmt.Errorf("no objects passed to %s", verb)
	}
	if err := g.prepareObjects(objs); err != nil {
		return nil, err
	}
	return objs, nil
}

// prepareObjects sets namespaces, defaults and validates every object (of
// apply or create); all validation errors are printed and nothing is sent
// if any object fails.
func (g *globals) prepareObjects(objs []*corralpb.Object) error {
	invalid := false
	for _, obj := range objs {
		if err := setNamespace(obj, g.namespace); err != nil {
			return err
		}
		api.SetDefaults(obj)
		if err := api.Validate(obj); err != nil {
			g.printErr(err)
			invalid = true
		}
	}
	if invalid {
		return errReported
	}
	return nil
}

// setNamespace gives a namespaced object the -n namespace (or "default")
// when it names none, and refuses one that names another namespace than an
// explicit -n, as kubectl does.
func setNamespace(obj *corralpb.Object, flagNS string) error {
	k, ok := api.KindByName(api.KindOf(obj))
	if !ok || !k.Namespaced {
		return nil
	}
	md := api.Meta(obj)
	switch {
	case md.GetNamespace() == "" && flagNS != "":
		md.Namespace = flagNS
	case md.GetNamespace() == "":
		md.Namespace = defaultNamespace
	case flagNS != "" && md.GetNamespace() != flagNS:
		return kubectlErrorf("the namespace from the provided object %q does not match the namespace %q. You must pass '--namespace=%s' to perform this operation.", md.GetNamespace(), flagNS, md.GetNamespace())
	}
	return nil
}

// send applies the objects in one request; a client dry run sends nothing
// and asks the server only whether each object exists.
func (o *applyOptions) send(ctx context.Context, objs []*corralpb.Object, mode string) ([]*corralpb.ApplyResult, error) {
	if mode == dryRunClient {
		return o.clientDryRun(ctx, objs)
	}
	var results []*corralpb.ApplyResult
	err := o.g.do(ctx, func(ctx context.Context, c corralpb.ClusterClient) error {
		resp, err := c.Apply(ctx, &corralpb.ApplyRequest{Objects: objs, DryRun: mode == dryRunServer})
		if err != nil {
			return fmt.Errorf("apply %d objects: %w", len(objs), err)
		}
		results = resp.GetResults()
		return nil
	})
	return results, err
}

// clientDryRun reports created or configured for each object without
// changing anything.
func (o *applyOptions) clientDryRun(ctx context.Context, objs []*corralpb.Object) ([]*corralpb.ApplyResult, error) {
	results := make([]*corralpb.ApplyResult, 0, len(objs))
	for _, obj := range objs {
		md := api.Meta(obj)
		action := "configured"
		_, err := o.g.getObject(ctx, api.KindOf(obj), md.GetNamespace(), md.GetName())
		switch {
		case isCode(err, codes.NotFound):
			action = "created"
		case err != nil:
			return nil, err
		}
		results = append(results, &corralpb.ApplyResult{Object: obj, Action: action})
	}
	return results, nil
}

// decodeFiles decodes manifests in command-line order; "-" reads the CLI's
// input stream (api.DecodeFiles would read the process's stdin).
func (g *globals) decodeFiles(paths []string, recursive bool) ([]*corralpb.Object, error) {
	var out []*corralpb.Object
	for _, p := range paths {
		if p != "-" {
			objs, err := api.DecodeFiles([]string{p}, recursive)
			if err != nil {
				return nil, err
			}
			out = append(out, objs...)
			continue
		}
		data, err := io.ReadAll(g.in)
		if err != nil {
			return nil, fmt.Errorf("read standard input: %w", err)
		}
		objs, err := api.Decode(data, "STDIN")
		if err != nil {
			return nil, err
		}
		out = append(out, objs...)
	}
	return out, nil
}
