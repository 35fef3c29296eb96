// Package state is corral's replicated state: every object of the cluster,
// the Raft members and the cluster config, held in memory in a
// hashicorp/go-memdb database. The Raft FSM (package raftstore) is its only
// writer, through Apply for each committed log entry and Restore for an
// installed snapshot; servers and the leader's controllers read it through
// the query methods, watch sets and event subscriptions.
//
// # Tables
//
// One table per object kind, named after the kind ("Namespace", "Node",
// "Pod", "DaemonSet", "ConfigMap", "ControllerRevision", "Event",
// "PriorityClass"). Rows are *corralpb.Object. Indexes, built by custom
// indexers over the protobuf messages:
//
//	id         namespace, name (cluster-scoped kinds: "", name); unique.
//	           Iterating it walks objects sorted by namespace, then name.
//	namespace  metadata.namespace, namespaced kinds only; supports prefix scans
//
// Besides: "links", the relations of objects to values, one row per
// relation, naming the object: a pod's spec.nodeName (bound pods only) and
// each distinct metadata.ownerReferences[].uid. A relation kept as a memdb
// index would hold the row and take every new version of it again; a
// link changes only when the relation does, so a status report writes its
// object into one index. "members" (*corralpb.Member by name), "meta" (the
// *corralpb.ClusterConfig) and "index", which records for each kind (and
// for "members", "meta" and "latest") the Raft index of its last change, as
// Nomad's index table does. Kind indexes let a controller's plan be refused
// when the kinds it read changed after the snapshot it planned from
// (Batch.guard_index).
//
// # Writes
//
// A LogEntry carries many independent batches (group commit). The entry
// is applied in one memdb write transaction, committed at its end, so
// readers see whole entries and the batches share the cost of copying
// index paths. Each batch's ops are checked (guard, preconditions, uid,
// namespace existence) and applied in order; when one fails, an undo log
// puts back every row the batch changed, so a batch applies whole or not at
// all and a failed batch leaves no trace for the batches after it. Every
// PUT stores a clone of the proposed object with metadata.resourceVersion
// set to the entry's index; stored objects are never mutated afterwards, so
// readers share them without locks. Deleting a namespace deletes
// everything in it in the same batch. Apply reads no clock and no
// randomness and iterates no maps, so every server computes the same
// state, results and events.
//
// # Watches
//
// Two mechanisms, for two kinds of reader. Queries accept a memdb.WatchSet
// that fires when what they read changes (blocking queries, as Nomad's).
// Every applied change also becomes an Event (ADDED, MODIFIED, DELETED) in
// a bounded ring; a Subscription reads the ring from an index onward, and a
// subscriber that falls out of the ring gets ErrTooOld and must re-list,
// like a Kubernetes watch answered 410 Gone. Apply never waits for a
// subscriber.
//
// # Snapshots
//
// Persist streams a point-in-time copy as length-delimited records
// (see snapshot.go for the format); Restore builds a new Store from one.
// The FSM swaps the new store in and calls Abandon on the old one, which
// closes its AbandonCh and ends its subscriptions, so watchers re-read from
// the new store.
package state
