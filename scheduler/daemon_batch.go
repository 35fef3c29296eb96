package scheduler

// Turning a sync's plans into the ops of its one Raft batch.

import (
	"crypto/rand"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
	"github.com/corral-dev/corral/raftstore/state"
)

// batch turns a plan into one guarded Raft batch. It returns the created
// pods with their names, in plan.Create's order.
func (c *DaemonSetController) batch(ds *corralpb.DaemonSet, plan *DaemonPlan, index uint64, view *state.Store) (*corralpb.Batch, []*corralpb.Pod) {
	b := &corralpb.Batch{GuardIndex: index, GuardKinds: []string{"Pod", "Node", "DaemonSet", "PriorityClass", "ControllerRevision"}}
	now := timestamppb.New(time.Now().UTC().Truncate(time.Second))
	var created []*corralpb.Pod
	named := map[string]bool{}
	var base *corralpb.Object
	for _, p := range plan.Create {
		// A copy of the pod and its metadata and status, which are
		// stamped here; the rest is shared with the plan's.
		c := &corralpb.Pod{Metadata: &corralpb.ObjectMeta{}, Status: &corralpb.PodStatus{}}
		api.Fill(c, p)
		p = c
		m := p.Metadata
		m.Name = uniquePodName(view, m.GetNamespace(), m.GetGenerateName(), named)
		m.Uid = newUID()
		m.CreationTimestamp = now
		m.Generation = 1
		p.Status.Phase = "Pending"
		created = append(created, p)
		op := &corralpb.Op{Type: corralpb.Op_PUT, Object: api.Wrap(p), Precondition: corralpb.Op_MUST_NOT_EXIST}
		// The entry carries what the pods share once and of each pod
		// what differs (name, uid, node): 5,000 pods are 0.25 MB instead
		// of 3, for every server to decode and store.
		if len(plan.Create) > 1 {
			if base == nil {
				base = podBase(p)
				b.Bases = append(b.Bases, base)
			}
			if thin, ok := api.Thin(op.Object, base); ok {
				op.Object, op.Base = thin.(*corralpb.Object), 1
			}
		}
		b.Ops = append(b.Ops, op)
	}
	for _, p := range plan.Bind {
		b.Ops = append(b.Ops, &corralpb.Op{Type: corralpb.Op_PUT, Object: api.Wrap(p),
			Precondition: corralpb.Op_RESOURCE_VERSION, ResourceVersion: p.GetMetadata().GetResourceVersion()})
	}
	for _, p := range plan.UpdateStatus {
		b.Ops = append(b.Ops, &corralpb.Op{Type: corralpb.Op_STATUS, Uid: p.GetMetadata().GetUid(), Object: api.Wrap(p),
			Precondition: corralpb.Op_RESOURCE_VERSION, ResourceVersion: p.GetMetadata().GetResourceVersion()})
	}
	for _, p := range append(append([]*corralpb.Pod(nil), plan.Delete...), plan.Preempt...) {
		m := p.GetMetadata()
		b.Ops = append(b.Ops, &corralpb.Op{Type: corralpb.Op_DELETE, Uid: m.GetUid(),
			Key: &corralpb.ObjectKey{Kind: "Pod", Namespace: m.GetNamespace(), Name: m.GetName()}})
	}
	yes := true
	for _, p := range plan.Adopt {
		p = proto.Clone(p).(*corralpb.Pod)
		p.Metadata.OwnerReferences = append(p.Metadata.OwnerReferences, &corralpb.OwnerReference{ApiVersion: "apps/v1", Kind: "DaemonSet",
			Name: ds.GetMetadata().GetName(), Uid: ds.GetMetadata().GetUid(), Controller: &yes, BlockOwnerDeletion: &yes})
		b.Ops = append(b.Ops, &corralpb.Op{Type: corralpb.Op_PUT, Object: api.Wrap(p),
			Precondition: corralpb.Op_RESOURCE_VERSION, ResourceVersion: p.GetMetadata().GetResourceVersion()})
	}
	b.Ops = append(b.Ops, dsOps(ds, plan)...)
	if len(plan.Delete)+len(plan.Preempt) > 0 {
		// Deletions follow pods' availability in a rolling update:
		// refuse them if a pod lost readiness since the snapshot. Pods
		// that became ready meanwhile only leave the plan more cautious
		// than it needs to be, and a pod that failed meanwhile is
		// deleted by the next sync. Creations and the rest depend only
		// on which pods exist.
		b.GuardKinds = append(b.GuardKinds, "Pod"+state.ReadinessGuard)
	}
	return b, created
}

// podBase is what the pods a sync creates have in common, taken from one
// of them (p): all but its name, uid, node (spec.nodeName and the node
// affinity that binds it) and status beyond the Pending phase.
func podBase(p *corralpb.Pod) *corralpb.Object {
	b := &corralpb.Pod{Metadata: &corralpb.ObjectMeta{}, Spec: &corralpb.PodSpec{}}
	api.Fill(b, p) // shares what p shares with the plan's other pods
	b.Metadata.Name, b.Metadata.Uid = "", ""
	b.Spec.NodeName, b.Spec.Affinity = "", nil
	b.Status = &corralpb.PodStatus{Phase: "Pending"}
	return api.Wrap(b)
}

// historyOps turns a history plan into ops: new revisions created,
// renumbered ones updated with compare-and-set, trimmed ones deleted.
func historyOps(h *historyPlan) []*corralpb.Op {
	var ops []*corralpb.Op
	for _, r := range h.Put {
		if r.GetMetadata().GetResourceVersion() == "" {
			r.Metadata.Uid = newUID()
			ops = append(ops, &corralpb.Op{Type: corralpb.Op_PUT, Object: api.Wrap(r), Precondition: corralpb.Op_MUST_NOT_EXIST})
			continue
		}
		ops = append(ops, &corralpb.Op{Type: corralpb.Op_PUT, Object: api.Wrap(r),
			Precondition: corralpb.Op_RESOURCE_VERSION, ResourceVersion: r.GetMetadata().GetResourceVersion()})
	}
	for _, r := range h.Delete {
		m := r.GetMetadata()
		ops = append(ops, &corralpb.Op{Type: corralpb.Op_DELETE, Uid: m.GetUid(),
			Key: &corralpb.ObjectKey{Kind: "ControllerRevision", Namespace: m.GetNamespace(), Name: m.GetName()}})
	}
	return ops
}

// dsOps are the plan's ops on the DaemonSet itself: its status, or, once a
// foreground deletion removed every pod, the DaemonSet.
func dsOps(ds *corralpb.DaemonSet, plan *DaemonPlan) []*corralpb.Op {
	m := ds.GetMetadata()
	if m.GetDeletionTimestamp() != nil {
		if len(plan.Delete) == 0 && hasFinalizer(m, "foregroundDeletion") {
			return []*corralpb.Op{{Type: corralpb.Op_DELETE, Uid: m.GetUid(),
				Key: &corralpb.ObjectKey{Kind: "DaemonSet", Namespace: m.GetNamespace(), Name: m.GetName()}}}
		}
		return nil
	}
	if proto.Equal(plan.Status, ds.GetStatus()) {
		return nil
	}
	return []*corralpb.Op{{Type: corralpb.Op_STATUS, Uid: m.GetUid(),
		Object: api.Wrap(&corralpb.DaemonSet{Metadata: &corralpb.ObjectMeta{Namespace: m.GetNamespace(), Name: m.GetName()}, Status: plan.Status})}}
}

// uniquePodName picks prefix plus five random characters (Kubernetes'
// generateName), unused in the snapshot and in this batch: with thousands
// of pods in one plan, a repeat is likely otherwise, and one would fail the
// whole batch.
func uniquePodName(view *state.Store, ns, prefix string, named map[string]bool) string {
	for {
		name := prefix + randomSuffix(5)
		if named[name] {
			continue
		}
		if o, err := view.Get(nil, "Pod", ns, name); err == nil && o != nil {
			continue
		}
		named[name] = true
		return name
	}
}

func newUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
