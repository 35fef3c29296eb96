// Package network is a node's built-in pod network.
//
// # Model
//
// Every node has one Linux bridge (Config.Bridge, "corral0") whose address
// is the first host address of the node's pod CIDR (e.g. 10.42.3.1/24), the
// pods' gateway. A pod gets a veth pair: eth0 in its network namespace with
// an address from the pod CIDR and a default route via the gateway, the
// other end ("veth" + 8 hex digits of a hash of the bridge and pod UID, the
// same after a restart) a port of the bridge. Pods of a node reach each
// other through the bridge, the node and the node them through the
// bridge's address.
//
// Between nodes the network is host-gw: the nodes are on one L2 segment and
// each routes every other node's pod CIDR via that node's address
// (SetPeers; the routes carry protocol RouteProtocol). Packets between pods
// are not translated or encapsulated: a pod sees the other pod's address.
//
// Traffic from pods to outside the cluster CIDR is masqueraded to the
// node's address, and so is hairpin traffic (a pod reaching a hostPort that
// leads back to a pod of the same node). hostPorts are DNAT rules: from
// other hosts (prerouting) and from the node itself (output, for its local
// addresses). All rules live in one nftables table (family ip,
// Config.Table) that is rewritten whole in one transaction whenever they
// change; see rules.go for its layout. Forwarding (ip_forward) is turned on
// in the node's namespace.
//
// # State
//
// Everything is recorded in Config.StateDir before it is made, so Detach,
// Reconcile and Destroy undo it after a crash or a reboot: address
// reservations (one file per address, as CNI's host-local plugin), one
// record per attached pod, the peer routes. See state.go.
//
// # The seam
//
// The agent uses the Network interface only; Bridge is its implementation.
// A CNI plugin (bridge, flannel, ...) can be put behind the same interface
// later: Attach/Detach map to CNI ADD/DEL, Init and SetPeers to the plugin's
// own daemon.
package network
