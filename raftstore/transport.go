package raftstore

import (
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/raft"
)

// streamLayer is Raft's TCP stream layer over a listener this package opens
// itself, so that a server started on port 0 (tests, benchmarks) advertises
// the port it really got.
type streamLayer struct {
	net.Listener
}

var _ raft.StreamLayer = (*streamLayer)(nil)

func (l *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return net.DialTimeout("tcp", string(address), timeout)
}

// listenRaft binds addr and returns the stream layer and the address to
// advertise, which must name a concrete host.
func listenRaft(addr string) (*streamLayer, string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("listen for raft on %s: %w", addr, err)
	}
	tcp := ln.Addr().(*net.TCPAddr)
	if tcp.IP == nil || tcp.IP.IsUnspecified() {
		_ = ln.Close()
		return nil, "", fmt.Errorf("raft address %s: give a host other peers can reach, not a wildcard", addr)
	}
	return &streamLayer{Listener: ln}, tcp.String(), nil
}
