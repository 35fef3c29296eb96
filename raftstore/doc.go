// Package raftstore is corral's consensus layer: hashicorp/raft with
// raft-boltdb for the log and stable store and a file snapshot store, all in
// the server's data directory, and an FSM over the in-memory state store of
// package state.
//
// A Server owns one Raft node. It bootstraps a new cluster exactly once
// (--bootstrap-expect, with discovery through the Peer API of the --join
// addresses, as Consul and Nomad do: every server that sees the same
// expected set bootstraps the same configuration, which Raft makes safe),
// joins an existing one, or restarts from its data directory.
//
// Writes: any server accepts them. A follower forwards its batch to the
// leader over the Peer API; the leader group-commits concurrent batches into
// shared Raft entries (a dispatcher keeps a few entries in flight and packs
// whatever queued meanwhile into the next one), and each batch gets its own
// result from the FSM.
//
// Reads: ConsistentRead is linearizable. The server asks the leader for its
// commit index (the leader confirms its leadership with a quorum first, and
// has committed an entry of its own term) and waits until its own FSM has
// applied that index, so a read never misses a write acknowledged earlier
// to anyone.
package raftstore
