package framework

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
)

// AgentBridge is the pod-network bridge (and nftables table) name a test
// gives the agent of node, so that agents sharing this machine's network
// namespace do not share a bridge: "crt" and 8 hex digits of the name.
func AgentBridge(node string) string {
	sum := sha256.Sum256([]byte(node))
	return "crt" + hex.EncodeToString(sum[:4])
}

// removeAgentNetwork deletes the node's test bridge (its veths and routes
// go with it) and nftables table from this network namespace, and reports
// how many of the two it found.
func removeAgentNetwork(node string) int {
	name, found := AgentBridge(node), 0
	if l, err := netlink.LinkByName(name); err == nil {
		if netlink.LinkDel(l) == nil {
			found++
		}
	}
	if c, err := nftables.New(); err == nil {
		if tables, err := c.ListTablesOfFamily(nftables.TableFamilyIPv4); err == nil {
			for _, t := range tables {
				if t.Name == name {
					c.DelTable(t)
					if c.Flush() == nil {
						found++
					}
				}
			}
		}
	}
	return found
}
