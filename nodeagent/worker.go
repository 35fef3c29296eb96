package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/corral-dev/corral/api"
	"github.com/corral-dev/corral/nodeagent/network"
	"github.com/corral-dev/corral/nodeagent/runtime"
	"github.com/corral-dev/corral/nodeagent/volume"
	corralpb "github.com/corral-dev/corral/proto"
)

// podWorker owns one pod (by uid) from its first sync to its removal. Its
// life, as the kubelet's pod workers (the latest update wins):
//
//	syncing ──(update)──▶ syncing ──(stop)──▶ terminating ──(all gone)──▶ done
//
// Each sync pass reads the pod's containers from the runtime (the truth,
// also after an agent restart), decides one step per container with the
// pure decide, acts, and reports the pod's status.
type podWorker struct {
	m   *PodManager
	uid string

	mu         sync.Mutex
	pod        *corralpb.Pod
	configMaps func(ns, name string) (*corralpb.ConfigMap, bool)
	// cmVersions are the resourceVersions of the ConfigMaps the pod uses,
	// as of the last update ("" for a missing one).
	cmVersions map[string]string
	stopping   bool
	wake       chan struct{}

	// Worker-goroutine state.
	backOff    map[string]containerBackOff
	pullBack   map[string]pullBackOff
	waiting    map[string][2]string // container → reason, message
	sandbox    *runtime.Sandbox
	netIP      string    // the pod network's address for the sandbox
	attachedTo time.Time // Created of the sandbox netIP was attached to
	startTime  time.Time
	lastEvent  map[string]time.Time
	lastStatus *corralpb.PodStatus
	// cleared is set once no terminating pod held the pod back (blockers).
	cleared bool
}

type pullBackOff struct {
	until time.Time
	delay time.Duration
}

func newPodWorker(m *PodManager, uid string, pod *corralpb.Pod, cms func(ns, name string) (*corralpb.ConfigMap, bool)) *podWorker {
	return &podWorker{m: m, uid: uid, pod: pod, configMaps: cms, wake: make(chan struct{}, 1),
		backOff: map[string]containerBackOff{}, pullBack: map[string]pullBackOff{}, waiting: map[string][2]string{},
		lastEvent: map[string]time.Time{}}
}

// update gives the worker the latest version of its pod, waking it when
// the pod or one of the ConfigMaps it uses changed: the manager hands every
// worker its pod at each of its syncs, and waking them all would make every
// pod's sync pass run again for each pod added to the node.
func (w *podWorker) update(pod *corralpb.Pod, cms func(ns, name string) (*corralpb.ConfigMap, bool)) {
	versions := map[string]string{}
	for _, name := range api.PodConfigMaps(pod) {
		versions[name] = ""
		if cms != nil {
			if cm, ok := cms(pod.GetMetadata().GetNamespace(), name); ok {
				versions[name] = cm.GetMetadata().GetResourceVersion()
			}
		}
	}
	w.mu.Lock()
	changed := !proto.Equal(w.pod, pod) || !maps.Equal(w.cmVersions, versions)
	w.pod, w.configMaps, w.cmVersions = pod, cms, versions
	w.mu.Unlock()
	if changed {
		w.poke()
	}
}

func (w *podWorker) stop() {
	w.mu.Lock()
	w.stopping = true
	w.mu.Unlock()
	w.poke()
}

func (w *podWorker) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *podWorker) current() (*corralpb.Pod, func(ns, name string) (*corralpb.ConfigMap, bool), bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pod, w.configMaps, w.stopping
}

func (w *podWorker) run(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		case <-t.C:
		}
		pod, cms, stopping := w.current()
		if stopping {
			if w.terminate(ctx, pod) {
				return
			}
			t.Reset(2 * time.Second)
			continue
		}
		next := w.sync(ctx, pod, cms)
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(next)
	}
}

func (w *podWorker) event(pod *corralpb.Pod, typ, reason, msg string) {
	if w.m.cfg.Events != nil && pod != nil {
		w.m.cfg.Events.Event(api.Wrap(pod), typ, reason, msg)
	}
}

// eventOnce records an event at most once per period for one key, so a
// repeating condition (back-off, pull failure) does not flood.
func (w *podWorker) eventOnce(pod *corralpb.Pod, key string, every time.Duration, typ, reason, msg string) {
	if last, ok := w.lastEvent[key]; ok && time.Since(last) < every {
		return
	}
	w.lastEvent[key] = time.Now()
	w.event(pod, typ, reason, msg)
}

// sync is one pass over the pod; it returns when to look again.
func (w *podWorker) sync(ctx context.Context, pod *corralpb.Pod, cms func(ns, name string) (*corralpb.ConfigMap, bool)) time.Duration {
	period := w.m.cfg.SyncPeriod
	if w.startTime.IsZero() {
		w.startTime = time.Now()
	}
	if !w.cleared {
		if names := w.m.blockers(pod); len(names) > 0 {
			w.report(ctx, pod, "ContainerCreating", "waiting for "+strings.Join(names, ", ")+" to terminate")
			return period // or sooner: the manager wakes waiting workers as pods go
		}
		w.cleared = true
	}
	t0 := time.Now()
	if err := w.ensureSandbox(ctx, pod); err != nil {
		w.eventOnce(pod, "sandbox", time.Minute, "Warning", "FailedCreatePodSandBox", fmt.Sprintf("Failed to create pod sandbox: %v", err))
		w.report(ctx, pod, "ContainerCreating", err.Error())
		return 5 * time.Second
	}
	if err := w.m.cfg.Volumes.Setup(ctx, pod, cms); err != nil {
		w.eventOnce(pod, "mount", time.Minute, "Warning", "FailedMount", mountMessage(err))
		w.report(ctx, pod, "ContainerCreating", err.Error())
		return 5 * time.Second
	}
	t1 := time.Now()
	attempts, err := w.m.containersOf(ctx, w.uid)
	if err != nil {
		w.m.log.Warn("read containers", "pod", pod.GetMetadata().GetName(), "err", err)
		return period
	}
	w.m.log.Debug("pod sync", "pod", pod.GetMetadata().GetName(), "sandbox_and_volumes", t1.Sub(t0), "read_containers", time.Since(t1))
	next := period * 5
	for _, c := range pod.GetSpec().GetContainers() {
		if d := w.syncContainer(ctx, pod, cms, c, attempts[c.GetName()]); d > 0 && d < next {
			next = d
		}
	}
	w.report(ctx, pod, "", "")
	return min(next, period)
}

func mountMessage(err error) string {
	var se *volume.SetupError
	if errors.As(err, &se) {
		return fmt.Sprintf("MountVolume.SetUp failed for volume %q : %v", se.Volume, se.Err)
	}
	return fmt.Sprintf("MountVolume.SetUp failed: %v", err)
}

func (w *podWorker) ensureSandbox(ctx context.Context, pod *corralpb.Pod) error {
	spec := pod.GetSpec()
	sysctls := map[string]string{}
	for _, s := range spec.GetSecurityContext().GetSysctls() {
		sysctls[s.GetName()] = s.GetValue()
	}
	sb, err := w.m.cfg.Runtime.EnsureSandbox(ctx, runtime.SandboxConfig{
		PodUID: w.uid, Namespace: pod.GetMetadata().GetNamespace(), Name: pod.GetMetadata().GetName(),
		Hostname: spec.GetHostname(), HostNetwork: spec.GetHostNetwork(), HostPID: spec.GetHostPid(),
		HostIPC: spec.GetHostIpc(), Sysctls: sysctls,
	})
	if err != nil {
		return err
	}
	w.sandbox = sb
	return w.attachNetwork(ctx, pod, sb)
}

// attachNetwork connects the sandbox to the pod network, once per sandbox.
// A sandbox made just now has an empty network namespace: whatever the
// network recorded for the pod before (an agent crash, a reboot) goes
// first.
func (w *podWorker) attachNetwork(ctx context.Context, pod *corralpb.Pod, sb *runtime.Sandbox) error {
	nw := w.m.cfg.Network
	if nw == nil || pod.GetSpec().GetHostNetwork() || (w.netIP != "" && w.attachedTo.Equal(sb.Created)) {
		return nil
	}
	if sb.Fresh {
		if err := nw.Detach(ctx, w.uid); err != nil {
			return fmt.Errorf("detach the pod's previous network: %w", err)
		}
	}
	ip, err := nw.Attach(ctx, network.Attachment{PodUID: w.uid, Namespace: pod.GetMetadata().GetNamespace(),
		Name: pod.GetMetadata().GetName(), NetNSPath: sb.NetNSPath, Ports: portMappings(pod)})
	if err != nil {
		return fmt.Errorf("set up the pod network: %w", err)
	}
	w.netIP, w.attachedTo = ip.String(), sb.Created
	return nil
}

// portMappings are the pod's hostPorts.
func portMappings(pod *corralpb.Pod) []network.PortMapping {
	var out []network.PortMapping
	for _, c := range pod.GetSpec().GetContainers() {
		for _, p := range c.GetPorts() {
			if p.GetHostPort() <= 0 || p.GetHostPort() > 65535 {
				continue
			}
			m := network.PortMapping{HostPort: uint16(p.GetHostPort()), ContainerPort: uint16(p.GetContainerPort()), Protocol: p.GetProtocol()}
			if m.Protocol == "" {
				m.Protocol = "TCP"
			}
			if ip, err := netip.ParseAddr(p.GetHostIp()); err == nil && !ip.IsUnspecified() {
				m.HostIP = ip
			}
			out = append(out, m)
		}
	}
	return out
}
