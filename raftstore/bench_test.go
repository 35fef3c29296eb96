package raftstore

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/corral-dev/corral/internal/writeload"
	"github.com/corral-dev/corral/pki"
	corralpb "github.com/corral-dev/corral/proto"
)

// benchTotal is the number of writes per measurement: enough for stable
// figures, bounded so `make bench` stays short.
func benchTotal(clients int) int {
	if clients == 1 {
		return 2000
	}
	return 40000
}

// BenchmarkWrites measures object writes (one ConfigMap PUT per batch)
// through a three-server corral cluster on loopback, submitted on the
// leader, at 1, 64 and 256 concurrent clients.
func BenchmarkWrites(b *testing.B) {
	for _, clients := range []int{1, 64, 256} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			c := newTestCluster(b, 3)
			c.startAll()
			l := c.leader()
			b.ResetTimer()
			for n := 0; n < b.N; n++ {
				writeload.Run(b, clients, benchTotal(clients), func(_, i int) error {
					res, err := l.srv.Write(context.Background(), put(configMap(fmt.Sprintf("cm-%d-%d", n, i), "v")))
					if err == nil && res.GetCode() != corralpb.ErrorCode_OK {
						err = fmt.Errorf("%v: %s", res.GetCode(), res.GetMessage())
					}
					return err
				})
			}
		})
	}
}

// BenchmarkBareRaft measures the same load on bare hashicorp/raft with
// raft-boltdb and a no-op FSM, three nodes on loopback TCP with the same
// timeouts: the floor corral's figures are compared against.
func BenchmarkBareRaft(b *testing.B) {
	for _, clients := range []int{1, 64, 256} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			leader := bareRaftCluster(b, 3)
			payload := make([]byte, 200)
			b.ResetTimer()
			for n := 0; n < b.N; n++ {
				writeload.Run(b, clients, benchTotal(clients), func(_, _ int) error {
					return leader.Apply(payload, 10*time.Second).Error()
				})
			}
		})
	}
}

type nopFSM struct{}

func (nopFSM) Apply(*raft.Log) any                 { return nil }
func (nopFSM) Snapshot() (raft.FSMSnapshot, error) { return nopSnapshot{}, nil }
func (nopFSM) Restore(rc io.ReadCloser) error      { return rc.Close() }

type nopSnapshot struct{}

func (nopSnapshot) Persist(s raft.SnapshotSink) error { return s.Close() }
func (nopSnapshot) Release()                          {}

func bareRaftCluster(b *testing.B, n int) *raft.Raft {
	b.Helper()
	var nodes []*raft.Raft
	var conf raft.Configuration
	var layers []*streamLayer
	// The same mutual-TLS stream layer as corral's: what corral adds on
	// top of Raft is measured, not the cost of encryption.
	ca, err := pki.NewCA(time.Now())
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < n; i++ {
		creds, err := ca.IssueCredentials(pki.Identity{Role: pki.RoleServer, Name: fmt.Sprint(i)}, time.Now(), time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		only := pki.OnlyRole(pki.RoleServer)
		layer, addr, err := listenRaft("127.0.0.1:0", creds.ServerConfig(tls.RequireAndVerifyClientCert, only), creds.ClientConfig(pki.ServerName, only))
		if err != nil {
			b.Fatal(err)
		}
		layers = append(layers, layer)
		conf.Servers = append(conf.Servers, raft.Server{ID: raft.ServerID(fmt.Sprint(i)), Address: raft.ServerAddress(addr)})
	}
	for i := 0; i < n; i++ {
		rc := raft.DefaultConfig()
		rc.LocalID = raft.ServerID(fmt.Sprint(i))
		rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = 300*time.Millisecond, 300*time.Millisecond, 150*time.Millisecond
		rc.CommitTimeout = DefaultCommitTimeout
		rc.MaxAppendEntries, rc.BatchApplyCh = 256, true
		rc.Logger = hclog.NewNullLogger()
		dir := b.TempDir()
		logs, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db")})
		if err != nil {
			b.Fatal(err)
		}
		snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 1, rc.Logger)
		if err != nil {
			b.Fatal(err)
		}
		trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{Stream: layers[i], MaxPool: 3, Timeout: 10 * time.Second, Logger: rc.Logger})
		r, err := raft.NewRaft(rc, nopFSM{}, logs, logs, snaps, trans)
		if err != nil {
			b.Fatal(err)
		}
		if err := r.BootstrapCluster(conf).Error(); err != nil {
			b.Fatal(err)
		}
		nodes = append(nodes, r)
		b.Cleanup(func() { _ = r.Shutdown().Error(); _ = trans.Close(); _ = logs.Close() })
	}
	var leader *raft.Raft
	waitFor(b, "bare raft leader", 10*time.Second, func() bool {
		for _, r := range nodes {
			if r.State() == raft.Leader {
				leader = r
				return true
			}
		}
		return false
	})
	return leader
}

// BenchmarkFailover measures the time from killing the leader until a write
// through a survivor succeeds again.
func BenchmarkFailover(b *testing.B) {
	var total time.Duration
	for n := 0; n < b.N; n++ {
		c := newTestCluster(b, 3)
		for _, nd := range c.nodes {
			cfg := c.config(nd, 3, c.addrs(nd))
			cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 0, 0, 0 // production LAN defaults
			c.start(nd, cfg)
		}
		l := c.leader()
		mustWrite(b, l, put(configMap("warm", "v")))
		var survivor *node
		for _, nd := range c.nodes {
			if nd != l {
				survivor = nd
			}
		}
		t0 := time.Now()
		c.stop(l)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			res, err := survivor.srv.Write(ctx, put(configMap("after", "v")))
			cancel()
			if err == nil && res.GetCode() == corralpb.ErrorCode_OK {
				break
			}
		}
		total += time.Since(t0)
		_ = net.IPv4len
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "failover-ms")
}
