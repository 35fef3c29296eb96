package nodeagent

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"

	"github.com/corral-dev/corral/nodeagent/probe"
	"github.com/corral-dev/corral/nodeagent/runtime"
	corralpb "github.com/corral-dev/corral/proto"
)

var _ Containers = (*PodManager)(nil)

// pod returns the pod a worker runs under namespace/name.
func (m *PodManager) pod(namespace, name string) (*corralpb.Pod, *podWorker, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	uid, ok := m.byName[podKey(namespace, name)]
	if !ok {
		return nil, nil, ErrPodNotFound
	}
	w := m.workers[uid]
	if w == nil {
		return nil, nil, ErrPodNotFound
	}
	pod, _, stopping := w.current()
	if pod == nil || stopping {
		return nil, nil, ErrPodNotFound
	}
	return pod, w, nil
}

// attempt returns a container's current attempt, or the one before it.
func (m *PodManager) attempt(ctx context.Context, namespace, pod, container string, previous bool) (*runtime.ContainerStatus, error) {
	p, w, err := m.pod(namespace, pod)
	if err != nil {
		return nil, err
	}
	found := false
	for _, c := range p.GetSpec().GetContainers() {
		found = found || c.GetName() == container
	}
	if !found {
		return nil, ErrContainerNotFound
	}
	attempts, err := m.containersOf(ctx, w.uid)
	if err != nil {
		return nil, err
	}
	list := attempts[container]
	switch {
	case previous && len(list) < 2:
		return nil, ErrNoPreviousContainer
	case previous:
		return list[1], nil
	case len(list) == 0:
		return nil, &WaitingError{Reason: "ContainerCreating"}
	}
	return list[0], nil
}

// LogDir implements Containers.
func (m *PodManager) LogDir(namespace, pod, container string, previous bool) (string, error) {
	a, err := m.attempt(context.Background(), namespace, pod, container, previous)
	if err != nil {
		return "", err
	}
	return a.LogDir, nil
}

// Exec implements Containers.
func (m *PodManager) Exec(ctx context.Context, namespace, pod, container string, cmd []string, stdin io.Reader, stdout, stderr io.Writer, tty bool) (int, error) {
	a, err := m.attempt(ctx, namespace, pod, container, false)
	if err != nil {
		return 0, err
	}
	if a.State != runtime.StateRunning {
		return 0, fmt.Errorf("container %s is not running", container)
	}
	return m.cfg.Runtime.Exec(ctx, a.ID, cmd, stdin, stdout, stderr, tty)
}

// DefaultContainer implements Containers.
func (m *PodManager) DefaultContainer(namespace, pod string) (string, error) {
	p, _, err := m.pod(namespace, pod)
	if err != nil {
		return "", err
	}
	cs := p.GetSpec().GetContainers()
	if len(cs) == 1 {
		return cs[0].GetName(), nil
	}
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = c.GetName()
	}
	return "", fmt.Errorf("a container name must be specified for pod %s, choose one of: [%s]", pod, strings.Join(names, " "))
}

// DialPod implements Containers: a TCP connection to the pod's loopback
// at port, made from inside the pod's network namespace, as the kubelet's
// port-forward does, so that a port bound to 127.0.0.1 in the pod is
// reached too. A hostNetwork pod shares the node's namespace.
func (m *PodManager) DialPod(ctx context.Context, namespace, name string, port int) (net.Conn, error) {
	p, _, err := m.pod(namespace, name)
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if p.GetSpec().GetHostNetwork() {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
	sbs, err := m.cfg.Runtime.ListSandboxes(ctx)
	if err != nil {
		return nil, err
	}
	for _, sb := range sbs {
		if sb.PodUID == p.GetMetadata().GetUid() && sb.NetNSPath != "" {
			d := &probe.NetNSDialer{Path: sb.NetNSPath}
			return d.DialContext(ctx, "tcp", addr)
		}
	}
	return nil, fmt.Errorf("pod %s/%s has no network namespace yet", namespace, name)
}
