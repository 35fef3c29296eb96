package network

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Config configures a Bridge.
type Config struct {
	// StateDir holds the records (address reservations, pods, peer
	// routes); created if missing.
	StateDir string
	// Bridge is the bridge link's name, default "corral0".
	Bridge string
	// Table is the name of the nftables table (family ip), default
	// "corral".
	Table string
	// ClusterCIDR holds every node's pod CIDR: traffic from pods to
	// outside it is masqueraded.
	ClusterCIDR netip.Prefix
	// NodeIP is this node's address. Peers with the same address share
	// this host's network and are skipped.
	NodeIP netip.Addr
	// MTU of the bridge and the pods' links; 0: the MTU of the link
	// holding NodeIP, else of the default route's link, else 1500.
	MTU int
	// HostNetNS is the path of the network namespace to act in; "": the
	// calling process's.
	HostNetNS string
	// Logger, default slog.Default().
	Logger *slog.Logger
}

// RouteProtocol marks the peer routes a Bridge installs (rtm_protocol), so
// that they are told apart from routes others made.
const RouteProtocol netlink.RouteProtocol = 0x43

// Bridge is the built-in Network: one Linux bridge per node with the pods'
// veths, host-gw routes to the other nodes, nftables for masquerade and
// hostPorts. See the package documentation.
type Bridge struct {
	cfg   Config
	log   *slog.Logger
	store store

	mu      sync.Mutex
	podCIDR netip.Prefix // zero until Init
	mtu     int
	// nft is a lasting nftables connection into HostNetNS, made on first
	// use: closing a netlink socket that committed a transaction costs
	// the kernel several milliseconds, a new one per Attach would be most
	// of its time. Dropped on an error, closed by Close and Destroy.
	nft *nftables.Conn
}

var _ Network = (*Bridge)(nil)

// New checks cfg and makes the state directory; it changes nothing in the
// network (Init does).
func New(cfg Config) (*Bridge, error) {
	if cfg.StateDir == "" {
		return nil, errors.New("network: no state directory")
	}
	if cfg.Bridge == "" {
		cfg.Bridge = "corral0"
	}
	if len(cfg.Bridge) >= unix.IFNAMSIZ {
		return nil, fmt.Errorf("network: bridge name %q is longer than %d bytes", cfg.Bridge, unix.IFNAMSIZ-1)
	}
	if cfg.Table == "" {
		cfg.Table = "corral"
	}
	if !cfg.ClusterCIDR.IsValid() || !cfg.ClusterCIDR.Addr().Is4() {
		return nil, fmt.Errorf("network: cluster CIDR %s: want an IPv4 prefix", cfg.ClusterCIDR)
	}
	cfg.ClusterCIDR = cfg.ClusterCIDR.Masked()
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	b := &Bridge{cfg: cfg, log: cfg.Logger.With("bridge", cfg.Bridge), store: store{dir: cfg.StateDir}}
	if err := b.store.init(); err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	return b, nil
}

// Init implements Network.
func (b *Bridge) Init(ctx context.Context, podCIDR netip.Prefix) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !podCIDR.IsValid() || !podCIDR.Addr().Is4() || podCIDR.Bits() > 30 {
		return fmt.Errorf("init network: pod CIDR %s: want an IPv4 prefix of /30 or larger", podCIDR)
	}
	podCIDR = podCIDR.Masked()
	if !b.cfg.ClusterCIDR.Contains(podCIDR.Addr()) || podCIDR.Bits() < b.cfg.ClusterCIDR.Bits() {
		return fmt.Errorf("init network: pod CIDR %s is not inside the cluster CIDR %s", podCIDR, b.cfg.ClusterCIDR)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	pods, err := b.store.pods()
	if err != nil {
		return fmt.Errorf("init network: %w", err)
	}
	for _, p := range pods {
		if !podCIDR.Contains(p.IP) {
			return fmt.Errorf("init network: pod %s (%s) has %s, not in %s: %w", p.pod(), p.UID, p.IP, podCIDR, ErrCIDRChanged)
		}
	}
	h, err := openNS(b.cfg.HostNetNS)
	if err != nil {
		return fmt.Errorf("init network: %w", err)
	}
	defer h.close()
	mtu := b.cfg.MTU
	if mtu == 0 {
		mtu = detectMTU(h.nl, b.cfg.NodeIP)
	}
	if err := b.ensureBridge(h, podCIDR, mtu); err != nil {
		return fmt.Errorf("init network: %w", err)
	}
	if err := setSysctl(h.ns, "net/ipv4/ip_forward", "1"); err != nil {
		return fmt.Errorf("init network: %w", err)
	}
	if err := b.dropStaleReservations(podCIDR, pods); err != nil {
		return fmt.Errorf("init network: %w", err)
	}
	b.podCIDR, b.mtu = podCIDR, mtu
	if err := b.writeRules(h, pods, true); err != nil {
		b.podCIDR = netip.Prefix{}
		return fmt.Errorf("init network: %w", err)
	}
	b.log.Info("network ready", "pod_cidr", podCIDR, "gateway", gateway(podCIDR), "mtu", mtu, "pods", len(pods))
	return nil
}

// ensureBridge makes the bridge exist, up, with mtu and the gateway address
// of podCIDR as its only IPv4 address.
func (b *Bridge) ensureBridge(h *hostNS, podCIDR netip.Prefix, mtu int) error {
	link, err := h.nl.LinkByName(b.cfg.Bridge)
	if err != nil {
		if !errors.As(err, new(netlink.LinkNotFoundError)) {
			return fmt.Errorf("find bridge %s: %w", b.cfg.Bridge, err)
		}
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: b.cfg.Bridge, MTU: mtu}}
		if err := h.nl.LinkAdd(br); err != nil {
			return fmt.Errorf("create bridge %s: %w", b.cfg.Bridge, err)
		}
		if link, err = h.nl.LinkByName(b.cfg.Bridge); err != nil {
			return fmt.Errorf("find bridge %s: %w", b.cfg.Bridge, err)
		}
		b.log.Debug("created bridge", "mtu", mtu)
	}
	if _, ok := link.(*netlink.Bridge); !ok {
		return fmt.Errorf("link %s is a %s, not a bridge", b.cfg.Bridge, link.Type())
	}
	if link.Attrs().MTU != mtu {
		if err := h.nl.LinkSetMTU(link, mtu); err != nil {
			return fmt.Errorf("set MTU of bridge %s to %d: %w", b.cfg.Bridge, mtu, err)
		}
	}
	gw := &netlink.Addr{IPNet: prefixToIPNet(netip.PrefixFrom(gateway(podCIDR), podCIDR.Bits()))}
	addrs, err := h.nl.AddrList(link, unix.AF_INET)
	if err != nil {
		return fmt.Errorf("list addresses of bridge %s: %w", b.cfg.Bridge, err)
	}
	for _, a := range addrs {
		if a.IPNet.String() == gw.IPNet.String() {
			continue
		}
		if err := h.nl.AddrDel(link, &a); err != nil {
			return fmt.Errorf("remove old address %s of bridge %s: %w", a.IPNet, b.cfg.Bridge, err)
		}
		b.log.Info("removed old gateway address", "address", a.IPNet.String())
	}
	if err := h.nl.AddrReplace(link, gw); err != nil {
		return fmt.Errorf("set address %s on bridge %s: %w", gw.IPNet, b.cfg.Bridge, err)
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		if err := h.nl.LinkSetUp(link); err != nil {
			return fmt.Errorf("set bridge %s up: %w", b.cfg.Bridge, err)
		}
	}
	return nil
}

// dropStaleReservations releases reservations outside podCIDR (of a
// former CIDR, only possible with no pods attached), and reserves the
// recorded pods' addresses again where a crash of the machine lost the
// reservation.
func (b *Bridge) dropStaleReservations(podCIDR netip.Prefix, pods []*podRecord) error {
	m, err := openIPAM(filepath.Join(b.cfg.StateDir, ipamDir), podCIDR)
	if err != nil {
		return err
	}
	held, err := m.Reserved()
	if err != nil {
		return err
	}
	for a := range held {
		if !podCIDR.Contains(a) && !recordHolds(pods, a) {
			if err := m.Release(a); err != nil {
				return err
			}
		}
	}
	for _, p := range pods {
		if _, ok := held[p.IP]; !ok {
			if _, err := m.tryReserve(p.IP, p.UID); err != nil {
				return err
			}
		}
	}
	return nil
}

func recordHolds(pods []*podRecord, a netip.Addr) bool {
	for _, p := range pods {
		if p.IP == a {
			return true
		}
	}
	return false
}

// detectMTU is the MTU of the link with nodeIP, else of the default
// route's link, else 1500. Loopback never counts (agents sharing a
// machine in tests use 127.0.0.1, whose 65536 no bridge accepts).
func detectMTU(h *netlink.Handle, nodeIP netip.Addr) int {
	if nodeIP.IsValid() && !nodeIP.IsLoopback() {
		if addrs, err := h.AddrList(nil, unix.AF_INET); err == nil {
			for _, a := range addrs {
				if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == nodeIP {
					if l, err := h.LinkByIndex(a.LinkIndex); err == nil {
						return l.Attrs().MTU
					}
				}
			}
		}
	}
	if routes, err := h.RouteList(nil, unix.AF_INET); err == nil {
		for _, r := range routes {
			if (r.Dst == nil || r.Dst.IP.IsUnspecified()) && r.LinkIndex > 0 {
				if l, err := h.LinkByIndex(r.LinkIndex); err == nil && l.Attrs().Flags&net.FlagLoopback == 0 {
					return l.Attrs().MTU
				}
			}
		}
	}
	return 1500
}

// writeRules rewrites the nftables table for pods' mappings, recreating
// it if recreate (see writeTable).
func (b *Bridge) writeRules(h *hostNS, pods []*podRecord, recreate bool) error {
	var ports []hostPortRule
	for _, p := range pods {
		for _, m := range p.Ports {
			ports = append(ports, hostPortRule{Owner: p.UID, PodIP: p.IP, PortMapping: m})
		}
	}
	if err := b.ensureNFT(h); err != nil {
		return err
	}
	err := writeTable(b.nft, b.cfg.Table, ruleset(b.podCIDR, b.cfg.ClusterCIDR, ports), recreate)
	if err != nil {
		b.closeNFT()
	}
	return err
}

// writePodRules makes rec's hostPort rules exactly its mappings (none
// after a detach), leaving other pods' rules alone.
func (b *Bridge) writePodRules(h *hostNS, rec *podRecord, detached bool) error {
	if err := b.ensureNFT(h); err != nil {
		return err
	}
	var ports []hostPortRule
	if !detached {
		for _, m := range rec.Ports {
			ports = append(ports, hostPortRule{Owner: rec.UID, PodIP: rec.IP, PortMapping: m})
		}
	}
	err := replaceOwnerRules(b.nft, b.cfg.Table, rec.UID, hostPortRules(ports))
	if err != nil {
		b.closeNFT()
	}
	return err
}

func (b *Bridge) ensureNFT(h *hostNS) error {
	if b.nft != nil {
		return nil
	}
	conn, err := h.nft(nftables.AsLasting())
	if err != nil {
		return err
	}
	b.nft = conn
	return nil
}

func (b *Bridge) closeNFT() {
	if b.nft != nil {
		_ = b.nft.CloseLasting()
		b.nft = nil
	}
}

// Close releases the Bridge's netlink connection; the network stays as it
// is. A Bridge may be used again after Close.
func (b *Bridge) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closeNFT()
	return nil
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// overRecords runs fn, under the bridge's lock, with the host namespace and
// every pod record; op names the operation in errors.
func (b *Bridge) overRecords(ctx context.Context, op string, fn func(h *hostNS, pods []*podRecord) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	h, err := openNS(b.cfg.HostNetNS)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	defer h.close()
	pods, err := b.store.pods()
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := fn(h, pods); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// Destroy implements Network.
func (b *Bridge) Destroy(ctx context.Context) error {
	return b.overRecords(ctx, "destroy network", b.destroy)
}

func (b *Bridge) destroy(h *hostNS, pods []*podRecord) error {
	var errs []error
	for _, p := range pods {
		if err := deleteLink(h.nl, p.HostVeth); err != nil {
			errs = append(errs, fmt.Errorf("pod %s: %w", p.pod(), err))
		}
	}
	if err := b.setPeerRoutes(h, nil); err != nil {
		errs = append(errs, err)
	}
	if err := deleteLink(h.nl, b.cfg.Bridge); err != nil {
		errs = append(errs, err)
	}
	b.closeNFT()
	if conn, err := h.nft(); err != nil {
		errs = append(errs, err)
	} else if err := deleteTable(conn, b.cfg.Table); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := os.RemoveAll(b.cfg.StateDir); err != nil {
		return fmt.Errorf("remove state: %w", err)
	}
	b.podCIDR = netip.Prefix{}
	b.log.Info("network destroyed", "pods", len(pods))
	return nil
}

// deleteLink deletes the link name; a missing link is no error.
func deleteLink(h *netlink.Handle, name string) error {
	link, err := h.LinkByName(name)
	if errors.As(err, new(netlink.LinkNotFoundError)) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("find link %s: %w", name, err)
	}
	if err := h.LinkDel(link); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete link %s: %w", name, err)
	}
	return nil
}

// podNS opens a pod's namespace.
func podNS(path string) (netns.NsHandle, error) {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return 0, fmt.Errorf("open network namespace %s: %w", path, err)
	}
	return ns, nil
}
