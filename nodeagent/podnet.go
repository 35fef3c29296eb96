package nodeagent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"sync"

	"github.com/corral-dev/corral/nodeagent/network"
	corralpb "github.com/corral-dev/corral/proto"
)

// PodNetwork is what pod workers need of the node's pod network.
type PodNetwork interface {
	Attach(ctx context.Context, a network.Attachment) (netip.Addr, error)
	Detach(ctx context.Context, podUID string) error
	Reconcile(ctx context.Context, keep map[string]bool) error
}

// PodNet drives the node's network.Network from the agent's session: the
// servers allocate the node's pod CIDR and name the cluster CIDR at
// registration, and the assignments stream carries the other nodes'
// routes. Both are saved (DATA_DIR/network.json), so that an agent that
// restarts with no server reachable still attaches and detaches pods.
//
//	no CIDR yet ──Configure──▶ ready ──Configure (same)──▶ ready
//	    │ Attach: ErrNotReady      │ Attach, Detach, SetRoutes
type PodNet struct {
	path   string
	newNet func(cluster netip.Prefix) (network.Network, error)
	log    *slog.Logger

	mu      sync.Mutex
	net     network.Network
	saved   savedNet
	applied []network.Peer // the peers last set, to skip unchanged sets
}

// savedNet is what network.json holds.
type savedNet struct {
	ClusterCIDR string `json:"clusterCIDR"`
	PodCIDR     string `json:"podCIDR"`
}

var _ PodNetwork = (*PodNet)(nil)

// NewPodNet loads the saved CIDRs at path, if any, and readies the network
// with them; newNet makes the network for a cluster CIDR.
func NewPodNet(ctx context.Context, path string, newNet func(cluster netip.Prefix) (network.Network, error), log *slog.Logger) (*PodNet, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &PodNet{path: path, newNet: newNet, log: log}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return p, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pod network: %w", err)
	}
	var s savedNet
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("pod network: %s is corrupt: %w", path, err)
	}
	if err := p.Configure(ctx, s.ClusterCIDR, s.PodCIDR); err != nil {
		return nil, err
	}
	return p, nil
}

// Configure readies the network for the node's pod CIDR inside the
// cluster CIDR (from the node's registration). It is cheap when nothing
// changed.
func (p *PodNet) Configure(ctx context.Context, clusterCIDR, podCIDR string) error {
	cluster, err := netip.ParsePrefix(clusterCIDR)
	if err != nil {
		return fmt.Errorf("pod network: cluster CIDR %q: %w", clusterCIDR, err)
	}
	pod, err := netip.ParsePrefix(podCIDR)
	if err != nil {
		return fmt.Errorf("pod network: node spec.podCIDR %q: %w", podCIDR, err)
	}
	want := savedNet{ClusterCIDR: cluster.String(), PodCIDR: pod.String()}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.net != nil && p.saved == want {
		return nil
	}
	if p.net == nil || p.saved.ClusterCIDR != want.ClusterCIDR {
		n, err := p.newNet(cluster)
		if err != nil {
			return fmt.Errorf("pod network: %w", err)
		}
		p.net = n
	}
	if err := p.net.Init(ctx, pod); err != nil {
		return fmt.Errorf("pod network: %w", err)
	}
	if p.saved != want {
		data, _ := json.Marshal(want)
		if err := writeFileAtomic(p.path, data); err != nil {
			return fmt.Errorf("pod network: save %s: %w", p.path, err)
		}
	}
	p.saved = want
	p.log.Info("pod network ready", "pod_cidr", want.PodCIDR, "cluster_cidr", want.ClusterCIDR)
	return nil
}

func (p *PodNet) current() network.Network {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.net
}

// Attach implements PodNetwork.
func (p *PodNet) Attach(ctx context.Context, a network.Attachment) (netip.Addr, error) {
	n := p.current()
	if n == nil {
		return netip.Addr{}, network.ErrNotReady
	}
	return n.Attach(ctx, a)
}

// Detach implements PodNetwork. With no network configured, no pod was
// ever attached.
func (p *PodNet) Detach(ctx context.Context, podUID string) error {
	if n := p.current(); n != nil {
		return n.Detach(ctx, podUID)
	}
	return nil
}

// Reconcile implements PodNetwork.
func (p *PodNet) Reconcile(ctx context.Context, keep map[string]bool) error {
	if n := p.current(); n != nil {
		return n.Reconcile(ctx, keep)
	}
	return nil
}

// SetRoutes routes every other node's pod CIDR via its address.
func (p *PodNet) SetRoutes(ctx context.Context, routes []*corralpb.NodeRoute) error {
	var peers []network.Peer
	for _, r := range routes {
		cidr, err1 := netip.ParsePrefix(r.GetPodCidr())
		ip, err2 := netip.ParseAddr(r.GetNodeIp())
		if err1 != nil || err2 != nil {
			p.log.Warn("ignoring a node's malformed route", "node", r.GetNodeName(), "pod_cidr", r.GetPodCidr(), "node_ip", r.GetNodeIp())
			continue
		}
		peers = append(peers, network.Peer{Name: r.GetNodeName(), PodCIDR: cidr, NodeIP: ip})
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.net == nil || (p.applied != nil && slices.Equal(p.applied, peers)) {
		return nil
	}
	if err := p.net.SetPeers(ctx, peers); err != nil {
		return fmt.Errorf("pod network: routes to other nodes: %w", err)
	}
	if peers == nil {
		peers = []network.Peer{}
	}
	p.applied = peers
	return nil
}
