package api

import (
	"fmt"
	"path"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	corralpb "github.com/corral-dev/corral/proto"
)

// podRestartPolicies are the restart policies of a bare Pod; a DaemonSet's
// pods must restart Always.
var podRestartPolicies = []string{"Always", "OnFailure", "Never"}

// hostPathTypes are the values of hostPath.type.
var hostPathTypes = []string{"", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice", "BlockDevice"}

// taintEffects are the effects of taints and tolerations.
var taintEffects = []string{"NoSchedule", "PreferNoSchedule", "NoExecute"}

// validatePodSpec checks a pod spec (a Pod's, or a pod template's) at path.
func validatePodSpec(spec *corralpb.PodSpec, path *field.Path, restartPolicies []string) field.ErrorList {
	if spec == nil {
		return field.ErrorList{field.Required(path.Child("containers"), "")}
	}
	volumes, errs := validateVolumes(spec.Volumes, path.Child("volumes"))
	errs = append(errs, validateContainers(spec, volumes, path)...)
	errs = append(errs, supported(path.Child("restartPolicy"), spec.RestartPolicy, true, restartPolicies...)...)
	errs = append(errs, validateDNSPolicy(spec.DnsPolicy, path)...)
	errs = append(errs, validateLabels(spec.NodeSelector, path.Child("nodeSelector"))...)
	for _, n := range []struct {
		name, value string
		fn          nameFunc
	}{
		{"serviceAccountName", spec.ServiceAccountName, validation.IsDNS1123Subdomain},
		{"nodeName", spec.NodeName, validation.IsDNS1123Subdomain},
		{"priorityClassName", spec.PriorityClassName, validation.IsDNS1123Subdomain},
		{"hostname", spec.Hostname, validation.IsDNS1123Label},
		{"subdomain", spec.Subdomain, validation.IsDNS1123Label},
	} {
		if n.value != "" {
			errs = append(errs, invalidEach(path.Child(n.name), n.value, n.fn(n.value))...)
		}
	}
	if v := spec.ActiveDeadlineSeconds; v != nil && *v < 1 {
		errs = append(errs, field.Invalid(path.Child("activeDeadlineSeconds"), *v, validation.InclusiveRangeError(1, 1<<31-1)))
	}
	if v := spec.TerminationGracePeriodSeconds; v != nil {
		errs = append(errs, nonNegative(path.Child("terminationGracePeriodSeconds"), *v)...)
	}
	if spec.PreemptionPolicy != nil {
		errs = append(errs, supported(path.Child("preemptionPolicy"), *spec.PreemptionPolicy, false, "PreemptLowerPriority", "Never")...)
	}
	for i, s := range spec.ImagePullSecrets {
		if s.GetName() == "" {
			errs = append(errs, field.Required(path.Child("imagePullSecrets").Index(i).Child("name"), ""))
		}
	}
	errs = append(errs, validatePodSecurityContext(spec.SecurityContext, path.Child("securityContext"))...)
	errs = append(errs, validateAffinity(spec.Affinity, path.Child("affinity"))...)
	errs = append(errs, validateTolerations(spec.Tolerations, path.Child("tolerations"))...)
	errs = append(errs, validateHostPorts(spec, path)...)
	return errs
}

func validateDNSPolicy(policy string, path *field.Path) field.ErrorList {
	errs := supported(path.Child("dnsPolicy"), policy, true, "ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
	if policy == "None" {
		errs = append(errs, field.Required(path.Child("dnsConfig"), "must provide `dnsConfig` when `dnsPolicy` is None"))
	}
	return errs
}

// validateContainers checks the containers and init containers, and that
// their names are unique across both lists.
func validateContainers(spec *corralpb.PodSpec, volumes map[string]bool, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(spec.Containers) == 0 {
		errs = append(errs, field.Required(path.Child("containers"), ""))
	}
	names := map[string]bool{}
	for _, group := range []struct {
		field string
		list  []*corralpb.Container
		init  bool
	}{{"initContainers", spec.InitContainers, true}, {"containers", spec.Containers, false}} {
		for i, c := range group.list {
			p := path.Child(group.field).Index(i)
			if c == nil {
				c = &corralpb.Container{}
			}
			errs = append(errs, validateContainer(c, volumes, p, group.init)...)
			if c.Name != "" && names[c.Name] {
				errs = append(errs, field.Duplicate(p.Child("name"), c.Name))
			}
			names[c.Name] = true
		}
	}
	return errs
}

// validateHostPorts checks that no two containers take the same host port
// and, with the host's network, that each port's hostPort is its
// containerPort.
func validateHostPorts(spec *corralpb.PodSpec, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := map[string]bool{}
	for i, c := range spec.Containers {
		for j, p := range c.GetPorts() {
			pp := path.Child("containers").Index(i).Child("ports").Index(j)
			if spec.HostNetwork && p.HostPort != 0 && p.HostPort != p.ContainerPort {
				errs = append(errs, field.Invalid(pp.Child("containerPort"), p.ContainerPort, "must match `hostPort` when `hostNetwork` is true"))
			}
			if p.HostPort == 0 {
				continue
			}
			protocol := p.Protocol
			if protocol == "" {
				protocol = "TCP"
			}
			key := fmt.Sprintf("%s/%s/%d", protocol, p.HostIp, p.HostPort)
			if seen[key] {
				errs = append(errs, field.Duplicate(pp.Child("hostPort"), key))
			}
			seen[key] = true
		}
	}
	return errs
}

// validateVolumes checks the volumes and returns the set of their names.
func validateVolumes(vols []*corralpb.Volume, path *field.Path) (map[string]bool, field.ErrorList) {
	var errs field.ErrorList
	names := map[string]bool{}
	for i, v := range vols {
		p := path.Index(i)
		if v == nil {
			v = &corralpb.Volume{}
		}
		switch {
		case v.Name == "":
			errs = append(errs, field.Required(p.Child("name"), ""))
		case names[v.Name]:
			errs = append(errs, field.Duplicate(p.Child("name"), v.Name))
		default:
			errs = append(errs, invalidEach(p.Child("name"), v.Name, validation.IsDNS1123Label(v.Name))...)
		}
		names[v.Name] = true
		errs = append(errs, validateVolumeSource(v, p)...)
	}
	return names, errs
}

func validateVolumeSource(v *corralpb.Volume, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	count := 0
	add := func(name string, set bool, check func(*field.Path) field.ErrorList) {
		if !set {
			return
		}
		count++
		if count > 1 {
			errs = append(errs, field.Forbidden(path.Child(name), "may not specify more than 1 volume type"))
			return
		}
		errs = append(errs, check(path.Child(name))...)
	}
	add("hostPath", v.HostPath != nil, func(p *field.Path) field.ErrorList { return validateHostPathVolume(v.HostPath, p) })
	add("emptyDir", v.EmptyDir != nil, func(p *field.Path) field.ErrorList { return validateEmptyDirVolume(v.EmptyDir, p) })
	add("configMap", v.ConfigMap != nil, func(p *field.Path) field.ErrorList { return validateConfigMapVolume(v.ConfigMap, p) })
	if count == 0 {
		errs = append(errs, field.Required(path, "must specify a volume type"))
	}
	return errs
}

func validateHostPathVolume(hp *corralpb.HostPathVolumeSource, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch {
	case hp.Path == "":
		errs = append(errs, field.Required(path.Child("path"), ""))
	case !strings.HasPrefix(hp.Path, "/"):
		errs = append(errs, field.Invalid(path.Child("path"), hp.Path, "must be an absolute path"))
	default:
		errs = append(errs, noBacksteps(hp.Path, path.Child("path"))...)
	}
	if hp.Type != nil {
		errs = append(errs, supported(path.Child("type"), *hp.Type, true, hostPathTypes...)...)
	}
	return errs
}

func validateEmptyDirVolume(ed *corralpb.EmptyDirVolumeSource, path *field.Path) field.ErrorList {
	errs := supported(path.Child("medium"), ed.Medium, true, "Memory", "HugePages")
	if ed.SizeLimit != "" {
		_, qerrs := validateQuantity(ed.SizeLimit, path.Child("sizeLimit"))
		errs = append(errs, qerrs...)
	}
	return errs
}

func validateConfigMapVolume(cm *corralpb.ConfigMapVolumeSource, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if cm.Name == "" {
		errs = append(errs, field.Required(path.Child("name"), ""))
	} else {
		errs = append(errs, invalidEach(path.Child("name"), cm.Name, validation.IsDNS1123Subdomain(cm.Name))...)
	}
	if cm.DefaultMode != nil {
		errs = append(errs, validateFileMode(*cm.DefaultMode, path.Child("defaultMode"))...)
	}
	for i, it := range cm.Items {
		p := path.Child("items").Index(i)
		if it.GetKey() == "" {
			errs = append(errs, field.Required(p.Child("key"), ""))
		} else {
			errs = append(errs, invalidEach(p.Child("key"), it.GetKey(), validation.IsConfigMapKey(it.GetKey()))...)
		}
		if it.GetPath() == "" {
			errs = append(errs, field.Required(p.Child("path"), ""))
		} else {
			errs = append(errs, localDescendingPath(it.GetPath(), p.Child("path"))...)
		}
		if it.Mode != nil {
			errs = append(errs, validateFileMode(*it.Mode, p.Child("mode"))...)
		}
	}
	return errs
}

func validateFileMode(mode int32, path *field.Path) field.ErrorList {
	if mode < 0 || mode > 0o777 {
		return field.ErrorList{field.Invalid(path, mode, "must be a number between 0 and 0777 (octal), both inclusive")}
	}
	return nil
}

// noBacksteps reports a path with a ".." element.
func noBacksteps(p string, fldPath *field.Path) field.ErrorList {
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return field.ErrorList{field.Invalid(fldPath, p, "must not contain '..'")}
		}
	}
	return nil
}

// localDescendingPath reports a path that is absolute or climbs out with "..".
func localDescendingPath(p string, fldPath *field.Path) field.ErrorList {
	if path.IsAbs(p) {
		return field.ErrorList{field.Invalid(fldPath, p, "must be a relative path")}
	}
	return noBacksteps(p, fldPath)
}

func validateAffinity(a *corralpb.Affinity, path *field.Path) field.ErrorList {
	na := a.GetNodeAffinity()
	if na == nil {
		return nil
	}
	path = path.Child("nodeAffinity")
	var errs field.ErrorList
	if req := na.RequiredDuringSchedulingIgnoredDuringExecution; req != nil {
		p := path.Child("requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms")
		if len(req.NodeSelectorTerms) == 0 {
			errs = append(errs, field.Required(p, "must have at least one node selector term"))
		}
		for i, t := range req.NodeSelectorTerms {
			errs = append(errs, validateNodeSelectorTerm(t, p.Index(i))...)
		}
	}
	for i, pt := range na.PreferredDuringSchedulingIgnoredDuringExecution {
		p := path.Child("preferredDuringSchedulingIgnoredDuringExecution").Index(i)
		if pt.GetWeight() < 1 || pt.GetWeight() > 100 {
			errs = append(errs, field.Invalid(p.Child("weight"), pt.GetWeight(), "must be in the range 1-100"))
		}
		errs = append(errs, validateNodeSelectorTerm(pt.GetPreference(), p.Child("preference"))...)
	}
	return errs
}

func validateNodeSelectorTerm(t *corralpb.NodeSelectorTerm, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, r := range t.GetMatchExpressions() {
		errs = append(errs, validateNodeSelectorRequirement(r, path.Child("matchExpressions").Index(i))...)
	}
	for i, r := range t.GetMatchFields() {
		errs = append(errs, validateNodeFieldRequirement(r, path.Child("matchFields").Index(i))...)
	}
	return errs
}

func validateNodeSelectorRequirement(r *corralpb.NodeSelectorRequirement, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	values := path.Child("values")
	switch r.GetOperator() {
	case "In", "NotIn":
		if len(r.GetValues()) == 0 {
			errs = append(errs, field.Required(values, "must be specified when `operator` is 'In' or 'NotIn'"))
		}
	case "Exists", "DoesNotExist":
		if len(r.GetValues()) > 0 {
			errs = append(errs, field.Forbidden(values, "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
		}
	case "Gt", "Lt":
		if len(r.GetValues()) != 1 {
			errs = append(errs, field.Required(values, "must be specified single value when `operator` is 'Lt' or 'Gt'"))
		} else if _, err := strconv.ParseInt(r.GetValues()[0], 10, 64); err != nil {
			errs = append(errs, field.Invalid(values.Index(0), r.GetValues()[0], "must be an integer"))
		}
	default:
		errs = append(errs, field.Invalid(path.Child("operator"), r.GetOperator(), "not a valid selector operator"))
	}
	return append(errs, invalidEach(path.Child("key"), r.GetKey(), validation.IsQualifiedName(r.GetKey()))...)
}

func validateNodeFieldRequirement(r *corralpb.NodeSelectorRequirement, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch r.GetOperator() {
	case "In", "NotIn":
		if len(r.GetValues()) != 1 {
			errs = append(errs, field.Required(path.Child("values"),
				"must be only one value when `operator` is 'In' or 'NotIn' for node field selector"))
		}
	default:
		errs = append(errs, field.Invalid(path.Child("operator"), r.GetOperator(), "not a valid selector operator"))
	}
	if r.GetKey() != "metadata.name" {
		errs = append(errs, field.Invalid(path.Child("key"), r.GetKey(), "not a valid field selector key"))
	}
	return errs
}

func validateTolerations(tols []*corralpb.Toleration, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, t := range tols {
		p := path.Index(i)
		if t.GetKey() != "" {
			errs = append(errs, invalidEach(p.Child("key"), t.GetKey(), validation.IsQualifiedName(t.GetKey()))...)
		}
		if t.GetKey() == "" && t.GetOperator() != "Exists" {
			errs = append(errs, field.Invalid(p.Child("operator"), t.GetOperator(),
				"operator must be Exists when `key` is empty, which means \"match all values and all keys\""))
		}
		if t.TolerationSeconds != nil && t.GetEffect() != "NoExecute" {
			errs = append(errs, field.Invalid(p.Child("effect"), t.GetEffect(),
				"effect must be 'NoExecute' when `tolerationSeconds` is set"))
		}
		switch t.GetOperator() {
		case "", "Equal":
			errs = append(errs, invalidEach(p.Child("value"), t.GetValue(), validation.IsValidLabelValue(t.GetValue()))...)
		case "Exists":
			if t.GetValue() != "" {
				errs = append(errs, field.Invalid(p.Child("operator"), t.GetValue(), "value must be empty when `operator` is 'Exists'"))
			}
		default:
			errs = append(errs, field.NotSupported(p.Child("operator"), t.GetOperator(), []string{"Equal", "Exists"}))
		}
		if t.GetEffect() != "" {
			errs = append(errs, supported(p.Child("effect"), t.GetEffect(), false, taintEffects...)...)
		}
	}
	return errs
}
