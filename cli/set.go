package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	corralpb "github.com/corral-dev/corral/proto"
)

// newSetCommand returns `corral set`, kubectl's group of commands that
// change one aspect of an object.
func newSetCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "set SUBCOMMAND",
		Short: "Set specific features on objects",
		Args:  cobra.ArbitraryArgs,
		RunE:  g.groupRunE(),
	}
	cmd.AddCommand(newSetImageCommand(g))
	return cmd
}

// setImageOptions are the flags of `corral set image`.
type setImageOptions struct {
	g             *globals
	selector      string
	all           bool
	allNamespaces bool
}

// newSetImageCommand returns `corral set image`.
func newSetImageCommand(g *globals) *cobra.Command {
	o := &setImageOptions{g: g}
	cmd := &cobra.Command{
		Use:   "image (TYPE NAME | TYPE/NAME | TYPE -l SELECTOR) CONTAINER_NAME_1=CONTAINER_IMAGE_1 ... CONTAINER_NAME_N=CONTAINER_IMAGE_N",
		Short: "Update the image of a pod template",
		Long: `Update existing container image(s) of the pod template of DaemonSets, whose pods are then
replaced as their update strategy says.

CONTAINER_NAME may name an init container too; * sets the image of every container.`,
		Example: `  # Roll fluentd-elasticsearch's fluentd container out to a new image
  corral set image ds/fluentd-elasticsearch fluentd-elasticsearch=quay.io/fluentd_elasticsearch/fluentd:v5.0.1

  # Update every container of every DaemonSet labelled app=monitoring
  corral set image ds -l app=monitoring '*=busybox:1.37'`,
	}
	cmd.RunE = g.dryRunE(cmd, func(ctx context.Context, args []string, mode string) error {
		return o.run(ctx, args, mode)
	})
	fs := cmd.Flags()
	fs.StringVarP(&o.selector, "selector", "l", "", "Selector (label query) to filter on")
	fs.BoolVar(&o.all, "all", false, "Select all resources, in the namespace of the specified resource types")
	fs.BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "If true, check the specified action in all namespaces")
	addDryRunFlag(cmd)
	return cmd
}

// run executes `corral set image`.
func (o *setImageOptions) run(ctx context.Context, args []string, mode string) error {
	var resArgs []string
	images := map[string]string{}
	for _, a := range args {
		if name, image, ok := strings.Cut(a, "="); ok {
			images[name] = image
			continue
		}
		resArgs = append(resArgs, a)
	}
	if len(images) == 0 {
		return errors.New("at least one image update is required")
	}
	if _, ok := images["*"]; ok && len(images) > 1 {
		return errors.New("all containers are already specified by *, but saw more than one container_name=container_image pairs")
	}
	targets, err := o.g.selectTargets(ctx, resArgs, o.selector, o.all, o.allNamespaces)
	if err != nil {
		return err
	}
	return o.g.eachTarget(targets, func(t target) error { return o.setOne(ctx, t, images, mode) })
}

// setOne sets the images of one object's containers. Like kubectl, it
// prints "TYPE/NAME image updated" only when an image changed, and it
// changes nothing when a container it was asked for is not there.
func (o *setImageOptions) setOne(ctx context.Context, t target, images map[string]string, mode string) error {
	changed := false
	_, _, err := o.g.mutate(ctx, t.kind, t.namespace, t.name, mode == dryRunServer, func(obj *corralpb.Object) (bool, error) {
		spec, err := podSpecOf(obj, objectRef(t.kind, t.name))
		if err != nil {
			return false, err
		}
		var missing []string
		changed = false
		for _, name := range sortedKeys(images) {
			found := false
			for _, list := range [][]*corralpb.Container{spec.GetInitContainers(), spec.GetContainers()} {
				for _, c := range list {
					if name == "*" || c.GetName() == name {
						found = true
						if c.GetImage() != images[name] {
							c.Image = images[name]
							changed = true
						}
					}
				}
			}
			if !found {
				missing = append(missing, fmt.Sprintf("unable to find container named %q", name))
			}
		}
		switch len(missing) {
		case 0:
		case 1:
			return false, errors.New(missing[0])
		default:
			return false, fmt.Errorf("[%s]", strings.Join(missing, ", "))
		}
		return changed && mode != dryRunClient, nil
	})
	if err != nil {
		return err
	}
	if changed {
		o.g.printf("%s image updated%s\n", objectRef(t.kind, t.name), dryRunSuffix(mode))
	}
	return nil
}

// podSpecOf is the pod template's spec of a DaemonSet, or an error that
// names obj for other kinds. A pod's own containers are refused: its
// agent does not restart containers whose spec changed, so a new image
// would be stored and never run.
func podSpecOf(obj *corralpb.Object, ref string) (*corralpb.PodSpec, error) {
	if obj.GetPod() != nil {
		return nil, fmt.Errorf("%s: corral does not change a pod's containers in place; set the image of its DaemonSet, which replaces the pod", ref)
	}
	ds := obj.GetDaemonSet()
	if ds == nil || ds.GetSpec().GetTemplate() == nil {
		return nil, fmt.Errorf("%s the object is not a pod or does not have a pod template", ref)
	}
	if ds.Spec.Template.Spec == nil {
		ds.Spec.Template.Spec = &corralpb.PodSpec{}
	}
	return ds.Spec.Template.Spec, nil
}
