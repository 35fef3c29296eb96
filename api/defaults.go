package api

import (
	"strings"

	"google.golang.org/protobuf/proto"

	corralpb "github.com/corral-dev/corral/proto"
)

// Default values, as Kubernetes sets them.
const (
	defaultNamespace               = "default"
	defaultRevisionHistoryLimit    = 10
	defaultTerminationGracePeriod  = 30
	defaultSchedulerName           = "default-scheduler"
	defaultTerminationMessagePath  = "/dev/termination-log"
	defaultConfigMapVolumeMode     = 0o644 // 420
	defaultProbeTimeoutSeconds     = 1
	defaultProbePeriodSeconds      = 10
	defaultProbeSuccessThreshold   = 1
	defaultProbeFailureThreshold   = 3
	defaultPriorityPreemptionLower = "PreemptLowerPriority"
)

// SetDefaults fills the fields a user may leave out with Kubernetes' default
// values, in place: the namespace "default" for namespaced kinds, the
// DaemonSet's update strategy and history limit, the pod spec's restart,
// DNS and termination settings, containers' pull policy and termination
// message, ports' protocol, probes' timings, volume modes, and a namespace's
// phase and finalizer. Fields already set are left alone, so SetDefaults is
// idempotent. An empty object is left as it is.
func SetDefaults(o *corralpb.Object) {
	k, ok := kindInfo(o)
	if !ok || !Inner(o).ProtoReflect().IsValid() {
		return
	}
	if k.Namespaced {
		if md := Meta(o); md.GetNamespace() == "" {
			md.Namespace = defaultNamespace
		}
	}
	switch v := o.GetKind().(type) {
	case *corralpb.Object_DaemonSet:
		defaultDaemonSet(v.DaemonSet)
	case *corralpb.Object_Pod:
		defaultPod(v.Pod)
	case *corralpb.Object_Namespace:
		defaultNamespaceObject(v.Namespace)
	case *corralpb.Object_PriorityClass:
		if v.PriorityClass.PreemptionPolicy == nil {
			v.PriorityClass.PreemptionPolicy = proto.String(defaultPriorityPreemptionLower)
		}
	}
}

func defaultDaemonSet(ds *corralpb.DaemonSet) {
	if ds.Spec == nil {
		ds.Spec = &corralpb.DaemonSetSpec{}
	}
	spec := ds.Spec
	if spec.UpdateStrategy == nil {
		spec.UpdateStrategy = &corralpb.DaemonSetUpdateStrategy{}
	}
	us := spec.UpdateStrategy
	if us.Type == "" {
		us.Type = "RollingUpdate"
	}
	if us.Type == "RollingUpdate" {
		if us.RollingUpdate == nil {
			us.RollingUpdate = &corralpb.RollingUpdateDaemonSet{}
		}
		if us.RollingUpdate.MaxUnavailable == nil {
			us.RollingUpdate.MaxUnavailable = &corralpb.IntOrString{IntVal: 1}
		}
		if us.RollingUpdate.MaxSurge == nil {
			us.RollingUpdate.MaxSurge = &corralpb.IntOrString{}
		}
	}
	if spec.RevisionHistoryLimit == nil {
		spec.RevisionHistoryLimit = proto.Int32(defaultRevisionHistoryLimit)
	}
	if spec.Template == nil {
		spec.Template = &corralpb.PodTemplateSpec{}
	}
	if spec.Template.Spec == nil {
		spec.Template.Spec = &corralpb.PodSpec{}
	}
	defaultPodSpec(spec.Template.Spec)
}

// defaultPod defaults a bare Pod: its spec, and, as Kubernetes does for Pods
// only, each container's requests from its limits where a request is unset.
func defaultPod(p *corralpb.Pod) {
	if p.Spec == nil {
		p.Spec = &corralpb.PodSpec{}
	}
	defaultPodSpec(p.Spec)
	for _, c := range append(append([]*corralpb.Container{}, p.Spec.InitContainers...), p.Spec.Containers...) {
		if c == nil || c.Resources == nil || len(c.Resources.Limits) == 0 {
			continue
		}
		if c.Resources.Requests == nil {
			c.Resources.Requests = map[string]string{}
		}
		for name, q := range c.Resources.Limits {
			if _, set := c.Resources.Requests[name]; !set {
				c.Resources.Requests[name] = q
			}
		}
	}
}

func defaultPodSpec(spec *corralpb.PodSpec) {
	if spec.RestartPolicy == "" {
		spec.RestartPolicy = "Always"
	}
	if spec.TerminationGracePeriodSeconds == nil {
		spec.TerminationGracePeriodSeconds = proto.Int64(defaultTerminationGracePeriod)
	}
	if spec.DnsPolicy == "" {
		spec.DnsPolicy = "ClusterFirst"
	}
	if spec.SchedulerName == "" {
		spec.SchedulerName = defaultSchedulerName
	}
	if spec.SecurityContext == nil {
		spec.SecurityContext = &corralpb.PodSecurityContext{}
	}
	for _, list := range [][]*corralpb.Container{spec.InitContainers, spec.Containers} {
		for _, c := range list {
			if c == nil {
				continue
			}
			defaultContainer(c)
			if spec.HostNetwork {
				defaultHostNetworkPorts(c)
			}
		}
	}
	for _, v := range spec.Volumes {
		defaultVolume(v)
	}
	for _, t := range spec.Tolerations {
		if t != nil && t.Key != "" && t.Operator == "" {
			t.Operator = "Equal"
		}
	}
}

// defaultHostNetworkPorts makes hostPort equal containerPort where unset:
// with the host's network the two are the same port.
func defaultHostNetworkPorts(c *corralpb.Container) {
	for _, p := range c.Ports {
		if p != nil && p.HostPort == 0 {
			p.HostPort = p.ContainerPort
		}
	}
}

func defaultVolume(v *corralpb.Volume) {
	if v == nil {
		return
	}
	if v.HostPath != nil && v.HostPath.Type == nil {
		v.HostPath.Type = proto.String("")
	}
	if v.ConfigMap != nil && v.ConfigMap.DefaultMode == nil {
		v.ConfigMap.DefaultMode = proto.Int32(defaultConfigMapVolumeMode)
	}
}

func defaultContainer(c *corralpb.Container) {
	if c.ImagePullPolicy == "" {
		c.ImagePullPolicy = defaultPullPolicy(c.Image)
	}
	if c.TerminationMessagePath == "" {
		c.TerminationMessagePath = defaultTerminationMessagePath
	}
	if c.TerminationMessagePolicy == "" {
		c.TerminationMessagePolicy = "File"
	}
	for _, p := range c.Ports {
		if p != nil && p.Protocol == "" {
			p.Protocol = "TCP"
		}
	}
	for _, p := range []*corralpb.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
		defaultProbe(p)
	}
	for _, e := range c.Env {
		if fr := e.GetValueFrom().GetFieldRef(); fr != nil && fr.ApiVersion == "" {
			fr.ApiVersion = "v1"
		}
	}
}

// defaultPullPolicy is Always for an image tagged :latest or not tagged at
// all (and not pinned by digest), IfNotPresent otherwise.
func defaultPullPolicy(image string) string {
	if strings.Contains(image, "@") {
		return "IfNotPresent"
	}
	name := image
	if i := strings.LastIndex(name, "/"); i >= 0 {
		name = name[i+1:]
	}
	_, tag, tagged := strings.Cut(name, ":")
	if !tagged || tag == "latest" {
		return "Always"
	}
	return "IfNotPresent"
}

func defaultProbe(p *corralpb.Probe) {
	if p == nil {
		return
	}
	if p.TimeoutSeconds == 0 {
		p.TimeoutSeconds = defaultProbeTimeoutSeconds
	}
	if p.PeriodSeconds == 0 {
		p.PeriodSeconds = defaultProbePeriodSeconds
	}
	if p.SuccessThreshold == 0 {
		p.SuccessThreshold = defaultProbeSuccessThreshold
	}
	if p.FailureThreshold == 0 {
		p.FailureThreshold = defaultProbeFailureThreshold
	}
	if h := p.HttpGet; h != nil {
		if h.Scheme == "" {
			h.Scheme = "HTTP"
		}
		if h.Path == "" {
			h.Path = "/"
		}
	}
}

func defaultNamespaceObject(ns *corralpb.Namespace) {
	if ns.Status == nil {
		ns.Status = &corralpb.NamespaceStatus{}
	}
	if ns.Status.Phase == "" {
		ns.Status.Phase = "Active"
	}
	if ns.Spec == nil {
		ns.Spec = &corralpb.NamespaceSpec{}
	}
	if len(ns.Spec.Finalizers) == 0 {
		ns.Spec.Finalizers = []string{"kubernetes"}
	}
}
