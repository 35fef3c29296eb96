package runtime

import (
	"errors"
	"time"

	"github.com/corral-dev/corral/nodeagent/runtime/containerinit"
)

// Sentinel errors of the package; match them with errors.Is.
var (
	// ErrNotFound: no container or sandbox with that ID exists.
	ErrNotFound = errors.New("not found")
	// ErrInvalid: a config the runtime refuses (empty pod UID, bad name, relative path...).
	ErrInvalid = errors.New("invalid config")
	// ErrAlreadyStarted: StartContainer on a container that has run already.
	ErrAlreadyStarted = errors.New("container already started")
	// ErrSandboxBusy: RemoveSandbox while containers of the pod still exist.
	ErrSandboxBusy = errors.New("sandbox still has containers")
)

// Container states reported in ContainerStatus.State.
const (
	StateCreated = "created" // created, never started
	StateRunning = "running" // its init runs
	StateExited  = "exited"  // ran and ended (or failed to start)
	StateUnknown = "unknown" // half-made or half-removed: remove it
)

// Reasons reported in ContainerStatus.Reason once a container has exited.
const (
	ReasonCompleted  = containerinit.ReasonCompleted  // exit code 0
	ReasonError      = containerinit.ReasonError      // non-zero exit code or killed by a signal
	ReasonOOMKilled  = "OOMKilled"                    // its memory cgroup recorded an OOM kill
	ReasonStartError = containerinit.ReasonStartError // the command could not be started
)

// SandboxConfig describes the pod-level namespaces and files a sandbox holds.
type SandboxConfig struct {
	PodUID    string // required; the sandbox's identity (EnsureSandbox is idempotent by it)
	Namespace string // pod namespace (informational)
	Name      string // pod name; the hostname when Hostname is empty
	Hostname  string // pod hostname (spec.hostname), set in the pod's UTS namespace
	// HostNetwork shares the node's network and UTS namespaces (no netns, node hostname).
	HostNetwork bool
	// HostPID runs containers in the node's PID namespace.
	HostPID bool
	// HostIPC shares the node's IPC namespace and /dev/shm.
	HostIPC bool
	// Sysctls are namespaced sysctls (net.*, kernel.shm*, ...) every container applies
	// inside the pod's namespaces as it starts.
	Sysctls map[string]string
	// DNS, when set, is written to the pod's resolv.conf; nil copies the node's.
	DNS *DNSConfig
}

// DNSConfig is the content of a pod's /etc/resolv.conf.
type DNSConfig struct {
	Servers  []string // nameserver lines
	Searches []string // search domains
	Options  []string // "ndots:5", ...
}

// Sandbox is a pod's persistent namespaces and files. A namespace path is empty when
// the pod shares the node's namespace of that kind.
type Sandbox struct {
	PodUID    string    `json:"podUID"`
	NetNSPath string    `json:"netNSPath,omitempty"` // bind-mounted network namespace
	IPCNSPath string    `json:"ipcNSPath,omitempty"` // bind-mounted IPC namespace
	UTSNSPath string    `json:"utsNSPath,omitempty"` // bind-mounted UTS namespace
	Hostname  string    `json:"hostname"`            // the hostname containers see
	Created   time.Time `json:"created"`
	// Config is the SandboxConfig the sandbox was made from (HostPID and Sysctls
	// apply to its containers).
	Config SandboxConfig `json:"config"`

	HostsPath      string `json:"hostsPath"`      // the pod's /etc/hosts
	HostnamePath   string `json:"hostnamePath"`   // the pod's /etc/hostname
	ResolvConfPath string `json:"resolvConfPath"` // the pod's /etc/resolv.conf
	// ShmPath is the pod's /dev/shm: a 64 MiB tmpfs its containers share; the node's
	// /dev/shm with hostIPC.
	ShmPath string `json:"shmPath"`
	// Fresh is set on the Sandbox EnsureSandbox returns when it made the
	// sandbox just now (its network namespace is new and empty); it is never
	// saved.
	Fresh bool `json:"-"`
}

// User is the identity a container's process runs as.
type User struct {
	UID            uint32
	GID            uint32
	AdditionalGIDs []uint32
}

// Mount is a volume mounted into a container.
type Mount struct {
	Source      string // host path (bind); ignored for tmpfs
	Destination string // absolute path in the container
	ReadOnly    bool
	Type        string // "bind" (default) or "tmpfs"
	// Propagation: "" or "None"/"rprivate" (default), "HostToContainer"/"rslave",
	// "Bidirectional"/"rshared".
	Propagation string
}

// ContainerConfig is everything needed to create one attempt of a pod's container.
// Its ID is "<PodUID>-<Name>-<Attempt>": deterministic, so a restarted agent finds it.
type ContainerConfig struct {
	PodUID  string
	Name    string
	Attempt int

	Image   string // the reference the pod asked for (reported back)
	ImageID string // the image's digest (reported back)
	RootFS  string // the container's mounted root filesystem (nodeagent/image)

	Args       []string // resolved command: Kubernetes' ENTRYPOINT/CMD rules applied by the caller
	Env        []string // KEY=value; PATH and HOSTNAME are added when absent
	WorkingDir string   // "" = "/"
	User       *User    // nil = root (the caller resolves the image's USER)
	Mounts     []Mount

	Privileged      bool     // all capabilities, all host devices, no masked paths, rw /sys
	CapAdd          []string // Kubernetes names without CAP_ ("NET_ADMIN"), or "ALL"
	CapDrop         []string
	ReadOnlyRootFS  bool
	NoNewPrivileges bool // allowPrivilegeEscalation=false
	// Seccomp is the container's seccomp profile; nil runs it unconfined.
	// Privileged containers always run unconfined, as with containerd.
	Seccomp   *SeccompProfile
	Resources Resources

	// TTY and Stdin are accepted but a container's own terminal is not supported yet:
	// the container runs without one and its output is captured as logs.
	TTY, Stdin bool
	Log        containerinit.LogOptions
}

// Seccomp profile types, as Kubernetes names them.
const (
	SeccompUnconfined     = "Unconfined"
	SeccompRuntimeDefault = "RuntimeDefault"
	SeccompLocalhost      = "Localhost"
)

// SeccompProfile is a container's seccomp filter.
type SeccompProfile struct {
	// Type is SeccompUnconfined, SeccompRuntimeDefault (Docker's default
	// profile, fitted to the container's capabilities) or SeccompLocalhost.
	Type string
	// Localhost is the profile of type SeccompLocalhost, in Docker's (and
	// containerd's) JSON format; the caller reads it from its file.
	Localhost []byte
	// Name names the profile in errors: the Localhost profile's path.
	Name string
}

// Resources are a container's cgroup limits. Zero means unset.
type Resources struct {
	CPUShares   uint64 // cpu.shares; MilliCPUToShares(request) as the kubelet does
	CPUQuota    int64  // cpu.cfs_quota_us; MilliCPUToQuota(limit, period)
	CPUPeriod   uint64 // cpu.cfs_period_us; 100000 when a quota is set and this is 0
	MemoryLimit int64  // bytes
}

// ContainerStatus is what the runtime knows about a container, read from disk so that
// it is the same in a freshly started agent (re-adoption).
type ContainerStatus struct {
	ID      string
	PodUID  string
	Name    string
	Attempt int
	State   string // StateCreated, StateRunning, StateExited or StateUnknown
	Pid     int    // host PID of the container's init while running

	CreatedAt  time.Time
	StartedAt  time.Time
	FinishedAt time.Time
	ExitCode   int
	Reason     string // ReasonCompleted, ReasonError, ReasonOOMKilled, ReasonStartError
	Message    string

	Image   string
	ImageID string
	LogDir  string // the attempt directory: container.log*, exit.json
}
