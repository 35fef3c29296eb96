// Package server is a corral server process: the gRPC listener that serves
// the cluster API (for the CLI) and the peer API (for other servers) on one
// address, over a raftstore.Server that holds the replicated state.
//
// The cluster API handlers are the edge of the object model: they decode
// nothing themselves (the CLI sends objects), but they default and validate
// every object with package api, merge applies with the stored object,
// stamp uid, creationTimestamp and generation, and turn each request into
// one atomic Raft batch with compare-and-set preconditions. A batch that
// loses a race (the stored object changed between read and commit) is
// re-planned from fresh state; a client's own resourceVersion that is stale
// is a Conflict error, never a silent overwrite.
//
// Reads are linearizable (raftstore.ConsistentRead). Watches stream the
// state store's change events, filtered by kind, namespace and selectors.
package server
