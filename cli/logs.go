package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

// logsOptions are the flags of `corral logs`.
type logsOptions struct {
	g              *globals
	follow         bool
	container      string
	tail           int64
	previous       bool
	timestamps     bool
	since          time.Duration
	limitBytes     int64
	selector       string
	allContainers  bool
	prefix         bool
	maxLogRequests int
	tailSet        bool // --tail was given
}

// newLogsCommand returns `corral logs`.
func newLogsCommand(g *globals) *cobra.Command {
	o := &logsOptions{g: g}
	cmd := &cobra.Command{
		Use:   "logs [-f] [-p] (POD | TYPE/NAME) [-c CONTAINER]",
		Short: "Print the logs for a container in a pod",
		Long: `Print the logs for a container in a pod, or of one pod of a DaemonSet (ds/NAME), or of
every pod a label selector (-l) picks: --prefix marks each line with its pod and container,
and -f follows them all at once (--max-log-requests at most).`,
		Example: `  # Return snapshot logs from pod nginx with only one container
  corral logs nginx

  # Begin streaming the logs of the ruby container in pod web-1
  corral logs -f -c ruby web-1

  # Display only the most recent 20 lines of output in pod nginx
  corral logs --tail=20 nginx

  # Show the logs of the previous terminated container, with timestamps
  corral logs -p --timestamps nginx

  # Return the logs of one pod of DaemonSet fluentd-elasticsearch
  corral logs ds/fluentd-elasticsearch -n kube-system

  # Follow every pod of a DaemonSet on every node, each line marked with its pod
  corral logs -f -l name=fluentd-elasticsearch -n kube-system --prefix`,
		RunE: g.runE(func(ctx context.Context, args []string) error {
			base, target, err := o.request(args)
			if err != nil {
				return err
			}
			srcs, err := o.sources(ctx, base, target)
			if err != nil {
				return err
			}
			return o.run(ctx, srcs)
		}),
	}
	fs := cmd.Flags()
	fs.BoolVarP(&o.follow, "follow", "f", false, "Specify if the logs should be streamed.")
	fs.StringVarP(&o.container, "container", "c", "", "Print the logs of this container")
	fs.Int64Var(&o.tail, "tail", -1, "Lines of recent log file to display. Defaults to -1 with no selector, showing all log lines otherwise 10, if a selector is provided.")
	fs.BoolVarP(&o.previous, "previous", "p", false, "If true, print the logs for the previous instance of the container in a pod if it exists.")
	fs.BoolVar(&o.timestamps, "timestamps", false, "Include timestamps on each line in the log output")
	fs.DurationVar(&o.since, "since", 0, "Only return logs newer than a relative duration like 5s, 2m, or 3h. Defaults to all logs.")
	fs.Int64Var(&o.limitBytes, "limit-bytes", 0, "Maximum bytes of logs to return. Defaults to no limit.")
	fs.StringVarP(&o.selector, "selector", "l", "", "Selector (label query) to filter on")
	fs.BoolVar(&o.allContainers, "all-containers", false, "Get all containers' logs in the pod(s).")
	fs.BoolVar(&o.prefix, "prefix", false, "Prefix each log line with the log source (pod name and container name)")
	fs.IntVar(&o.maxLogRequests, "max-log-requests", 5, "Specify maximum number of concurrent logs to follow when using by a selector. Defaults to 5.")
	cmd.PreRun = func(cmd *cobra.Command, _ []string) { o.tailSet = cmd.Flags().Changed("tail") }
	return cmd
}

// podTarget is what the arguments of logs and exec name: a pod, one pod
// of a DaemonSet, or (logs -l) neither.
type podTarget struct {
	kind string // "Pod" or "DaemonSet"; empty with -l
	name string
}

// request checks the arguments and flags and builds the request every
// stream starts from, and names what to read. As kubectl still accepts,
// a second argument names the container.
func (o *logsOptions) request(args []string) (*corralpb.LogsRequest, podTarget, error) {
	var target podTarget
	if o.selector != "" {
		if len(args) > 0 {
			return nil, target, errors.New("only a selector (-l) or a POD name is allowed")
		}
	} else {
		if len(args) == 0 || len(args) > 2 {
			return nil, target, errors.New("expected 'logs [-f] [-p] (POD | TYPE/NAME) [-c CONTAINER]'.\n" +
				"POD or TYPE/NAME is a required argument for the logs command\nSee 'corral logs -h' for help and examples")
		}
		var err error
		if target, err = podTargetArg(args[0], "get the logs from"); err != nil {
			return nil, target, err
		}
	}
	ctr := o.container
	if len(args) == 2 {
		if ctr != "" {
			return nil, target, errors.New("only one of -c or an inline [CONTAINER] arg is allowed")
		}
		ctr = args[1]
	}
	switch {
	case o.tail < -1:
		return nil, target, errors.New("--tail must be greater than or equal to -1")
	case o.since < 0:
		return nil, target, errors.New("--since must be greater than 0")
	case o.limitBytes < 0:
		return nil, target, errors.New("--limit-bytes must be greater than 0")
	case o.maxLogRequests <= 0:
		return nil, target, errors.New("--max-log-requests must be greater than 0")
	case o.allContainers && ctr != "":
		return nil, target, errors.New("--all-containers=true should not be specified with container name " + ctr)
	}
	tail := o.tail
	if o.selector != "" && !o.tailSet {
		tail = 10
	}
	return &corralpb.LogsRequest{
		Namespace:    o.g.ns(),
		Container:    ctr,
		Follow:       o.follow,
		TailLines:    tail,
		Previous:     o.previous,
		Timestamps:   o.timestamps,
		SinceSeconds: int64(math.Ceil(o.since.Seconds())),
		LimitBytes:   o.limitBytes,
	}, target, nil
}

// sources lists the log streams to read, each a request of its own: one
// per pod (the named one, the DaemonSet's pick, or each -l picks), or one
// per container of each with --all-containers.
func (o *logsOptions) sources(ctx context.Context, base *corralpb.LogsRequest, target podTarget) ([]*corralpb.LogsRequest, error) {
	var pods []*corralpb.Pod
	switch target.kind {
	case "Pod":
		if !o.allContainers && !o.prefix {
			req := proto.Clone(base).(*corralpb.LogsRequest)
			req.Pod = target.name
			return []*corralpb.LogsRequest{req}, nil
		}
		obj, err := o.g.getObject(ctx, "Pod", base.GetNamespace(), target.name)
		if err != nil {
			return nil, err
		}
		pods = []*corralpb.Pod{obj.GetPod()}
	case "DaemonSet":
		p, err := o.g.daemonSetPod(ctx, base.GetNamespace(), target.name)
		if err != nil {
			return nil, err
		}
		pods = []*corralpb.Pod{p}
	default:
		resp, err := o.g.listObjects(ctx, &corralpb.ListRequest{Kind: "Pod", Namespace: base.GetNamespace(), LabelSelector: o.selector})
		if err != nil {
			return nil, err
		}
		if len(resp.GetItems()) == 0 {
			o.g.warnf("No resources found in %s namespace.\n", base.GetNamespace())
			return nil, nil
		}
		for _, obj := range resp.GetItems() {
			pods = append(pods, obj.GetPod())
		}
	}
	var out []*corralpb.LogsRequest
	for _, p := range pods {
		ctrs := []string{base.GetContainer()}
		if cs := p.GetSpec().GetContainers(); ctrs[0] == "" && len(cs) == 1 {
			ctrs[0] = cs[0].GetName() // the one the server would pick, named for --prefix
		}
		if o.allContainers {
			ctrs = nil
			for _, c := range append(append([]*corralpb.Container{}, p.GetSpec().GetInitContainers()...), p.GetSpec().GetContainers()...) {
				ctrs = append(ctrs, c.GetName())
			}
		}
		for _, c := range ctrs {
			req := proto.Clone(base).(*corralpb.LogsRequest)
			req.Pod, req.Container = p.GetMetadata().GetName(), c
			out = append(out, req)
		}
	}
	return out, nil
}

// daemonSetPod picks the pod of DaemonSet name that kubectl would show
// the logs of or exec into (see logPodFirst), and says which when there
// are several.
func (g *globals) daemonSetPod(ctx context.Context, ns, name string) (*corralpb.Pod, error) {
	obj, err := g.getObject(ctx, "DaemonSet", ns, name)
	if err != nil {
		return nil, err
	}
	ds := obj.GetDaemonSet()
	sel, err := api.LabelSelectorAsSelector(ds.GetSpec().GetSelector())
	if err != nil {
		return nil, fmt.Errorf("daemonset.apps/%s: %w", name, err)
	}
	resp, err := g.listObjects(ctx, &corralpb.ListRequest{Kind: "Pod", Namespace: ns, LabelSelector: sel.String()})
	if err != nil {
		return nil, err
	}
	var pods []*corralpb.Pod
	for _, p := range resp.GetItems() {
		if ref := controllerOf(api.Meta(p)); ref != nil && ref.GetUid() == ds.GetMetadata().GetUid() {
			pods = append(pods, p.GetPod())
		}
	}
	if len(pods) == 0 {
		return nil, fmt.Errorf("no pods found for daemonset.apps/%s", name)
	}
	sort.SliceStable(pods, func(i, j int) bool { return logPodFirst(pods[i], pods[j]) })
	if len(pods) > 1 {
		g.warnf("Found %d pods, using pod/%s\n", len(pods), pods[0].GetMetadata().GetName())
	}
	return pods[0], nil
}

// logPodFirst orders a controller's pods as kubectl picks the one to show
// logs of: bound before unbound, Running before Unknown before Pending,
// Ready before not, Ready longer before Ready later, more restarts before
// fewer, older before newer.
func logPodFirst(a, b *corralpb.Pod) bool {
	if bound := a.GetSpec().GetNodeName() != ""; bound != (b.GetSpec().GetNodeName() != "") {
		return bound
	}
	rank := map[string]int{"Running": 0, "Unknown": 1, "Pending": 2}
	ra, oka := rank[a.GetStatus().GetPhase()]
	rb, okb := rank[b.GetStatus().GetPhase()]
	if !oka {
		ra = 3
	}
	if !okb {
		rb = 3
	}
	if ra != rb {
		return ra < rb
	}
	readyA, sinceA := podReadySince(a)
	readyB, sinceB := podReadySince(b)
	if readyA != readyB {
		return readyA
	}
	if readyA && !sinceA.Equal(sinceB) {
		return sinceA.Before(sinceB)
	}
	if ra, rb := maxRestarts(a), maxRestarts(b); ra != rb {
		return ra > rb
	}
	return a.GetMetadata().GetCreationTimestamp().AsTime().Before(b.GetMetadata().GetCreationTimestamp().AsTime())
}

// podReadySince reports whether p is Ready, and since when.
func podReadySince(p *corralpb.Pod) (bool, time.Time) {
	for _, c := range p.GetStatus().GetConditions() {
		if c.GetType() == "Ready" {
			return c.GetStatus() == "True", c.GetLastTransitionTime().AsTime()
		}
	}
	return false, time.Time{}
}

func maxRestarts(p *corralpb.Pod) int32 {
	var n int32
	for _, cs := range p.GetStatus().GetContainerStatuses() {
		n = max(n, cs.GetRestartCount())
	}
	return n
}

// run reads the streams: one after the other, or, when following more
// than one, all at once. With --prefix, or several streams followed at
// once, lines are written whole, so that streams do not cut into each
// other's lines.
func (o *logsOptions) run(ctx context.Context, srcs []*corralpb.LogsRequest) error {
	if len(srcs) == 0 {
		return nil
	}
	if !o.follow || len(srcs) == 1 {
		for _, req := range srcs {
			if err := o.stream(ctx, req, o.writerFor(req, nil)); err != nil {
				return err
			}
		}
		return nil
	}
	if len(srcs) > o.maxLogRequests {
		return fmt.Errorf("you are attempting to follow %d log streams, but maximum allowed concurrency is %d, use --max-log-requests to increase the limit",
			len(srcs), o.maxLogRequests)
	}
	// As kubectl, one stream's error ends them all.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	errs := make(chan error, len(srcs))
	for _, req := range srcs {
		go func() { errs <- o.stream(ctx, req, o.writerFor(req, &mu)) }()
	}
	var first error
	for range srcs {
		if err := <-errs; err != nil && first == nil {
			first = err
			cancel()
		}
	}
	return first
}

// writerFor is where one stream's logs go: straight to the output, or
// through a lineWriter that prefixes them and writes each line whole under
// mu (nil: a lock of its own).
func (o *logsOptions) writerFor(req *corralpb.LogsRequest, mu *sync.Mutex) io.Writer {
	if !o.prefix && mu == nil {
		return o.g.out
	}
	if mu == nil {
		mu = &sync.Mutex{}
	}
	lw := &lineWriter{out: o.g.out, mu: mu}
	if o.prefix {
		lw.prefix = fmt.Sprintf("[pod/%s/%s] ", req.GetPod(), req.GetContainer())
	}
	return lw
}

// stream copies one Logs stream to w until the server ends it or the user
// interrupts a follow.
func (o *logsOptions) stream(ctx context.Context, req *corralpb.LogsRequest, w io.Writer) error {
	c, err := o.g.cluster()
	if err != nil {
		return err
	}
	st, err := c.Logs(ctx, req)
	if err != nil {
		return fmt.Errorf("logs of pod %s: %w", req.GetPod(), err)
	}
	defer func() {
		if lw, ok := w.(*lineWriter); ok {
			lw.flush()
		}
	}()
	for {
		chunk, err := st.Recv()
		switch {
		case errors.Is(err, io.EOF):
			return nil
		case err != nil && (ctx.Err() != nil || isCode(err, codes.Canceled)):
			return nil
		case err != nil:
			return fmt.Errorf("logs of pod %s: %w", req.GetPod(), asBadRequest(err))
		}
		if _, err := w.Write(chunk.GetData()); err != nil {
			return fmt.Errorf("write logs: %w", err)
		}
	}
}

// lineWriter writes whole lines, each after prefix, to out under mu; it
// keeps a partial line until its end arrives (or flush).
type lineWriter struct {
	out     io.Writer
	mu      *sync.Mutex
	prefix  string
	partial []byte
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.partial = append(l.partial, p...)
	end := bytes.LastIndexByte(l.partial, '\n')
	if end < 0 {
		return len(p), nil
	}
	var b []byte
	for _, line := range bytes.SplitAfter(l.partial[:end+1], []byte("\n")) {
		if len(line) > 0 {
			b = append(append(b, l.prefix...), line...)
		}
	}
	l.partial = append(l.partial[:0], l.partial[end+1:]...)
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.out.Write(b); err != nil {
		return 0, err
	}
	return len(p), nil
}

// flush writes a last line that has no end, with a newline.
func (l *lineWriter) flush() {
	if len(l.partial) > 0 {
		_, _ = l.Write([]byte("\n")) // the stream is over: an error here has nowhere to go
	}
}

// podArg resolves POD or pod/NAME (any of the pod type's names); verb says
// what other types cannot do, in kubectl's words.
func podArg(arg, verb string) (string, error) {
	typ, name, ok := strings.Cut(arg, "/")
	if !ok {
		if arg == "" {
			return "", errors.New("pod name must not be empty")
		}
		return arg, nil
	}
	if typ == "" || name == "" || strings.Contains(name, "/") {
		return "", errors.New("arguments in resource/name form must have a single resource and name")
	}
	k, err := lookupKind(typ)
	if err != nil {
		return "", err
	}
	if k.Kind != "Pod" {
		return "", fmt.Errorf("cannot %s %s: only pods are supported", verb, objectRef(k, name))
	}
	return name, nil
}

// podTargetArg resolves the argument of logs and exec: POD, pod/NAME or
// a DaemonSet's TYPE/NAME; verb says what other types cannot do.
func podTargetArg(arg, verb string) (podTarget, error) {
	if typ, name, ok := strings.Cut(arg, "/"); ok && typ != "" && name != "" && !strings.Contains(name, "/") {
		if k, err := lookupKind(typ); err == nil && k.Kind == "DaemonSet" {
			return podTarget{kind: "DaemonSet", name: name}, nil
		}
	}
	pod, err := podArg(arg, verb)
	return podTarget{kind: "Pod", name: pod}, err
}

// asBadRequest makes an InvalidArgument status from logs or exec print as
// kubectl prints the apiserver's and kubelet's rejections of such calls:
// "Error from server (BadRequest): ...".
func asBadRequest(err error) error {
	s, ok := grpcStatus(err)
	if !ok || s.Code() != codes.InvalidArgument {
		return err
	}
	return status.Error(codes.FailedPrecondition, s.Message())
}
