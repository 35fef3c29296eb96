package cli

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

// patchOptions are the flags of `corral patch`.
type patchOptions struct {
	g         *globals
	patch     string
	patchFile string
	patchType string
	out       outputFlags
}

// newPatchCommand returns `corral patch`.
func newPatchCommand(g *globals) *cobra.Command {
	o := &patchOptions{g: g}
	cmd := &cobra.Command{
		Use:   "patch (TYPE NAME | TYPE/NAME) [-p PATCH|--patch-file FILE]",
		Short: "Update fields of a resource",
		Long: `Update fields of a resource using a strategic merge patch, a JSON merge patch, or a JSON patch.

JSON and YAML formats are accepted. A strategic merge patch (the default) merges the lists
Kubernetes merges by key (containers, volumes, env and volumeMounts by name or path, ports by
containerPort, ...) and replaces the others (tolerations, taints, command, args, ...), as
Kubernetes does.

The object is read, patched and written back conditional on the version read; if someone
else wrote it meanwhile, the patch is applied again to the new version.`,
		Example: `  # Run nginx-daemonset only on nodes labelled disktype=ssd
  corral patch ds nginx-daemonset -p '{"spec":{"template":{"spec":{"nodeSelector":{"disktype":"ssd"}}}}}'

  # Change the image of the container named nginx (containers merge by name)
  corral patch ds/nginx-daemonset -p '{"spec":{"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:1.27"}]}}}}'

  # Roll out one node at a time, with a JSON merge patch
  corral patch ds nginx-daemonset --type merge -p '{"spec":{"updateStrategy":{"rollingUpdate":{"maxUnavailable":1}}}}'

  # Remove the first toleration, with a JSON patch
  corral patch ds fluentd-elasticsearch --type json -p '[{"op":"remove","path":"/spec/template/spec/tolerations/0"}]'`,
	}
	cmd.RunE = g.dryRunE(cmd, func(ctx context.Context, args []string, mode string) error {
		return o.run(ctx, args, mode)
	})
	fs := cmd.Flags()
	fs.StringVarP(&o.patch, "patch", "p", "", "The patch to be applied to the resource JSON file.")
	fs.StringVar(&o.patchFile, "patch-file", "", "A file containing a patch to be applied to the resource.")
	fs.StringVar(&o.patchType, "type", api.PatchStrategic, "The type of patch being provided; one of [json merge strategic]")
	addDryRunFlag(cmd)
	o.out.addFlags(fs, false)
	return cmd
}

// run executes `corral patch`.
func (o *patchOptions) run(ctx context.Context, args []string, mode string) error {
	switch o.patchType {
	case api.PatchStrategic, api.PatchMerge, api.PatchJSON:
	default:
		return fmt.Errorf("--type must be one of [json merge strategic], not %q", o.patchType)
	}
	var patch []byte
	switch {
	case o.patch != "" && o.patchFile != "":
		return errors.New("--patch and --patch-file cannot be used together")
	case o.patchFile != "":
		data, err := os.ReadFile(o.patchFile)
		if err != nil {
			return fmt.Errorf("unable to read patch file: %w", err)
		}
		patch = data
	case o.patch != "":
		patch = []byte(o.patch)
	default:
		return errors.New("must specify --patch or --patch-file containing the contents of the patch")
	}
	p, err := o.out.newPrinter()
	if err != nil {
		return err
	}
	targets, err := o.g.selectTargets(ctx, args, "", false, false)
	if err != nil {
		return err
	}
	return o.g.eachTarget(targets, func(t target) error {
		var patched *corralpb.Object
		stored, changed, err := o.g.mutate(ctx, t.kind, t.namespace, t.name, mode == dryRunServer, func(obj *corralpb.Object) (bool, error) {
			var err error
			if patched, err = api.Patch(obj, o.patchType, patch); err != nil {
				return false, err
			}
			om, pm := api.Meta(obj), api.Meta(patched)
			if api.KindOf(patched) != api.KindOf(obj) || pm.GetName() != om.GetName() || pm.GetNamespace() != om.GetNamespace() {
				return false, fmt.Errorf("%s: a patch may not change apiVersion, kind, name or namespace", objectRef(t.kind, t.name))
			}
			if rv := pm.GetResourceVersion(); rv != om.GetResourceVersion() {
				// A patch that names a resourceVersion is conditional on
				// it, as on the apiserver: not current, it is refused
				// rather than applied again to the newer version.
				return false, status.Errorf(codes.Aborted, "Operation cannot be fulfilled on %s %q: the object has been modified; please apply your changes to the latest version and try again",
					t.kind.GroupResource(), t.name)
			}
			keepStatus(patched, obj)
			api.SetDefaults(patched)
			if proto.Equal(patched, obj) {
				patched = nil
				return false, nil
			}
			if err := api.ValidateUpdate(patched, obj); err != nil {
				return false, err
			}
			proto.Reset(obj)
			proto.Merge(obj, patched)
			return mode != dryRunClient, nil
		})
		if err != nil {
			return err
		}
		if mode == dryRunClient && patched != nil {
			stored, changed = patched, true // what would be sent
		}
		if p.format != formatTable {
			return p.printObjects(o.g.out, []*corralpb.Object{stored}, true)
		}
		if !changed {
			o.g.printf("%s patched (no change)\n", objectRef(t.kind, t.name))
			return nil
		}
		o.g.printf("%s patched%s\n", objectRef(t.kind, t.name), dryRunSuffix(mode))
		return nil
	})
}

// keepStatus gives dst src's status: the status is the server's, which an
// update leaves as it is (as the apiserver ignores a patch's status
// without --subresource=status), so a patch of it changes nothing.
func keepStatus(dst, src *corralpb.Object) {
	d, s := api.Inner(dst).ProtoReflect(), api.Inner(src).ProtoReflect()
	f := d.Descriptor().Fields().ByName("status")
	if f == nil {
		return
	}
	if !s.Has(f) {
		d.Clear(f)
		return
	}
	d.Set(f, protoreflect.ValueOfMessage(proto.Clone(s.Get(f).Message().Interface()).ProtoReflect()))
}
