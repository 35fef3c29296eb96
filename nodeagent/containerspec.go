package nodeagent

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/corral-dev/corral/api"
	"github.com/corral-dev/corral/nodeagent/image"
	"github.com/corral-dev/corral/nodeagent/runtime"
	corralpb "github.com/corral-dev/corral/proto"
)

// configError is a container whose configuration cannot be resolved (a
// missing ConfigMap or key): the kubelet's CreateContainerConfigError.
type configError struct{ msg string }

func (e *configError) Error() string { return e.msg }

// podEnv is what a container's environment may refer to besides the pod.
type podEnv struct {
	nodeIP, podIP string
	allocatable   map[string]string
	configMaps    func(ns, name string) (*corralpb.ConfigMap, bool)
}

// resolveCommand applies Kubernetes' rules for command and args over the
// image's ENTRYPOINT and CMD: no command and no args run the image's
// entrypoint and cmd; command alone replaces both; args alone replace cmd;
// both replace both. $(VAR) references are expanded from env.
func resolveCommand(c *corralpb.Container, img image.Config, env map[string]string) []string {
	var out []string
	switch {
	case len(c.GetCommand()) > 0:
		out = append(expandAll(c.GetCommand(), env), expandAll(c.GetArgs(), env)...)
	case len(c.GetArgs()) > 0:
		out = append(append(out, img.Entrypoint...), expandAll(c.GetArgs(), env)...)
	default:
		out = append(append(out, img.Entrypoint...), img.Cmd...)
	}
	return out
}

func expandAll(in []string, env map[string]string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = expand(s, env)
	}
	return out
}

// expand replaces $(VAR) with VAR's value when VAR is defined and leaves it
// as written otherwise; $$ escapes a dollar sign, as Kubernetes does.
func expand(s string, env map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := env[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// containerEnv builds a container's environment: the image's variables,
// then envFrom sources, then env entries in order (each may refer to the
// ones before it with $(VAR)).
func containerEnv(pod *corralpb.Pod, c *corralpb.Container, img image.Config, pe podEnv) ([]string, map[string]string, error) {
	vals := map[string]string{}
	var order []string
	set := func(k, v string) {
		if _, ok := vals[k]; !ok {
			order = append(order, k)
		}
		vals[k] = v
	}
	for _, kv := range img.Env {
		k, v, _ := strings.Cut(kv, "=")
		set(k, v)
	}
	ns := pod.GetMetadata().GetNamespace()
	for _, from := range c.GetEnvFrom() {
		ref := from.GetConfigMapRef()
		if ref == nil {
			continue
		}
		cm, ok := pe.configMaps(ns, ref.GetName())
		if !ok {
			if ref.GetOptional() {
				continue
			}
			return nil, nil, &configError{fmt.Sprintf("configmap %q not found", ref.GetName())}
		}
		for _, k := range sortedKeys(cm.GetData()) {
			set(from.GetPrefix()+k, cm.GetData()[k])
		}
	}
	for _, e := range c.GetEnv() {
		v, err := envValue(pod, c, e, vals, pe)
		if err != nil {
			return nil, nil, err
		}
		set(e.GetName(), v)
	}
	out := make([]string, 0, len(order))
	for _, k := range order {
		out = append(out, k+"="+vals[k])
	}
	return out, vals, nil
}

func envValue(pod *corralpb.Pod, c *corralpb.Container, e *corralpb.EnvVar, vals map[string]string, pe podEnv) (string, error) {
	src := e.GetValueFrom()
	switch {
	case src == nil:
		return expand(e.GetValue(), vals), nil
	case src.GetFieldRef() != nil:
		return fieldValue(pod, src.GetFieldRef().GetFieldPath(), pe)
	case src.GetConfigMapKeyRef() != nil:
		ref := src.GetConfigMapKeyRef()
		ns := pod.GetMetadata().GetNamespace()
		cm, ok := pe.configMaps(ns, ref.GetName())
		if !ok {
			if ref.GetOptional() {
				return "", nil
			}
			return "", &configError{fmt.Sprintf("configmap %q not found", ref.GetName())}
		}
		v, ok := cm.GetData()[ref.GetKey()]
		if !ok && !ref.GetOptional() {
			return "", &configError{fmt.Sprintf("couldn't find key %s in ConfigMap %s/%s", ref.GetKey(), ns, ref.GetName())}
		}
		return v, nil
	case src.GetResourceFieldRef() != nil:
		return resourceValue(c, src.GetResourceFieldRef(), pe.allocatable)
	}
	return "", nil
}

// fieldValue resolves the downward API fields Kubernetes supports in env.
func fieldValue(pod *corralpb.Pod, path string, pe podEnv) (string, error) {
	m := pod.GetMetadata()
	switch path {
	case "metadata.name":
		return m.GetName(), nil
	case "metadata.namespace":
		return m.GetNamespace(), nil
	case "metadata.uid":
		return m.GetUid(), nil
	case "spec.nodeName":
		return pod.GetSpec().GetNodeName(), nil
	case "spec.serviceAccountName":
		return pod.GetSpec().GetServiceAccountName(), nil
	case "status.hostIP", "status.hostIPs":
		return pe.nodeIP, nil
	case "status.podIP", "status.podIPs":
		return pe.podIP, nil
	}
	for prefix, values := range map[string]map[string]string{"metadata.labels": m.GetLabels(), "metadata.annotations": m.GetAnnotations()} {
		if rest, ok := strings.CutPrefix(path, prefix+"['"); ok && strings.HasSuffix(rest, "']") {
			return values[strings.TrimSuffix(rest, "']")], nil
		}
	}
	return "", &configError{fmt.Sprintf("unsupported fieldRef %q", path)}
}

// resourceValue resolves limits.cpu, limits.memory, requests.cpu and
// requests.memory, in units of the divisor rounded up; an unset limit is
// the node's allocatable amount, as the kubelet does.
func resourceValue(c *corralpb.Container, ref *corralpb.ResourceFieldSelector, allocatable map[string]string) (string, error) {
	kind, name, _ := strings.Cut(ref.GetResource(), ".")
	var q string
	switch kind {
	case "limits":
		q = c.GetResources().GetLimits()[name]
		if q == "" {
			q = allocatable[name]
		}
	case "requests":
		q = c.GetResources().GetRequests()[name]
	}
	if q == "" {
		return "0", nil
	}
	v, err := api.ParseQuantity(q)
	if err != nil {
		return "", &configError{fmt.Sprintf("resourceFieldRef %s: %v", ref.GetResource(), err)}
	}
	div := resource.MustParse("1")
	if ref.GetDivisor() != "" {
		if div, err = api.ParseQuantity(ref.GetDivisor()); err != nil || div.IsZero() {
			return "", &configError{fmt.Sprintf("resourceFieldRef %s: bad divisor %q", ref.GetResource(), ref.GetDivisor())}
		}
	}
	return strconv.FormatInt(int64(math.Ceil(float64(v.MilliValue())/float64(div.MilliValue()))), 10), nil
}

// containerResources turns requests and limits into cgroup settings as the
// kubelet does: cpu shares from the request (the limit when no request),
// a CFS quota from the cpu limit, and the memory limit in bytes.
func containerResources(c *corralpb.Container) runtime.Resources {
	var r runtime.Resources
	req, lim := c.GetResources().GetRequests(), c.GetResources().GetLimits()
	cpuReq := req["cpu"]
	if cpuReq == "" {
		cpuReq = lim["cpu"]
	}
	if q, err := api.ParseQuantity(cpuReq); err == nil && cpuReq != "" {
		r.CPUShares = uint64(max(q.MilliValue()*1024/1000, 2))
	} else {
		r.CPUShares = 2
	}
	if q, err := api.ParseQuantity(lim["cpu"]); err == nil && lim["cpu"] != "" {
		r.CPUPeriod = 100000
		r.CPUQuota = max(q.MilliValue()*100000/1000, 1000)
	}
	if q, err := api.ParseQuantity(lim["memory"]); err == nil && lim["memory"] != "" {
		r.MemoryLimit = q.Value()
	}
	return r
}

// containerUser picks the identity a container runs as: runAsUser and
// runAsGroup from the container's then the pod's security context, else
// the image's USER (numeric, or a name looked up in the image's
// /etc/passwd and /etc/group).
func containerUser(pod *corralpb.Pod, c *corralpb.Container, imageUser, rootfs string) (*runtime.User, error) {
	psc, csc := pod.GetSpec().GetSecurityContext(), c.GetSecurityContext()
	u := &runtime.User{}
	userPart, groupPart, _ := strings.Cut(imageUser, ":")
	switch {
	case csc != nil && csc.RunAsUser != nil:
		u.UID = uint32(csc.GetRunAsUser())
	case psc != nil && psc.RunAsUser != nil:
		u.UID = uint32(psc.GetRunAsUser())
	case userPart != "":
		uid, gid, err := lookupUser(rootfs, userPart)
		if err != nil {
			return nil, err
		}
		u.UID, u.GID = uid, gid
	}
	switch {
	case csc != nil && csc.RunAsGroup != nil:
		u.GID = uint32(csc.GetRunAsGroup())
	case psc != nil && psc.RunAsGroup != nil:
		u.GID = uint32(psc.GetRunAsGroup())
	case groupPart != "":
		gid, err := lookupGroup(rootfs, groupPart)
		if err != nil {
			return nil, err
		}
		u.GID = gid
	}
	for _, g := range psc.GetSupplementalGroups() {
		u.AdditionalGIDs = append(u.AdditionalGIDs, uint32(g))
	}
	if psc != nil && psc.FsGroup != nil {
		u.AdditionalGIDs = append(u.AdditionalGIDs, uint32(psc.GetFsGroup()))
	}
	return u, nil
}

func lookupUser(rootfs, user string) (uid, gid uint32, err error) {
	if n, err := strconv.ParseUint(user, 10, 32); err == nil {
		return uint32(n), 0, nil
	}
	fields, err := findEntry(filepath.Join(rootfs, "etc", "passwd"), user)
	if err != nil || len(fields) < 4 {
		return 0, 0, &configError{fmt.Sprintf("unable to find user %s: no matching entries in passwd file", user)}
	}
	u, err1 := strconv.ParseUint(fields[2], 10, 32)
	g, err2 := strconv.ParseUint(fields[3], 10, 32)
	if err1 != nil || err2 != nil {
		return 0, 0, &configError{fmt.Sprintf("unable to find user %s: malformed passwd entry", user)}
	}
	return uint32(u), uint32(g), nil
}

func lookupGroup(rootfs, group string) (uint32, error) {
	if n, err := strconv.ParseUint(group, 10, 32); err == nil {
		return uint32(n), nil
	}
	fields, err := findEntry(filepath.Join(rootfs, "etc", "group"), group)
	if err != nil || len(fields) < 3 {
		return 0, &configError{fmt.Sprintf("unable to find group %s: no matching entries in group file", group)}
	}
	g, err := strconv.ParseUint(fields[2], 10, 32)
	if err != nil {
		return 0, &configError{fmt.Sprintf("unable to find group %s: malformed group entry", group)}
	}
	return uint32(g), nil
}

// findEntry returns the colon-separated fields of the line whose first
// field is name.
func findEntry(path, name string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) > 0 && fields[0] == name {
			return fields, nil
		}
	}
	return nil, fmt.Errorf("%s: no entry %q", path, name)
}
