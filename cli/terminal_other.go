//go:build !linux

package cli

import "errors"

// isTerminal reports whether fd is a terminal: never, where corral has no
// raw-mode support (exec -t then runs without a TTY, as kubectl does for
// input that is not a terminal).
func isTerminal(uintptr) bool { return false }

// makeRaw is not supported on this platform.
func makeRaw(uintptr) (func(), error) {
	return nil, errors.New("raw terminal mode is only supported on Linux")
}
