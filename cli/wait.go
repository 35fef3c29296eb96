package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

// waitOptions are the flags of `corral wait`.
type waitOptions struct {
	g             *globals
	forSpec       string
	timeout       time.Duration
	selector      string
	all           bool
	allNamespaces bool
}

// newWaitCommand returns `corral wait`.
func newWaitCommand(g *globals) *cobra.Command {
	o := &waitOptions{g: g}
	cmd := &cobra.Command{
		Use:   "wait (TYPE NAME | TYPE/NAME | TYPE -l SELECTOR | TYPE --all) --for=delete|--for=create|--for=condition=NAME[=VALUE]|--for=jsonpath='{PATH}'[=VALUE] [--timeout=30s]",
		Short: "Wait for a specific condition on one or many resources",
		Long: `Wait for a specific condition on one or many resources.

--for=condition=NAME waits until the object's status has a condition of type NAME (any case)
with status True, or VALUE when given. --for=jsonpath='{PATH}'=VALUE waits until PATH holds
VALUE, and without =VALUE until PATH exists. --for=delete waits until the object is gone (one
that is gone already is no error), --for=create until it exists.

Objects are waited for one after the other, all within --timeout; each prints
"TYPE/NAME condition met" when it meets the condition.`,
		Example: `  # Wait for every pod of nginx-daemonset to be Ready
  corral wait --for=condition=Ready pod -l app=nginx-daemon

  # Wait until a DaemonSet's pods are all ready
  corral wait ds/nginx-daemonset --for=jsonpath='{.status.numberReady}'=3 --timeout=2m

  # Wait for a pod to be deleted
  corral delete pod web && corral wait --for=delete pod/web --timeout=60s`,
	}
	cmd.RunE = g.runE(func(ctx context.Context, args []string) error { return o.run(ctx, args) })
	fs := cmd.Flags()
	fs.StringVar(&o.forSpec, "for", "", "The condition to wait on: [create|delete|condition=condition-name[=condition-value]|jsonpath='{JSONPath expression}'=[JSONPath value]]")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "The length of time to wait before giving up. Zero means check once and don't wait, negative means wait for a week.")
	fs.StringVarP(&o.selector, "selector", "l", "", "Selector (label query) to filter on")
	fs.BoolVar(&o.all, "all", false, "Select all resources in the namespace of the specified resource types")
	fs.BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "If present, list the requested object(s) across all namespaces")
	return cmd
}

// waitCondition is a parsed --for.
type waitCondition struct {
	kind     string // "delete", "create", "condition" or "jsonpath"
	subject  string // the condition's type, or the JSONPath
	value    string // the wanted value
	hasValue bool   // jsonpath: a value was given
}

// parseWaitFor parses --for as kubectl does.
func parseWaitFor(s string) (waitCondition, error) {
	switch {
	case s == "":
		return waitCondition{}, errors.New("--for must be specified: delete, create, condition=NAME[=VALUE] or jsonpath='{PATH}'[=VALUE]")
	case strings.EqualFold(s, "delete"), strings.EqualFold(s, "create"):
		return waitCondition{kind: strings.ToLower(s)}, nil
	case strings.HasPrefix(s, "condition="):
		name, value, ok := strings.Cut(strings.TrimPrefix(s, "condition="), "=")
		if !ok {
			value = "True"
		}
		if name == "" {
			return waitCondition{}, fmt.Errorf("unrecognized condition: %q", s)
		}
		return waitCondition{kind: "condition", subject: name, value: value}, nil
	case strings.HasPrefix(s, "jsonpath="):
		expr := strings.TrimPrefix(s, "jsonpath=")
		path, value, hasValue := expr, "", false
		if strings.HasPrefix(expr, "{") {
			end := strings.Index(expr, "}")
			if end < 0 {
				return waitCondition{}, fmt.Errorf("unrecognized condition: %q: the JSONPath has no closing }", s)
			}
			path = expr[:end+1]
			if rest := expr[end+1:]; rest != "" {
				if !strings.HasPrefix(rest, "=") {
					return waitCondition{}, fmt.Errorf("unrecognized condition: %q", s)
				}
				value, hasValue = rest[1:], true
			}
		} else {
			path, value, hasValue = strings.Cut(expr, "=")
		}
		if strings.Trim(path, "{}") == "" {
			return waitCondition{}, errors.New("jsonpath expression cannot be empty")
		}
		if _, err := parsePath(relaxPath(path)); err != nil {
			return waitCondition{}, fmt.Errorf("invalid JSONPath %q: %w", path, err)
		}
		return waitCondition{kind: "jsonpath", subject: path, value: value, hasValue: hasValue}, nil
	}
	return waitCondition{}, fmt.Errorf("unrecognized condition: %q", s)
}

// met reports whether obj, which exists, meets the condition.
func (c waitCondition) met(obj *corralpb.Object) (bool, error) {
	switch c.kind {
	case "create":
		return true, nil
	case "delete":
		return false, nil
	}
	m, err := api.ToMap(obj)
	if err != nil {
		return false, err
	}
	if c.kind == "condition" {
		st, _ := m["status"].(map[string]any)
		conds, _ := st["conditions"].([]any)
		for _, raw := range conds {
			cond, _ := raw.(map[string]any)
			if t, _ := cond["type"].(string); strings.EqualFold(t, c.subject) {
				s, _ := cond["status"].(string)
				return strings.EqualFold(s, c.value), nil
			}
		}
		return false, nil
	}
	vals, err := evalPath(m, c.subject)
	if err != nil {
		return false, err
	}
	switch {
	case !c.hasValue:
		return len(vals) > 0, nil
	case len(vals) == 0:
		return false, nil
	case len(vals) > 1:
		return false, fmt.Errorf("given jsonpath expression matches more than one value")
	}
	return formatValue(vals[0]) == c.value, nil
}

// run executes `corral wait`.
func (o *waitOptions) run(ctx context.Context, args []string) error {
	cond, err := parseWaitFor(o.forSpec)
	if err != nil {
		return err
	}
	targets, err := o.g.selectTargets(ctx, args, o.selector, o.all, o.allNamespaces)
	if err != nil {
		return err
	}
	if len(targets) == 0 {
		return errors.New("no matching resources found")
	}
	timeout := o.timeout
	if timeout < 0 {
		timeout = 7 * 24 * time.Hour
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	for _, t := range targets {
		outcome, err := o.waitOne(ctx, t, cond, timeout > 0)
		switch {
		case err != nil:
			return err
		case outcome == waitMet:
			o.g.printf("%s condition met\n", objectRef(t.kind, t.name))
		case outcome == waitTimedOut:
			return fmt.Errorf("timed out waiting for the condition on %s/%s", t.kind.Resource, t.name)
		}
	}
	return nil
}

// How one object's wait ended.
const (
	waitMet      = iota
	waitGone     // --for=delete, and the object was gone before the wait began
	waitTimedOut // the time ran out, or it was checked once and did not meet it
)

// waitOne waits until t meets cond or ctx ends. It lists the object and
// follows its changes from the list's version, so no change between the
// two is missed, and lists again if a server ends the watch early; with
// watch false it only checks once.
func (o *waitOptions) waitOne(ctx context.Context, t target, cond waitCondition, watch bool) (int, error) {
	for first := true; ; first = false {
		resp, err := o.g.listObjects(ctx, &corralpb.ListRequest{Kind: t.kind.Kind, Namespace: t.namespace,
			FieldSelector: "metadata.name=" + t.name})
		if err != nil {
			if timeIsUp(ctx) {
				// The time ran out during the read: a timeout, however
				// the server's answer put it.
				return waitTimedOut, nil
			}
			return 0, err
		}
		if items := resp.GetItems(); len(items) > 0 {
			if ok, err := cond.met(items[0]); ok || err != nil {
				return waitMet, err
			}
		} else if cond.kind == "delete" {
			if first {
				return waitGone, nil
			}
			return waitMet, nil
		} else if cond.kind != "create" && first {
			// Not there to wait on: the server's own NotFound.
			_, err := o.g.getObject(ctx, t.kind.Kind, t.namespace, t.name)
			if err == nil {
				err = fmt.Errorf("%s %q not found", kindString(t.kind), t.name)
			} else if status.Code(err) != codes.NotFound && timeIsUp(ctx) {
				return waitTimedOut, nil
			}
			return 0, err
		}
		if !watch {
			return waitTimedOut, nil
		}
		met, err := o.follow(ctx, t, cond, resp.GetResourceVersion())
		switch {
		case met:
			return waitMet, nil
		case err != nil && status.Code(err) != codes.DeadlineExceeded && !errors.Is(err, context.DeadlineExceeded):
			return 0, err
		case timeIsUp(ctx):
			return waitTimedOut, nil
		case ctx.Err() != nil:
			return 0, ctx.Err() // interrupted
		}
		// The server ended the watch with time left: list and watch again.
	}
}

// timeIsUp reports whether ctx's deadline has passed. It asks the clock,
// not ctx.Err(): a call cut by the deadline can return before the
// context's own timer has fired.
func timeIsUp(ctx context.Context) bool {
	d, ok := ctx.Deadline()
	return ok && !time.Now().Before(d)
}

// follow watches t from version rv until it meets cond, the watch ends or
// ctx does; it reports whether t met cond.
func (o *waitOptions) follow(ctx context.Context, t target, cond waitCondition, rv string) (bool, error) {
	c, err := o.g.cluster()
	if err != nil {
		return false, err
	}
	met := false
	err = resumableWatch(ctx, c, &corralpb.WatchRequest{Kind: t.kind.Kind, Namespace: t.namespace,
		FieldSelector: "metadata.name=" + t.name, ResourceVersion: rv},
		func(ev *corralpb.WatchEvent) error {
			var err error
			if ev.GetType() == "DELETED" {
				met = cond.kind == "delete"
			} else {
				met, err = cond.met(ev.GetObject())
			}
			if err != nil {
				return err
			}
			if met {
				return errStopWatch
			}
			return nil
		})
	return met, err
}
