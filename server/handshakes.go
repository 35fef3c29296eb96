package server

import (
	"net"
	"runtime"

	"google.golang.org/grpc/credentials"
)

// handshakeLimit bounds the TLS handshakes the API port runs at once.
//
// A handshake is a millisecond or two of CPU (key exchange, signatures,
// the client's certificate) between two waits on the network. When
// thousands of agents connect at once (a fleet starting, or reconnecting
// to the survivors after a server died), thousands of handshake goroutines
// are runnable together; Go runs runnable goroutines first come, first
// served, so the goroutines that send and answer Raft's heartbeats wait
// behind them, long enough for a leader to lose its lease and step down,
// which sends the fleet's calls through an election. Held to a few at a
// time, handshakes run as fast as the CPU allows (they are CPU-bound) while
// the rest wait in a queue that takes no CPU, and the servers' own
// goroutines keep their turn. A connection whose client gave up waiting
// (an agent's connect timeout is 2 s at first, then grows with its
// backoff), or that waited past gRPC's connection timeout (120 s), fails
// its handshake at once when its turn comes.
func handshakeLimit() int { return 4 * runtime.GOMAXPROCS(0) }

// limitHandshakes runs creds' server handshakes at most n at a time.
func limitHandshakes(creds credentials.TransportCredentials, n int) credentials.TransportCredentials {
	return &limitedHandshakes{TransportCredentials: creds, slots: make(chan struct{}, n)}
}

type limitedHandshakes struct {
	credentials.TransportCredentials
	slots chan struct{}
}

func (l *limitedHandshakes) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	l.slots <- struct{}{}
	defer func() { <-l.slots }()
	return l.TransportCredentials.ServerHandshake(c)
}

// Clone shares the slots: a clone limits the same port.
func (l *limitedHandshakes) Clone() credentials.TransportCredentials {
	return &limitedHandshakes{TransportCredentials: l.TransportCredentials.Clone(), slots: l.slots}
}
