package api

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	corralpb "github.com/corral-dev/corral/proto"
)

// standardResources are the resource names containers may request without a
// domain prefix (besides hugepages-<size>).
var standardResources = map[string]bool{"cpu": true, "memory": true, "ephemeral-storage": true}

// envFieldPaths are the pod fields an env var's fieldRef may read, besides
// metadata.labels['key'] and metadata.annotations['key'].
var envFieldPaths = []string{
	"metadata.name", "metadata.namespace", "metadata.uid", "metadata.labels", "metadata.annotations",
	"spec.nodeName", "spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs",
}

// envResourceFields are the resources an env var's resourceFieldRef may read.
var envResourceFields = []string{
	"limits.cpu", "limits.memory", "limits.ephemeral-storage",
	"requests.cpu", "requests.memory", "requests.ephemeral-storage",
}

// capabilityRE matches Linux capability names, with or without "CAP_".
var capabilityRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)

// validateContainer checks one container at path. volumes holds the pod's
// volume names; init is true for init containers, which may not have probes.
func validateContainer(c *corralpb.Container, volumes map[string]bool, path *field.Path, init bool) field.ErrorList {
	var errs field.ErrorList
	if c.Name == "" {
		errs = append(errs, field.Required(path.Child("name"), ""))
	} else {
		errs = append(errs, invalidEach(path.Child("name"), c.Name, validation.IsDNS1123Label(c.Name))...)
	}
	if strings.TrimSpace(c.Image) == "" {
		errs = append(errs, field.Required(path.Child("image"), ""))
	}
	errs = append(errs, validateContainerPorts(c.Ports, path.Child("ports"))...)
	errs = append(errs, validateEnv(c.Env, path.Child("env"))...)
	errs = append(errs, validateEnvFrom(c.EnvFrom, path.Child("envFrom"))...)
	errs = append(errs, validateResources(c.Resources, path.Child("resources"))...)
	errs = append(errs, validateVolumeMounts(c, volumes, path.Child("volumeMounts"))...)
	probes := []struct {
		name          string
		probe         *corralpb.Probe
		successIsOne  bool
		gracePeriodOK bool
	}{
		{"livenessProbe", c.LivenessProbe, true, true},
		{"readinessProbe", c.ReadinessProbe, false, false},
		{"startupProbe", c.StartupProbe, true, true},
	}
	for _, pr := range probes {
		switch {
		case pr.probe == nil:
		case init:
			errs = append(errs, field.Forbidden(path.Child(pr.name), "may not be set for init containers"))
		default:
			errs = append(errs, validateProbe(pr.probe, path.Child(pr.name), pr.successIsOne, pr.gracePeriodOK)...)
		}
	}
	errs = append(errs, supported(path.Child("imagePullPolicy"), c.ImagePullPolicy, true, "Always", "IfNotPresent", "Never")...)
	errs = append(errs, supported(path.Child("terminationMessagePolicy"), c.TerminationMessagePolicy, true, "File", "FallbackToLogsOnError")...)
	errs = append(errs, validateSecurityContext(c.SecurityContext, path.Child("securityContext"))...)
	return errs
}

func validateContainerPorts(ports []*corralpb.ContainerPort, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	names := map[string]bool{}
	for i, p := range ports {
		pp := path.Index(i)
		if p == nil {
			p = &corralpb.ContainerPort{}
		}
		if p.Name != "" {
			errs = append(errs, invalidEach(pp.Child("name"), p.Name, validation.IsValidPortName(p.Name))...)
			if names[p.Name] {
				errs = append(errs, field.Duplicate(pp.Child("name"), p.Name))
			}
			names[p.Name] = true
		}
		if p.ContainerPort == 0 {
			errs = append(errs, field.Required(pp.Child("containerPort"), ""))
		} else {
			errs = append(errs, invalidEach(pp.Child("containerPort"), p.ContainerPort, validation.IsValidPortNum(int(p.ContainerPort)))...)
		}
		if p.HostPort != 0 {
			errs = append(errs, invalidEach(pp.Child("hostPort"), p.HostPort, validation.IsValidPortNum(int(p.HostPort)))...)
		}
		errs = append(errs, supported(pp.Child("protocol"), p.Protocol, true, "TCP", "UDP", "SCTP")...)
		if p.HostIp != "" {
			if _, err := netip.ParseAddr(p.HostIp); err != nil {
				errs = append(errs, field.Invalid(pp.Child("hostIP"), p.HostIp, "must be a valid IP address"))
			}
		}
	}
	return errs
}

func validateEnv(env []*corralpb.EnvVar, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, e := range env {
		p := path.Index(i)
		if e.GetName() == "" {
			errs = append(errs, field.Required(p.Child("name"), ""))
		} else {
			errs = append(errs, invalidEach(p.Child("name"), e.GetName(), validation.IsRelaxedEnvVarName(e.GetName()))...)
		}
		if src := e.GetValueFrom(); src != nil {
			errs = append(errs, validateEnvVarSource(src, e.GetValue(), p.Child("valueFrom"))...)
		}
	}
	return errs
}

func validateEnvVarSource(src *corralpb.EnvVarSource, value string, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	count := 0
	if fr := src.FieldRef; fr != nil {
		count++
		errs = append(errs, validateFieldRef(fr, path.Child("fieldRef"))...)
	}
	if rr := src.ResourceFieldRef; rr != nil {
		count++
		errs = append(errs, validateResourceFieldRef(rr, path.Child("resourceFieldRef"))...)
	}
	if cr := src.ConfigMapKeyRef; cr != nil {
		count++
		p := path.Child("configMapKeyRef")
		if cr.Name == "" {
			errs = append(errs, field.Required(p.Child("name"), ""))
		}
		if cr.Key == "" {
			errs = append(errs, field.Required(p.Child("key"), ""))
		} else {
			errs = append(errs, invalidEach(p.Child("key"), cr.Key, validation.IsConfigMapKey(cr.Key))...)
		}
	}
	switch {
	case value != "":
		errs = append(errs, field.Invalid(path, "", "may not be specified when `value` is not empty"))
	case count == 0:
		errs = append(errs, field.Invalid(path, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"))
	case count > 1:
		errs = append(errs, field.Invalid(path, "", "may not have more than one field specified at a time"))
	}
	return errs
}

func validateFieldRef(fr *corralpb.ObjectFieldSelector, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if fr.ApiVersion != "" && fr.ApiVersion != "v1" {
		errs = append(errs, field.NotSupported(path.Child("apiVersion"), fr.ApiVersion, []string{"v1"}))
	}
	fp := path.Child("fieldPath")
	if fr.FieldPath == "" {
		return append(errs, field.Required(fp, ""))
	}
	base, key, subscripted := splitSubscript(fr.FieldPath)
	switch {
	case subscripted && (base == "metadata.labels" || base == "metadata.annotations"):
		errs = append(errs, invalidEach(fp, key, validation.IsQualifiedName(strings.ToLower(key)))...)
	case subscripted:
		errs = append(errs, field.Invalid(fp, fr.FieldPath, "does not support subscript"))
	default:
		errs = append(errs, supported(fp, fr.FieldPath, false, envFieldPaths...)...)
	}
	return errs
}

// splitSubscript splits "metadata.labels['app']" into "metadata.labels" and
// "app".
func splitSubscript(fieldPath string) (base, key string, ok bool) {
	i := strings.Index(fieldPath, "['")
	if i < 0 || !strings.HasSuffix(fieldPath, "']") || len(fieldPath) < i+4 {
		return fieldPath, "", false
	}
	return fieldPath[:i], fieldPath[i+2 : len(fieldPath)-2], true
}

func validateResourceFieldRef(rr *corralpb.ResourceFieldSelector, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if rr.ContainerName != "" {
		errs = append(errs, invalidEach(path.Child("containerName"), rr.ContainerName, validation.IsDNS1123Label(rr.ContainerName))...)
	}
	if rr.Resource == "" {
		errs = append(errs, field.Required(path.Child("resource"), ""))
	} else {
		errs = append(errs, supported(path.Child("resource"), rr.Resource, false, envResourceFields...)...)
	}
	if rr.Divisor != "" {
		q, qerrs := validateQuantity(rr.Divisor, path.Child("divisor"))
		errs = append(errs, qerrs...)
		if len(qerrs) == 0 && q.Sign() == 0 {
			errs = append(errs, field.Invalid(path.Child("divisor"), rr.Divisor, "must be greater than 0"))
		}
	}
	return errs
}

func validateEnvFrom(from []*corralpb.EnvFromSource, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, f := range from {
		p := path.Index(i)
		if f.GetPrefix() != "" {
			errs = append(errs, invalidEach(p.Child("prefix"), f.GetPrefix(), validation.IsRelaxedEnvVarName(f.GetPrefix()))...)
		}
		switch ref := f.GetConfigMapRef(); {
		case ref == nil:
			errs = append(errs, field.Invalid(p, "", "must specify one of: `configMapRef` or `secretRef`"))
		case ref.Name == "":
			errs = append(errs, field.Required(p.Child("configMapRef", "name"), ""))
		default:
			errs = append(errs, invalidEach(p.Child("configMapRef", "name"), ref.Name, validation.IsDNS1123Subdomain(ref.Name))...)
		}
	}
	return errs
}

// validateResources checks resource names and quantities, and that no
// request exceeds its limit.
func validateResources(r *corralpb.ResourceRequirements, path *field.Path) field.ErrorList {
	if r == nil {
		return nil
	}
	var errs field.ErrorList
	limits := map[string]resource.Quantity{}
	for _, name := range sortedKeys(r.Limits) {
		p := path.Child("limits").Key(name)
		errs = append(errs, validateResourceName(name, p)...)
		q, qerrs := validateQuantity(r.Limits[name], p)
		errs = append(errs, qerrs...)
		if len(qerrs) == 0 {
			limits[name] = q
		}
	}
	for _, name := range sortedKeys(r.Requests) {
		p := path.Child("requests").Key(name)
		errs = append(errs, validateResourceName(name, p)...)
		q, qerrs := validateQuantity(r.Requests[name], p)
		errs = append(errs, qerrs...)
		if lim, ok := limits[name]; ok && len(qerrs) == 0 && q.Cmp(lim) > 0 {
			errs = append(errs, field.Invalid(path.Child("requests"), q.String(),
				fmt.Sprintf("must be less than or equal to %s limit of %s", name, lim.String())))
		}
	}
	return errs
}

func validateResourceName(name string, path *field.Path) field.ErrorList {
	if errs := invalidEach(path, name, validation.IsQualifiedName(name)); len(errs) > 0 {
		return errs
	}
	if !strings.Contains(name, "/") && !standardResources[name] && !strings.HasPrefix(name, "hugepages-") {
		return field.ErrorList{field.Invalid(path, name, "must be a standard resource for containers")}
	}
	return nil
}

// validateQuantity parses a quantity and reports it when malformed or
// negative.
func validateQuantity(s string, path *field.Path) (resource.Quantity, field.ErrorList) {
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return q, field.ErrorList{field.Invalid(path, s, err.Error())}
	}
	if q.Sign() < 0 {
		return q, field.ErrorList{field.Invalid(path, s, nonNegativeMsg)}
	}
	return q, nil
}

func validateVolumeMounts(c *corralpb.Container, volumes map[string]bool, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	mountPaths := map[string]bool{}
	privileged := c.GetSecurityContext().GetPrivileged()
	for i, m := range c.VolumeMounts {
		p := path.Index(i)
		switch {
		case m.GetName() == "":
			errs = append(errs, field.Required(p.Child("name"), ""))
		case !volumes[m.GetName()]:
			errs = append(errs, field.NotFound(p.Child("name"), m.GetName()))
		}
		switch mp := m.GetMountPath(); {
		case mp == "":
			errs = append(errs, field.Required(p.Child("mountPath"), ""))
		case !strings.HasPrefix(mp, "/"):
			errs = append(errs, field.Invalid(p.Child("mountPath"), mp, "must be an absolute path"))
		case mountPaths[mp]:
			errs = append(errs, field.Invalid(p.Child("mountPath"), mp, "must be unique"))
		}
		mountPaths[m.GetMountPath()] = true
		if m.GetSubPath() != "" {
			errs = append(errs, localDescendingPath(m.GetSubPath(), p.Child("subPath"))...)
		}
		mprop := m.GetMountPropagation()
		errs = append(errs, supported(p.Child("mountPropagation"), mprop, true, "None", "HostToContainer", "Bidirectional")...)
		if mprop == "Bidirectional" && !privileged {
			errs = append(errs, field.Forbidden(p.Child("mountPropagation"), "Bidirectional mount propagation is available only to privileged containers"))
		}
	}
	return errs
}

// validateProbe checks a probe: one handler, valid ports, sane timings.
// successIsOne holds for liveness and startup probes; gracePeriodOK allows
// the probe-level terminationGracePeriodSeconds.
func validateProbe(pr *corralpb.Probe, path *field.Path, successIsOne, gracePeriodOK bool) field.ErrorList {
	errs := validateProbeHandler(pr, path)
	for _, n := range []struct {
		name string
		v    int32
	}{{"initialDelaySeconds", pr.InitialDelaySeconds}, {"timeoutSeconds", pr.TimeoutSeconds}, {"periodSeconds", pr.PeriodSeconds}} {
		errs = append(errs, nonNegative(path.Child(n.name), n.v)...)
	}
	for _, n := range []struct {
		name string
		v    int32
	}{{"successThreshold", pr.SuccessThreshold}, {"failureThreshold", pr.FailureThreshold}} {
		if n.v < 0 { // 0 is unset: defaulting makes it 1 or 3
			errs = append(errs, field.Invalid(path.Child(n.name), n.v, "must be greater than or equal to 1"))
		}
	}
	if successIsOne && pr.SuccessThreshold > 1 {
		errs = append(errs, field.Invalid(path.Child("successThreshold"), pr.SuccessThreshold, "must be 1"))
	}
	if g := pr.TerminationGracePeriodSeconds; g != nil {
		switch {
		case !gracePeriodOK:
			errs = append(errs, field.Invalid(path.Child("terminationGracePeriodSeconds"), *g, "must not be set for readinessProbes"))
		case *g <= 0:
			errs = append(errs, field.Invalid(path.Child("terminationGracePeriodSeconds"), *g, "must be greater than 0"))
		}
	}
	return errs
}

func validateProbeHandler(pr *corralpb.Probe, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	count := 0
	add := func(name string, set bool, check func(*field.Path) field.ErrorList) {
		if !set {
			return
		}
		count++
		if count > 1 {
			errs = append(errs, field.Forbidden(path.Child(name), "may not specify more than 1 handler type"))
			return
		}
		errs = append(errs, check(path.Child(name))...)
	}
	add("exec", pr.Exec != nil, func(p *field.Path) field.ErrorList {
		if len(pr.Exec.Command) == 0 {
			return field.ErrorList{field.Required(p.Child("command"), "")}
		}
		return nil
	})
	add("httpGet", pr.HttpGet != nil, func(p *field.Path) field.ErrorList {
		errs := validatePortNumOrName(pr.HttpGet.Port, p.Child("port"))
		errs = append(errs, supported(p.Child("scheme"), pr.HttpGet.Scheme, true, "HTTP", "HTTPS")...)
		for i, h := range pr.HttpGet.HttpHeaders {
			errs = append(errs, invalidEach(p.Child("httpHeaders").Index(i).Child("name"), h.GetName(), validation.IsHTTPHeaderName(h.GetName()))...)
		}
		return errs
	})
	add("tcpSocket", pr.TcpSocket != nil, func(p *field.Path) field.ErrorList {
		return validatePortNumOrName(pr.TcpSocket.Port, p.Child("port"))
	})
	add("grpc", pr.Grpc != nil, func(p *field.Path) field.ErrorList {
		return invalidEach(p.Child("port"), pr.Grpc.Port, validation.IsValidPortNum(int(pr.Grpc.Port)))
	})
	if count == 0 {
		errs = append(errs, field.Required(path, "must specify a handler type"))
	}
	return errs
}

// validatePortNumOrName checks a probe port: a number 1-65535 or a port name.
func validatePortNumOrName(port *corralpb.IntOrString, path *field.Path) field.ErrorList {
	switch {
	case port == nil:
		return field.ErrorList{field.Required(path, "")}
	case port.IsString:
		return invalidEach(path, port.StrVal, validation.IsValidPortName(port.StrVal))
	default:
		return invalidEach(path, port.IntVal, validation.IsValidPortNum(int(port.IntVal)))
	}
}

func validateSecurityContext(sc *corralpb.SecurityContext, path *field.Path) field.ErrorList {
	if sc == nil {
		return nil
	}
	var errs field.ErrorList
	for _, list := range []string{"add", "drop"} {
		caps := sc.GetCapabilities().GetAdd()
		if list == "drop" {
			caps = sc.GetCapabilities().GetDrop()
		}
		for i, c := range caps {
			if !capabilityRE.MatchString(c) {
				errs = append(errs, field.Invalid(path.Child("capabilities", list).Index(i), c, "must be a valid capability name"))
			}
		}
	}
	if sc.GetPrivileged() && sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
		errs = append(errs, field.Invalid(path, "", "cannot set `allowPrivilegeEscalation` to false and `privileged` to true"))
	}
	if sc.RunAsUser != nil {
		errs = append(errs, invalidEach(path.Child("runAsUser"), *sc.RunAsUser, validation.IsValidUserID(*sc.RunAsUser))...)
	}
	if sc.RunAsGroup != nil {
		errs = append(errs, invalidEach(path.Child("runAsGroup"), *sc.RunAsGroup, validation.IsValidGroupID(*sc.RunAsGroup))...)
	}
	if sc.ProcMount != nil {
		errs = append(errs, supported(path.Child("procMount"), *sc.ProcMount, false, "Default", "Unmasked")...)
	}
	return append(errs, validateSeccompProfile(sc.SeccompProfile, path.Child("seccompProfile"))...)
}

func validatePodSecurityContext(sc *corralpb.PodSecurityContext, path *field.Path) field.ErrorList {
	if sc == nil {
		return nil
	}
	var errs field.ErrorList
	if sc.RunAsUser != nil {
		errs = append(errs, invalidEach(path.Child("runAsUser"), *sc.RunAsUser, validation.IsValidUserID(*sc.RunAsUser))...)
	}
	if sc.RunAsGroup != nil {
		errs = append(errs, invalidEach(path.Child("runAsGroup"), *sc.RunAsGroup, validation.IsValidGroupID(*sc.RunAsGroup))...)
	}
	if sc.FsGroup != nil {
		errs = append(errs, invalidEach(path.Child("fsGroup"), *sc.FsGroup, validation.IsValidGroupID(*sc.FsGroup))...)
	}
	for i, g := range sc.SupplementalGroups {
		errs = append(errs, invalidEach(path.Child("supplementalGroups").Index(i), g, validation.IsValidGroupID(g))...)
	}
	names := map[string]bool{}
	for i, s := range sc.Sysctls {
		p := path.Child("sysctls").Index(i)
		switch {
		case s.GetName() == "":
			errs = append(errs, field.Required(p.Child("name"), ""))
		case !sysctlRE.MatchString(s.GetName()) || len(s.GetName()) > 253:
			errs = append(errs, field.Invalid(p.Child("name"), s.GetName(), "must have at most 253 characters and match regex "+sysctlRE.String()))
		case names[s.GetName()]:
			errs = append(errs, field.Duplicate(p.Child("name"), s.GetName()))
		}
		names[s.GetName()] = true
	}
	return append(errs, validateSeccompProfile(sc.SeccompProfile, path.Child("seccompProfile"))...)
}

// sysctlRE matches sysctl names written with dots or slashes.
var sysctlRE = regexp.MustCompile(`^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$`)

func validateSeccompProfile(sp *corralpb.SeccompProfile, path *field.Path) field.ErrorList {
	if sp == nil {
		return nil
	}
	errs := supported(path.Child("type"), sp.Type, false, "Localhost", "RuntimeDefault", "Unconfined")
	switch {
	case sp.Type == "Localhost" && sp.GetLocalhostProfile() == "":
		errs = append(errs, field.Required(path.Child("localhostProfile"), "must be set when seccomp type is Localhost"))
	case sp.Type != "Localhost" && sp.LocalhostProfile != nil:
		errs = append(errs, field.Invalid(path.Child("localhostProfile"), sp.GetLocalhostProfile(), "can only be set when seccomp type is Localhost"))
	case sp.Type == "Localhost":
		// Kubernetes' ValidateLocalDescendingPath: the profile lives under
		// the node's seccomp directory.
		p := sp.GetLocalhostProfile()
		if strings.HasPrefix(p, "/") {
			errs = append(errs, field.Invalid(path.Child("localhostProfile"), p, "must be a relative path"))
		}
		if slices.Contains(strings.Split(p, "/"), "..") {
			errs = append(errs, field.Invalid(path.Child("localhostProfile"), p, "must not contain '..'"))
		}
	}
	return errs
}
