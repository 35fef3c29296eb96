package api

import (
	"testing"

	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/util/validation/field"

	corralpb "github.com/corral-dev/corral/proto"
)

const tp = "spec.template.spec."
const c0 = tp + "containers[0]."

func addContainer(o *corralpb.Object, c *corralpb.Container) {
	tmplSpec(o).Containers = append(tmplSpec(o).Containers, c)
}

func probe(o *corralpb.Object) *corralpb.Probe { return firstCtr(o).LivenessProbe }

func nodeTerm(reqs ...*corralpb.NodeSelectorRequirement) func(o *corralpb.Object) {
	return func(o *corralpb.Object) {
		tmplSpec(o).Affinity = &corralpb.Affinity{NodeAffinity: &corralpb.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corralpb.NodeSelector{
				NodeSelectorTerms: []*corralpb.NodeSelectorTerm{{MatchExpressions: reqs}},
			},
		}}
	}
}

func fieldTerm(reqs ...*corralpb.NodeSelectorRequirement) func(o *corralpb.Object) {
	return func(o *corralpb.Object) {
		tmplSpec(o).Affinity = &corralpb.Affinity{NodeAffinity: &corralpb.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corralpb.NodeSelector{
				NodeSelectorTerms: []*corralpb.NodeSelectorTerm{{MatchFields: reqs}},
			},
		}}
	}
}

func tolerate(tols ...*corralpb.Toleration) func(o *corralpb.Object) {
	return func(o *corralpb.Object) { tmplSpec(o).Tolerations = tols }
}

func req(key, op string, values ...string) *corralpb.NodeSelectorRequirement {
	return &corralpb.NodeSelectorRequirement{Key: key, Operator: op, Values: values}
}

func TestValidateContainers(t *testing.T) {
	base := baseDaemonSet(t)
	rules := []rule{
		{"containers required", func(o *corralpb.Object) { tmplSpec(o).Containers = nil }, tp + "containers", field.ErrorTypeRequired, ""},
		{"container name required", func(o *corralpb.Object) { firstCtr(o).Name = "" }, c0 + "name", field.ErrorTypeRequired, ""},
		{"container name syntax", func(o *corralpb.Object) { firstCtr(o).Name = "Agent" }, c0 + "name", field.ErrorTypeInvalid, "RFC 1123 label"},
		{"duplicate container", func(o *corralpb.Object) { addContainer(o, &corralpb.Container{Name: "agent", Image: "x"}) },
			tp + "containers[1].name", field.ErrorTypeDuplicate, ""},
		{"init container name clash", func(o *corralpb.Object) {
			tmplSpec(o).InitContainers = []*corralpb.Container{{Name: "agent", Image: "x"}}
		}, c0 + "name", field.ErrorTypeDuplicate, ""},
		{"image required", func(o *corralpb.Object) { firstCtr(o).Image = "" }, c0 + "image", field.ErrorTypeRequired, ""},
		{"containerPort required", func(o *corralpb.Object) { firstCtr(o).Ports[0].ContainerPort = 0 }, c0 + "ports[0].containerPort", field.ErrorTypeRequired, ""},
		{"containerPort range", func(o *corralpb.Object) { firstCtr(o).Ports[0].ContainerPort = 70000 },
			c0 + "ports[0].containerPort", field.ErrorTypeInvalid, "must be between 1 and 65535, inclusive"},
		{"hostPort range", func(o *corralpb.Object) { firstCtr(o).Ports[0].HostPort = -1 }, c0 + "ports[0].hostPort", field.ErrorTypeInvalid, ""},
		{"protocol", func(o *corralpb.Object) { firstCtr(o).Ports[0].Protocol = "HTTP" },
			c0 + "ports[0].protocol", field.ErrorTypeNotSupported, `supported values: "TCP", "UDP", "SCTP"`},
		{"port name", func(o *corralpb.Object) { firstCtr(o).Ports[0].Name = "HTTP_PORT" }, c0 + "ports[0].name", field.ErrorTypeInvalid, ""},
		{"duplicate port name", func(o *corralpb.Object) {
			firstCtr(o).Ports = append(firstCtr(o).Ports, &corralpb.ContainerPort{Name: "http", ContainerPort: 81})
		}, c0 + "ports[1].name", field.ErrorTypeDuplicate, ""},
		{"hostIP", func(o *corralpb.Object) { firstCtr(o).Ports[0].HostIp = "nowhere" }, c0 + "ports[0].hostIP", field.ErrorTypeInvalid, ""},
		{"duplicate hostPort", func(o *corralpb.Object) {
			firstCtr(o).Ports[0].HostPort = 9100
			addContainer(o, &corralpb.Container{Name: "b", Image: "b", Ports: []*corralpb.ContainerPort{{ContainerPort: 9100, HostPort: 9100, Protocol: "TCP"}}})
		}, tp + "containers[1].ports[0].hostPort", field.ErrorTypeDuplicate, "TCP//9100"},
		{"same hostPort, other protocol", func(o *corralpb.Object) {
			firstCtr(o).Ports[0].HostPort = 9100
			addContainer(o, &corralpb.Container{Name: "b", Image: "b", Ports: []*corralpb.ContainerPort{{ContainerPort: 9100, HostPort: 9100, Protocol: "UDP"}}})
		}, "", "", ""},
		{"hostNetwork hostPort must equal containerPort", func(o *corralpb.Object) {
			tmplSpec(o).HostNetwork = true
			firstCtr(o).Ports[0].HostPort = 9090
		}, c0 + "ports[0].containerPort", field.ErrorTypeInvalid, "must match `hostPort` when `hostNetwork` is true"},
		{"hostNetwork defaulted", func(o *corralpb.Object) { tmplSpec(o).HostNetwork = true; SetDefaults(o) }, "", "", ""},
		{"resource name", func(o *corralpb.Object) { firstCtr(o).Resources.Limits["gpu"] = "1" },
			c0 + "resources.limits[gpu]", field.ErrorTypeInvalid, "must be a standard resource for containers"},
		{"extended resource", func(o *corralpb.Object) { firstCtr(o).Resources.Limits["example.com/gpu"] = "1" }, "", "", ""},
		{"quantity syntax", func(o *corralpb.Object) { firstCtr(o).Resources.Limits["memory"] = "lots" },
			c0 + "resources.limits[memory]", field.ErrorTypeInvalid, "quantities must match the regular expression"},
		{"negative quantity", func(o *corralpb.Object) { firstCtr(o).Resources.Requests["cpu"] = "-100m" },
			c0 + "resources.requests[cpu]", field.ErrorTypeInvalid, "must be greater than or equal to 0"},
		{"requests over limits", func(o *corralpb.Object) { firstCtr(o).Resources.Requests["memory"] = "300Mi" },
			c0 + "resources.requests", field.ErrorTypeInvalid, "must be less than or equal to memory limit of 200Mi"},
		{"requests equal limits", func(o *corralpb.Object) { firstCtr(o).Resources.Requests["memory"] = "200Mi" }, "", "", ""},
		{"mount of missing volume", func(o *corralpb.Object) { firstCtr(o).VolumeMounts[0].Name = "nope" },
			c0 + "volumeMounts[0].name", field.ErrorTypeNotFound, ""},
		{"relative mountPath", func(o *corralpb.Object) { firstCtr(o).VolumeMounts[0].MountPath = "var/log" },
			c0 + "volumeMounts[0].mountPath", field.ErrorTypeInvalid, "must be an absolute path"},
		{"mountPath required", func(o *corralpb.Object) { firstCtr(o).VolumeMounts[0].MountPath = "" },
			c0 + "volumeMounts[0].mountPath", field.ErrorTypeRequired, ""},
		{"duplicate mountPath", func(o *corralpb.Object) {
			firstCtr(o).VolumeMounts = append(firstCtr(o).VolumeMounts, &corralpb.VolumeMount{Name: "logs", MountPath: "/var/log"})
		}, c0 + "volumeMounts[1].mountPath", field.ErrorTypeInvalid, "must be unique"},
		{"subPath backsteps", func(o *corralpb.Object) { firstCtr(o).VolumeMounts[0].SubPath = "a/../../b" },
			c0 + "volumeMounts[0].subPath", field.ErrorTypeInvalid, "must not contain '..'"},
		{"absolute subPath", func(o *corralpb.Object) { firstCtr(o).VolumeMounts[0].SubPath = "/etc" },
			c0 + "volumeMounts[0].subPath", field.ErrorTypeInvalid, "must be a relative path"},
		{"relative subPath", func(o *corralpb.Object) { firstCtr(o).VolumeMounts[0].SubPath = "app/logs" }, "", "", ""},
		{"mount propagation", func(o *corralpb.Object) { firstCtr(o).VolumeMounts[0].MountPropagation = "Shared" },
			c0 + "volumeMounts[0].mountPropagation", field.ErrorTypeNotSupported, ""},
		{"bidirectional needs privileged", func(o *corralpb.Object) { firstCtr(o).VolumeMounts[0].MountPropagation = "Bidirectional" },
			c0 + "volumeMounts[0].mountPropagation", field.ErrorTypeForbidden, ""},
		{"imagePullPolicy", func(o *corralpb.Object) { firstCtr(o).ImagePullPolicy = "Sometimes" }, c0 + "imagePullPolicy", field.ErrorTypeNotSupported, ""},
		{"terminationMessagePolicy", func(o *corralpb.Object) { firstCtr(o).TerminationMessagePolicy = "Log" },
			c0 + "terminationMessagePolicy", field.ErrorTypeNotSupported, ""},
	}
	for _, r := range rules {
		checkRule(t, base, r, Validate)
	}
}

func TestValidateEnvAndSecurity(t *testing.T) {
	base := baseDaemonSet(t)
	env := func(e ...*corralpb.EnvVar) func(o *corralpb.Object) {
		return func(o *corralpb.Object) { firstCtr(o).Env = e }
	}
	fieldRef := func(path string) *corralpb.EnvVar {
		return &corralpb.EnvVar{Name: "X", ValueFrom: &corralpb.EnvVarSource{FieldRef: &corralpb.ObjectFieldSelector{ApiVersion: "v1", FieldPath: path}}}
	}
	sc := func(f func(*corralpb.SecurityContext)) func(o *corralpb.Object) {
		return func(o *corralpb.Object) {
			firstCtr(o).SecurityContext = &corralpb.SecurityContext{}
			f(firstCtr(o).SecurityContext)
		}
	}
	rules := []rule{
		{"env name required", env(&corralpb.EnvVar{Value: "x"}), c0 + "env[0].name", field.ErrorTypeRequired, ""},
		{"env name syntax", env(&corralpb.EnvVar{Name: "A=B"}), c0 + "env[0].name", field.ErrorTypeInvalid, ""},
		{"env name with dots", env(&corralpb.EnvVar{Name: "my.var-1"}), "", "", ""},
		{"fieldRef supported", env(fieldRef("spec.nodeName"), fieldRef("status.hostIP"), fieldRef("metadata.labels['app']")), "", "", ""},
		{"fieldRef unsupported", env(fieldRef("spec.containers")), c0 + "env[0].valueFrom.fieldRef.fieldPath", field.ErrorTypeNotSupported, `"metadata.name"`},
		{"fieldRef bad subscript", env(fieldRef("metadata.labels['a b']")), c0 + "env[0].valueFrom.fieldRef.fieldPath", field.ErrorTypeInvalid, ""},
		{"fieldRef subscript elsewhere", env(fieldRef("spec.nodeName['x']")), c0 + "env[0].valueFrom.fieldRef.fieldPath", field.ErrorTypeInvalid, ""},
		{"fieldRef apiVersion", env(&corralpb.EnvVar{Name: "X", ValueFrom: &corralpb.EnvVarSource{FieldRef: &corralpb.ObjectFieldSelector{ApiVersion: "v2", FieldPath: "metadata.name"}}}),
			c0 + "env[0].valueFrom.fieldRef.apiVersion", field.ErrorTypeNotSupported, ""},
		{"value and valueFrom", env(&corralpb.EnvVar{Name: "X", Value: "v", ValueFrom: fieldRef("metadata.name").ValueFrom}),
			c0 + "env[0].valueFrom", field.ErrorTypeInvalid, "may not be specified when `value` is not empty"},
		{"empty valueFrom", env(&corralpb.EnvVar{Name: "X", ValueFrom: &corralpb.EnvVarSource{}}), c0 + "env[0].valueFrom", field.ErrorTypeInvalid, "must specify one of"},
		{"resourceFieldRef", env(&corralpb.EnvVar{Name: "X", ValueFrom: &corralpb.EnvVarSource{ResourceFieldRef: &corralpb.ResourceFieldSelector{Resource: "limits.gpu"}}}),
			c0 + "env[0].valueFrom.resourceFieldRef.resource", field.ErrorTypeNotSupported, ""},
		{"configMapKeyRef key", env(&corralpb.EnvVar{Name: "X", ValueFrom: &corralpb.EnvVarSource{ConfigMapKeyRef: &corralpb.ConfigMapKeySelector{Name: "cfg"}}}),
			c0 + "env[0].valueFrom.configMapKeyRef.key", field.ErrorTypeRequired, ""},
		{"envFrom source", func(o *corralpb.Object) { firstCtr(o).EnvFrom = []*corralpb.EnvFromSource{{Prefix: "P_"}} },
			c0 + "envFrom[0]", field.ErrorTypeInvalid, "must specify one of"},
		{"capability name", sc(func(s *corralpb.SecurityContext) { s.Capabilities = &corralpb.Capabilities{Add: []string{"NET ADMIN"}} }),
			c0 + "securityContext.capabilities.add[0]", field.ErrorTypeInvalid, ""},
		{"capabilities", sc(func(s *corralpb.SecurityContext) {
			s.Capabilities = &corralpb.Capabilities{Add: []string{"NET_ADMIN", "CAP_SYS_TIME"}, Drop: []string{"ALL"}}
		}), "", "", ""},
		{"privileged without escalation", sc(func(s *corralpb.SecurityContext) {
			s.Privileged = proto.Bool(true)
			s.AllowPrivilegeEscalation = proto.Bool(false)
		}), c0 + "securityContext", field.ErrorTypeInvalid, "cannot set `allowPrivilegeEscalation` to false and `privileged` to true"},
		{"runAsUser", sc(func(s *corralpb.SecurityContext) { s.RunAsUser = proto.Int64(-1) }), c0 + "securityContext.runAsUser", field.ErrorTypeInvalid, ""},
		{"runAsUser root", sc(func(s *corralpb.SecurityContext) { s.RunAsUser = proto.Int64(0) }), "", "", ""},
		{"runAsGroup", sc(func(s *corralpb.SecurityContext) { s.RunAsGroup = proto.Int64(-5) }), c0 + "securityContext.runAsGroup", field.ErrorTypeInvalid, ""},
		{"seccomp localhost", sc(func(s *corralpb.SecurityContext) { s.SeccompProfile = &corralpb.SeccompProfile{Type: "Localhost"} }),
			c0 + "securityContext.seccompProfile.localhostProfile", field.ErrorTypeRequired, ""},
		{"seccomp localhost escapes", sc(func(s *corralpb.SecurityContext) {
			s.SeccompProfile = &corralpb.SeccompProfile{Type: "Localhost", LocalhostProfile: proto.String("../../etc/x.json")}
		}), c0 + "securityContext.seccompProfile.localhostProfile", field.ErrorTypeInvalid, "must not contain '..'"},
		{"seccomp localhost absolute", sc(func(s *corralpb.SecurityContext) {
			s.SeccompProfile = &corralpb.SeccompProfile{Type: "Localhost", LocalhostProfile: proto.String("/etc/x.json")}
		}), c0 + "securityContext.seccompProfile.localhostProfile", field.ErrorTypeInvalid, "must be a relative path"},
		{"seccomp localhost ok", sc(func(s *corralpb.SecurityContext) {
			s.SeccompProfile = &corralpb.SeccompProfile{Type: "Localhost", LocalhostProfile: proto.String("profiles/audit.json")}
		}), "", "", ""},
		{"seccomp runtime default", sc(func(s *corralpb.SecurityContext) { s.SeccompProfile = &corralpb.SeccompProfile{Type: "RuntimeDefault"} }), "", "", ""},
		{"seccomp bad type", sc(func(s *corralpb.SecurityContext) { s.SeccompProfile = &corralpb.SeccompProfile{Type: "Default"} }),
			c0 + "securityContext.seccompProfile.type", field.ErrorTypeNotSupported, ""},
		{"pod runAsUser", func(o *corralpb.Object) { tmplSpec(o).SecurityContext.RunAsUser = proto.Int64(-1) },
			tp + "securityContext.runAsUser", field.ErrorTypeInvalid, ""},
		{"pod supplementalGroups", func(o *corralpb.Object) { tmplSpec(o).SecurityContext.SupplementalGroups = []int64{-1} },
			tp + "securityContext.supplementalGroups[0]", field.ErrorTypeInvalid, ""},
		{"sysctl name", func(o *corralpb.Object) { tmplSpec(o).SecurityContext.Sysctls = []*corralpb.Sysctl{{Name: "Net..x"}} },
			tp + "securityContext.sysctls[0].name", field.ErrorTypeInvalid, ""},
	}
	for _, r := range rules {
		checkRule(t, base, r, Validate)
	}
}

func TestValidateProbes(t *testing.T) {
	base := baseDaemonSet(t)
	rules := []rule{
		{"handler required", func(o *corralpb.Object) { probe(o).HttpGet = nil }, c0 + "livenessProbe", field.ErrorTypeRequired, "must specify a handler type"},
		{"one handler", func(o *corralpb.Object) { probe(o).TcpSocket = &corralpb.TCPSocketAction{Port: intStr(80)} },
			c0 + "livenessProbe.tcpSocket", field.ErrorTypeForbidden, "may not specify more than 1 handler type"},
		{"port range", func(o *corralpb.Object) { probe(o).HttpGet.Port = intStr(0) }, c0 + "livenessProbe.httpGet.port", field.ErrorTypeInvalid, ""},
		{"port required", func(o *corralpb.Object) { probe(o).HttpGet.Port = nil }, c0 + "livenessProbe.httpGet.port", field.ErrorTypeRequired, ""},
		{"named port", func(o *corralpb.Object) { probe(o).HttpGet.Port = pctStr("http") }, "", "", ""},
		{"port name syntax", func(o *corralpb.Object) { probe(o).HttpGet.Port = pctStr("HTTP") }, c0 + "livenessProbe.httpGet.port", field.ErrorTypeInvalid, ""},
		{"scheme", func(o *corralpb.Object) { probe(o).HttpGet.Scheme = "FTP" }, c0 + "livenessProbe.httpGet.scheme", field.ErrorTypeNotSupported, ""},
		{"header name", func(o *corralpb.Object) { probe(o).HttpGet.HttpHeaders = []*corralpb.HTTPHeader{{Name: "X Bad"}} },
			c0 + "livenessProbe.httpGet.httpHeaders[0].name", field.ErrorTypeInvalid, ""},
		{"exec command", func(o *corralpb.Object) { probe(o).HttpGet = nil; probe(o).Exec = &corralpb.ExecAction{} },
			c0 + "livenessProbe.exec.command", field.ErrorTypeRequired, ""},
		{"grpc port", func(o *corralpb.Object) { probe(o).HttpGet = nil; probe(o).Grpc = &corralpb.GRPCAction{Port: 70000} },
			c0 + "livenessProbe.grpc.port", field.ErrorTypeInvalid, ""},
		{"liveness successThreshold", func(o *corralpb.Object) { probe(o).SuccessThreshold = 2 },
			c0 + "livenessProbe.successThreshold", field.ErrorTypeInvalid, "must be 1"},
		{"startup successThreshold", func(o *corralpb.Object) {
			firstCtr(o).StartupProbe = &corralpb.Probe{Exec: &corralpb.ExecAction{Command: []string{"true"}}, SuccessThreshold: 3}
		}, c0 + "startupProbe.successThreshold", field.ErrorTypeInvalid, "must be 1"},
		{"readiness successThreshold", func(o *corralpb.Object) {
			firstCtr(o).ReadinessProbe = &corralpb.Probe{TcpSocket: &corralpb.TCPSocketAction{Port: intStr(8080)}, SuccessThreshold: 3}
		}, "", "", ""},
		{"failureThreshold", func(o *corralpb.Object) { probe(o).FailureThreshold = -1 },
			c0 + "livenessProbe.failureThreshold", field.ErrorTypeInvalid, "must be greater than or equal to 1"},
		{"initialDelaySeconds", func(o *corralpb.Object) { probe(o).InitialDelaySeconds = -1 },
			c0 + "livenessProbe.initialDelaySeconds", field.ErrorTypeInvalid, ""},
		{"periodSeconds", func(o *corralpb.Object) { probe(o).PeriodSeconds = -10 }, c0 + "livenessProbe.periodSeconds", field.ErrorTypeInvalid, ""},
		{"readiness grace period", func(o *corralpb.Object) {
			firstCtr(o).ReadinessProbe = &corralpb.Probe{TcpSocket: &corralpb.TCPSocketAction{Port: intStr(1)}, TerminationGracePeriodSeconds: proto.Int64(5)}
		}, c0 + "readinessProbe.terminationGracePeriodSeconds", field.ErrorTypeInvalid, ""},
		{"init container probe", func(o *corralpb.Object) {
			tmplSpec(o).InitContainers = []*corralpb.Container{{Name: "init", Image: "busybox", LivenessProbe: probe(o)}}
		}, tp + "initContainers[0].livenessProbe", field.ErrorTypeForbidden, ""},
	}
	for _, r := range rules {
		checkRule(t, base, r, Validate)
	}
}

func TestValidateVolumes(t *testing.T) {
	base := baseDaemonSet(t)
	vol := func(o *corralpb.Object) *corralpb.Volume { return tmplSpec(o).Volumes[0] }
	rules := []rule{
		{"volume name required", func(o *corralpb.Object) { vol(o).Name = "" }, tp + "volumes[0].name", field.ErrorTypeRequired, ""},
		{"volume name syntax", func(o *corralpb.Object) { vol(o).Name = "Logs" }, tp + "volumes[0].name", field.ErrorTypeInvalid, ""},
		{"duplicate volume", func(o *corralpb.Object) {
			tmplSpec(o).Volumes = append(tmplSpec(o).Volumes, &corralpb.Volume{Name: "logs", EmptyDir: &corralpb.EmptyDirVolumeSource{}})
		}, tp + "volumes[1].name", field.ErrorTypeDuplicate, ""},
		{"no source", func(o *corralpb.Object) { vol(o).HostPath = nil }, tp + "volumes[0]", field.ErrorTypeRequired, "must specify a volume type"},
		{"two sources", func(o *corralpb.Object) { vol(o).EmptyDir = &corralpb.EmptyDirVolumeSource{} },
			tp + "volumes[0].emptyDir", field.ErrorTypeForbidden, "may not specify more than 1 volume type"},
		{"hostPath path required", func(o *corralpb.Object) { vol(o).HostPath.Path = "" }, tp + "volumes[0].hostPath.path", field.ErrorTypeRequired, ""},
		{"hostPath absolute", func(o *corralpb.Object) { vol(o).HostPath.Path = "var/log" }, tp + "volumes[0].hostPath.path", field.ErrorTypeInvalid, "must be an absolute path"},
		{"hostPath backsteps", func(o *corralpb.Object) { vol(o).HostPath.Path = "/var/../etc" }, tp + "volumes[0].hostPath.path", field.ErrorTypeInvalid, ""},
		{"hostPath type", func(o *corralpb.Object) { vol(o).HostPath.Type = proto.String("Dir") },
			tp + "volumes[0].hostPath.type", field.ErrorTypeNotSupported, `"DirectoryOrCreate"`},
		{"hostPath socket", func(o *corralpb.Object) { vol(o).HostPath.Type = proto.String("Socket") }, "", "", ""},
		{"emptyDir medium", func(o *corralpb.Object) {
			vol(o).HostPath = nil
			vol(o).EmptyDir = &corralpb.EmptyDirVolumeSource{Medium: "Disk"}
		},
			tp + "volumes[0].emptyDir.medium", field.ErrorTypeNotSupported, ""},
		{"emptyDir sizeLimit", func(o *corralpb.Object) {
			vol(o).HostPath = nil
			vol(o).EmptyDir = &corralpb.EmptyDirVolumeSource{SizeLimit: "big"}
		},
			tp + "volumes[0].emptyDir.sizeLimit", field.ErrorTypeInvalid, ""},
		{"configMap name", func(o *corralpb.Object) { vol(o).HostPath = nil; vol(o).ConfigMap = &corralpb.ConfigMapVolumeSource{} },
			tp + "volumes[0].configMap.name", field.ErrorTypeRequired, ""},
		{"configMap mode", func(o *corralpb.Object) {
			vol(o).HostPath = nil
			vol(o).ConfigMap = &corralpb.ConfigMapVolumeSource{Name: "cfg", DefaultMode: proto.Int32(0o1000)}
		}, tp + "volumes[0].configMap.defaultMode", field.ErrorTypeInvalid, "0777"},
		{"configMap item path", func(o *corralpb.Object) {
			vol(o).HostPath = nil
			vol(o).ConfigMap = &corralpb.ConfigMapVolumeSource{Name: "cfg", Items: []*corralpb.KeyToPath{{Key: "a", Path: "../a"}}}
		}, tp + "volumes[0].configMap.items[0].path", field.ErrorTypeInvalid, ""},
	}
	for _, r := range rules {
		checkRule(t, base, r, Validate)
	}
}

func TestValidateScheduling(t *testing.T) {
	base := baseDaemonSet(t)
	const na = tp + "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms"
	rules := []rule{
		{"In with values", nodeTerm(req("environment", "In", "production", "staging")), "", "", ""},
		{"In needs values", nodeTerm(req("environment", "In")), na + "[0].matchExpressions[0].values", field.ErrorTypeRequired, ""},
		{"NotIn needs values", nodeTerm(req("environment", "NotIn")), na + "[0].matchExpressions[0].values", field.ErrorTypeRequired, ""},
		{"Exists takes no values", nodeTerm(req("gpu", "Exists", "x")), na + "[0].matchExpressions[0].values", field.ErrorTypeForbidden, ""},
		{"DoesNotExist", nodeTerm(req("gpu", "DoesNotExist")), "", "", ""},
		{"Gt one integer", nodeTerm(req("cores", "Gt", "4")), "", "", ""},
		{"Gt two values", nodeTerm(req("cores", "Gt", "4", "5")), na + "[0].matchExpressions[0].values", field.ErrorTypeRequired, ""},
		{"Lt not an integer", nodeTerm(req("cores", "Lt", "many")), na + "[0].matchExpressions[0].values[0]", field.ErrorTypeInvalid, "must be an integer"},
		{"unknown operator", nodeTerm(req("a", "Equals", "b")), na + "[0].matchExpressions[0].operator", field.ErrorTypeInvalid, "not a valid selector operator"},
		{"requirement key", nodeTerm(req("a b", "Exists")), na + "[0].matchExpressions[0].key", field.ErrorTypeInvalid, ""},
		{"matchFields name", fieldTerm(req("metadata.name", "In", "node-1")), "", "", ""},
		{"matchFields key", fieldTerm(req("metadata.labels", "In", "x")), na + "[0].matchFields[0].key", field.ErrorTypeInvalid, "not a valid field selector key"},
		{"matchFields operator", fieldTerm(req("metadata.name", "Exists")), na + "[0].matchFields[0].operator", field.ErrorTypeInvalid, ""},
		{"matchFields one value", fieldTerm(req("metadata.name", "NotIn", "a", "b")), na + "[0].matchFields[0].values", field.ErrorTypeRequired, ""},
		{"terms required", func(o *corralpb.Object) {
			tmplSpec(o).Affinity = &corralpb.Affinity{NodeAffinity: &corralpb.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corralpb.NodeSelector{}}}
		}, na, field.ErrorTypeRequired, ""},
		{"preferred weight", func(o *corralpb.Object) {
			tmplSpec(o).Affinity = &corralpb.Affinity{NodeAffinity: &corralpb.NodeAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []*corralpb.PreferredSchedulingTerm{
				{Weight: 0, Preference: &corralpb.NodeSelectorTerm{MatchExpressions: []*corralpb.NodeSelectorRequirement{req("a", "Exists")}}},
			}}}
		}, tp + "affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight", field.ErrorTypeInvalid, ""},
		{"nodeSelector", func(o *corralpb.Object) { tmplSpec(o).NodeSelector = map[string]string{"disktype": "ssd"} }, "", "", ""},
		{"nodeSelector key", func(o *corralpb.Object) { tmplSpec(o).NodeSelector = map[string]string{"disk type": "ssd"} }, tp + "nodeSelector", field.ErrorTypeInvalid, ""},
		{"seed tolerations", tolerate(
			&corralpb.Toleration{Key: "node-role.kubernetes.io/control-plane", Operator: "Exists", Effect: "NoSchedule"},
			&corralpb.Toleration{Operator: "Exists", Effect: "NoSchedule"},
			&corralpb.Toleration{Key: "k", Operator: "Equal", Value: "v", Effect: "NoExecute", TolerationSeconds: proto.Int64(30)},
			&corralpb.Toleration{Key: "k", Value: "v"},
		), "", "", ""},
		{"toleration operator", tolerate(&corralpb.Toleration{Key: "k", Operator: "In"}), tp + "tolerations[0].operator", field.ErrorTypeNotSupported, ""},
		{"Exists with value", tolerate(&corralpb.Toleration{Key: "k", Operator: "Exists", Value: "v"}),
			tp + "tolerations[0].operator", field.ErrorTypeInvalid, "value must be empty when `operator` is 'Exists'"},
		{"empty key needs Exists", tolerate(&corralpb.Toleration{Operator: "Equal", Effect: "NoSchedule"}),
			tp + "tolerations[0].operator", field.ErrorTypeInvalid, "operator must be Exists when `key` is empty"},
		{"toleration effect", tolerate(&corralpb.Toleration{Operator: "Exists", Effect: "NoRun"}), tp + "tolerations[0].effect", field.ErrorTypeNotSupported, ""},
		{"tolerationSeconds needs NoExecute", tolerate(&corralpb.Toleration{Key: "k", Operator: "Exists", Effect: "NoSchedule", TolerationSeconds: proto.Int64(5)}),
			tp + "tolerations[0].effect", field.ErrorTypeInvalid, "effect must be 'NoExecute' when `tolerationSeconds` is set"},
		{"toleration key", tolerate(&corralpb.Toleration{Key: "-k", Operator: "Exists"}), tp + "tolerations[0].key", field.ErrorTypeInvalid, ""},
		{"toleration value", tolerate(&corralpb.Toleration{Key: "k", Value: "a b"}), tp + "tolerations[0].value", field.ErrorTypeInvalid, ""},
		{"priorityClassName", func(o *corralpb.Object) { tmplSpec(o).PriorityClassName = "System_Critical" }, tp + "priorityClassName", field.ErrorTypeInvalid, ""},
		{"priorityClassName ok", func(o *corralpb.Object) { tmplSpec(o).PriorityClassName = "system-node-critical" }, "", "", ""},
		{"serviceAccountName", func(o *corralpb.Object) { tmplSpec(o).ServiceAccountName = "A" }, tp + "serviceAccountName", field.ErrorTypeInvalid, ""},
		{"hostname", func(o *corralpb.Object) { tmplSpec(o).Hostname = "a.b" }, tp + "hostname", field.ErrorTypeInvalid, ""},
		{"dnsPolicy", func(o *corralpb.Object) { tmplSpec(o).DnsPolicy = "Google" }, tp + "dnsPolicy", field.ErrorTypeNotSupported, ""},
		{"dnsPolicy None", func(o *corralpb.Object) { tmplSpec(o).DnsPolicy = "None" }, tp + "dnsConfig", field.ErrorTypeRequired, ""},
		{"dnsPolicy host net", func(o *corralpb.Object) { tmplSpec(o).DnsPolicy = "ClusterFirstWithHostNet" }, "", "", ""},
		{"terminationGracePeriodSeconds", func(o *corralpb.Object) { tmplSpec(o).TerminationGracePeriodSeconds = proto.Int64(-1) },
			tp + "terminationGracePeriodSeconds", field.ErrorTypeInvalid, ""},
		{"preemptionPolicy", func(o *corralpb.Object) { tmplSpec(o).PreemptionPolicy = proto.String("Sometimes") }, tp + "preemptionPolicy", field.ErrorTypeNotSupported, ""},
		{"imagePullSecrets", func(o *corralpb.Object) { tmplSpec(o).ImagePullSecrets = []*corralpb.LocalObjectReference{{}} },
			tp + "imagePullSecrets[0].name", field.ErrorTypeRequired, ""},
	}
	for _, r := range rules {
		checkRule(t, base, r, Validate)
	}
}

func TestValidatePod(t *testing.T) {
	base := decodeOne(t, `apiVersion: v1
kind: Pod
metadata: {name: web, namespace: default}
spec:
  nodeName: node-1
  containers:
  - {name: web, image: nginx}
`)
	SetDefaults(base)
	ps := func(o *corralpb.Object) *corralpb.PodSpec { return o.GetPod().Spec }
	rules := []rule{
		{"valid pod", func(o *corralpb.Object) {}, "", "", ""},
		{"OnFailure", func(o *corralpb.Object) { ps(o).RestartPolicy = "OnFailure" }, "", "", ""},
		{"Never", func(o *corralpb.Object) { ps(o).RestartPolicy = "Never" }, "", "", ""},
		{"restartPolicy", func(o *corralpb.Object) { ps(o).RestartPolicy = "Sometimes" },
			"spec.restartPolicy", field.ErrorTypeNotSupported, `supported values: "Always", "OnFailure", "Never"`},
		{"nodeName", func(o *corralpb.Object) { ps(o).NodeName = "Node_1" }, "spec.nodeName", field.ErrorTypeInvalid, ""},
		{"activeDeadlineSeconds", func(o *corralpb.Object) { ps(o).ActiveDeadlineSeconds = proto.Int64(0) }, "spec.activeDeadlineSeconds", field.ErrorTypeInvalid, ""},
		{"containers", func(o *corralpb.Object) { ps(o).Containers = nil }, "spec.containers", field.ErrorTypeRequired, ""},
		{"spec required", func(o *corralpb.Object) { o.GetPod().Spec = nil }, "spec.containers", field.ErrorTypeRequired, ""},
	}
	for _, r := range rules {
		checkRule(t, base, r, Validate)
	}
	o := proto.Clone(base).(*corralpb.Object)
	ps(o).Containers[0].Image = ""
	if err := Validate(o); err == nil || err.Error() != `Pod "web" is invalid: spec.containers[0].image: Required value` {
		t.Errorf("pod error text: %v", err)
	}
}
