package scheduler

import (
	"slices"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	corralpb "github.com/corral-dev/corral/proto"
)

// Node condition and taint names, as Kubernetes spells them.
const (
	ConditionReady       = "Ready"
	TaintUnreachable     = "node.kubernetes.io/unreachable"
	TaintNotReady        = "node.kubernetes.io/not-ready"
	TaintUnschedulable   = "node.kubernetes.io/unschedulable"
	EffectNoExecute      = "NoExecute"
	EffectNoSchedule     = "NoSchedule"
	reasonUnknown        = "NodeStatusUnknown"
	messageUnknown       = "Kubelet stopped posting node status."
	reasonReady          = "KubeletReady"
	messageReady         = "kubelet is posting ready status"
	conditionTrue        = "True"
	conditionUnknownStat = "Unknown"
)

// PlanNodeLifecycle returns the nodes whose Ready condition must change:
// a node not heard from for longer than grace becomes Ready=Unknown with the
// unreachable NoExecute taint; an Unknown node heard from again within grace
// becomes Ready=True without it. lastSeen holds when each node's agent last
// sent a heartbeat; a node missing from it has never been heard of by this
// leader and is left alone (the caller seeds every node at leadership
// start). The returned nodes are updated copies.
func PlanNodeLifecycle(nodes []*corralpb.Node, lastSeen map[string]time.Time, now time.Time, grace time.Duration) []*corralpb.Node {
	var out []*corralpb.Node
	for _, n := range nodes {
		seen, ok := lastSeen[n.GetMetadata().GetName()]
		if !ok {
			continue
		}
		cond := readyCondition(n)
		unknown := cond != nil && cond.GetStatus() == conditionUnknownStat
		stale := now.Sub(seen) > grace
		switch {
		case stale && !unknown:
			out = append(out, markUnknown(n, now))
		case !stale && unknown:
			out = append(out, markReady(n, now))
		}
	}
	return out
}

func readyCondition(n *corralpb.Node) *corralpb.NodeCondition {
	for _, c := range n.GetStatus().GetConditions() {
		if c.GetType() == ConditionReady {
			return c
		}
	}
	return nil
}

func setReady(n *corralpb.Node, status, reason, message string, now time.Time) {
	ts := timestamppb.New(now.UTC().Truncate(time.Second))
	if n.Status == nil {
		n.Status = &corralpb.NodeStatus{}
	}
	c := readyCondition(n)
	if c == nil {
		c = &corralpb.NodeCondition{Type: ConditionReady}
		n.Status.Conditions = append(n.Status.Conditions, c)
	}
	if c.Status != status {
		c.LastTransitionTime = ts
	}
	c.Status, c.Reason, c.Message = status, reason, message
}

func markUnknown(orig *corralpb.Node, now time.Time) *corralpb.Node {
	n := proto.Clone(orig).(*corralpb.Node)
	setReady(n, conditionUnknownStat, reasonUnknown, messageUnknown, now)
	if n.Spec == nil {
		n.Spec = &corralpb.NodeSpec{}
	}
	if !slices.ContainsFunc(n.Spec.Taints, isUnreachable) {
		n.Spec.Taints = append(n.Spec.Taints, &corralpb.Taint{Key: TaintUnreachable, Effect: EffectNoExecute,
			TimeAdded: timestamppb.New(now.UTC().Truncate(time.Second))})
	}
	return n
}

func markReady(orig *corralpb.Node, now time.Time) *corralpb.Node {
	n := proto.Clone(orig).(*corralpb.Node)
	setReady(n, conditionTrue, reasonReady, messageReady, now)
	if n.Spec != nil {
		n.Spec.Taints = slices.DeleteFunc(n.Spec.Taints, isUnreachable)
	}
	return n
}

func isUnreachable(t *corralpb.Taint) bool {
	return t.GetKey() == TaintUnreachable && t.GetEffect() == EffectNoExecute
}
