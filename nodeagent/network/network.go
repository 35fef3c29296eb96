package network

import (
	"context"
	"errors"
	"net/netip"
)

// Network connects pods' network namespaces to the node and the cluster.
// Bridge is the built-in implementation; the interface is the seam where a
// CNI plugin can be put instead.
//
// Every method is idempotent and safe for concurrent use. What Attach sets
// up is recorded on disk before it is made, so that Detach and Reconcile
// undo it also after the agent crashed or the machine rebooted.
type Network interface {
	// Init readies the node for pods in podCIDR (its bridge with the
	// gateway address, forwarding, masquerade, the hostPort rules). It is
	// called once before the first Attach and again on every agent start.
	// A different podCIDR than the one recorded is refused while pods are
	// still attached (ErrCIDRChanged).
	Init(ctx context.Context, podCIDR netip.Prefix) error
	// Attach connects the pod's network namespace (a veth pair into the
	// bridge, an address from the node's CIDR, a default route via the
	// gateway) and installs its hostPort mappings. Attaching an attached pod
	// returns its address and changes nothing. A hostPort another pod holds
	// fails with ErrPortConflict and leaves nothing behind.
	Attach(ctx context.Context, a Attachment) (netip.Addr, error)
	// Detach removes the pod's veth, hostPort mappings and releases its
	// address. The namespace may already be gone. Detaching an unknown pod
	// is not an error.
	Detach(ctx context.Context, podUID string) error
	// SetPeers makes the routes to other nodes' pod CIDRs exactly these
	// (host-gw: each CIDR via the node's address); routes of peers no
	// longer listed go.
	SetPeers(ctx context.Context, peers []Peer) error
	// Reconcile detaches every recorded pod not in keep (after an agent
	// crash, pods may have gone while nobody was watching).
	Reconcile(ctx context.Context, keep map[string]bool) error
	// Destroy removes everything Init and Attach made on the node: links,
	// addresses, routes, nftables table, records. For uninstalling and
	// tests; pods lose their network.
	Destroy(ctx context.Context) error
}

// Attachment is what Attach needs to know about a pod.
type Attachment struct {
	PodUID    string
	Namespace string // the pod's namespace and name, for messages
	Name      string
	NetNSPath string // the pod's network namespace, e.g. /run/netns/corral-...
	Ports     []PortMapping
}

// PortMapping maps a port of the node (hostPort) to the pod (containerPort).
type PortMapping struct {
	HostPort      uint16
	ContainerPort uint16
	Protocol      string     // "TCP", "UDP" or "SCTP"
	HostIP        netip.Addr // zero: every address of the node
}

// Peer is another node whose pod CIDR is reachable through its address.
type Peer struct {
	Name    string
	PodCIDR netip.Prefix
	NodeIP  netip.Addr
}

// Errors.
var (
	ErrPortConflict = errors.New("host port is already allocated")
	ErrExhausted    = errors.New("no free address in the pod CIDR")
	ErrCIDRChanged  = errors.New("pod CIDR differs from the one pods are attached with")
	ErrNotReady     = errors.New("network not initialised: the node has no pod CIDR yet")
)
