// Package runtime runs a node's pods as Linux containers with runc's libcontainer,
// embedded in the corral binary (no runc binary, no shim, no pause process).
//
// # Model
//
// A pod is a sandbox plus containers.
//
// The sandbox holds what the pod's containers share: a network namespace (named,
// bind-mounted under /run/netns, loopback up), an IPC and a UTS namespace (bind-mounted
// under StateDir/sandboxes/<podUID>/, the hostname set inside), a 64 MiB /dev/shm tmpfs
// and the pod's hosts, hostname and resolv.conf. Bind mounts keep the namespaces alive
// without any process; hostNetwork, hostIPC and hostPID pods use the node's namespace of
// that kind instead. EnsureSandbox is idempotent; RemoveSandbox unmounts and deletes it.
//
// A container is one attempt of a pod's container, ID "<podUID>-<name>-<attempt>". Spec
// (a pure function) turns its config into an OCI runtime spec with containerd's
// Kubernetes defaults; libcontainer's specconv converts that, and the container joins
// the sandbox's namespaces by path, in cgroup <CgroupParent>/<podUID>/<name>-<attempt>.
// Its PID 1 is corral's container init (package containerinit), bind-mounted read-only
// at /.corral/init: it runs the command, forwards signals, writes the logs and, when the
// command ends, exit.json in the attempt directory PodsDir/<podUID>/containers/<name>/<attempt>/
// (its fd 3). That is how exit codes survive the agent: the container outlives the
// agent that started it, and only a process's parent learns its exit status.
//
// Everything is on disk: libcontainer's state in StateDir/containers, the runtime's
// metadata in StateDir/meta/<id>.json (pod, attempt, image, the process to exec with,
// and the final status once seen). A Runtime made by New in a restarted agent lists and
// controls every container as the old one did (re-adoption).
//
// # A container's life
//
//	           CreateContainer                 StartContainer
//	(none) ───────────────────▶ created ───────────────────▶ running
//	   ▲      spawns the bootstrap, which       exec of the      │
//	   │      sets up namespaces, mounts,       init; the init   │ the command ends, or
//	   │      cgroups, then waits               runs the command │ StopContainer: SIGTERM,
//	   │                            │                            │ grace, SIGKILL
//	   │                            │ StopContainer              ▼
//	   │                            └──────────────────────▶ exited ── ContainerStatus records
//	   │                                                       │      exit code, reason and
//	   │            RemoveContainer: kill if needed,           │      OOM kill in the metadata
//	   └────────────── destroy state, cgroups, metadata ───────┘
//	                (the attempt directory with its logs stays)
//
// A container whose creation or removal was interrupted by a crash is reported as
// "unknown": remove it.
//
// # Embedding
//
// libcontainer starts a container by re-executing the running binary as
// "<binary> init": main must call Init first thing when os.Args[1] == "init". The
// binary must be built with cgo (libcontainer's nsenter), and static if it also serves
// as the container init (Config.InitBinary), so that it runs in any image.
package runtime
