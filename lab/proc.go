package lab

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is a detached process of the lab: its pid file and a marker that
// its command line must contain (so a reused pid is not taken for it).
type proc struct {
	pidFile string
	marker  []string
}

func nodeProc(dir, node string) proc {
	return proc{pidFile: filepath.Join(dir, node, "pid"), marker: []string{"--data-dir", filepath.Join(dir, node)}}
}

func registryProc(dir string) proc {
	return proc{pidFile: filepath.Join(dir, "registry.pid"), marker: []string{"registry", "--dir", dir}}
}

// pid returns the process's pid when it is alive, else 0.
func (p proc) pid() int {
	data, err := os.ReadFile(p.pidFile)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0
	}
	if !p.matches(pid) {
		return 0
	}
	return pid
}

// matches reports whether pid is alive (not a zombie) and runs p's command.
func (p proc) matches(pid int) bool {
	if !running(pid) {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	return bytes.Contains(cmdline, []byte(strings.Join(p.marker, "\x00")+"\x00")) ||
		bytes.HasSuffix(cmdline, []byte(strings.Join(p.marker, "\x00")))
}

// start runs bin with args detached: in its own session, stdin from
// /dev/null, stdout and stderr appended to logPath, in the network
// namespace at nsPath ("" for the host's), and records its pid.
func (p proc) start(bin string, args []string, logPath, nsPath string) (int, error) {
	if err := os.MkdirAll(filepath.Dir(logPath), 0o700); err != nil {
		return 0, fmt.Errorf("create log dir: %w", err)
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 0, fmt.Errorf("open log: %w", err)
	}
	defer logf.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", os.DevNull, err)
	}
	defer null.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, logf, logf
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if nsPath == "" {
		err = cmd.Start()
	} else {
		err = inNetns(nsPath, cmd.Start)
	}
	if err != nil {
		return 0, fmt.Errorf("start %s: %w", strings.Join(args, " "), err)
	}
	pid := cmd.Process.Pid
	_ = cmd.Process.Release()
	p.waitExec(pid, 5*time.Second)
	if err := writeAtomic(p.pidFile, []byte(strconv.Itoa(pid)+"\n"), 0o600); err != nil {
		return pid, err
	}
	return pid, nil
}

// waitExec waits until the new process pid shows p's command line, or is
// gone, or d passes. exec.Cmd.Start returns once the child has replaced its
// memory with the program's, which is before the kernel has laid out the
// program's arguments: for that moment /proc/PID/cmdline reads empty, and
// matches would take the process for a dead one (lab up then reported a
// server that had just started as exited, in about one start of 150).
func (p proc) waitExec(pid int, d time.Duration) {
	deadline := time.Now().Add(d)
	for !p.matches(pid) && running(pid) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
}

// running reports whether pid is alive and not a zombie.
func running(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] != 'Z'
}

// stop sends SIGTERM, waits up to grace, then SIGKILLs and waits for the
// process to be gone. It reports whether there was a process.
func (p proc) stop(grace time.Duration) bool {
	pid := p.pid()
	if pid == 0 {
		return false
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	if !waitGone(func() bool { return p.matches(pid) }, grace) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		waitGone(func() bool { return p.matches(pid) }, 5*time.Second)
	}
	return true
}

// kill sends SIGKILL and waits until the process is gone.
func (p proc) kill() bool {
	pid := p.pid()
	if pid == 0 {
		return false
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	waitGone(func() bool { return p.matches(pid) }, 5*time.Second)
	return true
}

// waitGone polls alive until it is false or d passes; true if gone.
func waitGone(alive func() bool, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for alive() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}
