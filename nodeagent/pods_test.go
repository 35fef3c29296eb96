package nodeagent

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/corral-dev/corral/nodeagent/image"
	"github.com/corral-dev/corral/nodeagent/runtime"
	"github.com/corral-dev/corral/nodeagent/volume"
	corralpb "github.com/corral-dev/corral/proto"
)

// fakeRuntime keeps containers and sandboxes in memory; tests end
// containers with exit.
type fakeRuntime struct {
	mu         sync.Mutex
	containers map[string]*runtime.ContainerStatus
	sandboxes  map[string]*runtime.Sandbox
	created    int
	// stopGate, when set, holds every StopContainer until it is closed: a
	// container slow to honour SIGTERM.
	stopGate chan struct{}
}

var _ ContainerRuntime = (*fakeRuntime)(nil)
var _ ContainerRuntime = (*runtime.Runtime)(nil)

func newFakeRuntime() *fakeRuntime {
	return &fakeRuntime{containers: map[string]*runtime.ContainerStatus{}, sandboxes: map[string]*runtime.Sandbox{}}
}

func (f *fakeRuntime) EnsureSandbox(_ context.Context, cfg runtime.SandboxConfig) (*runtime.Sandbox, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if sb, ok := f.sandboxes[cfg.PodUID]; ok {
		return sb, nil
	}
	sb := &runtime.Sandbox{PodUID: cfg.PodUID, NetNSPath: "/run/netns/" + cfg.PodUID}
	f.sandboxes[cfg.PodUID] = sb
	return sb, nil
}

func (f *fakeRuntime) RemoveSandbox(_ context.Context, uid string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.containers {
		if c.PodUID == uid {
			return runtime.ErrSandboxBusy
		}
	}
	delete(f.sandboxes, uid)
	return nil
}

func (f *fakeRuntime) ListSandboxes(context.Context) ([]*runtime.Sandbox, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*runtime.Sandbox
	for _, sb := range f.sandboxes {
		out = append(out, sb)
	}
	return out, nil
}

func (f *fakeRuntime) CreateContainer(_ context.Context, _ *runtime.Sandbox, c *runtime.ContainerConfig) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := runtime.ContainerID(c.PodUID, c.Name, c.Attempt)
	if _, ok := f.containers[id]; ok {
		return "", fmt.Errorf("container %s exists", id)
	}
	f.containers[id] = &runtime.ContainerStatus{ID: id, PodUID: c.PodUID, Name: c.Name, Attempt: c.Attempt, State: runtime.StateCreated, Image: c.Image}
	f.created++
	return id, nil
}

func (f *fakeRuntime) StartContainer(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		return runtime.ErrNotFound
	}
	c.State, c.StartedAt = runtime.StateRunning, time.Now()
	return nil
}

func (f *fakeRuntime) StopContainer(_ context.Context, id string, _ time.Duration) error {
	f.mu.Lock()
	gate := f.stopGate
	f.mu.Unlock()
	if gate != nil {
		<-gate
	}
	f.exit(id, 137)
	return nil
}

func (f *fakeRuntime) RemoveContainer(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.containers, id)
	return nil
}

func (f *fakeRuntime) ListContainers(context.Context) ([]*runtime.ContainerStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*runtime.ContainerStatus
	for _, c := range f.containers {
		cp := *c
		out = append(out, &cp)
	}
	return out, nil
}

func (f *fakeRuntime) ListPodContainers(ctx context.Context, uid string) ([]*runtime.ContainerStatus, error) {
	all, _ := f.ListContainers(ctx)
	var out []*runtime.ContainerStatus
	for _, c := range all {
		if c.PodUID == uid {
			out = append(out, c)
		}
	}
	return out, nil
}

func (f *fakeRuntime) Exec(context.Context, string, []string, io.Reader, io.Writer, io.Writer, bool) (int, error) {
	return 0, nil
}

func (f *fakeRuntime) exit(id string, code int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.containers[id]; ok && c.State == runtime.StateRunning {
		c.State, c.ExitCode, c.FinishedAt, c.Reason = runtime.StateExited, code, time.Now(), "Error"
	}
}

func (f *fakeRuntime) state(id string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.containers[id]; ok {
		return c.State
	}
	return ""
}

func (f *fakeRuntime) count() (containers, sandboxes, created int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.containers), len(f.sandboxes), f.created
}

type fakeImages struct{}

func (fakeImages) Pull(_ context.Context, ref, _ string, _ *image.Auth) (*image.Image, bool, int64, error) {
	return &image.Image{ID: "sha256:" + ref, Config: image.Config{Entrypoint: []string{"/serve"}}}, false, 0, nil
}
func (fakeImages) Mount(_ context.Context, id string, _ *image.Image) (string, error) {
	return "/rootfs/" + id, nil
}
func (fakeImages) RemoveContainerFS(string) error { return nil }

type fakeVolumes struct{}

func (fakeVolumes) Setup(context.Context, *corralpb.Pod, volume.ConfigMapGetter) error { return nil }
func (fakeVolumes) Mounts(*corralpb.Pod, *corralpb.Container) ([]volume.Mount, error) {
	return nil, nil
}
func (fakeVolumes) TearDown(context.Context, string) error { return nil }

// sink keeps the last status reported per pod.
type sink struct {
	mu    sync.Mutex
	last  map[string]*corralpb.PodStatus // by pod name
	byUID map[string]*corralpb.PodStatus
}

func (s *sink) Report(pod *corralpb.Pod, st *corralpb.PodStatus) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last[pod.GetMetadata().GetName()] = st
	if s.byUID == nil {
		s.byUID = map[string]*corralpb.PodStatus{}
	}
	s.byUID[pod.GetMetadata().GetUid()] = st
}

// lastOf is the last status reported for the pod with uid.
func (s *sink) lastOf(uid string) *corralpb.PodStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byUID[uid]
}

func (s *sink) get(name string) *corralpb.PodStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last[name]
}

func testPod(name, uid string) *corralpb.Pod {
	return &corralpb.Pod{
		Metadata: &corralpb.ObjectMeta{Name: name, Namespace: "default", Uid: uid},
		Spec: &corralpb.PodSpec{RestartPolicy: "Always", NodeName: "n1",
			Containers: []*corralpb.Container{{Name: "app", Image: "app:1"}}},
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func newTestManager(rt *fakeRuntime, s *sink) *PodManager {
	return NewPodManager(PodManagerConfig{NodeName: "n1", NodeIP: "10.0.0.1", Runtime: rt, Images: fakeImages{},
		Volumes: fakeVolumes{}, Reporter: s, SyncPeriod: 10 * time.Millisecond})
}

func TestPodManagerRunsRestartsAndRemovesPods(t *testing.T) {
	rt, s := newFakeRuntime(), &sink{last: map[string]*corralpb.PodStatus{}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := newTestManager(rt, s)
	pods := map[string]*corralpb.Pod{"default/web": testPod("web", "u1")}
	m.Sync(ctx, pods, nil)
	id0 := runtime.ContainerID("u1", "app", 0)
	waitUntil(t, "attempt 0 running and reported", func() bool {
		st := s.get("web")
		return rt.state(id0) == runtime.StateRunning && st.GetPhase() == "Running" && st.GetConditions()[3].GetStatus() == "True"
	})
	// First crash: restarted at once.
	rt.exit(id0, 1)
	id1 := runtime.ContainerID("u1", "app", 1)
	waitUntil(t, "attempt 1 running", func() bool { return rt.state(id1) == runtime.StateRunning })
	// Second crash: the 10 s back-off holds it in CrashLoopBackOff.
	rt.exit(id1, 1)
	waitUntil(t, "CrashLoopBackOff reported", func() bool {
		cs := s.get("web").GetContainerStatuses()
		return len(cs) == 1 && cs[0].GetState().GetWaiting().GetReason() == "CrashLoopBackOff" && cs[0].GetRestartCount() == 1 &&
			cs[0].GetLastState().GetTerminated().GetExitCode() == 1
	})
	if rt.state(runtime.ContainerID("u1", "app", 2)) != "" {
		t.Fatal("restarted inside the back-off")
	}
	// The pod goes away: everything is removed.
	m.Sync(ctx, map[string]*corralpb.Pod{}, nil)
	waitUntil(t, "pod cleaned up", func() bool { c, sb, _ := rt.count(); return c == 0 && sb == 0 })
}

func TestPodManagerAdoptsRunningAndCleansOrphans(t *testing.T) {
	rt, s := newFakeRuntime(), &sink{last: map[string]*corralpb.PodStatus{}}
	ctx, cancel := context.WithCancel(context.Background())
	m := newTestManager(rt, s)
	pods := map[string]*corralpb.Pod{"default/web": testPod("web", "u1"), "default/gone": testPod("gone", "u2")}
	m.Sync(ctx, pods, nil)
	waitUntil(t, "both running", func() bool {
		return rt.state(runtime.ContainerID("u1", "app", 0)) == runtime.StateRunning &&
			rt.state(runtime.ContainerID("u2", "app", 0)) == runtime.StateRunning
	})
	cancel() // the agent dies
	m.Wait()
	_, _, createdBefore := rt.count()
	// A new agent: "gone" was deleted meanwhile; "web" keeps running untouched.
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	m2 := newTestManager(rt, s)
	m2.Sync(ctx2, map[string]*corralpb.Pod{"default/web": testPod("web", "u1")}, nil)
	waitUntil(t, "orphan removed", func() bool {
		return rt.state(runtime.ContainerID("u2", "app", 0)) == ""
	})
	waitUntil(t, "web reported running", func() bool { return s.get("web").GetPhase() == "Running" })
	if _, _, created := rt.count(); created != createdBefore || rt.state(runtime.ContainerID("u1", "app", 0)) != runtime.StateRunning {
		t.Fatalf("re-adoption created containers (%d → %d) or disturbed the running one", createdBefore, created)
	}
}

func TestPodManagerRejectsHostPortConflicts(t *testing.T) {
	rt, s := newFakeRuntime(), &sink{last: map[string]*corralpb.PodStatus{}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := newTestManager(rt, s)
	withPort := func(name, uid string) *corralpb.Pod {
		p := testPod(name, uid)
		p.Spec.Containers[0].Ports = []*corralpb.ContainerPort{{ContainerPort: 9100, HostPort: 9100}}
		return p
	}
	m.Sync(ctx, map[string]*corralpb.Pod{"default/first": withPort("first", "u1")}, nil)
	waitUntil(t, "first running", func() bool { return rt.state(runtime.ContainerID("u1", "app", 0)) == runtime.StateRunning })
	m.Sync(ctx, map[string]*corralpb.Pod{"default/first": withPort("first", "u1"), "default/second": withPort("second", "u2")}, nil)
	waitUntil(t, "second rejected", func() bool {
		st := s.get("second")
		return st.GetPhase() == "Failed" && st.GetReason() == "NodePorts"
	})
	if rt.state(runtime.ContainerID("u2", "app", 0)) != "" {
		t.Fatal("a rejected pod got a container")
	}
}

func TestWorkerWakesOnlyWhenItsPodOrConfigMapsChange(t *testing.T) {
	cm := &corralpb.ConfigMap{Metadata: &corralpb.ObjectMeta{Name: "conf", Namespace: "default", ResourceVersion: "5"}}
	cms := func(ns, name string) (*corralpb.ConfigMap, bool) {
		if ns == "default" && name == "conf" {
			return cm, true
		}
		return nil, false
	}
	pod := testPod("web", "u1")
	pod.Spec.Volumes = []*corralpb.Volume{{Name: "c", ConfigMap: &corralpb.ConfigMapVolumeSource{Name: "conf"}}}
	w := newPodWorker(nil, "u1", nil, nil)
	woken := func() bool {
		select {
		case <-w.wake:
			return true
		default:
			return false
		}
	}
	w.update(pod, cms)
	if !woken() {
		t.Fatal("the first version of the pod did not wake the worker")
	}
	w.update(proto.Clone(pod).(*corralpb.Pod), cms)
	if woken() {
		t.Fatal("the same pod again woke the worker")
	}
	changed := proto.Clone(pod).(*corralpb.Pod)
	changed.Metadata.Labels = map[string]string{"rev": "2"}
	w.update(changed, cms)
	if !woken() {
		t.Fatal("a changed pod did not wake the worker")
	}
	cm = &corralpb.ConfigMap{Metadata: &corralpb.ObjectMeta{Name: "conf", Namespace: "default", ResourceVersion: "9"}}
	w.update(changed, cms)
	if !woken() {
		t.Fatal("a changed ConfigMap the pod mounts did not wake the worker")
	}
	w.update(changed, cms)
	if woken() {
		t.Fatal("nothing changed, yet the worker woke")
	}
}

// A DaemonSet's new pod on a node starts only once its old pod has
// terminated, and a pod waits for a terminating pod holding its host port:
// the API forgets a deleted pod at once, the node does not.
func TestNewPodWaitsForTerminatingPredecessor(t *testing.T) {
	for _, tc := range []struct {
		name     string
		old, new func(*corralpb.Pod)
	}{
		{"same DaemonSet", ownedBy("ds-1"), ownedBy("ds-1")},
		{"same host port", withHostPort(9100), withHostPort(9100)},
		{"same name", func(*corralpb.Pod) {}, func(p *corralpb.Pod) { p.Metadata.Name = "old" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt, s := newFakeRuntime(), &sink{last: map[string]*corralpb.PodStatus{}}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			m := newTestManager(rt, s)
			old, next := testPod("old", "u1"), testPod("new", "u2")
			tc.old(old)
			tc.new(next)
			m.Sync(ctx, map[string]*corralpb.Pod{"default/old": old}, nil)
			waitUntil(t, "old running", func() bool { return rt.state(runtime.ContainerID("u1", "app", 0)) == runtime.StateRunning })
			gate := make(chan struct{})
			var release sync.Once
			t.Cleanup(func() { release.Do(func() { close(gate) }) }) // even when the test fails
			rt.mu.Lock()
			rt.stopGate = gate
			rt.mu.Unlock()
			m.Sync(ctx, map[string]*corralpb.Pod{"default/" + next.Metadata.Name: next}, nil)
			waitUntil(t, "new pod reported waiting for the old one", func() bool {
				cs := s.lastOf("u2").GetContainerStatuses()
				return len(cs) == 1 && strings.Contains(cs[0].GetState().GetWaiting().GetMessage(), "waiting for default/old to terminate")
			})
			if st := rt.state(runtime.ContainerID("u2", "app", 0)); st != "" {
				t.Fatalf("the new pod's container is %s while the old pod still terminates", st)
			}
			release.Do(func() { close(gate) })
			waitUntil(t, "new running once old is gone", func() bool {
				return rt.state(runtime.ContainerID("u2", "app", 0)) == runtime.StateRunning && rt.state(runtime.ContainerID("u1", "app", 0)) == ""
			})
		})
	}
	// Unrelated pods do not wait.
	rt, s := newFakeRuntime(), &sink{last: map[string]*corralpb.PodStatus{}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := newTestManager(rt, s)
	m.Sync(ctx, map[string]*corralpb.Pod{"default/a": testPod("a", "u1")}, nil)
	waitUntil(t, "a running", func() bool { return rt.state(runtime.ContainerID("u1", "app", 0)) == runtime.StateRunning })
	gate := make(chan struct{})
	defer close(gate)
	rt.mu.Lock()
	rt.stopGate = gate
	rt.mu.Unlock()
	m.Sync(ctx, map[string]*corralpb.Pod{"default/b": testPod("b", "u2")}, nil)
	waitUntil(t, "b running beside the terminating a", func() bool { return rt.state(runtime.ContainerID("u2", "app", 0)) == runtime.StateRunning })
}

func ownedBy(uid string) func(*corralpb.Pod) {
	return func(p *corralpb.Pod) {
		p.Metadata.OwnerReferences = []*corralpb.OwnerReference{{Kind: "DaemonSet", Name: "ds", Uid: uid, Controller: proto.Bool(true)}}
	}
}

func withHostPort(port int32) func(*corralpb.Pod) {
	return func(p *corralpb.Pod) {
		p.Spec.Containers[0].Ports = []*corralpb.ContainerPort{{ContainerPort: port, HostPort: port}}
	}
}
