package image

import (
	"errors"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type fakeDisk struct {
	mu    sync.Mutex
	usage Usage
}

func (d *fakeDisk) set(capacity, available uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.usage = Usage{Capacity: capacity, Available: available}
}

func (d *fakeDisk) read(string) (Usage, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.usage, nil
}

// gcFixture pulls images "a", "b", "c" (used in that order, an hour apart), each with
// a 100-byte layer of its own on a shared 50-byte base layer.
func gcFixture(t *testing.T) (*Store, *fakeClock, *fakeDisk, map[string]*Image) {
	t.Helper()
	host := startRegistry(t, nil)
	clock := &fakeClock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	disk := &fakeDisk{}
	s := newStore(t, func(o *Options) {
		o.Now = clock.Now
		o.DiskUsage = disk.read
		o.MinimumGCAge = 30 * time.Minute
	})
	base := layer(t, file("base", strings.Repeat("b", 50)))
	imgs := map[string]*Image{}
	for _, n := range []string{"a", "b", "c"} {
		ref := host + "/" + n + ":v1"
		push(t, ref, buildImage(t, v1.Config{}, base, layer(t, file(n, strings.Repeat(n, 100)))))
		img, _, _, err := s.Pull(ctxT(t), ref, PullIfNotPresent, nil)
		if err != nil {
			t.Fatal(err)
		}
		imgs[n] = img
		clock.advance(time.Hour)
	}
	return s, clock, disk, imgs
}

func TestGCRemovesLeastRecentlyUsedUntilLow(t *testing.T) {
	s, _, disk, imgs := gcFixture(t)
	ctx := ctxT(t)

	disk.set(1000, 160) // 84% used: below the high threshold
	if res, err := s.GC(ctx, nil, 85, 80); err != nil || len(res.Removed) != 0 || res.UsagePercent != 84 {
		t.Fatalf("GC below high = %+v, %v; want nothing removed", res, err)
	}

	// 90% used; getting to 80% needs 100 bytes: a's own layer (100) is enough.
	disk.set(1000, 100)
	res, err := s.GC(ctx, []string{imgs["c"].Refs[0]}, 85, 80)
	if err != nil {
		t.Fatalf("GC: %v", err)
	}
	if res.Needed != 100 || res.Freed != 100 || !slices.Equal(res.Removed, []string{imgs["a"].ID}) {
		t.Errorf("GC = %+v; want a removed, 100 bytes freed", res)
	}
	if _, err := s.Get(imgs["a"].ID); !errors.Is(err, ErrNotPresent) {
		t.Errorf("a after GC: %v", err)
	}
	if _, err := os.Stat(s.RootFS(imgs["a"])[1]); !os.IsNotExist(err) {
		t.Errorf("a's own layer left on disk: %v", err)
	}
	if _, err := os.Stat(s.RootFS(imgs["b"])[0]); err != nil {
		t.Errorf("shared base layer removed: %v", err)
	}

	// Still 90%: b goes; c is in use, so the 100 bytes asked for twice are not there.
	disk.set(1000, 0)
	res, err = s.GC(ctx, []string{imgs["c"].ID}, 85, 80)
	if !errors.Is(err, ErrGCInsufficient) {
		t.Fatalf("GC with too little eligible: %+v, %v; want ErrGCInsufficient", res, err)
	}
	if !slices.Equal(res.Removed, []string{imgs["b"].ID}) || res.Freed != 100 || res.Needed != 200 {
		t.Errorf("GC = %+v; want b removed, 100 of 200 bytes freed", res)
	}
	if _, err := s.Get(imgs["c"].Refs[0]); err != nil {
		t.Errorf("in-use image c removed: %v", err)
	}
}

func TestGCKeepsRecentAndClaimedImages(t *testing.T) {
	s, clock, disk, imgs := gcFixture(t)
	ctx := ctxT(t)
	// A use of a makes b the least recently used.
	if _, _, _, err := s.Pull(ctx, imgs["a"].Refs[0], PullIfNotPresent, nil); err != nil {
		t.Fatal(err)
	}
	clock.advance(-50 * time.Minute) // c was added 10 minutes ago: too young
	disk.set(1000, 0)
	s.mu.Lock()
	s.idx.Containers["ctr"] = imgs["a"].ID // a container claims a
	s.mu.Unlock()
	res, err := s.GC(ctx, nil, 85, 80)
	if !errors.Is(err, ErrGCInsufficient) || !slices.Equal(res.Removed, []string{imgs["b"].ID}) {
		t.Errorf("GC = %+v, %v; want only b removed and ErrGCInsufficient", res, err)
	}
	if _, err := s.GC(ctx, nil, 80, 85); err == nil {
		t.Errorf("GC accepted low > high")
	}
}

func TestRemove(t *testing.T) {
	host := startRegistry(t, nil)
	img := testImage(t, "x")
	push(t, host+"/app:v1", img)
	push(t, host+"/app:v2", img)
	s := newStore(t, nil)
	ctx := ctxT(t)
	for _, tag := range []string{"v1", "v2"} {
		if _, _, _, err := s.Pull(ctx, host+"/app:"+tag, PullIfNotPresent, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Remove(host + "/app:v1"); err != nil {
		t.Fatalf("Remove v1: %v", err)
	}
	got, err := s.Get(host + "/app:v2")
	if err != nil {
		t.Fatalf("v2 after untagging v1: %v", err)
	}
	if _, err := s.Get(host + "/app:v1"); !errors.Is(err, ErrNotPresent) {
		t.Errorf("v1 after Remove: %v", err)
	}
	if err := s.Remove(host + "/app:v2"); err != nil {
		t.Fatalf("Remove v2: %v", err)
	}
	if _, err := s.Get(got.ID); !errors.Is(err, ErrNotPresent) {
		t.Errorf("image after removing its last tag: %v", err)
	}
	for _, d := range s.RootFS(got) {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("layer %s left: %v", d, err)
		}
	}
	if err := s.Remove(host + "/app:v2"); !errors.Is(err, ErrNotPresent) {
		t.Errorf("Remove of an absent image: %v", err)
	}
}
