package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

// describeOptions are the flags of `corral describe`.
type describeOptions struct {
	g             *globals
	selector      string
	allNamespaces bool
	showEvents    bool
}

// describeEnv is what a describer may consult besides its object: the
// cluster (for pods and events) and the clock.
type describeEnv struct {
	ctx        context.Context
	g          *globals
	now        time.Time
	showEvents bool
}

// describer renders one object of a kind.
type describer func(env *describeEnv, obj *corralpb.Object) (string, error)

// describers maps kinds to their describers; kinds without one use
// describeGeneric, as kubectl falls back to its generic describer.
var describers = map[string]describer{
	"DaemonSet":     describeDaemonSetObject,
	"Pod":           describePodObject,
	"Node":          describeNodeObject,
	"Namespace":     describeNamespaceObject,
	"ConfigMap":     describeConfigMapObject,
	"PriorityClass": describePriorityClassObject,
}

// newDescribeCommand returns `corral describe`.
func newDescribeCommand(g *globals) *cobra.Command {
	o := &describeOptions{g: g}
	cmd := &cobra.Command{
		Use:   "describe (TYPE [NAME_PREFIX] | TYPE/NAME)",
		Short: "Show details of a specific resource or group of resources",
		Long: `Show details of a resource or group of resources, including related events.
With a NAME_PREFIX that is not the exact name of an object, every object whose name starts
with it is described.`,
		Example: `  corral describe ds nginx-daemonset
  corral describe nodes node1
  corral describe pods -l app=nginx-daemon`,
		RunE: g.runE(o.run),
	}
	fs := cmd.Flags()
	fs.StringVarP(&o.selector, "selector", "l", "", "Selector (label query) to filter on")
	fs.BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "If present, list the requested object(s) across all namespaces")
	fs.BoolVar(&o.showEvents, "show-events", true, "If true, display events related to the described object")
	return cmd
}

// run executes `corral describe`.
func (o *describeOptions) run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return kubectlError("You must specify the type of resource to describe. Use \"corral api-resources\" for a complete list of supported resources.")
	}
	sels, err := parseResourceArgs(args)
	if err != nil {
		return err
	}
	env := &describeEnv{ctx: ctx, g: o.g, now: o.g.now(), showEvents: o.showEvents}
	failed, first := false, true
	for _, s := range sels {
		objs, err := o.find(ctx, s)
		if err != nil {
			o.g.printErr(err)
			failed = true
		}
		for _, obj := range objs {
			text, err := describeObject(env, obj)
			if err != nil {
				o.g.printErr(err)
				failed = true
				continue
			}
			if !first {
				o.g.printf("\n\n")
			}
			first = false
			o.g.printf("%s", text)
		}
	}
	if failed {
		return errReported
	}
	return nil
}

// find returns the objects a selection names: exact names, else objects
// whose names start with the given prefix, else all (filtered by -l).
func (o *describeOptions) find(ctx context.Context, s selection) ([]*corralpb.Object, error) {
	ns := namespaceFor(s.kind, o.g.ns())
	if o.allNamespaces {
		ns = ""
	}
	if len(s.names) == 0 {
		resp, err := o.g.listObjects(ctx, &corralpb.ListRequest{Kind: s.kind.Kind, Namespace: ns, LabelSelector: o.selector})
		if err != nil {
			return nil, err
		}
		if len(resp.GetItems()) == 0 {
			if ns == "" {
				o.g.warnf("No resources found\n")
			} else {
				o.g.warnf("No resources found in %s namespace.\n", ns)
			}
		}
		return resp.GetItems(), nil
	}
	var out []*corralpb.Object
	for _, name := range s.names {
		obj, err := o.g.getObject(ctx, s.kind.Kind, namespaceFor(s.kind, o.g.ns()), name)
		if err == nil {
			out = append(out, obj)
			continue
		}
		if !isCode(err, codes.NotFound) {
			return out, err
		}
		matches, lerr := o.byPrefix(ctx, s.kind, name)
		if lerr != nil {
			return out, lerr
		}
		if len(matches) == 0 {
			return out, err
		}
		out = append(out, matches...)
	}
	return out, nil
}

// byPrefix lists the objects of a kind whose names start with prefix.
func (o *describeOptions) byPrefix(ctx context.Context, k api.Kind, prefix string) ([]*corralpb.Object, error) {
	resp, err := o.g.listObjects(ctx, &corralpb.ListRequest{Kind: k.Kind, Namespace: namespaceFor(k, o.g.ns()), LabelSelector: o.selector})
	if err != nil {
		return nil, err
	}
	var out []*corralpb.Object
	for _, obj := range resp.GetItems() {
		if strings.HasPrefix(api.Meta(obj).GetName(), prefix) {
			out = append(out, obj)
		}
	}
	return out, nil
}

// describeObject renders one object with its kind's describer.
func describeObject(env *describeEnv, obj *corralpb.Object) (string, error) {
	if d, ok := describers[api.KindOf(obj)]; ok {
		return d(env, obj)
	}
	return describeGeneric(env, obj)
}

// eventsFor lists the events about one object, or nil when events are not
// shown. Events about cluster-scoped objects are searched in every
// namespace.
func (env *describeEnv) eventsFor(kind, namespace, name string) ([]*corralpb.Event, error) {
	if !env.showEvents || env.g == nil {
		return nil, nil
	}
	fs := fmt.Sprintf("involvedObject.kind=%s,involvedObject.name=%s", kind, name)
	if namespace != "" {
		fs += ",involvedObject.namespace=" + namespace
	}
	resp, err := env.g.listObjects(env.ctx, &corralpb.ListRequest{Kind: "Event", Namespace: namespace, FieldSelector: fs})
	if err != nil {
		return nil, fmt.Errorf("events for %s %s: %w", kind, name, err)
	}
	evs := make([]*corralpb.Event, 0, len(resp.GetItems()))
	for _, o := range resp.GetItems() {
		if ev := o.GetEvent(); ev != nil {
			evs = append(evs, ev)
		}
	}
	return evs, nil
}
