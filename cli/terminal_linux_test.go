package cli

import (
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/corral-dev/corral/internal/roottest"
)

// openPTY returns the two ends of a new pseudo-terminal, or skips the test
// where none can be made (outside CI).
func openPTY(t *testing.T) (ptm, pts *os.File) {
	t.Helper()
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		roottest.SkipOrFail(t, "no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { ptm.Close() })
	if err := unix.IoctlSetPointerInt(int(ptm.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(ptm.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	pts, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		roottest.SkipOrFail(t, "open pty: %v", err)
	}
	t.Cleanup(func() { pts.Close() })
	return ptm, pts
}

func TestMakeRawAndRestore(t *testing.T) {
	_, pts := openPTY(t)
	if !isTerminal(pts.Fd()) {
		t.Fatal("a pty is not a terminal")
	}
	f, err := os.CreateTemp(t.TempDir(), "plain")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isTerminal(f.Fd()) {
		t.Fatal("a regular file is a terminal")
	}
	before, err := unix.IoctlGetTermios(int(pts.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if before.Lflag&unix.ECHO == 0 || before.Lflag&unix.ICANON == 0 {
		t.Fatalf("a new pty is already raw: lflag %#x", before.Lflag)
	}
	restore, err := makeRaw(pts.Fd())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := unix.IoctlGetTermios(int(pts.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if raw.Lflag&(unix.ECHO|unix.ICANON|unix.ISIG) != 0 || raw.Oflag&unix.OPOST != 0 || raw.Iflag&unix.ICRNL != 0 || raw.Cc[unix.VMIN] != 1 {
		t.Fatalf("not raw: %+v", raw)
	}
	restore()
	restore() // harmless twice
	after, err := unix.IoctlGetTermios(int(pts.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if *after != *before {
		t.Fatalf("restored %+v, want %+v", after, before)
	}
}

func TestExecTTYFromTerminal(t *testing.T) {
	_, pts := openPTY(t)
	o := &execOptions{g: &globals{in: pts, errOut: os.Stderr}, stdin: true, tty: true}
	start, _, err := o.start([]string{"web", "sh"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !start.GetTty() || !start.GetStdin() {
		t.Fatalf("-it from a terminal: %v", start)
	}
}
