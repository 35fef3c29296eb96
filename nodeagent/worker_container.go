package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/corral-dev/corral/nodeagent/image"
	"github.com/corral-dev/corral/nodeagent/runtime"
	"github.com/corral-dev/corral/nodeagent/runtime/containerinit"
	corralpb "github.com/corral-dev/corral/proto"
)

// Container log rotation, as the kubelet's defaults.
const (
	logMaxSize  = 10 << 20
	logMaxFiles = 5
)

// syncContainer advances one container by one step; it returns how soon
// the worker should look again (0: the normal period).
func (w *podWorker) syncContainer(ctx context.Context, pod *corralpb.Pod, cms func(ns, name string) (*corralpb.ConfigMap, bool),
	c *corralpb.Container, attempts []*runtime.ContainerStatus) time.Duration {
	name := c.GetName()
	var cur *runtime.ContainerStatus
	if len(attempts) > 0 {
		cur = attempts[0]
	}
	probeFailed, why := false, ""
	if cur != nil && cur.State == runtime.StateRunning && w.m.cfg.Probes != nil {
		probeFailed, why = w.m.cfg.Probes.Failed(cur.ID)
	}
	now := time.Now()
	st, until := decide(pod.GetSpec().GetRestartPolicy(), cur, probeFailed, w.backOff[name], now)
	switch st {
	case stepNone:
		delete(w.waiting, name)
	case stepStartCreated:
		w.startCreated(ctx, pod, c, cur)
	case stepKill:
		w.event(pod, "Normal", "Killing", fmt.Sprintf("Container %s %s, will be restarted", name, why))
		w.stopContainer(ctx, pod, cur)
		return time.Millisecond
	case stepBackOff:
		msg := fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", w.backOff[name].delay, name,
			pod.GetMetadata().GetName(), pod.GetMetadata().GetNamespace(), w.uid)
		w.waiting[name] = [2]string{"CrashLoopBackOff", msg}
		w.eventOnce(pod, "backoff/"+name, 30*time.Second, "Warning", "BackOff",
			fmt.Sprintf("Back-off restarting failed container %s in pod %s_%s(%s)", name, pod.GetMetadata().GetName(), pod.GetMetadata().GetNamespace(), w.uid))
		return time.Until(until)
	case stepReplace:
		w.removeAttempt(ctx, cur)
		return w.startNext(ctx, pod, cms, c, cur, attempts)
	case stepStart:
		return w.startNext(ctx, pod, cms, c, cur, attempts)
	}
	return 0
}

// startNext starts attempt cur.Attempt+1 (or 0), keeping only cur as the
// previous attempt (for logs --previous and lastState).
func (w *podWorker) startNext(ctx context.Context, pod *corralpb.Pod, cms func(ns, name string) (*corralpb.ConfigMap, bool),
	c *corralpb.Container, cur *runtime.ContainerStatus, attempts []*runtime.ContainerStatus) time.Duration {
	name := c.GetName()
	attempt := 0
	if cur != nil {
		attempt = cur.Attempt + 1
		if cur.State == runtime.StateExited {
			w.backOff[name] = nextBackOff(w.backOff[name], cur.StartedAt, cur.FinishedAt)
		}
		for _, old := range attempts[1:] {
			w.removeAttempt(ctx, old)
		}
	}
	t0 := time.Now()
	img, wait := w.pull(ctx, pod, c)
	if img == nil {
		return wait
	}
	t1 := time.Now()
	id := runtime.ContainerID(w.uid, name, attempt)
	rootfs, err := w.m.cfg.Images.Mount(ctx, id, img)
	if err != nil {
		w.failCreate(pod, name, err)
		return 5 * time.Second
	}
	t2 := time.Now()
	cfg, err := w.containerConfig(pod, cms, c, img, attempt, rootfs)
	if err != nil {
		_ = w.m.cfg.Images.RemoveContainerFS(id)
		w.waiting[name] = [2]string{"CreateContainerConfigError", err.Error()}
		w.eventOnce(pod, "config/"+name, time.Minute, "Warning", "Failed", "Error: "+err.Error())
		return 5 * time.Second
	}
	if _, err = w.m.cfg.Runtime.CreateContainer(ctx, w.sandbox, cfg); err != nil {
		w.failCreate(pod, name, err)
		_ = w.m.cfg.Images.RemoveContainerFS(id)
		return 5 * time.Second
	}
	t3 := time.Now()
	w.event(pod, "Normal", "Created", "Created container "+name)
	if err := w.m.cfg.Runtime.StartContainer(ctx, id); err != nil {
		w.waiting[name] = [2]string{"RunContainerError", err.Error()}
		w.event(pod, "Warning", "Failed", "Error: "+err.Error())
		return time.Second
	}
	w.event(pod, "Normal", "Started", "Started container "+name)
	w.m.log.Debug("container started", "pod", pod.GetMetadata().GetName(), "container", name, "attempt", attempt,
		"pull", t1.Sub(t0), "mount", t2.Sub(t1), "config_create", t3.Sub(t2), "start", time.Since(t3))
	delete(w.waiting, name)
	w.watchProbes(pod, c, id)
	return time.Second
}

func (w *podWorker) failCreate(pod *corralpb.Pod, name string, err error) {
	w.waiting[name] = [2]string{"CreateContainerError", err.Error()}
	w.eventOnce(pod, "create/"+name, time.Minute, "Warning", "Failed", "Error: "+err.Error())
}

func (w *podWorker) startCreated(ctx context.Context, pod *corralpb.Pod, c *corralpb.Container, cur *runtime.ContainerStatus) {
	if err := w.m.cfg.Runtime.StartContainer(ctx, cur.ID); err != nil {
		w.waiting[c.GetName()] = [2]string{"RunContainerError", err.Error()}
		return
	}
	w.event(pod, "Normal", "Started", "Started container "+c.GetName())
	w.watchProbes(pod, c, cur.ID)
}

func (w *podWorker) watchProbes(pod *corralpb.Pod, c *corralpb.Container, id string) {
	if w.m.cfg.Probes == nil {
		return
	}
	netns := ""
	if w.sandbox != nil {
		netns = w.sandbox.NetNSPath
	}
	w.m.cfg.Probes.Watch(pod, c, id, w.podIP(pod), netns)
}

// pull gets the container's image, with the kubelet's events, and image
// pull back-off (10 s doubling to 5 min) after failures.
func (w *podWorker) pull(ctx context.Context, pod *corralpb.Pod, c *corralpb.Container) (*image.Image, time.Duration) {
	name, ref := c.GetName(), c.GetImage()
	if pb := w.pullBack[name]; time.Now().Before(pb.until) {
		w.waiting[name] = [2]string{"ImagePullBackOff", fmt.Sprintf("Back-off pulling image %q", ref)}
		w.eventOnce(pod, "pullbackoff/"+name, 30*time.Second, "Normal", "BackOff", fmt.Sprintf("Back-off pulling image %q", ref))
		return nil, time.Until(pb.until)
	}
	w.waiting[name] = [2]string{"ContainerCreating", ""}
	start := time.Now()
	img, pulled, size, err := w.m.cfg.Images.Pull(ctx, ref, c.GetImagePullPolicy(), nil)
	if err != nil {
		reason := image.ReasonErrImagePull
		var pe *image.PullError
		if errors.As(err, &pe) {
			reason = pe.Reason
		}
		w.waiting[name] = [2]string{reason, err.Error()}
		w.event(pod, "Warning", "Failed", fmt.Sprintf("Failed to pull image %q: %v", ref, err))
		w.event(pod, "Warning", "Failed", "Error: "+reason)
		pb := w.pullBack[name]
		pb.delay = min(max(pb.delay*2, 10*time.Second), 5*time.Minute)
		pb.until = time.Now().Add(pb.delay)
		w.pullBack[name] = pb
		return nil, pb.delay
	}
	delete(w.pullBack, name)
	if pulled {
		w.event(pod, "Normal", "Pulled", fmt.Sprintf("Successfully pulled image %q in %s. Image size: %d bytes.", ref, time.Since(start).Round(time.Millisecond), size))
	} else {
		w.event(pod, "Normal", "Pulled", fmt.Sprintf("Container image %q already present on machine", ref))
	}
	return img, 0
}

// containerConfig resolves one attempt's runtime configuration.
func (w *podWorker) containerConfig(pod *corralpb.Pod, cms func(ns, name string) (*corralpb.ConfigMap, bool),
	c *corralpb.Container, img *image.Image, attempt int, rootfs string) (*runtime.ContainerConfig, error) {
	env, vals, err := containerEnv(pod, c, img.Config, podEnv{nodeIP: w.m.cfg.NodeIP, podIP: w.podIP(pod),
		allocatable: w.m.cfg.Allocatable, configMaps: cms})
	if err != nil {
		return nil, err
	}
	args := resolveCommand(c, img.Config, vals)
	if len(args) == 0 {
		return nil, &configError{"no command specified"}
	}
	mounts, err := w.m.cfg.Volumes.Mounts(pod, c)
	if err != nil {
		return nil, err
	}
	sc := c.GetSecurityContext()
	seccomp, err := w.seccompProfile(pod, c)
	if err != nil {
		return nil, err
	}
	cfg := &runtime.ContainerConfig{
		PodUID: w.uid, Name: c.GetName(), Attempt: attempt, Image: c.GetImage(), ImageID: img.ID, RootFS: rootfs,
		Args: args, Env: env, WorkingDir: c.GetWorkingDir(),
		Privileged: sc.GetPrivileged(), CapAdd: sc.GetCapabilities().GetAdd(), CapDrop: sc.GetCapabilities().GetDrop(),
		ReadOnlyRootFS:  sc.GetReadOnlyRootFilesystem(),
		NoNewPrivileges: sc != nil && sc.AllowPrivilegeEscalation != nil && !sc.GetAllowPrivilegeEscalation(),
		Seccomp:         seccomp,
		Resources:       containerResources(c),
		TTY:             c.GetTty(), Stdin: c.GetStdin(),
		Log: containerinit.LogOptions{MaxSize: logMaxSize, MaxFiles: logMaxFiles},
	}
	if cfg.WorkingDir == "" {
		cfg.WorkingDir = img.Config.WorkingDir
	}
	for _, m := range mounts {
		cfg.Mounts = append(cfg.Mounts, runtime.Mount{Source: m.Source, Destination: m.Destination, ReadOnly: m.ReadOnly, Propagation: m.Propagation})
	}
	u, err := containerUser(pod, c, img.Config.User, rootfs)
	if err != nil {
		return nil, err
	}
	cfg.User = u
	return cfg, nil
}

// seccompProfile resolves a container's seccomp profile as the kubelet
// does: the container's securityContext, else the pod's, else the node's
// default (Unconfined, or RuntimeDefault with --seccomp-default). A
// Localhost profile is read from the node's seccomp directory.
func (w *podWorker) seccompProfile(pod *corralpb.Pod, c *corralpb.Container) (*runtime.SeccompProfile, error) {
	sp := c.GetSecurityContext().GetSeccompProfile()
	if sp == nil {
		sp = pod.GetSpec().GetSecurityContext().GetSeccompProfile()
	}
	switch {
	case sp == nil && w.m.cfg.SeccompDefault:
		return &runtime.SeccompProfile{Type: runtime.SeccompRuntimeDefault}, nil
	case sp == nil || sp.GetType() == runtime.SeccompUnconfined:
		return nil, nil
	case sp.GetType() != runtime.SeccompLocalhost:
		return &runtime.SeccompProfile{Type: sp.GetType()}, nil
	}
	rel := sp.GetLocalhostProfile()
	if w.m.cfg.SeccompDir == "" || rel == "" || filepath.IsAbs(rel) || slices.Contains(strings.Split(rel, "/"), "..") {
		return nil, &configError{fmt.Sprintf("seccomp profile %q: must be a path under the node's seccomp directory", rel)}
	}
	path := filepath.Join(w.m.cfg.SeccompDir, rel)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &configError{fmt.Sprintf("failed to load seccomp profile %q: %v", path, err)}
	}
	return &runtime.SeccompProfile{Type: runtime.SeccompLocalhost, Localhost: data, Name: path}, nil
}

// podIP is where the pod answers: the node's address with hostNetwork,
// else its address on the pod network ("" before it is attached, or with
// no pod network).
func (w *podWorker) podIP(pod *corralpb.Pod) string {
	if pod.GetSpec().GetHostNetwork() {
		return w.m.cfg.NodeIP
	}
	return w.netIP
}

func (w *podWorker) stopContainer(ctx context.Context, pod *corralpb.Pod, cs *runtime.ContainerStatus) {
	grace := 30 * time.Second
	if pod != nil && pod.GetSpec().TerminationGracePeriodSeconds != nil {
		grace = time.Duration(pod.GetSpec().GetTerminationGracePeriodSeconds()) * time.Second
	}
	if err := w.m.cfg.Runtime.StopContainer(ctx, cs.ID, grace); err != nil {
		w.m.log.Warn("stop container", "container", cs.ID, "err", err)
	}
}

func (w *podWorker) removeAttempt(ctx context.Context, cs *runtime.ContainerStatus) {
	if w.m.cfg.Probes != nil {
		w.m.cfg.Probes.Forget(cs.ID)
	}
	if err := w.m.cfg.Runtime.RemoveContainer(ctx, cs.ID); err != nil && !errors.Is(err, runtime.ErrNotFound) {
		w.m.log.Warn("remove container", "container", cs.ID, "err", err)
		return
	}
	if err := w.m.cfg.Images.RemoveContainerFS(cs.ID); err != nil {
		w.m.log.Warn("remove container filesystem", "container", cs.ID, "err", err)
	}
}
