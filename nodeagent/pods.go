package nodeagent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/corral-dev/corral/api"
	"github.com/corral-dev/corral/nodeagent/image"
	"github.com/corral-dev/corral/nodeagent/runtime"
	"github.com/corral-dev/corral/nodeagent/volume"
	corralpb "github.com/corral-dev/corral/proto"
)

// ContainerRuntime is what pod workers need of nodeagent/runtime.
type ContainerRuntime interface {
	EnsureSandbox(ctx context.Context, cfg runtime.SandboxConfig) (*runtime.Sandbox, error)
	RemoveSandbox(ctx context.Context, podUID string) error
	ListSandboxes(ctx context.Context) ([]*runtime.Sandbox, error)
	CreateContainer(ctx context.Context, sb *runtime.Sandbox, c *runtime.ContainerConfig) (string, error)
	StartContainer(ctx context.Context, id string) error
	StopContainer(ctx context.Context, id string, grace time.Duration) error
	RemoveContainer(ctx context.Context, id string) error
	ListContainers(ctx context.Context) ([]*runtime.ContainerStatus, error)
	ListPodContainers(ctx context.Context, podUID string) ([]*runtime.ContainerStatus, error)
	Exec(ctx context.Context, id string, cmd []string, stdin io.Reader, stdout, stderr io.Writer, tty bool) (int, error)
}

// Images is what pod workers need of nodeagent/image.
type Images interface {
	Pull(ctx context.Context, ref, policy string, auth *image.Auth) (*image.Image, bool, int64, error)
	Mount(ctx context.Context, containerID string, img *image.Image) (string, error)
	RemoveContainerFS(containerID string) error
}

// Volumes is what pod workers need of nodeagent/volume.
type Volumes interface {
	Setup(ctx context.Context, pod *corralpb.Pod, configMaps volume.ConfigMapGetter) error
	Mounts(pod *corralpb.Pod, c *corralpb.Container) ([]volume.Mount, error)
	TearDown(ctx context.Context, podUID string) error
}

// Probes runs a started container's probes and tells workers what they
// found.
type Probes interface {
	// Watch starts the container attempt's probes; netns is the pod's network
	// namespace ("" for hostNetwork), podIP where HTTP and TCP probes go.
	Watch(pod *corralpb.Pod, c *corralpb.Container, containerID, podIP, netns string)
	// Forget stops a container attempt's probes.
	Forget(containerID string)
	// Ready is the readiness probe's verdict (true without one, once started).
	Ready(containerID string) bool
	// Started is the startup probe's verdict (true without one).
	Started(containerID string) bool
	// Failed reports a liveness or startup failure that calls for a restart,
	// with the reason for the Killing event.
	Failed(containerID string) (bool, string)
}

// StatusSink receives pods' observed status (the agent's Reporter).
type StatusSink interface {
	Report(pod *corralpb.Pod, st *corralpb.PodStatus)
}

// EventRecorder records Kubernetes events about an object.
type EventRecorder interface {
	Event(obj *corralpb.Object, eventType, reason, message string)
}

// PodManagerConfig wires a PodManager.
type PodManagerConfig struct {
	NodeName string
	NodeIP   string
	// PodsDir is where pods' host directories live (volumes, container
	// logs); a removed pod's directory goes with it.
	PodsDir     string
	Allocatable map[string]string
	Runtime     ContainerRuntime
	Images      Images
	Volumes     Volumes
	// Network connects pods that are not hostNetwork to the pod network;
	// nil leaves them with loopback only.
	Network  PodNetwork
	Probes   Probes
	Events   EventRecorder
	Reporter StatusSink
	Logger   *slog.Logger
	// SeccompDir holds the Localhost seccomp profiles pods name
	// (securityContext.seccompProfile.localhostProfile is relative to it),
	// as the kubelet's <root-dir>/seccomp does.
	SeccompDir string
	// SeccompDefault runs the containers that name no seccomp profile under
	// RuntimeDefault instead of Unconfined (the kubelet's --seccomp-default).
	SeccompDefault bool
	// SyncPeriod is how often a worker re-reads its containers (default 1s).
	SyncPeriod time.Duration
}

// PodManager runs the desired pods: one worker per pod (keyed by uid),
// given the latest version of its pod, and a terminating worker for every
// pod that is no longer desired — including pods the runtime still holds
// from before an agent restart that were deleted meanwhile.
type PodManager struct {
	cfg PodManagerConfig
	log *slog.Logger

	mu       sync.Mutex
	workers  map[string]*podWorker // by pod uid
	byName   map[string]string     // namespace/name → uid
	rejected map[string]bool       // pods refused at admission, by uid: Failed for good
	// reconciled is set once the network's records were checked against
	// what the runtime holds (the first Sync after a start).
	reconciled bool
	// scanned is when Sync last looked for pods the runtime holds that no
	// worker owns (see orphanScanPeriod).
	scanned time.Time
	wg      sync.WaitGroup
}

var _ PodSyncer = (*PodManager)(nil)

// NewPodManager returns a PodManager; Sync drives it.
func NewPodManager(cfg PodManagerConfig) *PodManager {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.SyncPeriod == 0 {
		cfg.SyncPeriod = time.Second
	}
	return &PodManager{cfg: cfg, log: cfg.Logger, workers: map[string]*podWorker{}, byName: map[string]string{},
		rejected: map[string]bool{}}
}

// Sync implements PodSyncer.
func (m *PodManager) Sync(ctx context.Context, pods map[string]*corralpb.Pod, configMaps func(ns, name string) (*corralpb.ConfigMap, bool)) {
	desired := map[string]*corralpb.Pod{}
	for _, p := range pods {
		desired[p.GetMetadata().GetUid()] = p
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for uid := range m.rejected {
		if _, ok := desired[uid]; !ok {
			delete(m.rejected, uid)
		}
	}
	m.admit(desired)
	for uid, p := range desired {
		if m.rejected[uid] {
			continue
		}
		w, ok := m.workers[uid]
		if !ok {
			w = newPodWorker(m, uid, p, configMaps)
			m.workers[uid] = w
			m.start(ctx, w)
		}
		m.byName[podKey(p.GetMetadata().GetNamespace(), p.GetMetadata().GetName())] = uid
		w.update(p, configMaps)
	}
	for uid, w := range m.workers {
		if _, ok := desired[uid]; !ok {
			w.stop()
		}
	}
	for k, uid := range m.byName {
		if _, ok := desired[uid]; !ok {
			delete(m.byName, k)
		}
	}
	if m.scanned.IsZero() || time.Since(m.scanned) >= orphanScanPeriod || (!m.reconciled && m.cfg.Network != nil) {
		m.scanned = time.Now()
		m.adoptOrphans(ctx, desired)
	}
}

// orphanScanPeriod is how often Sync lists every container and sandbox to
// find pods no worker owns. Such pods come from before an agent restart,
// which the first Sync finds; later scans are a safety net. Listing reads
// every container's state from disk, too slow for every Sync: a node
// with many pods would pay it for each pod added.
const orphanScanPeriod = time.Minute

// admit refuses, for good, pods whose host ports are taken by pods admitted
// before them (the kubelet's NodePorts check). Callers hold m.mu.
func (m *PodManager) admit(desired map[string]*corralpb.Pod) {
	var candidates []*corralpb.Pod
	running := map[string]bool{}
	for uid, p := range desired {
		if m.rejected[uid] {
			continue
		}
		candidates = append(candidates, p)
		if _, ok := m.workers[uid]; ok {
			running[uid] = true
		}
	}
	_, rejected := admitPods(candidates, running)
	for _, p := range rejected {
		uid := p.GetMetadata().GetUid()
		m.rejected[uid] = true
		m.log.Info("pod rejected: host ports taken", "pod", p.GetMetadata().GetName(), "pod_uid", uid)
		if m.cfg.Events != nil {
			m.cfg.Events.Event(api.Wrap(p), "Warning", reasonNodePorts, messageNodePorts)
		}
		if m.cfg.Reporter != nil {
			m.cfg.Reporter.Report(p, rejectedStatus(m.cfg.NodeIP))
		}
	}
}

func (m *PodManager) start(ctx context.Context, w *podWorker) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		w.run(ctx)
		m.mu.Lock()
		if m.workers[w.uid] == w {
			delete(m.workers, w.uid)
		}
		// A pod may have been waiting for this one to go (see blockers).
		for _, o := range m.workers {
			o.poke()
		}
		m.mu.Unlock()
	}()
}

// blockers names the pods still terminating on this node that pod must
// wait for before its first container starts: a pod of the same
// controller (the DaemonSet's old pod in a rolling update without surge:
// Kubernetes creates the new pod only once the old one is gone, and corral
// deletes the old one from the API at once while its containers get their
// grace period here), an earlier pod of the same name (deleted and created
// again) or a pod holding one of its host ports. Orphans found at
// start-up, whose pods are unknown, block nothing.
func (m *PodManager) blockers(pod *corralpb.Pod) []string {
	owner := controllerUID(pod)
	ports := hostPortsOf(pod)
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for uid, w := range m.workers {
		if uid == pod.GetMetadata().GetUid() {
			continue
		}
		w.mu.Lock()
		old, stopping := w.pod, w.stopping
		w.mu.Unlock()
		if !stopping || old == nil {
			continue
		}
		sameName := old.GetMetadata().GetNamespace() == pod.GetMetadata().GetNamespace() && old.GetMetadata().GetName() == pod.GetMetadata().GetName()
		if sameName || (owner != "" && controllerUID(old) == owner) || portsCollide(ports, hostPortsOf(old)) {
			out = append(out, podKey(old.GetMetadata().GetNamespace(), old.GetMetadata().GetName()))
		}
	}
	slices.Sort(out)
	return out
}

// controllerUID is the UID of the pod's controller ("" for none).
func controllerUID(pod *corralpb.Pod) string {
	for _, r := range pod.GetMetadata().GetOwnerReferences() {
		if r.GetController() {
			return r.GetUid()
		}
	}
	return ""
}

// adoptOrphans gives every pod the runtime holds but nobody wants a
// terminating worker. Callers hold m.mu.
func (m *PodManager) adoptOrphans(ctx context.Context, desired map[string]*corralpb.Pod) {
	uids := map[string]bool{}
	if cs, err := m.cfg.Runtime.ListContainers(ctx); err == nil {
		for _, c := range cs {
			uids[c.PodUID] = true
		}
	} else {
		m.log.Warn("list containers", "err", err)
	}
	if sbs, err := m.cfg.Runtime.ListSandboxes(ctx); err == nil {
		for _, sb := range sbs {
			uids[sb.PodUID] = true
		}
	}
	if !m.reconciled && m.cfg.Network != nil {
		keep := map[string]bool{}
		for uid := range uids {
			keep[uid] = true
		}
		for uid := range desired {
			keep[uid] = true
		}
		if err := m.cfg.Network.Reconcile(ctx, keep); err != nil {
			m.log.Warn("pod network: release what pods gone meanwhile held", "err", err)
		} else {
			m.reconciled = true
		}
	}
	for uid := range uids {
		if _, want := desired[uid]; want {
			continue
		}
		if _, busy := m.workers[uid]; busy {
			continue
		}
		m.log.Info("cleaning up pod no longer assigned", "pod_uid", uid)
		w := newPodWorker(m, uid, nil, nil)
		w.stop()
		m.workers[uid] = w
		m.start(ctx, w)
	}
}

// Wait blocks until every worker has ended (after ctx given to Sync ends).
func (m *PodManager) Wait() { m.wg.Wait() }

// containersOf returns the pod's container attempts by container name,
// newest attempt first.
func (m *PodManager) containersOf(ctx context.Context, uid string) (map[string][]*runtime.ContainerStatus, error) {
	all, err := m.cfg.Runtime.ListPodContainers(ctx, uid)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	out := map[string][]*runtime.ContainerStatus{}
	for _, c := range all {
		out[c.Name] = append(out[c.Name], c)
	}
	for _, list := range out {
		sortAttempts(list)
	}
	return out, nil
}

func sortAttempts(list []*runtime.ContainerStatus) {
	slices.SortFunc(list, func(a, b *runtime.ContainerStatus) int { return b.Attempt - a.Attempt })
}

var _ Images = (*image.Store)(nil)

// Poke wakes the worker of a pod (a probe verdict changed).
func (m *PodManager) Poke(podUID string) {
	m.mu.Lock()
	w := m.workers[podUID]
	m.mu.Unlock()
	if w != nil {
		w.poke()
	}
}

var _ Volumes = (*volume.Manager)(nil)
