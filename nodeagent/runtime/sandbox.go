package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// A sandbox lives in StateDir/sandboxes/<podUID>/:
//
//	sandbox.json   the Sandbox, written last: its presence means "complete"
//	ipc, uts       bind mounts pinning the pod's IPC and UTS namespaces
//	shm/           the pod's /dev/shm (tmpfs)
//	hosts, hostname, resolv.conf
//
// and its network namespace is /run/netns/corral-<hash of StateDir>-<podUID>.

const sandboxFile = "sandbox.json"

// EnsureSandbox returns the pod's sandbox, creating it when it does not exist or is
// incomplete (an interrupted creation is removed and redone). It is idempotent by
// PodUID; a sandbox is never changed once made. On error nothing of it is left behind.
func (r *Runtime) EnsureSandbox(ctx context.Context, cfg SandboxConfig) (*Sandbox, error) {
	if !validName(cfg.PodUID) {
		return nil, fmt.Errorf("ensure sandbox: pod UID %q: %w", cfg.PodUID, ErrInvalid)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("ensure sandbox %s: %w", cfg.PodUID, err)
	}
	r.sbMu.Lock()
	defer r.sbMu.Unlock()
	if sb, err := r.loadSandbox(cfg.PodUID); err == nil && sandboxIntact(sb) {
		return sb, nil
	}
	if err := r.removeSandboxFiles(cfg.PodUID); err != nil {
		return nil, fmt.Errorf("ensure sandbox %s: clear incomplete sandbox: %w", cfg.PodUID, err)
	}
	start := time.Now()
	sb, err := r.createSandbox(cfg)
	if err != nil {
		if cerr := r.removeSandboxFiles(cfg.PodUID); cerr != nil {
			err = errors.Join(err, fmt.Errorf("clean up: %w", cerr))
		}
		return nil, fmt.Errorf("ensure sandbox %s: %w", cfg.PodUID, err)
	}
	r.log.Info("sandbox created", "pod_uid", cfg.PodUID, "pod", cfg.Namespace+"/"+cfg.Name,
		"netns", sb.NetNSPath, "duration", time.Since(start))
	sb.Fresh = true
	return sb, nil
}

func (r *Runtime) createSandbox(cfg SandboxConfig) (*Sandbox, error) {
	dir := r.sandboxDir(cfg.PodUID)
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	hostname, err := podHostname(cfg)
	if err != nil {
		return nil, err
	}
	sb := &Sandbox{
		PodUID:         cfg.PodUID,
		Hostname:       hostname,
		Created:        time.Now().UTC(),
		Config:         cfg,
		HostsPath:      filepath.Join(dir, "hosts"),
		HostnamePath:   filepath.Join(dir, "hostname"),
		ResolvConfPath: filepath.Join(dir, "resolv.conf"),
		ShmPath:        "/dev/shm",
	}
	if err := writePodFiles(sb, cfg); err != nil {
		return nil, err
	}
	if !cfg.HostIPC {
		sb.ShmPath = filepath.Join(dir, "shm")
		if err := mountShm(sb.ShmPath); err != nil {
			return nil, err
		}
	}
	req := nsRequest{hostname: hostname}
	if !cfg.HostNetwork {
		req.netName = r.netnsName(cfg.PodUID)
		req.utsFile = filepath.Join(dir, "uts")
		sb.NetNSPath = filepath.Join("/run/netns", req.netName)
		sb.UTSNSPath = req.utsFile
	}
	if !cfg.HostIPC {
		req.ipcFile = filepath.Join(dir, "ipc")
		sb.IPCNSPath = req.ipcFile
	}
	if err := makeNamespaces(req); err != nil {
		return nil, err
	}
	if err := writeJSON(filepath.Join(dir, sandboxFile), sb); err != nil {
		return nil, err
	}
	return sb, nil
}

// RemoveSandbox unmounts and deletes everything the pod's sandbox holds: namespaces,
// shm, files and the pod's cgroup directory. The pod's containers must have been removed
// (ErrSandboxBusy otherwise). Removing a sandbox that does not exist is not an error.
func (r *Runtime) RemoveSandbox(ctx context.Context, podUID string) error {
	if !validName(podUID) {
		return fmt.Errorf("remove sandbox: pod UID %q: %w", podUID, ErrInvalid)
	}
	ids, err := r.containerIDsOfPod(podUID)
	if err != nil {
		return fmt.Errorf("remove sandbox %s: %w", podUID, err)
	}
	if len(ids) > 0 {
		return fmt.Errorf("remove sandbox %s: containers %s: %w", podUID, strings.Join(ids, ", "), ErrSandboxBusy)
	}
	r.sbMu.Lock()
	defer r.sbMu.Unlock()
	if err := r.removeSandboxFiles(podUID); err != nil {
		return fmt.Errorf("remove sandbox %s: %w", podUID, err)
	}
	if err := removeCgroupDirs(r.cfg.CgroupParent, podUID); err != nil {
		return fmt.Errorf("remove sandbox %s: %w", podUID, err)
	}
	r.log.Info("sandbox removed", "pod_uid", podUID)
	return nil
}

// ListSandboxes lists the sandboxes in the state directory. An incomplete one (an
// interrupted creation) is listed with only its PodUID set, for the caller to remove.
func (r *Runtime) ListSandboxes(ctx context.Context) ([]*Sandbox, error) {
	r.sbMu.Lock()
	defer r.sbMu.Unlock()
	entries, err := os.ReadDir(r.sandboxesDir())
	if err != nil {
		return nil, fmt.Errorf("list sandboxes: %w", err)
	}
	var out []*Sandbox
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		sb, err := r.loadSandbox(e.Name())
		if err != nil || !sandboxIntact(sb) {
			sb = &Sandbox{PodUID: e.Name()}
		}
		out = append(out, sb)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PodUID < out[j].PodUID })
	return out, nil
}

func (r *Runtime) loadSandbox(podUID string) (*Sandbox, error) {
	var sb Sandbox
	if err := readJSON(filepath.Join(r.sandboxDir(podUID), sandboxFile), &sb); err != nil {
		return nil, err
	}
	return &sb, nil
}

// sandboxIntact reports whether the sandbox's namespaces and shm are still mounted
// (a reboot, or someone, may have removed them).
func sandboxIntact(sb *Sandbox) bool {
	for _, p := range []string{sb.NetNSPath, sb.IPCNSPath, sb.UTSNSPath} {
		if p != "" && fsType(p) != nsfsMagic {
			return false
		}
	}
	return sb.ShmPath == "/dev/shm" || fsType(sb.ShmPath) == tmpfsMagic
}

// removeSandboxFiles removes a sandbox from its deterministic paths, so it works on
// half-made sandboxes and without sandbox.json.
func (r *Runtime) removeSandboxFiles(podUID string) error {
	dir := r.sandboxDir(podUID)
	var errs []error
	// sandbox.json first: from here on the sandbox is incomplete.
	if err := os.Remove(filepath.Join(dir, sandboxFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	for _, p := range []string{
		filepath.Join("/run/netns", r.netnsName(podUID)),
		filepath.Join(dir, "ipc"), filepath.Join(dir, "uts"), filepath.Join(dir, "shm"),
	} {
		if err := unmountAndRemove(p); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...) // keep the files: a retry finds the same paths
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	return nil
}

func (r *Runtime) netnsName(podUID string) string { return r.nsPrefix + podUID }

func mountShm(p string) error {
	if err := os.Mkdir(p, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", p, err)
	}
	if err := unix.Mount("shm", p, "tmpfs", unix.MS_NOSUID|unix.MS_NOEXEC|unix.MS_NODEV, "mode=1777,size="+shmSize); err != nil {
		return fmt.Errorf("mount pod shm on %s: %w", p, err)
	}
	return nil
}

// podHostname is the hostname containers see: the node's with hostNetwork, otherwise
// spec.hostname or the pod name, cut to 63 characters as the kubelet does.
func podHostname(cfg SandboxConfig) (string, error) {
	if cfg.HostNetwork {
		h, err := os.Hostname()
		if err != nil {
			return "", fmt.Errorf("node hostname: %w", err)
		}
		return h, nil
	}
	h := orDefault(cfg.Hostname, cfg.Name)
	if h == "" {
		h = cfg.PodUID
	}
	if len(h) > 63 {
		h = strings.TrimRight(h[:63], "-.")
	}
	return h, nil
}

// writePodFiles writes the pod's hosts, hostname and resolv.conf.
func writePodFiles(sb *Sandbox, cfg SandboxConfig) error {
	hosts := []byte(managedHosts)
	if cfg.HostNetwork {
		b, err := os.ReadFile("/etc/hosts")
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("read node /etc/hosts: %w", err)
		}
		hosts = b
	}
	resolv, err := resolvConf(cfg.DNS)
	if err != nil {
		return err
	}
	for p, content := range map[string][]byte{
		sb.HostsPath:      hosts,
		sb.HostnamePath:   []byte(sb.Hostname + "\n"),
		sb.ResolvConfPath: resolv,
	} {
		if err := os.WriteFile(p, content, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
	}
	return nil
}

// managedHosts is the hosts file of a pod with its own network namespace. The
// "<pod IP> <hostname>" line the kubelet adds comes with pod IP networking.
const managedHosts = `# corral-managed hosts file.
127.0.0.1	localhost
::1	localhost ip6-localhost ip6-loopback
fe00::0	ip6-localnet
fe00::0	ip6-mcastprefix
fe00::1	ip6-allnodes
fe00::2	ip6-allrouters
`

// resolvConf is dns as a resolv.conf; nil copies the node's (dnsPolicy Default).
func resolvConf(dns *DNSConfig) ([]byte, error) {
	if dns == nil {
		b, err := os.ReadFile("/etc/resolv.conf")
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("read node /etc/resolv.conf: %w", err)
		}
		return b, nil
	}
	var sb strings.Builder
	if len(dns.Searches) > 0 {
		fmt.Fprintf(&sb, "search %s\n", strings.Join(dns.Searches, " "))
	}
	for _, s := range dns.Servers {
		fmt.Fprintf(&sb, "nameserver %s\n", s)
	}
	if len(dns.Options) > 0 {
		fmt.Fprintf(&sb, "options %s\n", strings.Join(dns.Options, " "))
	}
	return []byte(sb.String()), nil
}
