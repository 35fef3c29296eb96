package network

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// The records in Config.StateDir:
//
//	ipam/<address>        a reservation (content: pod UID), see ipam
//	ipam/last_reserved_ip the round robin's position
//	pods/<uid>.json       a podRecord: what Attach made for the pod
//	peers.json            the peer routes SetPeers installed
const (
	ipamDir   = "ipam"
	podsDir   = "pods"
	peersFile = "peers.json"
)

// podRecord is written before Attach creates anything and removed after
// Detach removed everything, so that whatever a crash left is found.
type podRecord struct {
	UID       string        `json:"uid"`
	Namespace string        `json:"namespace"`
	Name      string        `json:"name"`
	IP        netip.Addr    `json:"ip"`
	HostVeth  string        `json:"hostVeth"`
	NetNSPath string        `json:"netnsPath"`
	Ports     []PortMapping `json:"ports,omitempty"`
}

func (r *podRecord) pod() string { return r.Namespace + "/" + r.Name }

// peerRoute is a route SetPeers installed: Dst via Gw.
type peerRoute struct {
	Name string       `json:"name"`
	Dst  netip.Prefix `json:"dst"`
	Gw   netip.Addr   `json:"gw"`
}

// hostVethName is the host side of a pod's veth pair: "veth" and 8 hex
// digits of sha256(bridge/uid), 12 bytes (IFNAMSIZ is 16 with the NUL), the
// same after a restart.
func hostVethName(bridge, podUID string) string {
	sum := sha256.Sum256([]byte(bridge + "/" + podUID))
	return "veth" + hex.EncodeToString(sum[:4])
}

// isHostVethName reports whether name has hostVethName's pattern.
func isHostVethName(name string) bool {
	if len(name) != 12 || !strings.HasPrefix(name, "veth") {
		return false
	}
	_, err := hex.DecodeString(name[4:])
	return err == nil && strings.ToLower(name[4:]) == name[4:]
}

// validUID refuses UIDs that are not usable as a file name.
func validUID(uid string) error {
	if uid == "" || uid == "." || uid == ".." || strings.ContainsAny(uid, "/\x00") || strings.HasPrefix(uid, ".") {
		return fmt.Errorf("invalid pod UID %q", uid)
	}
	return nil
}

type store struct{ dir string }

func (s store) podPath(uid string) string { return filepath.Join(s.dir, podsDir, uid+".json") }

func (s store) init() error {
	for _, d := range []string{s.dir, filepath.Join(s.dir, podsDir), filepath.Join(s.dir, ipamDir)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("create state dir: %w", err)
		}
	}
	return nil
}

// pod returns the record of uid, nil if there is none.
func (s store) pod(uid string) (*podRecord, error) {
	b, err := os.ReadFile(s.podPath(uid))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read pod record: %w", err)
	}
	var r podRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("read pod record %s: %w", s.podPath(uid), err)
	}
	return &r, nil
}

// pods returns every record, sorted by UID.
func (s store) pods() ([]*podRecord, error) {
	entries, err := os.ReadDir(filepath.Join(s.dir, podsDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list pod records: %w", err)
	}
	var out []*podRecord
	for _, e := range entries {
		uid, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		r, err := s.pod(uid)
		if err != nil {
			return nil, err
		}
		if r != nil {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UID < out[j].UID })
	return out, nil
}

func (s store) putPod(r *podRecord) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("write pod record: %w", err)
	}
	if err := writeFileAtomic(s.podPath(r.UID), b, true); err != nil {
		return fmt.Errorf("write pod record: %w", err)
	}
	return nil
}

func (s store) deletePod(uid string) error {
	if err := os.Remove(s.podPath(uid)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove pod record: %w", err)
	}
	return nil
}

func (s store) peers() ([]peerRoute, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, peersFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read peer routes: %w", err)
	}
	var out []peerRoute
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("read peer routes: %w", err)
	}
	return out, nil
}

func (s store) putPeers(p []peerRoute) error {
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("write peer routes: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(s.dir, peersFile), b, true); err != nil {
		return fmt.Errorf("write peer routes: %w", err)
	}
	return nil
}

// protocols maps PortMapping.Protocol to its IP protocol number.
var protocols = map[string]uint8{"TCP": 6, "UDP": 17, "SCTP": 132}

// normalizePorts checks ports and returns them with the protocol upper
// case ("" is TCP), ContainerPort defaulting to HostPort; mappings with
// HostPort 0 expose nothing on the node and are dropped.
func normalizePorts(ports []PortMapping) ([]PortMapping, error) {
	var out []PortMapping
	for _, p := range ports {
		if p.HostPort == 0 {
			continue
		}
		p.Protocol = strings.ToUpper(p.Protocol)
		if p.Protocol == "" {
			p.Protocol = "TCP"
		}
		if _, ok := protocols[p.Protocol]; !ok {
			return nil, fmt.Errorf("host port %d: unknown protocol %q", p.HostPort, p.Protocol)
		}
		if p.HostIP.IsValid() && !p.HostIP.Is4() {
			return nil, fmt.Errorf("host port %d/%s: host IP %s is not IPv4", p.HostPort, p.Protocol, p.HostIP)
		}
		if p.ContainerPort == 0 {
			p.ContainerPort = p.HostPort
		}
		out = append(out, p)
	}
	return out, nil
}

// overlaps reports whether two mappings claim the same port of the node.
func overlaps(a, b PortMapping) bool {
	return a.Protocol == b.Protocol && a.HostPort == b.HostPort &&
		(!a.HostIP.IsValid() || a.HostIP.IsUnspecified() || !b.HostIP.IsValid() || b.HostIP.IsUnspecified() || a.HostIP == b.HostIP)
}

// portConflict returns an error wrapping ErrPortConflict if one of ports
// (normalised) is held by another pod in pods, or twice in ports.
func portConflict(pods []*podRecord, uid, pod string, ports []PortMapping) error {
	for i, p := range ports {
		for _, q := range ports[:i] {
			if overlaps(p, q) {
				return fmt.Errorf("host port %d/%s is mapped twice by pod %s: %w", p.HostPort, p.Protocol, pod, ErrPortConflict)
			}
		}
		for _, r := range pods {
			if r.UID == uid {
				continue
			}
			for _, q := range r.Ports {
				if overlaps(p, q) {
					return fmt.Errorf("host port %d/%s is held by pod %s: %w", p.HostPort, p.Protocol, r.pod(), ErrPortConflict)
				}
			}
		}
	}
	return nil
}
