package raftstore

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	corralpb "github.com/corral-dev/corral/proto"
	"github.com/corral-dev/corral/raftstore/state"
)

func TestBootstrapExpectInAnyOrder(t *testing.T) {
	for _, order := range [][]int{{0, 1, 2}, {2, 0, 1}} {
		t.Run(fmt.Sprint(order), func(t *testing.T) {
			c := newTestCluster(t, 3)
			c.startAll(order...)
			l := c.leader()
			// One configuration of three voters, the same on every server.
			for _, nd := range c.nodes {
				waitFor(t, nd.name+" to see three voters", 10*time.Second, func() bool {
					f := nd.srv.raft.GetConfiguration()
					return f.Error() == nil && len(f.Configuration().Servers) == 3
				})
			}
			waitFor(t, "three member records", 10*time.Second, func() bool {
				ms, err := l.srv.State().Members(nil)
				return err == nil && len(ms) == 3
			})
			ms, err := l.srv.Members(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			leaders := 0
			for _, m := range ms {
				if m.RaftState == "Leader" {
					leaders++
				}
				if !m.Voter || m.ApiAddr == "" {
					t.Errorf("member %+v: want a voter with an API address", m)
				}
			}
			if leaders != 1 {
				t.Errorf("members report %d leaders, want 1: %v", leaders, ms)
			}
			// The default namespaces exist from bootstrap.
			for _, ns := range []string{"default", "kube-system", "kube-public"} {
				o, err := l.srv.State().Get(nil, "Namespace", "", ns)
				if err != nil || o == nil {
					t.Errorf("namespace %s missing after bootstrap (err %v)", ns, err)
				}
			}
		})
	}
}

func TestLeaderFailoverWritesThroughSurvivors(t *testing.T) {
	c := newTestCluster(t, 3)
	c.startAll()
	l := c.leader()
	for i, nd := range c.nodes {
		mustWrite(t, nd, put(configMap(fmt.Sprintf("before-%d", i), "x")))
	}
	c.stop(l)
	nl := c.leader()
	if nl == l {
		t.Fatal("old leader still leads")
	}
	for i, nd := range c.nodes {
		if nd.srv == nil {
			continue
		}
		name := fmt.Sprintf("after-%d", i)
		mustWrite(t, nd, put(configMap(name, "y")))
		// Linearizable: a write acknowledged through one survivor is read
		// through the other at once.
		for _, other := range c.nodes {
			if other.srv != nil && mustRead(t, other, name) != "y" {
				t.Errorf("%s does not see %s written through %s", other.name, name, nd.name)
			}
		}
	}
	for i := range c.nodes {
		for _, nd := range c.nodes {
			if nd.srv != nil && mustRead(t, nd, fmt.Sprintf("before-%d", i)) != "x" {
				t.Errorf("%s lost before-%d", nd.name, i)
			}
		}
	}
}

// TestTransferLeadershipKeepsWritesFlowing: a leader about to stop hands
// its leadership over. When TransferLeadership returns it no longer leads,
// and writes made through it all the while, which Raft refuses during the
// transfer, land on the next leader instead of failing.
func TestTransferLeadershipKeepsWritesFlowing(t *testing.T) {
	c := newTestCluster(t, 3)
	c.startAll()
	l := c.leader()
	mustWrite(t, l, put(configMap("warm", "v")))
	var (
		written atomic.Int64
		wg      sync.WaitGroup
		mu      sync.Mutex
		failed  []error
	)
	stop := make(chan struct{})
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				res, err := l.srv.Write(ctx, put(configMap(fmt.Sprintf("w%d-%d", w, i), "v")))
				cancel()
				if err == nil && res.GetCode() != corralpb.ErrorCode_OK {
					err = fmt.Errorf("%v %s", res.GetCode(), res.GetMessage())
				}
				if err != nil {
					mu.Lock()
					failed = append(failed, err)
					mu.Unlock()
					return
				}
				written.Add(1)
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }() // if the test fails first
	waitFor(t, "writes through the leader", 10*time.Second, func() bool { return written.Load() >= 20 })
	if err := l.srv.TransferLeadership(); err != nil {
		t.Fatal(err)
	}
	if l.srv.raft.State() == raft.Leader {
		t.Fatal("still the leader after handing leadership over")
	}
	n := written.Load()
	waitFor(t, "writes through the old leader landing on the next", 10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return written.Load() >= n+20 || len(failed) > 0
	})
	close(stop)
	wg.Wait()
	stop = make(chan struct{}) // for the deferred close
	for _, err := range failed {
		t.Errorf("a write through the leader failed during the handover: %v", err)
	}
	if nl := c.leader(); nl == l {
		t.Fatal("the old leader leads again")
	}
	// A follower has no leadership to hand over.
	if err := l.srv.TransferLeadership(); err != nil {
		t.Fatalf("a follower's TransferLeadership: %v", err)
	}
}

// A leader that loses its quorum while a write is in flight does not
// answer "maybe": it waits until a leader is back and its own log shows
// whether the entry committed, then returns what it did, or writes it
// again if the next leader dropped it. A create is acknowledged exactly
// once, never refused as "already exists" by its own first attempt.
func TestWriteInFlightWhenLeadershipIsLostSettles(t *testing.T) {
	c := newTestCluster(t, 3)
	logs := &logBuffer{}
	c.logs = logs
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	})
	// The old leader waits for the outcome at most the apply timeout: as
	// long as a loaded machine may take to elect a leader again.
	c.applyTimeout = time.Minute
	c.startAll()
	l := c.leader()
	mustWrite(t, l, put(configMap("before", "x")))
	var followers []*node
	for _, nd := range c.nodes {
		if nd != l {
			followers = append(followers, nd)
			c.stop(nd)
		}
	}
	create := put(configMap("in-flight", "y"))
	create.Ops[0].Precondition = corralpb.Op_MUST_NOT_EXIST
	type outcome struct {
		res *corralpb.BatchResult
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		res, err := l.srv.Write(ctx, create)
		done <- outcome{res, err}
	}()
	waitFor(t, "the leader to step down without its quorum", 15*time.Second, func() bool { return !l.srv.IsLeader() })
	select {
	case o := <-done:
		t.Fatalf("the write returned before its fate was known: %v, %v", o.res, o.err)
	default:
	}
	for _, nd := range followers {
		c.start(nd, c.config(nd, len(c.nodes), c.addrs(nd)))
	}
	var o outcome
	select {
	case o = <-done:
	case <-time.After(90 * time.Second):
		t.Fatal("the write never returned")
	}
	if o.err != nil || o.res.GetCode() != corralpb.ErrorCode_OK {
		t.Fatalf("write: %v, %v: want it applied once and acknowledged", o.res, o.err)
	}
	nl := c.leader()
	for _, nd := range c.nodes {
		if got := mustRead(t, nd, "in-flight"); got != "y" {
			t.Errorf("%s reads %q (leader %s)", nd.name, got, nl.name)
		}
	}
}

func TestRestartedServerCatchesUpFromSnapshot(t *testing.T) {
	c := newTestCluster(t, 3)
	for _, nd := range c.nodes {
		cfg := c.config(nd, 3, c.addrs(nd))
		cfg.SnapshotThreshold, cfg.TrailingLogs = 16, 8
		c.start(nd, cfg)
	}
	l := c.leader()
	var down *node
	for _, nd := range c.nodes {
		if nd != l {
			down = nd
			break
		}
	}
	downCfg := c.config(down, 3, c.addrs(down))
	c.stop(down)
	for i := 0; i < 200; i++ {
		mustWrite(t, l, put(configMap(fmt.Sprintf("cm-%03d", i), "v")))
	}
	if err := l.srv.raft.Snapshot().Error(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	first, err := l.srv.logs.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	if first <= 10 {
		t.Fatalf("log not compacted: first index %d", first)
	}
	c.start(down, downCfg)
	waitFor(t, "restarted server to catch up", 15*time.Second, func() bool {
		objs, err := down.srv.State().List(nil, "ConfigMap", "default")
		return err == nil && len(objs) == 200
	})
}

func TestFullRestartKeepsEveryObject(t *testing.T) {
	c := newTestCluster(t, 3)
	c.startAll()
	l := c.leader()
	for i := 0; i < 50; i++ {
		mustWrite(t, c.nodes[i%3], put(configMap(fmt.Sprintf("cm-%02d", i), fmt.Sprint(i))))
	}
	_ = l
	for _, nd := range c.nodes {
		c.stop(nd)
	}
	for _, nd := range c.nodes {
		c.start(nd, c.config(nd, 3, c.addrs(nd)))
	}
	nl := c.leader()
	for i := 0; i < 50; i++ {
		if got := mustRead(t, nl, fmt.Sprintf("cm-%02d", i)); got != fmt.Sprint(i) {
			t.Errorf("cm-%02d = %q after restart, want %q", i, got, fmt.Sprint(i))
		}
	}
}

func TestConcurrentCompareAndSetExactlyOneWins(t *testing.T) {
	c := newTestCluster(t, 3)
	c.startAll()
	c.leader()
	res := mustWrite(t, c.nodes[0], put(configMap("contended", "0")))
	rv := res.GetObjects()[0].GetConfigMap().GetMetadata().GetResourceVersion()
	const writers = 12
	var wg sync.WaitGroup
	codes := make([]corralpb.ErrorCode, writers)
	for i := 0; i < writers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			b := &corralpb.Batch{Ops: []*corralpb.Op{{Type: corralpb.Op_PUT, Object: configMap("contended", fmt.Sprint(i+1)),
				Precondition: corralpb.Op_RESOURCE_VERSION, ResourceVersion: rv}}}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			r, err := c.nodes[i%3].srv.Write(ctx, b)
			if err != nil {
				t.Errorf("writer %d: %v", i, err)
				return
			}
			codes[i] = r.GetCode()
		}(i)
	}
	wg.Wait()
	wins := 0
	for i, code := range codes {
		switch code {
		case corralpb.ErrorCode_OK:
			wins++
		case corralpb.ErrorCode_CONFLICT:
		default:
			t.Errorf("writer %d: code %v", i, code)
		}
	}
	if wins != 1 {
		t.Fatalf("%d writers won the compare-and-set, want exactly 1", wins)
	}
}

func TestConcurrentWritesShareRaftEntries(t *testing.T) {
	c := newTestCluster(t, 3)
	c.startAll()
	l := c.leader()
	before := l.srv.raft.LastIndex()
	const writers, each = 64, 10
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				r, err := l.srv.Write(ctx, put(configMap(fmt.Sprintf("w%d-%d", w, i), "v")))
				cancel()
				if err != nil || r.GetCode() != corralpb.ErrorCode_OK {
					t.Errorf("write: %v %v", err, r.GetMessage())
					return
				}
			}
		}(w)
	}
	wg.Wait()
	entries := l.srv.raft.LastIndex() - before
	if entries >= writers*each {
		t.Fatalf("%d batches used %d raft entries: no group commit", writers*each, entries)
	}
	objs, err := l.srv.State().List(nil, "ConfigMap", "default")
	if err != nil || len(objs) != writers*each {
		t.Fatalf("stored %d objects (err %v), want %d", len(objs), err, writers*each)
	}
}

// Concurrent writes to a follower are forwarded to the leader together,
// and each writer gets its own batch's result.
func TestConcurrentWritesThroughFollowerShareForwards(t *testing.T) {
	c := newTestCluster(t, 3)
	c.startAll()
	l := c.leader()
	var f *node
	for _, nd := range c.nodes {
		if nd != l {
			f = nd
			break
		}
	}
	const writers, each = 64, 10
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				name := fmt.Sprintf("f%d-%d", w, i)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				r, err := f.srv.Write(ctx, put(configMap(name, "v")))
				cancel()
				if err != nil || r.GetCode() != corralpb.ErrorCode_OK {
					t.Errorf("write %s: %v %v", name, err, r.GetMessage())
					return
				}
				if got := r.GetObjects()[0].GetConfigMap().GetMetadata().GetName(); got != name {
					t.Errorf("write %s got the result of %s", name, got)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	if calls := f.srv.forwardCalls.Load(); calls >= writers*each {
		t.Fatalf("%d batches took %d forward calls: none shared one", writers*each, calls)
	}
	objs, err := l.srv.State().List(nil, "ConfigMap", "default")
	if err != nil || len(objs) != writers*each {
		t.Fatalf("stored %d objects (err %v), want %d", len(objs), err, writers*each)
	}
}

func TestJoinExistingCluster(t *testing.T) {
	c := newTestCluster(t, 4)
	for _, nd := range c.nodes[:3] {
		var join []string
		for _, o := range c.nodes[:3] {
			if o != nd {
				join = append(join, o.apiAddr)
			}
		}
		c.start(nd, c.config(nd, 3, join))
	}
	c.leader()
	fourth := c.nodes[3]
	c.start(fourth, c.config(fourth, 0, []string{c.nodes[1].apiAddr}))
	waitFor(t, "fourth server to become a voter", 15*time.Second, func() bool {
		return fourth.srv.inRaftConfig(fourth.name) && fourth.srv.memberByName(fourth.name).apiAddr == fourth.apiAddr
	})
	mustWrite(t, fourth, put(configMap("from-fourth", "4")))
	if got := mustRead(t, c.nodes[0], "from-fourth"); got != "4" {
		t.Fatalf("write through the joined server not visible: %q", got)
	}
	// Removing it shrinks the configuration and the member table.
	if err := c.nodes[0].srv.RemoveServer(context.Background(), fourth.name); err != nil {
		t.Fatal(err)
	}
	l := c.leader()
	if l.srv.inRaftConfig(fourth.name) {
		t.Fatal("removed server still in the raft configuration")
	}
}

func TestSnapshotSaveAndRestoreIntoNewCluster(t *testing.T) {
	c := newTestCluster(t, 3)
	c.startAll()
	l := c.leader()
	for i := 0; i < 20; i++ {
		mustWrite(t, l, put(configMap(fmt.Sprintf("keep-%02d", i), fmt.Sprint(i))))
	}
	var buf bytes.Buffer
	if err := c.nodes[1].srv.SaveSnapshot(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "backup.snap")
	if err := os.WriteFile(file, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	restored := newTestCluster(t, 1)
	nd := restored.nodes[0]
	if err := RestoreSnapshot(file, nd.dir); err != nil {
		t.Fatal(err)
	}
	if err := RestoreSnapshot(file, c.nodes[0].dir); err == nil {
		t.Fatal("restore into a data dir with raft state succeeded")
	}
	restored.start(nd, restored.config(nd, 1, nil))
	restored.leader()
	waitFor(t, "snapshot restored", 15*time.Second, func() bool {
		objs, err := nd.srv.State().List(nil, "ConfigMap", "default")
		return err == nil && len(objs) == 20
	})
	if got := mustRead(t, nd, "keep-07"); got != "7" {
		t.Fatalf("keep-07 = %q", got)
	}
	// Members describe the new cluster, and new writes get newer versions.
	waitFor(t, "members of the new cluster only", 10*time.Second, func() bool {
		ms, _ := nd.srv.State().Members(nil)
		return len(ms) == 1 && ms[0].GetName() == nd.name && ms[0].GetApiAddr() == nd.apiAddr
	})
	res := mustWrite(t, nd, put(configMap("new", "n")))
	if res.GetIndex() <= buf2index(t, buf.Bytes()) {
		t.Fatalf("new write index %d not after the snapshot's", res.GetIndex())
	}
	if nd.srv.raft.State() != raft.Leader {
		t.Fatal("restored single server is not leader")
	}
}

// buf2index returns the latest index recorded in a snapshot.
func buf2index(t *testing.T, data []byte) uint64 {
	t.Helper()
	st, err := state.Restore(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return st.LatestIndex()
}

// Servers renew their own certificates at 50-80 % of their validity from
// the replicated CA, and the cluster goes on across renewals: Raft and
// peer connections made after a renewal use the new certificate, and one
// that expired is never needed again.
func TestServerCertificatesRenewThemselves(t *testing.T) {
	c := newTestCluster(t, 3)
	for _, nd := range c.nodes {
		cfg := c.config(nd, 3, c.addrs(nd))
		cfg.CertValidity = 3 * time.Second
		c.start(nd, cfg)
	}
	l := c.leader()
	first := map[string]*x509.Certificate{}
	for _, nd := range c.nodes {
		first[nd.name] = nd.srv.Credentials().Leaf()
	}
	expired := time.Time{}
	for _, cert := range first {
		if cert.NotAfter.After(expired) {
			expired = cert.NotAfter
		}
	}
	waitFor(t, "every server past its first certificate's expiry on a renewed one", 20*time.Second, func() bool {
		if time.Now().Before(expired) {
			return false
		}
		for _, nd := range c.nodes {
			leaf := nd.srv.Credentials().Leaf()
			if leaf.SerialNumber.Cmp(first[nd.name].SerialNumber) == 0 || time.Now().After(leaf.NotAfter) {
				return false
			}
		}
		return true
	})
	for _, nd := range c.nodes {
		if nd == l {
			continue
		}
		name := "after-renewal-" + nd.name
		mustWrite(t, nd, put(configMap(name, "v")))
		if got := mustRead(t, l, name); got != "v" {
			t.Fatalf("write through %s after renewals: read %q", nd.name, got)
		}
	}
}

// A new leader tells its subscribers (the DaemonSet controller and the
// other leader-only loops) that it leads only after its barrier: by then
// its store has applied every entry the old leader committed, even those
// the old leader died before telling the followers were committed. A
// controller planning from less could miss the pods the old leader made.
func TestLeadershipIsPublishedAfterTheBarrier(t *testing.T) {
	c := newTestCluster(t, 3)
	c.startAll()
	l := c.leader()
	var survivors []*node
	var subs []<-chan bool
	for _, nd := range c.nodes {
		if nd == l {
			continue
		}
		ch := nd.srv.SubscribeLeadership()
		if <-ch {
			t.Fatalf("follower %s was told it leads", nd.name)
		}
		survivors, subs = append(survivors, nd), append(subs, ch)
	}
	for i := range 20 {
		mustWrite(t, l, put(configMap(fmt.Sprintf("last-%d", i), "x")))
	}
	committed := l.srv.State().LatestIndex()
	c.stop(l) // at once: no hand-over, nor a heartbeat telling the last commit
	timeout := time.After(15 * time.Second)
	for {
		var nd *node
		var v bool
		select {
		case v = <-subs[0]:
			nd = survivors[0]
		case v = <-subs[1]:
			nd = survivors[1]
		case <-timeout:
			t.Fatal("no survivor was told it leads")
		}
		if !v {
			continue
		}
		if applied := nd.srv.State().LatestIndex(); applied < committed {
			t.Fatalf("%s was told it leads with index %d applied, before the old leader's last commit at %d", nd.name, applied, committed)
		}
		if mustRead(t, nd, "last-19") != "x" {
			t.Fatalf("%s lost the old leader's last write", nd.name)
		}
		return
	}
}
