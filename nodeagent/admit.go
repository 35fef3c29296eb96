package nodeagent

import (
	"fmt"
	"sort"

	corralpb "github.com/corral-dev/corral/proto"
)

// Host port admission, as the kubelet's NodePorts admission check: a pod
// whose host ports are taken by a pod admitted before it is rejected for
// good (phase Failed), not retried.
const (
	reasonNodePorts  = "NodePorts"
	messageNodePorts = "Predicate NodePorts failed: node(s) didn't have free ports for the requested pod ports"
)

// hostPort is one (protocol, host IP, port) a pod binds on the node.
type hostPort struct {
	protocol, ip string
	port         int32
}

func hostPortsOf(pod *corralpb.Pod) []hostPort {
	var out []hostPort
	for _, cs := range [][]*corralpb.Container{pod.GetSpec().GetInitContainers(), pod.GetSpec().GetContainers()} {
		for _, c := range cs {
			for _, p := range c.GetPorts() {
				if p.GetHostPort() == 0 {
					continue
				}
				proto := p.GetProtocol()
				if proto == "" {
					proto = "TCP"
				}
				ip := p.GetHostIp()
				if ip == "" {
					ip = "0.0.0.0"
				}
				out = append(out, hostPort{protocol: proto, ip: ip, port: p.GetHostPort()})
			}
		}
	}
	return out
}

// conflicts reports whether two host ports collide: same protocol and port
// on the same address, or either on every address.
func (a hostPort) conflicts(b hostPort) bool {
	return a.protocol == b.protocol && a.port == b.port && (a.ip == b.ip || a.ip == "0.0.0.0" || b.ip == "0.0.0.0")
}

// portsCollide reports whether any of a's host ports conflicts with b's.
func portsCollide(a, b []hostPort) bool {
	for _, x := range a {
		for _, y := range b {
			if x.conflicts(y) {
				return true
			}
		}
	}
	return false
}

// admitPods splits pods into admitted and rejected: pods already running
// (admitted) keep their ports; the others are considered oldest first
// (creation time, then namespace/name), each rejected when one of its host
// ports collides with a port an admitted pod holds.
func admitPods(pods []*corralpb.Pod, running map[string]bool) (admitted, rejected []*corralpb.Pod) {
	sort.SliceStable(pods, func(i, j int) bool {
		ti, tj := pods[i].GetMetadata().GetCreationTimestamp().AsTime(), pods[j].GetMetadata().GetCreationTimestamp().AsTime()
		if !ti.Equal(tj) {
			return ti.Before(tj)
		}
		return podKey(pods[i].GetMetadata().GetNamespace(), pods[i].GetMetadata().GetName()) <
			podKey(pods[j].GetMetadata().GetNamespace(), pods[j].GetMetadata().GetName())
	})
	var held []hostPort
	take := func(p *corralpb.Pod) {
		admitted = append(admitted, p)
		held = append(held, hostPortsOf(p)...)
	}
	for _, p := range pods {
		if running[p.GetMetadata().GetUid()] {
			take(p)
		}
	}
	for _, p := range pods {
		if running[p.GetMetadata().GetUid()] {
			continue
		}
		free := true
		for _, want := range hostPortsOf(p) {
			for _, h := range held {
				free = free && !want.conflicts(h)
			}
		}
		if free {
			take(p)
		} else {
			rejected = append(rejected, p)
		}
	}
	return admitted, rejected
}

// rejectedStatus is the status of a pod the node refused.
func rejectedStatus(nodeIP string) *corralpb.PodStatus {
	return &corralpb.PodStatus{Phase: "Failed", Reason: reasonNodePorts, HostIp: nodeIP,
		Message: fmt.Sprintf("Pod was rejected: %s", messageNodePorts)}
}
