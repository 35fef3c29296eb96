package lab

import (
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// A started process is recognised by pid as soon as start returns, even
// when it shows its command line only a moment after the exec (the kernel
// lays out a program's arguments after the parent has resumed, and a lab
// server seen in that moment was reported as exited); one that exits at
// once is not waited for and reads as gone.
func TestStartWaitsForTheCommandLine(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := proc{pidFile: filepath.Join(dir, "pid"), marker: []string{"sleep", "600"}}
	// sh's own command line holds "sleep 600", not the marker's two
	// arguments: only the exec'd sleep matches.
	pid, err := p.start(sh, []string{"-c", "sleep 0.2; exec sleep 600"}, filepath.Join(dir, "log"), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) }) // when the test fails before its kill
	got := p.pid()
	if !p.kill() {
		t.Fatalf("kill found no process %d", pid)
	}
	if got != pid {
		t.Fatalf("pid() = %d right after starting %d", got, pid)
	}
	if p.pid() != 0 {
		t.Fatalf("process %d still seen after kill", pid)
	}

	if _, err := p.start(sh, []string{"-c", "exit 3"}, filepath.Join(dir, "log"), ""); err != nil {
		t.Fatal(err)
	}
	if got := p.pid(); got != 0 {
		t.Fatalf("a process that exited at once: pid() = %d", got)
	}
}
