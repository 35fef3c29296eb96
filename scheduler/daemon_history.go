package scheduler

import (
	"bytes"
	"sort"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

// historyPlan is what a DaemonSet's ControllerRevisions need.
type historyPlan struct {
	// Put are revisions to create (no resourceVersion) or renumber.
	Put []*corralpb.ControllerRevision
	// Delete are revisions beyond the history limit no pod uses.
	Delete []*corralpb.ControllerRevision
	// Current is the revision of the current template.
	Current *corralpb.ControllerRevision
	// Collision is set when another template's revision already has the
	// current template's name: the DaemonSet's collisionCount must go up
	// (which changes the hash) before a revision can be made.
	Collision bool
}

// planHistory is Kubernetes' constructHistory and cleanupHistory: the
// current template has a revision named <ds>-<hash>, numbered one above
// every other; a template seen before (an undo) renumbers its old revision
// instead of making a new one; old revisions beyond revisionHistoryLimit
// go, oldest first, unless a live pod still runs them. Revisions carry the
// template's labels and the hash label, and the DaemonSet as controller.
func planHistory(ds *corralpb.DaemonSet, revisions []*corralpb.ControllerRevision, liveHashes map[string]bool, now time.Time) (*historyPlan, error) {
	hash := TemplateHash(ds)
	data, err := api.RevisionData(ds.GetSpec().GetTemplate())
	if err != nil {
		return nil, err
	}
	var maxRev int64
	var current *corralpb.ControllerRevision
	for _, r := range revisions {
		maxRev = max(maxRev, r.GetRevision())
		if current == nil && bytes.Equal(r.GetData().GetRaw(), data) {
			current = r
		}
	}
	plan := &historyPlan{}
	switch {
	case current == nil:
		current = newRevision(ds, hash, data, maxRev+1, now)
		for _, r := range revisions {
			if r.GetMetadata().GetName() == current.GetMetadata().GetName() {
				return &historyPlan{Collision: true}, nil
			}
		}
		plan.Put = append(plan.Put, current)
	case current.GetRevision() < maxRev:
		current = proto.Clone(current).(*corralpb.ControllerRevision)
		current.Revision = maxRev + 1
		plan.Put = append(plan.Put, current)
	}
	plan.Current = current
	limit := int(10)
	if l := ds.GetSpec().RevisionHistoryLimit; l != nil {
		limit = int(*l)
	}
	var old []*corralpb.ControllerRevision
	for _, r := range revisions {
		if r.GetMetadata().GetName() != current.GetMetadata().GetName() && !liveHashes[r.GetMetadata().GetLabels()[LabelRevisionHash]] {
			old = append(old, r)
		}
	}
	sort.Slice(old, func(i, j int) bool { return old[i].GetRevision() < old[j].GetRevision() })
	if excess := len(old) - limit; excess > 0 {
		plan.Delete = old[:excess]
	}
	return plan, nil
}

func newRevision(ds *corralpb.DaemonSet, hash string, data []byte, revision int64, now time.Time) *corralpb.ControllerRevision {
	m := ds.GetMetadata()
	labels := map[string]string{LabelRevisionHash: hash}
	for k, v := range ds.GetSpec().GetTemplate().GetMetadata().GetLabels() {
		labels[k] = v
	}
	yes := true
	return &corralpb.ControllerRevision{
		ApiVersion: "apps/v1", Kind: "ControllerRevision",
		Metadata: &corralpb.ObjectMeta{
			Name: m.GetName() + "-" + hash, Namespace: m.GetNamespace(), Labels: labels,
			Annotations:       changeCause(ds),
			CreationTimestamp: timestamppb.New(now.UTC().Truncate(time.Second)),
			OwnerReferences: []*corralpb.OwnerReference{{ApiVersion: "apps/v1", Kind: "DaemonSet", Name: m.GetName(),
				Uid: m.GetUid(), Controller: &yes, BlockOwnerDeletion: &yes}},
		},
		Data:     &corralpb.RawExtension{Raw: data},
		Revision: revision,
	}
}

// changeCauseAnnotation is kubectl's record of why a template changed,
// shown by `rollout history`.
const changeCauseAnnotation = "kubernetes.io/change-cause"

func changeCause(ds *corralpb.DaemonSet) map[string]string {
	if c, ok := ds.GetMetadata().GetAnnotations()[changeCauseAnnotation]; ok {
		return map[string]string{changeCauseAnnotation: c}
	}
	return nil
}
