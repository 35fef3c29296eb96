package volume

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"
)

var testNow = time.Date(2026, 11, 28, 12, 0, 0, 123456789, time.UTC)

// versionPayload is version v of a volume: a, b, c hold v; odd versions
// also have d.
func versionPayload(v int) payload {
	p := payload{}
	keys := []string{"a", "b", "c"}
	if v%2 == 1 {
		keys = append(keys, "d")
	}
	for _, k := range keys {
		p[k] = file{data: []byte(strconv.Itoa(v)), mode: 0o644}
	}
	return p
}

// readSnapshot reads the data directory "..data" points at. ok is false
// when the snapshot may be torn ("..data" moved while reading); a torn read
// is retried, never judged.
func readSnapshot(dir string) (files map[string]string, ok bool, err error) {
	ts, err := os.Readlink(filepath.Join(dir, dataLink))
	if err != nil {
		return nil, false, err
	}
	entries, err := os.ReadDir(filepath.Join(dir, ts))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	files = map[string]string{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, ts, e.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		files[e.Name()] = string(b)
	}
	again, err := os.Readlink(filepath.Join(dir, dataLink))
	if err != nil {
		return nil, false, err
	}
	return files, again == ts, nil
}

// checkSnapshot returns why files is not exactly one version, or "".
func checkSnapshot(files map[string]string) string {
	v, err := strconv.Atoi(files["a"])
	if err != nil {
		return fmt.Sprintf("a = %q", files["a"])
	}
	want := versionPayload(v)
	if len(files) != len(want) {
		return fmt.Sprintf("version %d has %d files, want %d: %v", v, len(files), len(want), files)
	}
	for k, f := range want {
		if files[k] != string(f.data) {
			return fmt.Sprintf("mixed versions: %v", files)
		}
	}
	return ""
}

// readers runs readers of dir until stop is closed and collects what they
// saw wrong.
type readers struct {
	dir                  string
	stop                 chan struct{}
	wg                   sync.WaitGroup
	mu                   sync.Mutex
	failures             []string
	snapshots, linkReads int
}

func (r *readers) fail(msg string) {
	r.mu.Lock()
	r.failures = append(r.failures, msg)
	r.mu.Unlock()
}

func (r *readers) stopped() bool {
	select {
	case <-r.stop:
		return true
	default:
		return false
	}
}

// snapshotReader reads whole sets through "..data": each must be exactly
// one version.
func (r *readers) snapshotReader() {
	defer r.wg.Done()
	for !r.stopped() {
		files, ok, err := readSnapshot(r.dir)
		if err != nil {
			r.fail(err.Error())
			return
		}
		if !ok {
			continue
		}
		r.snapshots++
		if msg := checkSnapshot(files); msg != "" {
			r.fail(msg)
		}
	}
}

// linkReader reads one file through its user-visible link: always whole,
// never older than before.
func (r *readers) linkReader() {
	defer r.wg.Done()
	last := 0
	for !r.stopped() {
		b, err := os.ReadFile(filepath.Join(r.dir, "a"))
		if errors.Is(err, fs.ErrNotExist) {
			continue // resolved into a directory removed meanwhile; reopen
		}
		if err != nil {
			r.fail(err.Error())
			return
		}
		v, err := strconv.Atoi(string(b))
		if err != nil || v < last {
			r.fail(fmt.Sprintf("a = %q after version %d", b, last))
		}
		last = v
		r.linkReads++
	}
}

func TestAtomicUpdateNeverShowsAPartialSet(t *testing.T) {
	dir := t.TempDir()
	if _, err := writeAtomic(dir, versionPayload(0), testNow); err != nil {
		t.Fatal(err)
	}
	const updates = 300
	r := &readers{dir: dir, stop: make(chan struct{})}
	r.wg.Add(2)
	go r.snapshotReader()
	go r.linkReader()
	for v := 1; v <= updates; v++ {
		if _, err := writeAtomic(dir, versionPayload(v), testNow.Add(time.Duration(v)*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
	}
	close(r.stop)
	r.wg.Wait()
	if len(r.failures) > 0 {
		t.Fatalf("%d bad reads, first: %s", len(r.failures), r.failures[0])
	}
	if r.snapshots == 0 || r.linkReads == 0 {
		t.Fatalf("readers made no progress: %d snapshots, %d link reads", r.snapshots, r.linkReads)
	}
	files, ok, err := readSnapshot(dir)
	if err != nil || !ok || files["a"] != strconv.Itoa(updates) {
		t.Fatalf("final snapshot %v %v %v", files, ok, err)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	if len(names) != 5 || !tsName.MatchString(names[0]) || names[1] != dataLink {
		t.Errorf("final entries %v: want one data directory, ..data and a b c", names)
	}
}
