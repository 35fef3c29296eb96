// Package lab runs a whole corral cluster on one machine: `corral lab`.
//
// A lab lives in a directory DIR. Its names derive from a short hash of
// DIR's absolute path, so two labs coexist: the bridge crl-<hash> with the
// address range 10.a.b.0/24 (the host has .1 on it), and one named network
// namespace crl-<hash>-<node> per node, joined to the bridge by a veth pair
// (c<hash>-<index> on the host, eth0 inside) with its own address, lo up and
// a default route via the bridge address.
//
// Every node is a real `corral server` (server-1..N, with an embedded
// agent) or `corral agent` (worker-1..M) process of this binary, entered
// into its namespace with setns(CLONE_NEWNET) only — never a private mount
// namespace, which breaks libcontainer — started in its own session so it
// outlives the command, logging to DIR/<node>/log with its pid in
// DIR/<node>/pid. An offline image registry (`corral lab registry`) on the
// bridge address serves stand-in images under the seed's image names; the
// agents mirror every registry ("*") to it. DIR/lab.json holds the lab's
// layout, written atomically; DIR/admin.conf is the CLI config.
package lab
