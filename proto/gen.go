// Package corralpb holds corral's object model, the cluster and peer APIs and
// the Raft log entries as protobuf messages, with generated Go code.
//
// The generated files are committed; `make proto` regenerates them with the
// generators pinned in go.mod (go tool) and Debian's protoc.
package corralpb

//go:generate protoc -I . --plugin=protoc-gen-go=../bin/protoc-gen-go --plugin=protoc-gen-go-grpc=../bin/protoc-gen-go-grpc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative objects.proto raft.proto cluster.proto
