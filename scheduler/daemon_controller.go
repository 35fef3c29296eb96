package scheduler

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/corral-dev/corral/api"
	"github.com/corral-dev/corral/events"
	corralpb "github.com/corral-dev/corral/proto"
	"github.com/corral-dev/corral/raftstore/state"
)

// DaemonSetController runs on the leader: a work queue keyed by DaemonSet
// (namespace/name), fed by the state's change events (DaemonSets, their
// pods, nodes) and a periodic resync. Each sync plans from one snapshot
// with the pure PlanDaemonSet and commits the whole plan as one Raft batch
// guarded by the snapshot's index: if any pod, node or DaemonSet changed
// since, the FSM refuses it and the controller plans again, so a stale view
// can never put a second pod on a node.
type DaemonSetController struct {
	cluster Cluster
	events  events.Recorder
	log     *slog.Logger
	resync  time.Duration

	mu      sync.Mutex
	queue   map[string]bool
	kick    chan struct{}
	backOff map[string]map[string]BackOff // DaemonSet key → node → back-off
	later   map[string]*time.Timer
	// waiting are the DaemonSets with pods waiting for room on their node.
	waiting map[string]bool
	// seen is each DaemonSet as last routed, without its status (but for
	// collisionCount) and resourceVersion: a change to nothing else, such
	// as the status the controller itself just wrote, cannot change a plan
	// and queues no sync.
	seen map[string]*corralpb.DaemonSet
	// facts remembers, per DaemonSet, what its plans read of its pods;
	// only the worker uses it.
	facts map[string]*PodFacts
	// nodes is the node list of the store nodesOf as of the Raft index of
	// the last change to a Node or a Node's status (nodesAt): while no
	// node changes, as through a rollout, a sync reuses it rather than
	// listing thousands again. Only the worker uses it.
	nodes   []*corralpb.Node
	nodesAt uint64
	nodesOf *state.Store
}

// NewDaemonSetController returns the controller; Run drives it.
func NewDaemonSetController(c Cluster, rec events.Recorder, log *slog.Logger) *DaemonSetController {
	if rec == nil {
		rec = events.Discard
	}
	return &DaemonSetController{cluster: c, events: rec, log: log, resync: 30 * time.Second,
		queue: map[string]bool{}, kick: make(chan struct{}, 1), backOff: map[string]map[string]BackOff{}, later: map[string]*time.Timer{},
		waiting: map[string]bool{}, seen: map[string]*corralpb.DaemonSet{}, facts: map[string]*PodFacts{}}
}

// Run follows leadership until ctx ends: while this server leads, it syncs
// DaemonSets.
func (c *DaemonSetController) Run(ctx context.Context) {
	leader := c.cluster.SubscribeLeadership()
	cancelLead := context.CancelFunc(func() {})
	var done chan struct{}
	halt := func() {
		cancelLead()
		if done != nil {
			<-done
			done = nil
		}
	}
	defer halt()
	for {
		select {
		case <-ctx.Done():
			return
		case v, ok := <-leader:
			if !ok {
				return
			}
			halt()
			if v {
				lctx, cancel := context.WithCancel(ctx)
				cancelLead = cancel
				done = make(chan struct{})
				go func(d chan struct{}) { defer close(d); c.lead(lctx) }(done)
			}
		}
	}
}

// lead runs the watch and the worker while leadership lasts.
func (c *DaemonSetController) lead(ctx context.Context) {
	c.log.Info("daemonset controller started")
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); c.watch(ctx) }()
	go func() { defer wg.Done(); c.work(ctx) }()
	wg.Wait()
	c.mu.Lock()
	for _, t := range c.later {
		t.Stop()
	}
	c.later = map[string]*time.Timer{}
	c.seen = map[string]*corralpb.DaemonSet{}
	c.mu.Unlock()
	c.facts = map[string]*PodFacts{} // the worker has stopped
	c.nodes, c.nodesAt, c.nodesOf = nil, 0, nil
	c.log.Info("daemonset controller stopped")
}

func (c *DaemonSetController) enqueue(key string) {
	c.mu.Lock()
	c.queue[key] = true
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *DaemonSetController) enqueueAll(st *state.Store) {
	dss, err := st.List(nil, "DaemonSet", "")
	if err != nil {
		return
	}
	for _, o := range dss {
		c.enqueue(dsKey(o.GetDaemonSet()))
	}
}

func (c *DaemonSetController) enqueueAfter(key string, d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.later[key]; ok {
		t.Stop()
	}
	c.later[key] = time.AfterFunc(d, func() { c.enqueue(key) })
}

func dsKey(ds *corralpb.DaemonSet) string {
	return ds.GetMetadata().GetNamespace() + "/" + ds.GetMetadata().GetName()
}

// watch turns state changes into queued DaemonSets; every resync period,
// and whenever it falls behind the event ring, it queues them all.
func (c *DaemonSetController) watch(ctx context.Context) {
	t := time.NewTicker(c.resync)
	defer t.Stop()
	for ctx.Err() == nil {
		st := c.cluster.State()
		sub, err := st.Subscribe(st.LatestIndex())
		if err != nil {
			continue
		}
		c.enqueueAll(st)
		c.follow(ctx, st, sub, t.C)
		sub.Close()
	}
}

func (c *DaemonSetController) follow(ctx context.Context, st *state.Store, sub *state.Subscription, resync <-chan time.Time) {
	evs := make(chan []state.Event)
	errc := make(chan error, 1)
	go func() {
		for {
			batch, err := sub.Next(ctx)
			if err != nil {
				errc <- err
				return
			}
			select {
			case evs <- batch:
			case <-ctx.Done():
				errc <- ctx.Err()
				return
			}
		}
	}()
	for {
		select {
		case <-errc:
			return
		case <-resync:
			c.enqueueAll(st)
		case batch := <-evs:
			for _, ev := range batch {
				c.route(st, ev)
			}
		}
	}
}

// route queues the DaemonSets a change may concern.
func (c *DaemonSetController) route(st *state.Store, ev state.Event) {
	switch o := ev.Object.Kind.(type) {
	case *corralpb.Object_DaemonSet:
		if c.planChanged(ev.Type, o.DaemonSet) {
			c.enqueue(dsKey(o.DaemonSet))
		}
	case *corralpb.Object_Node, *corralpb.Object_PriorityClass:
		c.enqueueAll(st)
	case *corralpb.Object_Pod:
		if ev.Type == state.EventDeleted || terminated(o.Pod) {
			c.enqueueWaiting()
		}
		m := o.Pod.GetMetadata()
		for _, r := range m.GetOwnerReferences() {
			if r.GetController() && r.GetKind() == "DaemonSet" {
				c.enqueue(m.GetNamespace() + "/" + r.GetName())
				return
			}
		}
		// An orphan: any DaemonSet of its namespace may adopt it.
		dss, _ := st.List(nil, "DaemonSet", m.GetNamespace())
		for _, d := range dss {
			c.enqueue(dsKey(d.GetDaemonSet()))
		}
	}
}

// planChanged records a DaemonSet's change and reports whether it may
// change the DaemonSet's plan: anything but its status (collisionCount
// aside, which renames revisions) and resourceVersion.
func (c *DaemonSetController) planChanged(evType string, ds *corralpb.DaemonSet) bool {
	key := dsKey(ds)
	c.mu.Lock()
	defer c.mu.Unlock()
	if evType == state.EventDeleted {
		delete(c.seen, key)
		return true
	}
	bare := proto.Clone(ds).(*corralpb.DaemonSet)
	bare.Status = nil
	if st := ds.GetStatus(); st != nil && st.CollisionCount != nil {
		bare.Status = &corralpb.DaemonSetStatus{CollisionCount: st.CollisionCount}
	}
	bare.Metadata.ResourceVersion = ""
	if prev, ok := c.seen[key]; ok && proto.Equal(prev, bare) {
		return false
	}
	c.seen[key] = bare
	return true
}

// enqueueWaiting queues the DaemonSets whose pods wait for room: a pod
// left a node, and the room may be enough.
func (c *DaemonSetController) enqueueWaiting() {
	c.mu.Lock()
	keys := make([]string, 0, len(c.waiting))
	for k := range c.waiting {
		keys = append(keys, k)
	}
	c.mu.Unlock()
	for _, k := range keys {
		c.enqueue(k)
	}
}

func (c *DaemonSetController) work(ctx context.Context) {
	for {
		c.mu.Lock()
		var key string
		for k := range c.queue {
			key = k
			break
		}
		if key != "" {
			delete(c.queue, key)
		}
		c.mu.Unlock()
		if key == "" {
			select {
			case <-ctx.Done():
				return
			case <-c.kick:
			}
			continue
		}
		if err := c.sync(ctx, key); err != nil && ctx.Err() == nil {
			c.log.Warn("sync daemonset", "daemonset", key, "err", err)
			c.enqueueAfter(key, time.Second)
		}
	}
}

// maxReplans bounds the plans one sync makes when its snapshots keep going
// stale.
const maxReplans = 10

// errStale is a plan refused because the state moved on.
var errStale = errors.New("stale plan")

func (c *DaemonSetController) sync(ctx context.Context, key string) error {
	for attempt := 0; attempt < maxReplans; attempt++ {
		err := c.syncOnce(ctx, key)
		if !errors.Is(err, errStale) {
			return err
		}
	}
	return fmt.Errorf("%d plans in a row were stale", maxReplans)
}

func (c *DaemonSetController) syncOnce(ctx context.Context, key string) error {
	ns, name, _ := strings.Cut(key, "/")
	start := time.Now()
	live := c.cluster.State()
	view := live.Snapshot()
	if live != c.nodesOf {
		// A store replaced by a snapshot's restore: its indexes may
		// repeat another history's.
		c.nodes, c.nodesOf = nil, live
	}
	index := view.LatestIndex()
	obj, err := view.Get(nil, "DaemonSet", ns, name)
	if err != nil {
		return err
	}
	if obj == nil {
		c.mu.Lock()
		delete(c.backOff, key)
		delete(c.waiting, key)
		c.mu.Unlock()
		delete(c.facts, key)
		return c.collectOrphans(ctx, view, index, ns)
	}
	ds := obj.GetDaemonSet()
	if sel := ds.GetSpec().GetSelector(); sel != nil && len(sel.GetMatchLabels())+len(sel.GetMatchExpressions()) == 0 &&
		ds.GetMetadata().GetDeletionTimestamp() == nil {
		// Kubernetes' SelectingAll guard: a DaemonSet that selects every
		// pod of its namespace would adopt them all; it is left alone.
		// The API refuses such a selector, so only a store written some
		// other way holds one.
		c.events.Event(api.Wrap(ds), "Warning", "SelectingAll", "This daemon set is selecting all pods. A non-empty selector is required.")
		return nil
	}
	facts := c.facts[key]
	if facts == nil {
		facts = &PodFacts{}
		c.facts[key] = facts
	}
	defer facts.Rotate()
	in, pods, err := c.planInput(view, ds, facts)
	if err != nil {
		return err
	}
	plan := PlanDaemonSet(in)
	if pods.err != nil {
		return pods.err
	}
	b, created := c.batch(ds, plan, index, view)
	if ds.GetMetadata().GetDeletionTimestamp() == nil {
		hist, err := c.history(view, ds, in.Pods, facts)
		if err != nil {
			return err
		}
		if hist.Collision {
			return c.bumpCollisionCount(ctx, ds, index)
		}
		b.Ops = append(historyOps(hist), b.Ops...)
	}
	if len(b.Ops) == 0 {
		c.record(ds, plan, created)
		c.finish(key, plan)
		return nil
	}
	if kind := staleSince(c.cluster.State(), b); kind != "" {
		// The local store, which the FSM's guard consults too, has moved
		// past the snapshot already: the write would be refused.
		c.log.Debug("plan stale before its write; planning again", "daemonset", key, "raft_index", index, "changed", kind)
		return errStale
	}
	planned := time.Now()
	b.OmitObjects = true // only the result's code matters
	res, err := c.cluster.Write(ctx, b)
	if err != nil {
		return err
	}
	c.log.Debug("plan written", "daemonset", key, "raft_index", index, "ops", len(b.Ops), "result", res.GetCode().String(),
		"plan_ms", planned.Sub(start).Milliseconds(), "write_ms", time.Since(planned).Milliseconds())
	switch res.GetCode() {
	case corralpb.ErrorCode_OK:
	case corralpb.ErrorCode_STALE, corralpb.ErrorCode_CONFLICT, corralpb.ErrorCode_NOT_FOUND, corralpb.ErrorCode_ALREADY_EXISTS:
		c.log.Debug("plan refused; planning again", "daemonset", key, "raft_index", index, "reason", res.GetMessage())
		return errStale
	default:
		return fmt.Errorf("commit plan: %s: %s", res.GetCode(), res.GetMessage())
	}
	c.record(ds, plan, created)
	c.finish(key, plan)
	return nil
}

// staleSince returns the first of b's guard kinds that st shows changed
// after b's guard index, or "" if none has. st may lag the leader's log,
// never lead it: "" does not mean the write will pass, only that it may.
func staleSince(st *state.Store, b *corralpb.Batch) string {
	for _, k := range b.GetGuardKinds() {
		if st.KindIndex(k) > b.GetGuardIndex() {
			return k
		}
	}
	return ""
}

func (c *DaemonSetController) finish(key string, plan *DaemonPlan) {
	c.mu.Lock()
	c.backOff[key] = plan.BackOff
	if plan.Waiting > 0 {
		c.waiting[key] = true
	} else {
		delete(c.waiting, key)
	}
	c.mu.Unlock()
	if plan.Requeue > 0 {
		c.enqueueAfter(key, plan.Requeue)
	}
}

// planInput gathers the DaemonSet's nodes and pods, the priority classes,
// and (on demand) the pods bound to each node, from one snapshot.
func (c *DaemonSetController) planInput(view *state.Store, ds *corralpb.DaemonSet, facts *PodFacts) (DaemonPlanInput, *nodePods, error) {
	nodes, err := c.nodeList(view)
	if err != nil {
		return DaemonPlanInput{}, nil, err
	}
	pods := &nodePods{view: view}
	in := DaemonPlanInput{DaemonSet: ds, Nodes: nodes, Now: time.Now(), PodsOnNode: pods.get, Facts: facts}
	pcs, err := view.List(nil, "PriorityClass", "")
	if err != nil {
		return DaemonPlanInput{}, nil, err
	}
	for _, o := range pcs {
		in.PriorityClasses = append(in.PriorityClasses, o.GetPriorityClass())
	}
	sel, err := api.LabelSelectorAsSelector(ds.GetSpec().GetSelector())
	if err != nil || sel.Empty() {
		// Kubernetes' SelectingAll guard: an empty selector selects nothing.
		sel = labels.Nothing()
	}
	podObjs, err := view.List(nil, "Pod", ds.GetMetadata().GetNamespace())
	if err != nil {
		return DaemonPlanInput{}, nil, err
	}
	uid := ds.GetMetadata().GetUid()
	for _, o := range podObjs {
		p := o.GetPod()
		f := facts.of(p)
		switch {
		case f.owner == uid:
			in.Pods = append(in.Pods, p)
		case f.owner == "" && f.bound && sel.Matches(labels.Set(p.GetMetadata().GetLabels())):
			in.Pods = append(in.Pods, p)
		}
	}
	c.mu.Lock()
	in.FailedBackOff = c.backOff[dsKey(ds)]
	c.mu.Unlock()
	return in, pods, nil
}

// nodeList returns view's nodes, by name. The view shows the last change
// to a Node and to a Node's status (their kind indexes) like any other
// state: when neither is past the index the cached list was read at, the
// list is the view's. Nobody changes the list (the planner copies it to
// reorder it).
func (c *DaemonSetController) nodeList(view *state.Store) ([]*corralpb.Node, error) {
	at := max(view.KindIndex("Node"), view.KindIndex("Node"+state.StatusGuard))
	if c.nodes != nil && at == c.nodesAt {
		return c.nodes, nil
	}
	objs, err := view.List(nil, "Node", "")
	if err != nil {
		return nil, err
	}
	nodes := make([]*corralpb.Node, len(objs))
	for i, o := range objs {
		nodes[i] = o.GetNode()
	}
	c.nodes, c.nodesAt = nodes, at
	return nodes, nil
}

// nodePods reads the pods bound to a node from a snapshot, for the
// planner, which asks only for the nodes it places pods on. The planner
// cannot take an error: the first one is kept for the sync to return.
type nodePods struct {
	view *state.Store
	err  error
}

func (n *nodePods) get(node string) []*corralpb.Pod {
	objs, err := n.view.PodsByNode(nil, node)
	if err != nil {
		if n.err == nil {
			n.err = fmt.Errorf("list pods on node %s: %w", node, err)
		}
		return nil
	}
	out := make([]*corralpb.Pod, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.GetPod())
	}
	return out
}

// history plans the DaemonSet's ControllerRevisions from the snapshot:
// those it controls, and orphans its selector matches (left by a DaemonSet
// deleted with --cascade=orphan), which it adopts as Kubernetes does.
func (c *DaemonSetController) history(view *state.Store, ds *corralpb.DaemonSet, pods []*corralpb.Pod, facts *PodFacts) (*historyPlan, error) {
	objs, err := view.List(nil, "ControllerRevision", ds.GetMetadata().GetNamespace())
	if err != nil {
		return nil, err
	}
	sel, err := api.LabelSelectorAsSelector(ds.GetSpec().GetSelector())
	if err != nil || sel.Empty() {
		sel = labels.Nothing()
	}
	uid := ds.GetMetadata().GetUid()
	var revs, adopt []*corralpb.ControllerRevision
	for _, o := range objs {
		r := o.GetControllerRevision()
		_, owner := controllerOf(r.GetMetadata())
		switch {
		case owner == uid:
			revs = append(revs, r)
		case owner == "" && sel.Matches(labels.Set(r.GetMetadata().GetLabels())):
			r = proto.Clone(r).(*corralpb.ControllerRevision)
			yes := true
			r.Metadata.OwnerReferences = append(r.Metadata.OwnerReferences, &corralpb.OwnerReference{ApiVersion: "apps/v1",
				Kind: "DaemonSet", Name: ds.GetMetadata().GetName(), Uid: uid, Controller: &yes, BlockOwnerDeletion: &yes})
			revs = append(revs, r)
			adopt = append(adopt, r)
		}
	}
	live := map[string]bool{}
	for _, p := range pods {
		live[facts.of(p).hash] = true
	}
	h, err := planHistory(ds, revs, live, time.Now())
	if err != nil || h.Collision {
		return h, err
	}
	// Adopted revisions are written with their new owner, renumbered or not.
	for _, a := range adopt {
		put := false
		for _, p := range h.Put {
			put = put || p.GetMetadata().GetName() == a.GetMetadata().GetName()
		}
		if !put {
			h.Put = append(h.Put, a)
		}
	}
	return h, nil
}

// bumpCollisionCount raises status.collisionCount after a revision name
// collision, which changes the template hash; the next sync retries.
func (c *DaemonSetController) bumpCollisionCount(ctx context.Context, ds *corralpb.DaemonSet, index uint64) error {
	st := currentStatus(ds)
	n := st.GetCollisionCount() + 1
	st.CollisionCount = &n
	m := ds.GetMetadata()
	b := &corralpb.Batch{GuardIndex: index, GuardKinds: []string{"DaemonSet", "ControllerRevision"}, Ops: []*corralpb.Op{{
		Type: corralpb.Op_STATUS, Uid: m.GetUid(),
		Object: api.Wrap(&corralpb.DaemonSet{Metadata: &corralpb.ObjectMeta{Namespace: m.GetNamespace(), Name: m.GetName()}, Status: st}),
	}}, OmitObjects: true}
	if _, err := c.cluster.Write(ctx, b); err != nil {
		return err
	}
	c.log.Warn("controllerrevision name collision; collisionCount raised", "daemonset", dsKey(ds), "collision_count", n)
	return errStale
}

func hasFinalizer(m *corralpb.ObjectMeta, f string) bool {
	for _, x := range m.GetFinalizers() {
		if x == f {
			return true
		}
	}
	return false
}

// record emits the plan's events once it committed: those about the
// DaemonSet, and those about pods (FailedScheduling, Scheduled, Preempted
// on a victim), with the names and uids the controller gave the pods it
// created.
func (c *DaemonSetController) record(ds *corralpb.DaemonSet, plan *DaemonPlan, created []*corralpb.Pod) {
	obj := api.Wrap(ds)
	named := make(map[*corralpb.Pod]*corralpb.Pod, len(created))
	for i, p := range created {
		named[plan.Create[i]] = p
		c.events.Event(obj, "Normal", "SuccessfulCreate", "Created pod: "+p.GetMetadata().GetName())
	}
	for _, p := range plan.Delete {
		c.events.Event(obj, "Normal", "SuccessfulDelete", "Deleted pod: "+p.GetMetadata().GetName())
	}
	for _, e := range plan.Events {
		about, msg := obj, e.Message
		if e.Regarding != nil {
			p := e.Regarding
			if n, ok := named[p]; ok {
				p = n
			}
			about = api.Wrap(p)
		}
		if n, ok := named[e.Preemptor]; ok {
			msg = preemptedMessage(n, n.GetSpec().GetNodeName())
		}
		c.events.Event(about, e.Type, e.Reason, msg)
	}
}

// collectOrphans deletes pods whose controlling DaemonSet no longer exists
// (background deletion) in namespace ns.
func (c *DaemonSetController) collectOrphans(ctx context.Context, view *state.Store, index uint64, ns string) error {
	owners, err := view.List(nil, "DaemonSet", ns)
	if err != nil {
		return err
	}
	b := &corralpb.Batch{GuardIndex: index, GuardKinds: []string{"DaemonSet"}}
	// Pods and ControllerRevisions whose controlling DaemonSet is gone.
	for _, kind := range []string{"Pod", "ControllerRevision"} {
		objs, err := view.List(nil, kind, ns)
		if err != nil {
			return err
		}
		for _, o := range objs {
			m := api.Meta(o)
			if k, uid := controllerOf(m); k != "DaemonSet" || ownerExists(owners, uid) {
				continue
			}
			b.Ops = append(b.Ops, &corralpb.Op{Type: corralpb.Op_DELETE, Uid: m.GetUid(),
				Key: &corralpb.ObjectKey{Kind: kind, Namespace: ns, Name: m.GetName()}})
		}
	}
	if len(b.Ops) == 0 {
		return nil
	}
	b.OmitObjects = true
	res, err := c.cluster.Write(ctx, b)
	if err != nil {
		return err
	}
	if res.GetCode() == corralpb.ErrorCode_STALE || res.GetCode() == corralpb.ErrorCode_NOT_FOUND || res.GetCode() == corralpb.ErrorCode_CONFLICT {
		return errStale
	}
	if res.GetCode() != corralpb.ErrorCode_OK {
		return fmt.Errorf("garbage-collect dependents: %s", res.GetMessage())
	}
	c.log.Info("garbage-collected the dependents of deleted daemonsets", "namespace", ns, "objects", len(b.Ops))
	return nil
}

func ownerExists(dss []*corralpb.Object, uid string) bool {
	for _, o := range dss {
		if o.GetDaemonSet().GetMetadata().GetUid() == uid {
			return true
		}
	}
	return false
}

func randomSuffix(n int) string {
	const alphabet = "bcdfghjklmnpqrstvwxz2456789"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
