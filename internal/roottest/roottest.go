// Package roottest is the rule for tests that need root, or something
// only some machines have: where it is missing they skip, except under CI
// (the CI environment variable set), which runs them as root on a machine
// that has everything, so that a skip there cannot hide a failure.
package roottest

import (
	"fmt"
	"os"
	"testing"
)

// Require returns when the process runs as root, and otherwise fails tb
// under CI and skips it elsewhere. need says what the test needs root
// for ("real containers").
func Require(tb testing.TB, need string) {
	tb.Helper()
	if os.Geteuid() == 0 {
		return
	}
	SkipOrFail(tb, "needs root (%s)", need)
}

// SkipOrFail skips tb with the message, or fails it under CI.
func SkipOrFail(tb testing.TB, format string, args ...any) {
	tb.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") != "" {
		tb.Fatalf("%s; CI is set, so this fails instead of skipping", msg)
	}
	tb.Skip(msg)
}
