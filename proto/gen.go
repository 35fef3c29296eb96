// Package corralpb holds corral's object model, the cluster and peer APIs and
// the Raft log entries as protobuf messages, with generated Go code, and the
// HTTP/2 flow-control settings the servers, agents and peers serve and dial
// these APIs with (FlowWindow).
//
// The generated files are committed; `make proto` regenerates them with the
// generators pinned in go.mod (go tool) and Debian's protoc.
package corralpb
