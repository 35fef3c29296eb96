package server

import (
	"errors"
	"testing"
)

// TestCallsStopWaitsForCountedCallsAndRefusesNewOnes: stop's channel
// closes once the counted calls in flight have ended, not before, and
// uncounted ones (endless streams) never hold it; after stop every call
// is refused.
func TestCallsStopWaitsForCountedCallsAndRefusesNewOnes(t *testing.T) {
	closed := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
	c := newCalls()
	for _, counted := range []bool{true, true, false} {
		if err := c.begin(counted); err != nil {
			t.Fatal(err)
		}
	}
	idle := c.stop()
	if closed(idle) {
		t.Fatal("idle with two counted calls in flight")
	}
	for _, counted := range []bool{true, false} {
		if err := c.begin(counted); !errors.Is(err, errStopping) {
			t.Fatalf("begin(%v) while stopping: %v, want errStopping", counted, err)
		}
	}
	c.end()
	if closed(idle) {
		t.Fatal("idle with a counted call in flight")
	}
	c.end()
	if !closed(idle) {
		t.Fatal("not idle once the counted calls ended (the uncounted one is still open)")
	}
	if !closed(newCalls().stop()) {
		t.Fatal("a server with no call in flight is not idle at once")
	}
}
