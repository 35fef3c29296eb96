package roottest

import (
	"fmt"
	"strings"
	"testing"
)

// recorder notes what SkipOrFail asks of a test instead of doing it.
type recorder struct {
	testing.TB
	fatal, skip string
}

func (r *recorder) Helper()                           {}
func (r *recorder) Fatalf(format string, args ...any) { r.fatal = fmt.Sprintf(format, args...) }
func (r *recorder) Skip(args ...any)                  { r.skip = fmt.Sprint(args...) }

func TestSkipOrFailFailsUnderCI(t *testing.T) {
	t.Setenv("CI", "true")
	r := &recorder{}
	SkipOrFail(r, "no pseudo-terminals here: %v", "ENOENT")
	if !strings.Contains(r.fatal, "no pseudo-terminals here: ENOENT") || !strings.Contains(r.fatal, "CI is set") {
		t.Fatalf("under CI: failed with %q, want the message and that CI is set", r.fatal)
	}
}

func TestSkipOrFailSkipsElsewhere(t *testing.T) {
	t.Setenv("CI", "")
	r := &recorder{}
	SkipOrFail(r, "needs root (%s)", "mounts")
	if r.fatal != "" || r.skip != "needs root (mounts)" {
		t.Fatalf("without CI: failed with %q, skipped with %q; want a skip only", r.fatal, r.skip)
	}
}
