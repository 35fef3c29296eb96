// Package writeload drives the write benchmarks: concurrent clients doing
// writes one after another, measured as throughput, latency percentiles
// and the CPU the process used meanwhile. The Raft-level benchmarks
// (raftstore) and the whole-server ones (test/bench) report the same
// figures the same way through it.
package writeload

import (
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Run runs clients goroutines, each calling write sequentially (client is
// the goroutine's number, i the write's) until total writes are done, and
// reports writes/s, p50-ms, p99-ms and cores: the CPU time this process
// used meanwhile over the elapsed time, in cores of GOMAXPROCS. Cores
// below GOMAXPROCS mean the load waits on something other than the CPU.
func Run(b *testing.B, clients, total int, write func(client, i int) error) {
	b.Helper()
	lat := make([][]time.Duration, clients)
	var next atomic.Int64
	var wg sync.WaitGroup
	cpu0 := processCPU(b)
	start := time.Now()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= total {
					return
				}
				t0 := time.Now()
				if err := write(c, i); err != nil {
					b.Error(err)
					return
				}
				lat[c] = append(lat[c], time.Since(t0))
			}
		}(c)
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := processCPU(b) - cpu0
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	if len(all) == 0 {
		b.Fatal("no writes completed")
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "writes/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(cpu.Seconds()/elapsed.Seconds(), "cores")
}

// processCPU is the CPU time, user and system, this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
