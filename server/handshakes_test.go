package server

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/credentials"
)

// blockingCreds is TransportCredentials whose server handshakes wait for
// release, counting how many run at once.
type blockingCreds struct {
	credentials.TransportCredentials // nil: only ServerHandshake and Clone are called
	release                          chan struct{}
	running, peak                    atomic.Int32
	started                          chan struct{}
}

func (b *blockingCreds) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	n := b.running.Add(1)
	for {
		p := b.peak.Load()
		if n <= p || b.peak.CompareAndSwap(p, n) {
			break
		}
	}
	b.started <- struct{}{}
	<-b.release
	b.running.Add(-1)
	return c, nil, nil
}

func (b *blockingCreds) Clone() credentials.TransportCredentials { return b }

func TestLimitHandshakes(t *testing.T) {
	const limit, conns = 3, 10
	inner := &blockingCreds{release: make(chan struct{}), started: make(chan struct{}, conns)}
	creds := limitHandshakes(inner, limit)
	clone := creds.Clone() // a clone shares the limit
	var wg sync.WaitGroup
	for i := 0; i < conns; i++ {
		c := creds
		if i%2 == 1 {
			c = clone
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, b := net.Pipe()
			defer a.Close()
			defer b.Close()
			if _, _, err := c.ServerHandshake(a); err != nil {
				t.Errorf("handshake: %v", err)
			}
		}()
	}
	// The first limit handshakes start; the rest wait for a slot.
	for i := 0; i < limit; i++ {
		select {
		case <-inner.started:
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of %d handshakes started", i, limit)
		}
	}
	select {
	case <-inner.started:
		t.Fatalf("a handshake started beyond the limit of %d", limit)
	case <-time.After(100 * time.Millisecond):
	}
	// Released one at a time, every handshake runs, never more than limit
	// at once.
	for i := 0; i < conns; i++ {
		inner.release <- struct{}{}
	}
	wg.Wait()
	if p := inner.peak.Load(); p != limit {
		t.Fatalf("%d handshakes ran at once, want %d", p, limit)
	}
}
