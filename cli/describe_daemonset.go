package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

// podCounts is the "Pods Status" line of a controller.
type podCounts struct {
	running, waiting, succeeded, failed int
}

// describeDaemonSetObject fetches the DaemonSet's pods and events and
// renders it.
func describeDaemonSetObject(env *describeEnv, obj *corralpb.Object) (string, error) {
	ds := obj.GetDaemonSet()
	md := ds.GetMetadata()
	sel, err := api.LabelSelectorAsSelector(ds.GetSpec().GetSelector())
	if err != nil {
		return "", fmt.Errorf("daemonset %s selector: %w", md.GetName(), err)
	}
	resp, err := env.g.listObjects(env.ctx, &corralpb.ListRequest{Kind: "Pod", Namespace: md.GetNamespace(), LabelSelector: sel.String()})
	if err != nil {
		return "", fmt.Errorf("pods of daemonset %s: %w", md.GetName(), err)
	}
	counts := countControlledPods(resp.GetItems(), md.GetUid())
	evs, err := env.eventsFor("DaemonSet", md.GetNamespace(), md.GetName())
	if err != nil {
		return "", err
	}
	return describeDaemonSet(ds, counts, evs, env.showEvents, env.now), nil
}

// countControlledPods counts by phase the pods whose controller is uid.
func countControlledPods(pods []*corralpb.Object, uid string) podCounts {
	var c podCounts
	for _, o := range pods {
		pod := o.GetPod()
		ref := controllerOf(pod.GetMetadata())
		if ref == nil || ref.GetUid() != uid {
			continue
		}
		switch pod.GetStatus().GetPhase() {
		case "Running":
			c.running++
		case "Pending":
			c.waiting++
		case phaseSucceeded:
			c.succeeded++
		case phaseFailed:
			c.failed++
		}
	}
	return c
}

// describeDaemonSet renders a DaemonSet as the seed tutorial (and kubectl)
// shows it.
func describeDaemonSet(ds *corralpb.DaemonSet, c podCounts, evs []*corralpb.Event, showEvents bool, now time.Time) string {
	w := newDescribeWriter()
	md := ds.GetMetadata()
	w.write(0, "Name:\t%s\n", md.GetName())
	w.write(0, "Selector:\t%s\n", formatSelectorPlain(ds.GetSpec().GetSelector()))
	w.write(0, "Node-Selector:\t%s\n", formatLabels(ds.GetSpec().GetTemplate().GetSpec().GetNodeSelector()))
	w.labels("Labels", md.GetLabels())
	w.annotations("Annotations", md.GetAnnotations())
	st := ds.GetStatus()
	w.write(0, "Desired Number of Nodes Scheduled: %d\n", st.GetDesiredNumberScheduled())
	w.write(0, "Current Number of Nodes Scheduled: %d\n", st.GetCurrentNumberScheduled())
	w.write(0, "Number of Nodes Scheduled with Up-to-date Pods: %d\n", st.GetUpdatedNumberScheduled())
	w.write(0, "Number of Nodes Scheduled with Available Pods: %d\n", st.GetNumberAvailable())
	w.write(0, "Number of Nodes Misscheduled: %d\n", st.GetNumberMisscheduled())
	w.write(0, "Pods Status:\t%d Running / %d Waiting / %d Succeeded / %d Failed\n", c.running, c.waiting, c.succeeded, c.failed)
	describePodTemplate(w, ds.GetSpec().GetTemplate())
	if showEvents {
		w.events(evs, now)
	}
	return w.String()
}

// formatSelectorPlain renders a label selector as its selector string, the
// way describe prints it (no "<none>" for an empty one).
func formatSelectorPlain(ls *corralpb.LabelSelector) string {
	sel, err := api.LabelSelectorAsSelector(ls)
	if err != nil {
		return "<error>"
	}
	return sel.String()
}

// describePodTemplate renders a pod template under "Pod Template:". Node
// selectors and tolerations are shown only when set, as the seed shows.
func describePodTemplate(w *describeWriter, t *corralpb.PodTemplateSpec) {
	w.write(0, "Pod Template:\n")
	if t == nil {
		w.write(1, "<unset>")
		return
	}
	w.labels("  Labels", t.GetMetadata().GetLabels())
	if len(t.GetMetadata().GetAnnotations()) > 0 {
		w.annotations("  Annotations", t.GetMetadata().GetAnnotations())
	}
	spec := t.GetSpec()
	if spec.GetServiceAccountName() != "" {
		w.write(1, "Service Account:\t%s\n", spec.GetServiceAccountName())
	}
	if len(spec.GetInitContainers()) > 0 {
		describeContainers(w, "Init Containers", spec.GetInitContainers(), nil, "  ")
	}
	describeContainers(w, "Containers", spec.GetContainers(), nil, "  ")
	describeVolumes(w, spec.GetVolumes(), "  ")
	if spec.GetPriorityClassName() != "" {
		w.write(1, "Priority Class Name:\t%s\n", spec.GetPriorityClassName())
	}
	if len(spec.GetNodeSelector()) > 0 {
		w.labels("  Node-Selectors", spec.GetNodeSelector())
	}
	if len(spec.GetTolerations()) > 0 {
		w.tolerations("  Tolerations", spec.GetTolerations())
	}
}

// describeContainers renders containers with their statuses (nil in a
// template). space indents the section inside a template.
func describeContainers(w *describeWriter, label string, cs []*corralpb.Container, statuses []*corralpb.ContainerStatus, space string) {
	byName := map[string]*corralpb.ContainerStatus{}
	for _, s := range statuses {
		byName[s.GetName()] = s
	}
	none := ""
	if len(cs) == 0 {
		none = " <none>"
	}
	w.write(0, "%s%s:%s\n", space, label, none)
	nameIndent := ""
	if space != "" {
		nameIndent = " "
	}
	for _, c := range cs {
		st := byName[c.GetName()]
		w.write(1, "%s%v:\n", nameIndent, c.GetName())
		describeContainerBasics(w, c, st)
		describeCommand(w, c)
		if st != nil {
			describeContainerState(w, st)
		}
		describeResources(w, c.GetResources(), 2)
		describeProbes(w, c)
		if len(c.GetEnvFrom()) > 0 {
			describeEnvFrom(w, c)
		}
		describeEnvVars(w, c)
		describeMounts(w, c)
	}
}

// describeContainerBasics writes image, ids and ports.
func describeContainerBasics(w *describeWriter, c *corralpb.Container, st *corralpb.ContainerStatus) {
	if st != nil {
		w.write(2, "Container ID:\t%s\n", st.GetContainerId())
	}
	w.write(2, "Image:\t%s\n", c.GetImage())
	if st != nil {
		w.write(2, "Image ID:\t%s\n", st.GetImageId())
	}
	ports, hostPorts := portStrings(c.GetPorts())
	if strings.Contains(ports, ",") {
		w.write(2, "Ports:\t%s\n", ports)
	} else {
		w.write(2, "Port:\t%s\n", orNone(ports))
	}
	if strings.Contains(hostPorts, ",") {
		w.write(2, "Host Ports:\t%s\n", hostPorts)
	} else {
		w.write(2, "Host Port:\t%s\n", orNone(hostPorts))
	}
}

// portStrings renders container ports and host ports as "80/TCP, 443/TCP".
func portStrings(ps []*corralpb.ContainerPort) (ports, hostPorts string) {
	var a, b []string
	for _, p := range ps {
		proto := p.GetProtocol()
		if proto == "" {
			proto = "TCP"
		}
		a = append(a, fmt.Sprintf("%d/%s", p.GetContainerPort(), proto))
		b = append(b, fmt.Sprintf("%d/%s", p.GetHostPort(), proto))
	}
	return strings.Join(a, ", "), strings.Join(b, ", ")
}

// describeCommand writes Command and Args, one item per line.
func describeCommand(w *describeWriter, c *corralpb.Container) {
	for _, part := range []struct {
		title string
		items []string
	}{{"Command", c.GetCommand()}, {"Args", c.GetArgs()}} {
		if len(part.items) == 0 {
			continue
		}
		w.write(2, "%s:\n", part.title)
		for _, item := range part.items {
			for _, s := range strings.Split(item, "\n") {
				w.write(3, "%s\n", s)
			}
		}
	}
}

// describeResources writes Limits and Requests.
func describeResources(w *describeWriter, r *corralpb.ResourceRequirements, level int) {
	if len(r.GetLimits()) > 0 {
		w.write(level, "Limits:\n")
		for _, k := range sortedKeys(r.GetLimits()) {
			w.write(level+1, "%s:\t%s\n", k, r.GetLimits()[k])
		}
	}
	if len(r.GetRequests()) > 0 {
		w.write(level, "Requests:\n")
		for _, k := range sortedKeys(r.GetRequests()) {
			w.write(level+1, "%s:\t%s\n", k, r.GetRequests()[k])
		}
	}
}

// describeMounts writes the container's volume mounts.
func describeMounts(w *describeWriter, c *corralpb.Container) {
	mounts := append([]*corralpb.VolumeMount(nil), c.GetVolumeMounts()...)
	if len(mounts) == 0 {
		w.write(2, "Mounts:\t<none>\n")
		return
	}
	w.write(2, "Mounts:\n")
	sortMounts(mounts)
	for _, m := range mounts {
		flags := []string{"rw"}
		if m.GetReadOnly() {
			flags[0] = "ro"
		}
		if m.GetSubPath() != "" {
			flags = append(flags, fmt.Sprintf("path=%q", m.GetSubPath()))
		}
		w.write(3, "%s from %s (%s)\n", m.GetMountPath(), m.GetName(), strings.Join(flags, ","))
	}
}

// describeVolumes writes the pod's volumes.
func describeVolumes(w *describeWriter, vols []*corralpb.Volume, space string) {
	if len(vols) == 0 {
		w.write(0, "%sVolumes:\t<none>\n", space)
		return
	}
	w.write(0, "%sVolumes:\n", space)
	nameIndent := ""
	if space != "" {
		nameIndent = " "
	}
	for _, v := range vols {
		w.write(1, "%s%v:\n", nameIndent, v.GetName())
		switch {
		case v.GetHostPath() != nil:
			w.write(2, "Type:\tHostPath (bare host directory volume)\n"+
				"    Path:\t%v\n"+
				"    HostPathType:\t%v\n", v.GetHostPath().GetPath(), orNone(v.GetHostPath().GetType()))
		case v.GetEmptyDir() != nil:
			limit := v.GetEmptyDir().GetSizeLimit()
			if limit == "" {
				limit = "<unset>"
			}
			w.write(2, "Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)\n"+
				"    Medium:\t%v\n"+
				"    SizeLimit:\t%v\n", v.GetEmptyDir().GetMedium(), limit)
		case v.GetConfigMap() != nil:
			w.write(2, "Type:\tConfigMap (a volume populated by a ConfigMap)\n"+
				"    Name:\t%v\n"+
				"    Optional:\t%v\n", v.GetConfigMap().GetName(), v.GetConfigMap().GetOptional())
		default:
			w.write(2, "<unknown>\n")
		}
	}
}
