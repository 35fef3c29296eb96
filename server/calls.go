package server

import (
	"sync"
	"time"

	corralpb "github.com/corral-dev/corral/proto"
)

// stopGrace bounds how long Stop waits for the calls in flight to finish.
var stopGrace = 2 * time.Second

// endless are the streams that end only when their client leaves: an
// agent's assignments and status streams, a watch. A stopping server does
// not wait for them; their clients reconnect to another server.
var endless = map[string]bool{
	corralpb.NodeAPI_Assignments_FullMethodName:  true,
	corralpb.NodeAPI_ReportStatus_FullMethodName: true,
	corralpb.Cluster_Watch_FullMethodName:        true,
}

// calls counts the calls in flight that a stopping server lets finish:
// every call but the endless streams.
type calls struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed while n is 0
}

func newCalls() *calls {
	c := &calls{idle: make(chan struct{})}
	close(c.idle)
	return c
}

func (c *calls) begin() {
	c.mu.Lock()
	if c.n == 0 {
		c.idle = make(chan struct{})
	}
	c.n++
	c.mu.Unlock()
}

func (c *calls) end() {
	c.mu.Lock()
	c.n--
	if c.n == 0 {
		close(c.idle)
	}
	c.mu.Unlock()
}

// done is closed once no call is in flight (at once if none is now).
func (c *calls) done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.idle
}
