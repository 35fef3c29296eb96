package cli

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

// describePodObject fetches the pod's events and renders it.
func describePodObject(env *describeEnv, obj *corralpb.Object) (string, error) {
	pod := obj.GetPod()
	evs, err := env.eventsFor("Pod", pod.GetMetadata().GetNamespace(), pod.GetMetadata().GetName())
	if err != nil {
		return "", err
	}
	return describePod(pod, evs, env.showEvents, env.now), nil
}

// describePod renders a pod in kubectl's layout.
func describePod(pod *corralpb.Pod, evs []*corralpb.Event, showEvents bool, now time.Time) string {
	w := newDescribeWriter()
	md, spec, st := pod.GetMetadata(), pod.GetSpec(), pod.GetStatus()
	w.write(0, "Name:\t%s\n", md.GetName())
	w.write(0, "Namespace:\t%s\n", md.GetNamespace())
	if spec.Priority != nil {
		w.write(0, "Priority:\t%d\n", spec.GetPriority())
	}
	if spec.GetPriorityClassName() != "" {
		w.write(0, "Priority Class Name:\t%s\n", spec.GetPriorityClassName())
	}
	if spec.GetServiceAccountName() != "" {
		w.write(0, "Service Account:\t%s\n", spec.GetServiceAccountName())
	}
	if spec.GetNodeName() == "" {
		w.write(0, "Node:\t<none>\n")
	} else {
		w.write(0, "Node:\t%s\n", spec.GetNodeName()+"/"+st.GetHostIp())
	}
	if !isZeroTime(st.GetStartTime()) {
		w.write(0, "Start Time:\t%s\n", rfc1123z(st.GetStartTime()))
	}
	w.labels("Labels", md.GetLabels())
	w.annotations("Annotations", md.GetAnnotations())
	describePodStatus(w, pod, now)
	if len(spec.GetInitContainers()) > 0 {
		describeContainers(w, "Init Containers", spec.GetInitContainers(), st.GetInitContainerStatuses(), "")
	}
	describeContainers(w, "Containers", spec.GetContainers(), st.GetContainerStatuses(), "")
	if len(st.GetConditions()) > 0 {
		w.write(0, "Conditions:\n  Type\tStatus\n")
		for _, c := range st.GetConditions() {
			w.write(1, "%v \t%v \n", c.GetType(), c.GetStatus())
		}
	}
	describeVolumes(w, spec.GetVolumes(), "")
	w.write(0, "QoS Class:\t%s\n", qosClass(pod))
	w.labels("Node-Selectors", spec.GetNodeSelector())
	w.tolerations("Tolerations", spec.GetTolerations())
	if showEvents {
		w.events(evs, now)
	}
	return w.String()
}

// describePodStatus writes Status, Reason, Message, IPs and the controller.
func describePodStatus(w *describeWriter, pod *corralpb.Pod, now time.Time) {
	md, st := pod.GetMetadata(), pod.GetStatus()
	phase := st.GetPhase()
	if !isZeroTime(md.GetDeletionTimestamp()) && phase != phaseSucceeded && phase != phaseFailed {
		w.write(0, "Status:\tTerminating (lasts %s)\n", since(md.GetDeletionTimestamp(), now))
		w.write(0, "Termination Grace Period:\t%ds\n", md.GetDeletionGracePeriodSeconds())
	} else {
		w.write(0, "Status:\t%s\n", phase)
	}
	if st.GetReason() != "" {
		w.write(0, "Reason:\t%s\n", st.GetReason())
	}
	if st.GetMessage() != "" {
		w.write(0, "Message:\t%s\n", st.GetMessage())
	}
	w.write(0, "IP:\t%s\n", st.GetPodIp())
	if len(st.GetPodIps()) == 0 {
		w.write(0, "IPs:\t<none>\n")
	} else {
		w.write(0, "IPs:\n")
		for _, ip := range st.GetPodIps() {
			w.write(1, "IP:\t%s\n", ip.GetIp())
		}
	}
	if ref := controllerOf(md); ref != nil {
		w.write(0, "Controlled By:\t%s/%s\n", ref.GetKind(), ref.GetName())
	}
	if st.GetNominatedNodeName() != "" {
		w.write(0, "NominatedNodeName:\t%s\n", st.GetNominatedNodeName())
	}
}

// describeContainerState writes State, Last State, Ready and Restart Count.
func describeContainerState(w *describeWriter, st *corralpb.ContainerStatus) {
	describeState(w, "State", st.GetState())
	if st.GetLastState().GetTerminated() != nil {
		describeState(w, "Last State", st.GetLastState())
	}
	w.write(2, "Ready:\t%v\n", boolTitle(st.GetReady()))
	w.write(2, "Restart Count:\t%d\n", st.GetRestartCount())
}

// describeState writes one container state.
func describeState(w *describeWriter, title string, s *corralpb.ContainerState) {
	switch {
	case s.GetRunning() != nil:
		w.write(2, "%s:\tRunning\n", title)
		w.write(3, "Started:\t%v\n", rfc1123z(s.GetRunning().GetStartedAt()))
	case s.GetWaiting() != nil:
		w.write(2, "%s:\tWaiting\n", title)
		if r := s.GetWaiting().GetReason(); r != "" {
			w.write(3, "Reason:\t%s\n", r)
		}
	case s.GetTerminated() != nil:
		t := s.GetTerminated()
		w.write(2, "%s:\tTerminated\n", title)
		if t.GetReason() != "" {
			w.write(3, "Reason:\t%s\n", t.GetReason())
		}
		if t.GetMessage() != "" {
			w.write(3, "Message:\t%s\n", t.GetMessage())
		}
		w.write(3, "Exit Code:\t%d\n", t.GetExitCode())
		if t.GetSignal() > 0 {
			w.write(3, "Signal:\t%d\n", t.GetSignal())
		}
		w.write(3, "Started:\t%s\n", rfc1123z(t.GetStartedAt()))
		w.write(3, "Finished:\t%s\n", rfc1123z(t.GetFinishedAt()))
	default:
		w.write(2, "%s:\tWaiting\n", title)
	}
}

// boolTitle prints True or False.
func boolTitle(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

// describeProbes writes Liveness, Readiness and Startup.
func describeProbes(w *describeWriter, c *corralpb.Container) {
	for _, p := range []struct {
		title string
		probe *corralpb.Probe
	}{{"Liveness", c.GetLivenessProbe()}, {"Readiness", c.GetReadinessProbe()}, {"Startup", c.GetStartupProbe()}} {
		if p.probe != nil {
			w.write(2, "%s:\t%s\n", p.title, probeString(p.probe))
		}
	}
}

// probeString renders a probe as kubectl does
// ("http-get http://:8080/health delay=30s timeout=1s period=10s #success=1 #failure=3").
func probeString(p *corralpb.Probe) string {
	attrs := fmt.Sprintf("delay=%ds timeout=%ds period=%ds #success=%d #failure=%d",
		p.GetInitialDelaySeconds(), p.GetTimeoutSeconds(), p.GetPeriodSeconds(), p.GetSuccessThreshold(), p.GetFailureThreshold())
	switch {
	case p.GetExec() != nil:
		return fmt.Sprintf("exec [%s] %s", strings.Join(p.GetExec().GetCommand(), " "), attrs)
	case p.GetHttpGet() != nil:
		h := p.GetHttpGet()
		scheme := strings.ToLower(h.GetScheme())
		if scheme == "" {
			scheme = "http"
		}
		host := net.JoinHostPort(h.GetHost(), intOrString(h.GetPort()))
		return fmt.Sprintf("http-get %s://%s%s %s", scheme, host, h.GetPath(), attrs)
	case p.GetTcpSocket() != nil:
		return fmt.Sprintf("tcp-socket %s:%s %s", p.GetTcpSocket().GetHost(), intOrString(p.GetTcpSocket().GetPort()), attrs)
	case p.GetGrpc() != nil:
		return fmt.Sprintf("grpc <pod>:%d %s %s", p.GetGrpc().GetPort(), p.GetGrpc().GetService(), attrs)
	}
	return "unknown " + attrs
}

// intOrString renders an IntOrString.
func intOrString(v *corralpb.IntOrString) string {
	if v.GetIsString() {
		return v.GetStrVal()
	}
	return strconv.Itoa(int(v.GetIntVal()))
}

// describeEnvFrom writes "Environment Variables from".
func describeEnvFrom(w *describeWriter, c *corralpb.Container) {
	w.write(2, "Environment Variables from:\n")
	for _, e := range c.GetEnvFrom() {
		name := e.GetConfigMapRef().GetName()
		optional := e.GetConfigMapRef().GetOptional()
		if e.GetPrefix() == "" {
			w.write(3, "%s\tConfigMap\tOptional: %t\n", name, optional)
		} else {
			w.write(3, "%s\tConfigMap with prefix '%s'\tOptional: %t\n", name, e.GetPrefix(), optional)
		}
	}
}

// describeEnvVars writes "Environment".
func describeEnvVars(w *describeWriter, c *corralpb.Container) {
	if len(c.GetEnv()) == 0 {
		w.write(2, "Environment:\t<none>\n")
		return
	}
	w.write(2, "Environment:\n")
	for _, e := range c.GetEnv() {
		from := e.GetValueFrom()
		switch {
		case from == nil:
			for i, s := range strings.Split(e.GetValue(), "\n") {
				if i == 0 {
					w.write(3, "%s:\t%s\n", e.GetName(), s)
				} else {
					w.write(3, "\t%s\n", s)
				}
			}
		case from.GetFieldRef() != nil:
			w.write(3, "%s:\t (%s:%s)\n", e.GetName(), from.GetFieldRef().GetApiVersion(), from.GetFieldRef().GetFieldPath())
		case from.GetResourceFieldRef() != nil:
			w.write(3, "%s:\t (%s)\n", e.GetName(), from.GetResourceFieldRef().GetResource())
		case from.GetConfigMapKeyRef() != nil:
			r := from.GetConfigMapKeyRef()
			w.write(3, "%s:\t<set to the key '%s' of config map '%s'>\tOptional: %t\n", e.GetName(), r.GetKey(), r.GetName(), r.GetOptional())
		}
	}
}

// sortMounts orders volume mounts by mount path, as kubectl does.
func sortMounts(ms []*corralpb.VolumeMount) {
	sort.SliceStable(ms, func(i, j int) bool { return ms[i].GetMountPath() < ms[j].GetMountPath() })
}

// qosClass returns the pod's QoS class: as reported, else computed from
// the containers' requests and limits.
func qosClass(pod *corralpb.Pod) string {
	if q := pod.GetStatus().GetQosClass(); q != "" {
		return q
	}
	return api.QOSClass(pod)
}
