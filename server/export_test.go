package server

import "time"

// SetStopGrace sets how long Stop waits for calls in flight, and returns
// the function that restores it.
func SetStopGrace(d time.Duration) (restore func()) {
	old := stopGrace
	stopGrace = d
	return func() { stopGrace = old }
}
