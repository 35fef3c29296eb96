package runtime

import (
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/corral-dev/corral/nodeagent/runtime/containerinit"
)

const (
	defaultPath      = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	defaultCPUPeriod = 100000 // µs, the kernel's and the kubelet's default
	// shmSize is the size of a pod's /dev/shm, as containerd's CRI gives it.
	shmSize = "65536k"
)

// RLIMIT_NOFILE of every container. containerd's CRI plugin removes the default OCI
// spec's rlimits (containerd internal/cri, "Remove default rlimits", containerd/cri#515),
// so a pod inherits containerd's own limit; since containerd v2.0 its containerd.service
// no longer sets LimitNOFILE (containerd/containerd#8924) and systemd's implicit
// 1024:524288 applies. corral sets that pair explicitly so the result does not depend on
// how the agent itself was started.
const (
	nofileSoft = 1024
	nofileHard = 524288
)

// Spec builds the OCI runtime spec for container c of the pod whose sandbox is sb and
// whose sandbox config is sbc, with the cgroup path cgroupsPath (see CgroupPath).
// initBinary is the host path of the container init bind-mounted at /.corral/init and
// run as the container's PID 1; "" runs c.Args directly as PID 1 (tests, debugging).
//
// Spec is pure: it reads nothing from the host but the kernel version (seccomp
// profiles name syscalls by the kernel that has them). The defaults are containerd's for
// Kubernetes pods (its CRI plugin), not runc's example spec. Privileged containers also
// get every host device; CreateContainer adds those, as listing them reads /dev.
func Spec(sb *Sandbox, sbc *SandboxConfig, c *ContainerConfig, cgroupsPath, initBinary string) (*specs.Spec, error) {
	if err := validateSpecInput(sb, sbc, c, cgroupsPath, initBinary); err != nil {
		return nil, err
	}
	caps, err := capabilitySet(c.Privileged, c.CapAdd, c.CapDrop)
	if err != nil {
		return nil, err
	}
	mounts, propagation, err := containerMounts(sb, sbc, c, initBinary)
	if err != nil {
		return nil, err
	}
	s := &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: c.RootFS, Readonly: c.ReadOnlyRootFS},
		Process: &specs.Process{
			User: processUser(c.User),
			Args: processArgs(c, initBinary),
			Env:  processEnv(c.Env, sb.Hostname),
			Cwd:  orDefault(c.WorkingDir, "/"),
			Capabilities: &specs.LinuxCapabilities{
				Bounding:  caps,
				Effective: slices.Clone(caps),
				Permitted: slices.Clone(caps),
			},
			Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: nofileSoft, Hard: nofileHard}},
			NoNewPrivileges: c.NoNewPrivileges,
		},
		Mounts: mounts,
		Linux: &specs.Linux{
			Namespaces:        namespaces(sb, sbc),
			CgroupsPath:       cgroupsPath,
			Resources:         resources(c),
			Sysctl:            cloneMap(sbc.Sysctls),
			RootfsPropagation: propagation,
		},
	}
	if !c.Privileged {
		s.Linux.MaskedPaths = slices.Clone(maskedPaths)
		s.Linux.ReadonlyPaths = slices.Clone(readonlyPaths)
	}
	if s.Linux.Seccomp, err = seccompFor(c, s); err != nil {
		return nil, err
	}
	return s, nil
}

// CgroupPath is the cgroup of one container attempt: <parent>/<podUID>/<name>-<attempt>.
// Each attempt has its own, so that an exited attempt kept for its status does not share
// an OOM counter or a directory with the next one.
func CgroupPath(parent, podUID, name string, attempt int) string {
	return path.Join("/", parent, podUID, fmt.Sprintf("%s-%d", name, attempt))
}

// MilliCPUToShares converts a CPU request in millicores to cpu.shares as the kubelet
// does: milli*1024/1000, at least 2 (also for no request).
func MilliCPUToShares(milli int64) uint64 {
	const minShares, maxShares = 2, 262144
	shares := milli * 1024 / 1000
	if shares < minShares {
		return minShares
	}
	if shares > maxShares {
		return maxShares
	}
	return uint64(shares)
}

// MilliCPUToQuota converts a CPU limit in millicores to cpu.cfs_quota_us for period
// (µs) as the kubelet does: milli*period/1000, at least 1000 µs; 0 for no limit.
func MilliCPUToQuota(milli int64, period uint64) int64 {
	const minQuota = 1000
	if milli <= 0 {
		return 0
	}
	if period == 0 {
		period = defaultCPUPeriod
	}
	quota := milli * int64(period) / 1000
	if quota < minQuota {
		return minQuota
	}
	return quota
}

func validateSpecInput(sb *Sandbox, sbc *SandboxConfig, c *ContainerConfig, cgroupsPath, initBinary string) error {
	switch {
	case sb == nil || sbc == nil || c == nil:
		return fmt.Errorf("spec: sandbox, sandbox config and container config are required: %w", ErrInvalid)
	case !path.IsAbs(c.RootFS):
		return fmt.Errorf("spec: rootfs %q is not an absolute path: %w", c.RootFS, ErrInvalid)
	case len(c.Args) == 0:
		return fmt.Errorf("spec: container %q has no command: %w", c.Name, ErrInvalid)
	case !path.IsAbs(cgroupsPath):
		return fmt.Errorf("spec: cgroups path %q is not absolute: %w", cgroupsPath, ErrInvalid)
	case initBinary != "" && !path.IsAbs(initBinary):
		return fmt.Errorf("spec: init binary %q is not an absolute path: %w", initBinary, ErrInvalid)
	case c.WorkingDir != "" && !path.IsAbs(c.WorkingDir):
		return fmt.Errorf("spec: workingDir %q is not absolute: %w", c.WorkingDir, ErrInvalid)
	}
	return nil
}

func processUser(u *User) specs.User {
	if u == nil {
		return specs.User{}
	}
	return specs.User{UID: u.UID, GID: u.GID, AdditionalGids: slices.Clone(u.AdditionalGIDs)}
}

func processArgs(c *ContainerConfig, initBinary string) []string {
	if initBinary == "" {
		return slices.Clone(c.Args)
	}
	// A container's own terminal is not supported (ContainerConfig.TTY): its output is
	// captured as logs unless the caller asks otherwise in c.Log.
	return containerinit.Args(c.Args, c.Log)
}

// processEnv is env with PATH and HOSTNAME added in front when env lacks them.
func processEnv(env []string, hostname string) []string {
	has := func(key string) bool {
		return slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, key+"=") })
	}
	var out []string
	if !has("PATH") {
		out = append(out, defaultPath)
	}
	if !has("HOSTNAME") && hostname != "" {
		out = append(out, "HOSTNAME="+hostname)
	}
	return append(out, env...)
}

// namespaces: a new mount, PID (unless hostPID) and cgroup namespace; the pod's IPC,
// UTS and network namespaces joined by path; none of a kind the pod shares with the node.
func namespaces(sb *Sandbox, sbc *SandboxConfig) []specs.LinuxNamespace {
	ns := []specs.LinuxNamespace{{Type: specs.MountNamespace}}
	if !sbc.HostPID {
		ns = append(ns, specs.LinuxNamespace{Type: specs.PIDNamespace})
	}
	if !sbc.HostIPC && sb.IPCNSPath != "" {
		ns = append(ns, specs.LinuxNamespace{Type: specs.IPCNamespace, Path: sb.IPCNSPath})
	}
	if !sbc.HostNetwork && sb.UTSNSPath != "" {
		ns = append(ns, specs.LinuxNamespace{Type: specs.UTSNamespace, Path: sb.UTSNSPath})
	}
	if !sbc.HostNetwork && sb.NetNSPath != "" {
		ns = append(ns, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: sb.NetNSPath})
	}
	return append(ns, specs.LinuxNamespace{Type: specs.CgroupNamespace})
}

func resources(c *ContainerConfig) *specs.LinuxResources {
	r := &specs.LinuxResources{Devices: deviceRules(c.Privileged)}
	res := c.Resources
	if res.MemoryLimit > 0 {
		limit := res.MemoryLimit
		r.Memory = &specs.LinuxMemory{Limit: &limit}
	}
	if res.CPUShares > 0 || res.CPUQuota > 0 {
		r.CPU = &specs.LinuxCPU{}
	}
	if res.CPUShares > 0 {
		shares := res.CPUShares
		r.CPU.Shares = &shares
	}
	if res.CPUQuota > 0 {
		quota, period := res.CPUQuota, res.CPUPeriod
		if period == 0 {
			period = defaultCPUPeriod
		}
		r.CPU.Quota, r.CPU.Period = &quota, &period
	}
	return r
}

// containerMounts is the mount list: containerd's defaults, the pod's files, the user's
// mounts (a user mount replaces a default at the same destination; a user /dev replaces
// every default under /dev) sorted parents first, and the init. It also returns the
// rootfs propagation the user mounts need.
func containerMounts(sb *Sandbox, sbc *SandboxConfig, c *ContainerConfig, initBinary string) ([]specs.Mount, string, error) {
	user, propagation, err := userMounts(c.Mounts)
	if err != nil {
		return nil, "", err
	}
	taken := map[string]bool{}
	for _, m := range user {
		taken[m.Destination] = true
	}
	var out []specs.Mount
	for _, m := range append(defaultMounts(sb, sbc, c), podFileMounts(sb, c.ReadOnlyRootFS)...) {
		if taken[m.Destination] || (taken["/dev"] && strings.HasPrefix(m.Destination, "/dev/")) {
			continue
		}
		out = append(out, m)
	}
	out = append(out, user...)
	if initBinary != "" {
		out = append(out, specs.Mount{
			Destination: containerinit.InitPath, Type: "bind", Source: initBinary,
			Options: []string{"bind", "ro", "nodev", "nosuid"},
		})
	}
	return out, propagation, nil
}

func defaultMounts(sb *Sandbox, sbc *SandboxConfig, c *ContainerConfig) []specs.Mount {
	sysMode, cgroupMode := "ro", "ro"
	if c.Privileged {
		sysMode, cgroupMode = "rw", "rw"
	}
	ms := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
	}
	if sb.ShmPath != "" {
		ms = append(ms, specs.Mount{Destination: "/dev/shm", Type: "bind", Source: sb.ShmPath, Options: []string{"rbind", "rprivate", "rw"}})
	} else {
		// No pod-level shm (a sandbox made without one): a private tmpfs like containerd's default.
		ms = append(ms, specs.Mount{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=" + shmSize}})
	}
	return append(ms,
		specs.Mount{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		specs.Mount{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", sysMode}},
		specs.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", cgroupMode}},
	)
}

// podFileMounts bind-mounts the sandbox's hosts, hostname and resolv.conf; read-only
// with a read-only root filesystem, as containerd does.
func podFileMounts(sb *Sandbox, readOnly bool) []specs.Mount {
	mode := "rw"
	if readOnly {
		mode = "ro"
	}
	var ms []specs.Mount
	for _, f := range []struct{ dst, src string }{
		{"/etc/hosts", sb.HostsPath}, {"/etc/hostname", sb.HostnamePath}, {"/etc/resolv.conf", sb.ResolvConfPath},
	} {
		if f.src != "" {
			ms = append(ms, specs.Mount{Destination: f.dst, Type: "bind", Source: f.src, Options: []string{"rbind", "rprivate", mode}})
		}
	}
	return ms
}

// userMounts converts the container's volumes, sorted by depth so that a mount's
// parent is mounted first, and returns the rootfs propagation they need.
func userMounts(in []Mount) ([]specs.Mount, string, error) {
	sorted := slices.Clone(in)
	sort.SliceStable(sorted, func(i, j int) bool { return depth(sorted[i].Destination) < depth(sorted[j].Destination) })
	var out []specs.Mount
	propagation := ""
	for _, m := range sorted {
		if !path.IsAbs(m.Destination) {
			return nil, "", fmt.Errorf("spec: mount destination %q is not absolute: %w", m.Destination, ErrInvalid)
		}
		dst := path.Clean(m.Destination)
		mode := "rw"
		if m.ReadOnly {
			mode = "ro"
		}
		switch m.Type {
		case "tmpfs":
			out = append(out, specs.Mount{Destination: dst, Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", mode}})
			continue
		case "", "bind":
		default:
			return nil, "", fmt.Errorf("spec: mount %s: unknown type %q: %w", dst, m.Type, ErrInvalid)
		}
		if !path.IsAbs(m.Source) {
			return nil, "", fmt.Errorf("spec: mount %s: source %q is not absolute: %w", dst, m.Source, ErrInvalid)
		}
		prop, err := mountPropagation(m.Propagation)
		if err != nil {
			return nil, "", fmt.Errorf("spec: mount %s: %w", dst, err)
		}
		switch {
		case prop == "rshared":
			propagation = "rshared"
		case prop == "rslave" && propagation != "rshared":
			propagation = "rslave"
		}
		out = append(out, specs.Mount{Destination: dst, Type: "bind", Source: m.Source, Options: []string{"rbind", prop, mode}})
	}
	return out, propagation, nil
}

func mountPropagation(p string) (string, error) {
	switch p {
	case "", "None", "rprivate", "private":
		return "rprivate", nil
	case "HostToContainer", "rslave", "slave":
		return "rslave", nil
	case "Bidirectional", "rshared", "shared":
		return "rshared", nil
	}
	return "", fmt.Errorf("unknown mount propagation %q: %w", p, ErrInvalid)
}

func depth(p string) int {
	return strings.Count(path.Clean(p), "/")
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func cloneMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
