package cli

import (
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// isTerminal reports whether fd is a terminal.
func isTerminal(fd uintptr) bool {
	_, err := unix.IoctlGetTermios(int(fd), unix.TCGETS)
	return err == nil
}

// makeRaw puts the terminal fd in raw mode, as cfmakeraw(3) describes it:
// no echo, no line editing, no signals from keys, no output processing,
// 8-bit bytes one at a time. It returns a function that restores the
// previous mode; calling it more than once is harmless.
func makeRaw(fd uintptr) (func(), error) {
	old, err := unix.IoctlGetTermios(int(fd), unix.TCGETS)
	if err != nil {
		return nil, fmt.Errorf("read terminal mode: %w", err)
	}
	raw := *old
	raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	raw.Oflag &^= unix.OPOST
	raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	raw.Cflag &^= unix.CSIZE | unix.PARENB
	raw.Cflag |= unix.CS8
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(int(fd), unix.TCSETS, &raw); err != nil {
		return nil, fmt.Errorf("set terminal to raw mode: %w", err)
	}
	var once sync.Once
	return func() {
		// Nothing is left to do if restoring fails: the terminal is
		// gone or the user resets it.
		once.Do(func() { _ = unix.IoctlSetTermios(int(fd), unix.TCSETS, old) })
	}, nil
}
