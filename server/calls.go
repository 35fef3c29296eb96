package server

import (
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	corralpb "github.com/corral-dev/corral/proto"
	"github.com/corral-dev/corral/raftstore"
)

// stopGrace bounds how long Stop waits for the calls in flight to finish.
var stopGrace = 2 * time.Second

// endless are the streams that end only when their client leaves: an
// agent's assignments and status streams, a watch, an exec session, a
// forwarded connection (and a
// Logs call that follows, see logsStream). A stopping server does not wait
// for them, as kube-apiserver does not wait for its long-running requests;
// their clients reconnect to another server.
var endless = map[string]bool{
	corralpb.NodeAPI_Assignments_FullMethodName:  true,
	corralpb.NodeAPI_ReportStatus_FullMethodName: true,
	corralpb.Cluster_Watch_FullMethodName:        true,
	corralpb.Cluster_Exec_FullMethodName:         true,
	corralpb.Cluster_PortForward_FullMethodName:  true,
}

// errStopping refuses the calls that reach a stopping server.
var errStopping = status.Error(codes.Unavailable, raftstore.StoppingMsg+": call another")

// calls counts the calls in flight that a stopping server lets finish:
// every call but the endless streams.
type calls struct {
	mu       sync.Mutex
	n        int
	idle     chan struct{} // closed while n is 0
	stopping bool
}

func newCalls() *calls {
	c := &calls{idle: make(chan struct{})}
	close(c.idle)
	return c
}

// begin counts a call in; once the server is stopping it refuses it with
// errStopping. A counted call must end.
func (c *calls) begin(counted bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopping {
		return errStopping
	}
	if counted {
		if c.n == 0 {
			c.idle = make(chan struct{})
		}
		c.n++
	}
	return nil
}

func (c *calls) end() {
	c.mu.Lock()
	c.n--
	if c.n == 0 {
		close(c.idle)
	}
	c.mu.Unlock()
}

// stop refuses every call from now on and returns a channel closed once
// the counted calls in flight have ended.
func (c *calls) stop() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopping = true
	return c.idle
}
