// Package scheduler holds corral's leader-only control loops. Each loop
// reads the replicated state, decides with a pure planning function (no
// clock, no I/O: now is passed in), and commits its decisions as one Raft
// batch. Loops run only while this server leads, start after the leader's
// barrier, and stop when leadership is lost.
//
// Node lifecycle (this file's first loop): agents heartbeat to any server;
// heartbeats are soft state kept on the leader (followers forward them in
// coalesced batches), and only transitions are replicated:
//
//	Ready ──no heartbeat for the grace period──▶ Unknown (+ unreachable:NoExecute taint)
//	Unknown ──heartbeat──▶ Ready (taint removed)
//
// A new leader starts every node's clock afresh, so a leader change never
// marks a healthy node Unknown.
package scheduler
