package lab

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// Role is what a lab node runs.
type Role string

// The roles of lab nodes.
const (
	// RoleServer is a `corral server` with its embedded agent.
	RoleServer Role = "server"
	// RoleAgent is a `corral agent`.
	RoleAgent Role = "agent"
)

// Node is one node of the lab as lab.json records it.
type Node struct {
	// Name is the node's name (server-1, worker-2, ...).
	Name string `json:"name"`
	// Role is server or agent.
	Role Role `json:"role"`
	// Index numbers the node's veth; it never changes.
	Index int `json:"index"`
	// Address is the node's IPv4 address on the bridge.
	Address string `json:"address"`
	// Args are the arguments of the node's process after the binary.
	Args []string `json:"args"`
	// Partitioned is set while the node's link is cut.
	Partitioned bool `json:"partitioned,omitempty"`
}

// State is DIR/lab.json: everything needed to operate a running lab.
type State struct {
	// Dir is the lab's absolute directory.
	Dir string `json:"dir"`
	// Binary is the corral binary the lab's processes run.
	Binary string `json:"binary"`
	// Bridge is the name of the lab's bridge.
	Bridge string `json:"bridge"`
	// Prefix is the first three octets of the lab's /24 ("10.23.45").
	Prefix string `json:"prefix"`
	// ClusterCIDR is where the nodes' pod CIDRs come from.
	ClusterCIDR string `json:"clusterCIDR,omitempty"`
	// RegistryAddr is HOST:PORT of the lab's image registry.
	RegistryAddr string `json:"registryAddr"`
	// APIPort and RaftPort are the servers' ports on their addresses.
	APIPort int `json:"apiPort"`
	// RaftPort is the servers' Raft port.
	RaftPort int `json:"raftPort"`
	// Nodes are the lab's nodes, servers first.
	Nodes []*Node `json:"nodes"`
}

// Ports of a lab: every node has its own address, so they are fixed.
const (
	apiPort      = 7443
	raftPort     = 7444
	registryPort = 5000
)

// names are the machine-wide names a lab directory maps to.
type names struct {
	hash string
}

func namesFor(dir string) names {
	sum := sha256.Sum256([]byte(dir))
	return names{hash: hex.EncodeToString(sum[:3])}
}

func (n names) bridge() string { return "crl-" + n.hash }

func (n names) netns(node string) string { return "crl-" + n.hash + "-" + node }

func (n names) netnsPrefix() string { return "crl-" + n.hash + "-" }

func (n names) hostVeth(index int) string { return "c" + n.hash + "-" + strconv.Itoa(index) }

func (n names) peerVeth(index int) string { return "c" + n.hash + "p" + strconv.Itoa(index) }

// defaultPrefix is the lab's /24 before collision checks: 10.a.b with a, b
// from the hash (a kept away from 0 and 255).
func (n names) defaultPrefix() (a, b int) {
	raw, _ := hex.DecodeString(n.hash)
	return 16 + int(raw[0])%224, int(raw[1])
}

// HostIP is the host's address on the bridge.
func (s *State) HostIP() string { return s.Prefix + ".1" }

// APIAddr is a server node's API address.
func (s *State) APIAddr(n *Node) string { return fmt.Sprintf("%s:%d", n.Address, s.APIPort) }

// Node returns the node called name, or nil.
func (s *State) Node(name string) *Node {
	for _, n := range s.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// nextAddress returns the next free index and address: .10 upward.
func (s *State) nextAddress() (int, string) {
	used := map[string]bool{}
	maxIndex := 0
	for _, n := range s.Nodes {
		used[n.Address] = true
		maxIndex = max(maxIndex, n.Index)
	}
	for host := 10; host < 255; host++ {
		a := s.Prefix + "." + strconv.Itoa(host)
		if !used[a] {
			return maxIndex + 1, a
		}
	}
	return maxIndex + 1, ""
}

func statePath(dir string) string { return filepath.Join(dir, "lab.json") }

// loadState reads DIR/lab.json; (nil, nil) when there is none.
func loadState(dir string) (*State, error) {
	data, err := os.ReadFile(statePath(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read lab state: %w", err)
	}
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("parse %s: %w", statePath(dir), err)
	}
	return &s, nil
}

// save writes DIR/lab.json atomically.
func (s *State) save() error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode lab state: %w", err)
	}
	return writeAtomic(statePath(s.Dir), append(data, '\n'), 0o600)
}

// writeAtomic replaces path with data through a temporary file and rename.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return nil
}
