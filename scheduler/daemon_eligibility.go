package scheduler

import (
	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

// NodeShouldRunDaemonPod is Kubernetes' per-node decision for a DaemonSet:
// shouldRun when a new pod belongs on the node; shouldContinueRunning when a
// pod already there may stay. The template's nodeName, nodeSelector and
// required node affinity must match; taints must be tolerated (with the
// tolerations every DaemonSet pod gets): an untolerated NoSchedule taint
// keeps new pods off but lets a running one stay, an untolerated NoExecute
// taint evicts. PreferNoSchedule is ignored, and so is unschedulable
// (cordoned nodes still run DaemonSet pods).
func NodeShouldRunDaemonPod(node *corralpb.Node, ds *corralpb.DaemonSet) (shouldRun, shouldContinueRunning bool) {
	spec := ds.GetSpec().GetTemplate().GetSpec()
	name := node.GetMetadata().GetName()
	if n := spec.GetNodeName(); n != "" && n != name {
		return false, false
	}
	if !api.NodeMatchesNodeSelector(node, spec.GetNodeSelector()) {
		return false, false
	}
	if req := spec.GetAffinity().GetNodeAffinity().GetRequiredDuringSchedulingIgnoredDuringExecution(); req != nil {
		if ok, err := api.NodeMatchesSelectorTerms(node, req.GetNodeSelectorTerms()); err != nil || !ok {
			return false, false
		}
	}
	if len(node.GetSpec().GetTaints()) == 0 {
		return true, true // most nodes: no tolerations to work out
	}
	tols := withDaemonTolerations(spec)
	if _, untolerated := api.FindUntoleratedTaint(node.GetSpec().GetTaints(), tols, EffectNoExecute); untolerated {
		return false, false
	}
	if _, untolerated := api.FindUntoleratedTaint(node.GetSpec().GetTaints(), tols, EffectNoSchedule); untolerated {
		return false, true
	}
	return true, true
}
