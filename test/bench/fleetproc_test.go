package bench

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/corral-dev/corral/pki"
	"github.com/corral-dev/corral/test/framework"
)

// fleetChildEnv, when set, turns this test binary into a process of
// simulated agents (see startFleetProcess); its value is a fleetSpec.
const fleetChildEnv = "CORRAL_BENCH_SIM_FLEET"

// fleetSpec is what a fleet process runs.
type fleetSpec struct {
	// CACert and CAKey are the cluster CA (PEM) the agents' node
	// certificates are issued from.
	CACert []byte            `json:"caCert"`
	CAKey  []byte            `json:"caKey"`
	Addrs  []string          `json:"addrs"`
	Nodes  int               `json:"nodes"`
	Prefix string            `json:"prefix"`
	Labels map[string]string `json:"labels"`
}

// runFleetChild runs the simulated agents spec describes until its stdin
// ends (the benchmark closed it, or died), then stops them.
func runFleetChild(spec string) int {
	var s fleetSpec
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		fmt.Fprintf(os.Stderr, "fleet process: %s: %v\n", fleetChildEnv, err)
		return 2
	}
	ca, err := pki.ParseCA(s.CACert, s.CAKey)
	if err != nil {
		fmt.Fprintf(os.Stderr, "fleet process: %v\n", err)
		return 2
	}
	f, err := framework.DialSimFleet(ca, s.Addrs)
	if err != nil {
		fmt.Fprintf(os.Stderr, "fleet process: %v\n", err)
		return 1
	}
	for i := 0; i < s.Nodes; i++ {
		f.Start(framework.SimAgentConfig{Name: fmt.Sprintf("%s-%05d", s.Prefix, i), Labels: s.Labels})
	}
	serveFleetCommands(f, os.Stdin, os.Stdout)
	f.Close()
	return 0
}

// serveFleetCommands runs the commands the benchmark sends a fleet process,
// one per line, answering each with a line: "ok" or the error. It returns
// when in ends (the benchmark closed it, or died).
//
//   - following: how many agents follow their assignments
//     (framework.SimFleet.Following);
//   - gc: a full garbage collection, so that the agents' process, which
//     stands in for machines of their own, does not collect during the
//     rollout on the servers' CPUs because of what the agents' start-up
//     left behind (as the testing package collects before a benchmark);
//   - numgc: the number of garbage collections completed so far;
//   - cpuprofile PATH: start profiling the agents' process into PATH;
//   - stopprofile: stop it.
func serveFleetCommands(f *framework.SimFleet, in io.Reader, out io.Writer) {
	var prof *os.File
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		verb, arg, _ := strings.Cut(sc.Text(), " ")
		reply := "ok"
		var err error
		switch verb {
		case "following":
			reply = fmt.Sprintf("ok %d", f.Following())
		case "gc":
			runtime.GC()
		case "numgc":
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			reply = fmt.Sprintf("ok %d", m.NumGC)
		case "cpuprofile":
			if prof != nil {
				err = errors.New("already profiling")
				break
			}
			if prof, err = os.Create(arg); err != nil {
				break
			}
			if err = pprof.StartCPUProfile(prof); err != nil {
				_ = prof.Close()
				prof = nil
			}
		case "stopprofile":
			if prof != nil {
				pprof.StopCPUProfile()
				err = prof.Close()
				prof = nil
			}
		default:
			err = fmt.Errorf("unknown command %q", verb)
		}
		if err != nil {
			reply = err.Error()
		}
		if _, err := fmt.Fprintln(out, reply); err != nil {
			return
		}
	}
}

// fleetProcess is a running process of simulated agents.
type fleetProcess struct {
	Pid   int
	stdin io.WriteCloser
	reply *bufio.Scanner
}

// do runs one command in the fleet process (see serveFleetCommands), waits
// for it to finish and returns what its reply has after "ok".
func (p *fleetProcess) do(b *testing.B, command string) string {
	b.Helper()
	if _, err := fmt.Fprintln(p.stdin, command); err != nil {
		b.Fatalf("fleet process: %s: %v", command, err)
	}
	if !p.reply.Scan() {
		b.Fatalf("fleet process: %s: no reply (%v)", command, p.reply.Err())
	}
	r := p.reply.Text()
	if r != "ok" && !strings.HasPrefix(r, "ok ") {
		b.Fatalf("fleet process: %s: %s", command, r)
	}
	return strings.TrimPrefix(strings.TrimPrefix(r, "ok"), " ")
}

// numGC is the number of garbage collections the fleet process has
// completed.
func (p *fleetProcess) numGC(b *testing.B) uint32 {
	b.Helper()
	n, err := strconv.ParseUint(p.do(b, "numgc"), 10, 32)
	if err != nil {
		b.Fatalf("fleet process: numgc: %v", err)
	}
	return uint32(n)
}

// following is how many of the fleet process's agents follow their
// assignments.
func (p *fleetProcess) following(b *testing.B) int {
	b.Helper()
	n, err := strconv.Atoi(p.do(b, "following"))
	if err != nil {
		b.Fatalf("fleet process: following: %v", err)
	}
	return n
}

// startFleetProcess runs spec's agents in a child process (this test
// binary again), so that this process holds the servers alone: its memory
// and CPU profile are theirs. The agents stop when the benchmark ends.
func startFleetProcess(b *testing.B, spec fleetSpec) *fleetProcess {
	b.Helper()
	data, err := json.Marshal(spec)
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), fleetChildEnv+"="+string(data))
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatalf("start the fleet process: %v", err)
	}
	b.Cleanup(func() {
		_ = stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return &fleetProcess{Pid: cmd.Process.Pid, stdin: stdin, reply: bufio.NewScanner(stdout)}
}
