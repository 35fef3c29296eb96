package state

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	corralpb "github.com/corral-dev/corral/proto"
)

// BenchmarkApplyPut measures object writes through Apply as the FSM sees
// them under group commit: entries of 64 single-op batches, each creating
// a pod. One b.N iteration is one object write.
func BenchmarkApplyPut(b *testing.B) {
	const perEntry = 64
	s := newStoreWithNamespaces(b, "default")
	entries := make([]*corralpb.LogEntry, 0, b.N/perEntry+1)
	for i := 0; i < b.N; i += perEntry {
		e := &corralpb.LogEntry{}
		for j := i; j < i+perEntry && j < b.N; j++ {
			pod := podObj("default", fmt.Sprintf("pod-%08d", j), fmt.Sprintf("node-%04d", j%5000), "ds-uid")
			e.Batches = append(e.Batches, batch(createOp(pod)))
		}
		entries = append(entries, e)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i, e := range entries {
		res := s.Apply(uint64(i+2), e)
		if r := res.GetResults()[0]; r.GetCode() != corralpb.ErrorCode_OK {
			b.Fatalf("%s: %s", r.GetCode(), r.GetMessage())
		}
	}
}

// BenchmarkApplyUpdate is BenchmarkApplyPut for compare-and-set updates of
// existing pods (status reports).
func BenchmarkApplyUpdate(b *testing.B) {
	const perEntry, pods = 64, 10000
	s := newStoreWithNamespaces(b, "default")
	fill(b, s, pods)
	b.ReportAllocs()
	b.ResetTimer()
	index := s.LatestIndex()
	for i := 0; i < b.N; i += perEntry {
		index++
		e := &corralpb.LogEntry{}
		for j := i; j < i+perEntry && j < b.N; j++ {
			pod := podObj("default", fmt.Sprintf("pod-%08d", j%pods), "node-1", "ds-uid")
			e.Batches = append(e.Batches, batch(&corralpb.Op{Type: corralpb.Op_PUT, Object: pod, Precondition: corralpb.Op_MUST_EXIST}))
		}
		if r := s.Apply(index, e).GetResults()[0]; r.GetCode() != corralpb.ErrorCode_OK {
			b.Fatalf("%s: %s", r.GetCode(), r.GetMessage())
		}
	}
}

// BenchmarkApplyStatus is BenchmarkApplyUpdate for status reports: STATUS
// ops that change only a pod's status, as agents send them.
func BenchmarkApplyStatus(b *testing.B) {
	const perEntry, pods = 64, 10000
	s := newStoreWithNamespaces(b, "default")
	fill(b, s, pods)
	b.ReportAllocs()
	b.ResetTimer()
	index := s.LatestIndex()
	for i := 0; i < b.N; i += perEntry {
		index++
		e := &corralpb.LogEntry{}
		for j := i; j < i+perEntry && j < b.N; j++ {
			pod := &corralpb.Pod{Metadata: &corralpb.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("pod-%08d", j%pods)},
				Status: &corralpb.PodStatus{Phase: "Running", PodIp: fmt.Sprintf("10.42.0.%d", index%250)}}
			e.Batches = append(e.Batches, batch(&corralpb.Op{Type: corralpb.Op_STATUS, Object: &corralpb.Object{Kind: &corralpb.Object_Pod{Pod: pod}}}))
		}
		if r := s.Apply(index, e).GetResults()[0]; r.GetCode() != corralpb.ErrorCode_OK {
			b.Fatalf("%s: %s", r.GetCode(), r.GetMessage())
		}
	}
}

// fill creates n pods in namespace default, 64 per entry.
func fill(b *testing.B, s *Store, n int) {
	b.Helper()
	index := s.LatestIndex()
	for i := 0; i < n; i += 64 {
		index++
		var ops []*corralpb.Op
		for j := i; j < i+64 && j < n; j++ {
			ops = append(ops, putOp(podObj("default", fmt.Sprintf("pod-%08d", j), fmt.Sprintf("node-%04d", j%5000), "ds-uid")))
		}
		applyOK(b, s, index, ops...)
	}
}

// BenchmarkPersist100k measures a snapshot of 100,000 pods.
func BenchmarkPersist100k(b *testing.B) {
	s := newStoreWithNamespaces(b, "default")
	fill(b, s, 100000)
	size := len(persist(b, s))
	b.SetBytes(int64(size))
	b.ResetTimer()
	for range b.N {
		if err := s.Persist(io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRestore100k measures restoring a snapshot of 100,000 pods.
func BenchmarkRestore100k(b *testing.B) {
	s := newStoreWithNamespaces(b, "default")
	fill(b, s, 100000)
	data := persist(b, s)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for range b.N {
		if _, err := Restore(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}
