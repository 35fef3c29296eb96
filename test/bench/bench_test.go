// Package bench holds the benchmarks behind the README's performance
// figures that need whole servers: writes through the cluster API, leader
// failover of real processes, and a server's idle memory.
package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/corral-dev/corral/internal/writeload"
	corralpb "github.com/corral-dev/corral/proto"
	"github.com/corral-dev/corral/test/framework"
)

func configMap(name string) *corralpb.Object {
	return &corralpb.Object{Kind: &corralpb.Object_ConfigMap{ConfigMap: &corralpb.ConfigMap{
		Metadata: &corralpb.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"bench": "yes"}},
		Data:     map[string]string{"key": "value"},
	}}}
}

// BenchmarkAPIWrites measures object creates through the gRPC cluster API
// of a three-server in-process cluster (validation, defaulting, Raft, FSM
// and the reply), sent to the leader by 1, 64 and 256 concurrent clients.
func BenchmarkAPIWrites(b *testing.B) {
	for _, clients := range []int{1, 64, 256} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			c := framework.NewInProcess(b, 3)
			cl := c.Client(b, framework.Leader(b, c))
			drive(b, clients, func(n, i int) error {
				_, err := cl.Create(context.Background(), &corralpb.CreateRequest{Object: configMap(fmt.Sprintf("cm-%d-%d", n, i))})
				return err
			})
		})
	}
}

// drive runs b.N rounds of writes from clients goroutines, 20,000 writes a
// round (2,000 with one client), each round's figures reported as
// writeload.Run reports them.
func drive(b *testing.B, clients int, write func(round, i int) error) {
	total := 20000
	if clients == 1 {
		total = 2000
	}
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		writeload.Run(b, clients, total, func(_, i int) error { return write(n, i) })
	}
}

// BenchmarkProcessFailover kills (SIGKILL) the leader of three `corral
// server` processes running with the default Raft timeouts and measures
// the time until a write through a survivor succeeds.
func BenchmarkProcessFailover(b *testing.B) {
	var total time.Duration
	for n := 0; n < b.N; n++ {
		c := framework.NewProcesses(b, 3)
		l := framework.Leader(b, c)
		survivor := (l + 1) % 3
		cl := c.Client(b, survivor)
		if _, err := cl.Create(context.Background(), &corralpb.CreateRequest{Object: configMap("warm")}); err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		c.Kill(b, l)
		for i := 0; ; i++ {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err := cl.Create(ctx, &corralpb.CreateRequest{Object: configMap(fmt.Sprintf("after-%d", i))})
			cancel()
			if err == nil {
				break
			}
			if time.Since(t0) > 30*time.Second {
				b.Fatalf("no write succeeded 30s after the leader died: %v", err)
			}
		}
		total += time.Since(t0)
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "failover-ms")
}

// BenchmarkProcessStop stops (SIGTERM) the leader of three `corral server`
// processes, as a restart for an upgrade does, while a client writes
// through a survivor one write after another. Reported: the longest wait
// of a write, retries included, from before the signal until after the
// process exited (write-gap-ms), and how long the process took to exit
// (stop-ms). A leader hands its leadership over before it stops.
func BenchmarkProcessStop(b *testing.B) {
	var gap, stop time.Duration
	for n := 0; n < b.N; n++ {
		c := framework.NewProcesses(b, 3)
		l := framework.Leader(b, c)
		cl := c.Client(b, (l+1)%3)
		write := func(name string) error {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := cl.Create(ctx, &corralpb.CreateRequest{Object: configMap(name)})
			return err
		}
		if err := write("warm"); err != nil {
			b.Fatal(err)
		}
		stopped := make(chan time.Duration)
		go func() {
			t0 := time.Now()
			c.Terminate(b, l)
			stopped <- time.Since(t0)
		}()
		var took, longest time.Duration
		// Write until ten writes after the process exited.
		for i, after := 0, -1; after < 10; i++ {
			t0 := time.Now()
			for {
				err := write(fmt.Sprintf("w-%d", i))
				if err == nil {
					break
				}
				if time.Since(t0) > 30*time.Second {
					b.Fatalf("no write succeeded for 30 s while the leader stopped: %v", err)
				}
			}
			longest = max(longest, time.Since(t0))
			if after >= 0 {
				after++
				continue
			}
			select {
			case took = <-stopped:
				after = 0
			default:
			}
		}
		gap += longest
		stop += took
	}
	b.ReportMetric(float64(gap.Milliseconds())/float64(b.N), "write-gap-ms")
	b.ReportMetric(float64(stop.Milliseconds())/float64(b.N), "stop-ms")
}

// BenchmarkIdleRSS starts a single `corral server` with no flags but its
// data dir and addresses, lets it settle, and reports its resident memory.
func BenchmarkIdleRSS(b *testing.B) {
	bin := framework.Binary(b)
	for n := 0; n < b.N; n++ {
		dir := b.TempDir()
		cmd := exec.Command(bin, "server", "--name", "idle", "--data-dir", dir,
			"--api-addr", "127.0.0.1:0", "--raft-addr", "127.0.0.1:0", "--no-agent")
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		framework.WaitFor(b, "admin.conf", 20*time.Second, func() bool {
			_, err := os.Stat(filepath.Join(dir, "admin.conf"))
			return err == nil
		})
		time.Sleep(5 * time.Second) // idle means idle: let start-up garbage be collected
		rss := rssKiB(b, cmd.Process.Pid)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		b.ReportMetric(float64(rss)/1024, "idle-RSS-MiB")
	}
}

func rssKiB(b *testing.B, pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			v, err := strconv.Atoi(f[1])
			if err != nil {
				b.Fatal(err)
			}
			return v
		}
	}
	b.Fatal("no VmRSS")
	return 0
}
