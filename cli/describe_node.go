package cli

import (
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

// describeNodeObject fetches the node's pods and events and renders it.
func describeNodeObject(env *describeEnv, obj *corralpb.Object) (string, error) {
	node := obj.GetNode()
	name := node.GetMetadata().GetName()
	resp, err := env.g.listObjects(env.ctx, &corralpb.ListRequest{Kind: "Pod", FieldSelector: "spec.nodeName=" + name})
	if err != nil {
		return "", fmt.Errorf("pods on node %s: %w", name, err)
	}
	var pods []*corralpb.Pod
	for _, o := range resp.GetItems() {
		p := o.GetPod()
		phase := p.GetStatus().GetPhase()
		if p.GetSpec().GetNodeName() == name && phase != phaseSucceeded && phase != phaseFailed {
			pods = append(pods, p)
		}
	}
	evs, err := env.eventsFor("Node", "", name)
	if err != nil {
		return "", err
	}
	return describeNode(node, pods, evs, env.showEvents, env.now), nil
}

// describeNode renders a node in kubectl's layout.
func describeNode(node *corralpb.Node, pods []*corralpb.Pod, evs []*corralpb.Event, showEvents bool, now time.Time) string {
	w := newDescribeWriter()
	md, spec, st := node.GetMetadata(), node.GetSpec(), node.GetStatus()
	w.write(0, "Name:\t%s\n", md.GetName())
	w.write(0, "Roles:\t%s\n", orNone(strings.Join(nodeRoles(md.GetLabels()), ",")))
	w.labels("Labels", md.GetLabels())
	w.annotations("Annotations", md.GetAnnotations())
	w.write(0, "CreationTimestamp:\t%s\n", rfc1123z(md.GetCreationTimestamp()))
	w.taints("Taints", spec.GetTaints())
	w.write(0, "Unschedulable:\t%v\n", spec.GetUnschedulable())
	if len(st.GetConditions()) > 0 {
		w.write(0, "Conditions:\n  Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\tReason\tMessage\n")
		w.write(1, "----\t------\t-----------------\t------------------\t------\t-------\n")
		for _, c := range st.GetConditions() {
			w.write(1, "%v \t%v \t%s \t%s \t%v \t%v\n", c.GetType(), c.GetStatus(),
				rfc1123z(c.GetLastHeartbeatTime()), rfc1123z(c.GetLastTransitionTime()), c.GetReason(), c.GetMessage())
		}
	}
	w.write(0, "Addresses:\n")
	for _, a := range st.GetAddresses() {
		w.write(1, "%s:\t%s\n", a.GetType(), a.GetAddress())
	}
	for _, rl := range []struct {
		title string
		list  map[string]string
	}{{"Capacity", st.GetCapacity()}, {"Allocatable", st.GetAllocatable()}} {
		if len(rl.list) > 0 {
			w.write(0, "%s:\n", rl.title)
			for _, k := range sortedKeys(rl.list) {
				w.write(0, "  %s:\t%s\n", k, rl.list[k])
			}
		}
	}
	describeSystemInfo(w, st.GetNodeInfo())
	if spec.GetPodCidr() != "" {
		w.write(0, "PodCIDR:\t%s\n", spec.GetPodCidr())
	}
	if len(spec.GetPodCidrs()) > 0 {
		w.write(0, "PodCIDRs:\t%s\n", strings.Join(spec.GetPodCidrs(), ","))
	}
	if spec.GetProviderId() != "" {
		w.write(0, "ProviderID:\t%s\n", spec.GetProviderId())
	}
	describeNodeResources(w, node, pods, now)
	if showEvents {
		w.events(evs, now)
	}
	return w.String()
}

// describeSystemInfo writes the "System Info" block.
func describeSystemInfo(w *describeWriter, i *corralpb.NodeSystemInfo) {
	w.write(0, "System Info:\n")
	w.write(0, "  Machine ID:\t%s\n", i.GetMachineId())
	w.write(0, "  System UUID:\t%s\n", i.GetSystemUuid())
	w.write(0, "  Boot ID:\t%s\n", i.GetBootId())
	w.write(0, "  Kernel Version:\t%s\n", i.GetKernelVersion())
	w.write(0, "  OS Image:\t%s\n", i.GetOsImage())
	w.write(0, "  Operating System:\t%s\n", i.GetOperatingSystem())
	w.write(0, "  Architecture:\t%s\n", i.GetArchitecture())
	w.write(0, "  Container Runtime Version:\t%s\n", i.GetContainerRuntimeVersion())
	w.write(0, "  Kubelet Version:\t%s\n", i.GetKubeletVersion())
	if i.GetKubeProxyVersion() != "" {
		w.write(0, "  Kube-Proxy Version:\t%s\n", i.GetKubeProxyVersion())
	}
}

// podResources sums one pod's requests and limits: the containers' sum, or
// the largest init container when that is larger.
func podResources(p *corralpb.Pod) (req, lim map[string]resource.Quantity) {
	req, lim = map[string]resource.Quantity{}, map[string]resource.Quantity{}
	for _, c := range p.GetSpec().GetContainers() {
		addQuantities(req, c.GetResources().GetRequests())
		addQuantities(lim, c.GetResources().GetLimits())
	}
	for _, c := range p.GetSpec().GetInitContainers() {
		maxQuantities(req, c.GetResources().GetRequests())
		maxQuantities(lim, c.GetResources().GetLimits())
	}
	return req, lim
}

// addQuantities adds a resource list into sum; unparsable values are
// skipped (validation rejects them before they are stored).
func addQuantities(sum map[string]resource.Quantity, list map[string]string) {
	for k, v := range list {
		q, err := api.ParseQuantity(v)
		if err != nil {
			continue
		}
		cur := sum[k]
		cur.Add(q)
		sum[k] = cur
	}
}

// maxQuantities raises sum to each value of list that is larger.
func maxQuantities(sum map[string]resource.Quantity, list map[string]string) {
	for k, v := range list {
		q, err := api.ParseQuantity(v)
		if err != nil {
			continue
		}
		if cur, ok := sum[k]; !ok || q.Cmp(cur) > 0 {
			sum[k] = q
		}
	}
}

// allocatableOf returns the node's allocatable (or capacity) quantity.
func allocatableOf(node *corralpb.Node, name string) resource.Quantity {
	list := node.GetStatus().GetAllocatable()
	if len(list) == 0 {
		list = node.GetStatus().GetCapacity()
	}
	q, err := api.ParseQuantity(list[name])
	if err != nil {
		return resource.Quantity{}
	}
	return q
}

// fraction renders "q (p%)" of q against the node's allocatable.
func fraction(q resource.Quantity, alloc resource.Quantity, milli bool) string {
	pct := int64(0)
	if milli && alloc.MilliValue() != 0 {
		pct = int64(float64(q.MilliValue()) / float64(alloc.MilliValue()) * 100)
	} else if !milli && alloc.Value() != 0 {
		pct = int64(float64(q.Value()) / float64(alloc.Value()) * 100)
	}
	return fmt.Sprintf("%s (%d%%)", q.String(), pct)
}

// describeNodeResources writes "Non-terminated Pods" and "Allocated
// resources".
func describeNodeResources(w *describeWriter, node *corralpb.Node, pods []*corralpb.Pod, now time.Time) {
	cpu, mem := allocatableOf(node, "cpu"), allocatableOf(node, "memory")
	w.write(0, "Non-terminated Pods:\t(%d in total)\n", len(pods))
	w.write(1, "Namespace\tName\t\tCPU Requests\tCPU Limits\tMemory Requests\tMemory Limits\tAge\n")
	w.write(1, "---------\t----\t\t------------\t----------\t---------------\t-------------\t---\n")
	totalReq, totalLim := map[string]resource.Quantity{}, map[string]resource.Quantity{}
	for _, p := range pods {
		req, lim := podResources(p)
		w.write(1, "%s\t%s\t\t%s\t%s\t%s\t%s\t%s\n", p.GetMetadata().GetNamespace(), p.GetMetadata().GetName(),
			fraction(req["cpu"], cpu, true), fraction(lim["cpu"], cpu, true),
			fraction(req["memory"], mem, false), fraction(lim["memory"], mem, false),
			since(p.GetMetadata().GetCreationTimestamp(), now))
		for k, q := range req {
			cur := totalReq[k]
			cur.Add(q)
			totalReq[k] = cur
		}
		for k, q := range lim {
			cur := totalLim[k]
			cur.Add(q)
			totalLim[k] = cur
		}
	}
	w.write(0, "Allocated resources:\n  (Total limits may be over 100 percent, i.e., overcommitted.)\n")
	w.write(1, "Resource\tRequests\tLimits\n")
	w.write(1, "--------\t--------\t------\n")
	w.write(1, "%s\t%s\t%s\n", "cpu", fraction(totalReq["cpu"], cpu, true), fraction(totalLim["cpu"], cpu, true))
	w.write(1, "%s\t%s\t%s\n", "memory", fraction(totalReq["memory"], mem, false), fraction(totalLim["memory"], mem, false))
	eph := allocatableOf(node, "ephemeral-storage")
	w.write(1, "%s\t%s\t%s\n", "ephemeral-storage", fraction(totalReq["ephemeral-storage"], eph, false), fraction(totalLim["ephemeral-storage"], eph, false))
}
