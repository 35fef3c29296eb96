package cli

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

// Node role labels, as kubectl reads them for the ROLES column.
const (
	nodeRolePrefix = "node-role.kubernetes.io/"
	nodeRoleLabel  = "kubernetes.io/role"
)

// printers holds each kind's table, column for column as kubectl prints it
// (k8s.io/kubernetes/pkg/printers/internalversion is the model).
var printers = map[string]tablePrinter{
	"DaemonSet": {
		columns: cols("NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE SELECTOR", "AGE", "+CONTAINERS", "+IMAGES", "+SELECTOR"),
		cells:   daemonSetCells,
	},
	"Pod": {
		columns: cols("NAME", "READY", "STATUS", "RESTARTS", "AGE", "+IP", "+NODE", "+NOMINATED NODE", "+READINESS GATES"),
		cells:   podCells,
	},
	"Node": {
		columns: cols("NAME", "STATUS", "ROLES", "AGE", "VERSION", "+INTERNAL-IP", "+EXTERNAL-IP", "+OS-IMAGE", "+KERNEL-VERSION", "+CONTAINER-RUNTIME"),
		cells:   nodeCells,
	},
	"Namespace": {
		columns: cols("NAME", "STATUS", "AGE"),
		cells: func(o *corralpb.Object, now time.Time) []string {
			ns := o.GetNamespace()
			return []string{ns.GetMetadata().GetName(), ns.GetStatus().GetPhase(), since(ns.GetMetadata().GetCreationTimestamp(), now)}
		},
	},
	"ConfigMap": {
		columns: cols("NAME", "DATA", "AGE"),
		cells: func(o *corralpb.Object, now time.Time) []string {
			cm := o.GetConfigMap()
			n := len(cm.GetData()) + len(cm.GetBinaryData())
			return []string{cm.GetMetadata().GetName(), strconv.Itoa(n), since(cm.GetMetadata().GetCreationTimestamp(), now)}
		},
	},
	"ControllerRevision": {
		columns: cols("NAME", "CONTROLLER", "REVISION", "AGE"),
		cells:   controllerRevisionCells,
	},
	"Event": {
		columns: cols("LAST SEEN", "TYPE", "REASON", "OBJECT", "+SUBOBJECT", "+SOURCE", "MESSAGE", "+FIRST SEEN", "+COUNT", "+NAME"),
		cells:   eventCells,
	},
	"PriorityClass": {
		columns: cols("NAME", "VALUE", "GLOBAL-DEFAULT", "AGE", "+PREEMPTIONPOLICY"),
		cells:   priorityClassCells,
	},
}

// cols builds columns; a leading "+" marks a wide-only column.
func cols(names ...string) []column {
	out := make([]column, 0, len(names))
	for _, n := range names {
		if strings.HasPrefix(n, "+") {
			out = append(out, column{header: n[1:], wide: true})
		} else {
			out = append(out, column{header: n})
		}
	}
	return out
}

// printerFor returns the table of a kind; kinds without one print NAME and
// AGE.
func printerFor(kind string) tablePrinter {
	if p, ok := printers[kind]; ok {
		return p
	}
	return tablePrinter{
		columns: cols("NAME", "AGE"),
		cells: func(o *corralpb.Object, now time.Time) []string {
			md := api.Meta(o)
			return []string{md.GetName(), since(md.GetCreationTimestamp(), now)}
		},
	}
}

// daemonSetCells fills the DaemonSet row.
func daemonSetCells(o *corralpb.Object, now time.Time) []string {
	ds := o.GetDaemonSet()
	st := ds.GetStatus()
	spec := ds.GetSpec().GetTemplate().GetSpec()
	names, images := containerCells(spec.GetContainers())
	return []string{
		ds.GetMetadata().GetName(),
		itoa(st.GetDesiredNumberScheduled()),
		itoa(st.GetCurrentNumberScheduled()),
		itoa(st.GetNumberReady()),
		itoa(st.GetUpdatedNumberScheduled()),
		itoa(st.GetNumberAvailable()),
		formatLabels(spec.GetNodeSelector()),
		since(ds.GetMetadata().GetCreationTimestamp(), now),
		names,
		images,
		formatLabelSelector(ds.GetSpec().GetSelector()),
	}
}

// containerCells returns the CONTAINERS and IMAGES cells.
func containerCells(cs []*corralpb.Container) (names, images string) {
	n := make([]string, 0, len(cs))
	im := make([]string, 0, len(cs))
	for _, c := range cs {
		n = append(n, c.GetName())
		im = append(im, c.GetImage())
	}
	return strings.Join(n, ","), strings.Join(im, ",")
}

// formatLabelSelector renders a label selector as kubectl does.
func formatLabelSelector(ls *corralpb.LabelSelector) string {
	sel, err := api.LabelSelectorAsSelector(ls)
	if err != nil {
		return "<error>"
	}
	return orNone(sel.String())
}

// itoa formats an int32 count.
func itoa(n int32) string { return strconv.Itoa(int(n)) }

// podCells fills the Pod row.
func podCells(o *corralpb.Object, now time.Time) []string {
	pod := o.GetPod()
	ps := summarizePod(pod, now)
	ip := ""
	if ips := pod.GetStatus().GetPodIps(); len(ips) > 0 {
		ip = ips[0].GetIp()
	}
	if ip == "" {
		ip = pod.GetStatus().GetPodIp()
	}
	return []string{
		pod.GetMetadata().GetName(),
		fmt.Sprintf("%d/%d", ps.ready, ps.total),
		ps.status,
		ps.restarts,
		since(pod.GetMetadata().GetCreationTimestamp(), now),
		orNone(ip),
		orNone(pod.GetSpec().GetNodeName()),
		orNone(pod.GetStatus().GetNominatedNodeName()),
		"<none>",
	}
}

// nodeCells fills the Node row.
func nodeCells(o *corralpb.Object, now time.Time) []string {
	n := o.GetNode()
	info := n.GetStatus().GetNodeInfo()
	unknown := func(s string) string {
		if s == "" {
			return "<unknown>"
		}
		return s
	}
	return []string{
		n.GetMetadata().GetName(),
		nodeStatus(n),
		orNone(strings.Join(nodeRoles(n.GetMetadata().GetLabels()), ",")),
		since(n.GetMetadata().GetCreationTimestamp(), now),
		info.GetKubeletVersion(),
		nodeAddress(n, "InternalIP"),
		nodeAddress(n, "ExternalIP"),
		unknown(info.GetOsImage()),
		unknown(info.GetKernelVersion()),
		unknown(info.GetContainerRuntimeVersion()),
	}
}

// nodeStatus is the STATUS column: Ready, NotReady or Unknown (no Ready
// condition), plus ",SchedulingDisabled" for a cordoned node.
func nodeStatus(n *corralpb.Node) string {
	var status []string
	for _, c := range n.GetStatus().GetConditions() {
		if c.GetType() != "Ready" {
			continue
		}
		if c.GetStatus() == "True" {
			status = append(status, "Ready")
		} else {
			status = append(status, "NotReady")
		}
		break
	}
	if len(status) == 0 {
		status = append(status, "Unknown")
	}
	if n.GetSpec().GetUnschedulable() {
		status = append(status, "SchedulingDisabled")
	}
	return strings.Join(status, ",")
}

// nodeRoles reads roles from node-role.kubernetes.io/<role> labels and the
// legacy kubernetes.io/role label, sorted.
func nodeRoles(lbls map[string]string) []string {
	set := map[string]bool{}
	for k, v := range lbls {
		switch {
		case strings.HasPrefix(k, nodeRolePrefix):
			if role := strings.TrimPrefix(k, nodeRolePrefix); role != "" {
				set[role] = true
			}
		case k == nodeRoleLabel && v != "":
			set[v] = true
		}
	}
	return sortedKeys(set)
}

// nodeAddress returns the node's first address of a type, "<none>" if none.
func nodeAddress(n *corralpb.Node, typ string) string {
	for _, a := range n.GetStatus().GetAddresses() {
		if a.GetType() == typ {
			return a.GetAddress()
		}
	}
	return "<none>"
}

// controllerRevisionCells fills the ControllerRevision row.
func controllerRevisionCells(o *corralpb.Object, now time.Time) []string {
	cr := o.GetControllerRevision()
	controller := "<none>"
	if ref := controllerOf(cr.GetMetadata()); ref != nil {
		group, _, _ := strings.Cut(ref.GetApiVersion(), "/")
		if !strings.Contains(ref.GetApiVersion(), "/") {
			group = ""
		}
		controller = strings.ToLower(ref.GetKind())
		if group != "" {
			controller += "." + group
		}
		controller += "/" + ref.GetName()
	}
	return []string{
		cr.GetMetadata().GetName(),
		controller,
		strconv.FormatInt(cr.GetRevision(), 10),
		since(cr.GetMetadata().GetCreationTimestamp(), now),
	}
}

// controllerOf returns the owner reference marked controller, if any.
func controllerOf(md *corralpb.ObjectMeta) *corralpb.OwnerReference {
	for _, r := range md.GetOwnerReferences() {
		if r.GetController() {
			return r
		}
	}
	return nil
}

// eventCells fills the Event row (wide columns included).
func eventCells(o *corralpb.Object, now time.Time) []string {
	ev := o.GetEvent()
	first := since(ev.GetFirstTimestamp(), now)
	last := since(ev.GetLastTimestamp(), now)
	if isZeroTime(ev.GetLastTimestamp()) {
		last = first
	}
	count := ev.GetCount()
	if count == 0 {
		count = 1
	}
	interval := last
	if count > 1 {
		interval = fmt.Sprintf("%s (x%d over %s)", last, count, first)
	}
	io := ev.GetInvolvedObject()
	target := strings.ToLower(io.GetKind())
	if io.GetName() != "" {
		target += "/" + io.GetName()
	}
	return []string{
		interval,
		ev.GetType(),
		ev.GetReason(),
		target,
		io.GetFieldPath(),
		eventSource(ev),
		strings.TrimSpace(ev.GetMessage()),
		first,
		strconv.Itoa(int(count)),
		ev.GetMetadata().GetName(),
	}
}

// eventSource is "component, host" (or the reporting controller/instance).
func eventSource(ev *corralpb.Event) string {
	component := firstNonEmpty(ev.GetSource().GetComponent(), ev.GetReportingComponent())
	host := firstNonEmpty(ev.GetSource().GetHost(), ev.GetReportingInstance())
	if host == "" {
		return component
	}
	return component + ", " + host
}

// firstNonEmpty returns the first non-empty string.
func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// priorityClassCells fills the PriorityClass row.
func priorityClassCells(o *corralpb.Object, now time.Time) []string {
	pc := o.GetPriorityClass()
	policy := pc.GetPreemptionPolicy()
	if policy == "" {
		policy = "PreemptLowerPriority"
	}
	return []string{
		pc.GetMetadata().GetName(),
		strconv.Itoa(int(pc.GetValue())),
		strconv.FormatBool(pc.GetGlobalDefault()),
		since(pc.GetMetadata().GetCreationTimestamp(), now),
		policy,
	}
}

// sortEventsByTime orders events oldest first by their last occurrence, as
// kubectl's describe does.
func sortEventsByTime(evs []*corralpb.Event) {
	at := func(e *corralpb.Event) time.Time {
		if !isZeroTime(e.GetLastTimestamp()) {
			return e.GetLastTimestamp().AsTime()
		}
		return e.GetFirstTimestamp().AsTime()
	}
	sort.SliceStable(evs, func(i, j int) bool { return at(evs[i]).Before(at(evs[j])) })
}
