package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
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
	_, _ = io.Copy(io.Discard, os.Stdin)
	f.Close()
	return 0
}

// startFleetProcess runs spec's agents in a child process (this test
// binary again), so that this process holds the servers alone: its memory
// and CPU profile are theirs. The agents stop when the benchmark ends.
func startFleetProcess(b *testing.B, spec fleetSpec) *exec.Cmd {
	b.Helper()
	data, err := json.Marshal(spec)
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), fleetChildEnv+"="+string(data))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
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
	return cmd
}
