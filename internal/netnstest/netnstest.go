// Package netnstest makes throwaway named network namespaces for the tests
// and benchmarks that need root: one per node or pod they pretend to have,
// never touching the machine's own network namespace.
//
// netns.NewNamed leaves the calling thread inside the new namespace, so
// every switch here happens on a locked OS thread that returns to its
// namespace before it is unlocked; a thread that cannot return stays
// locked and dies with its goroutine.
package netnstest

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Dir is where named network namespaces are bind-mounted.
const Dir = "/run/netns"

var seq atomic.Int64

// New makes a namespace with lo up, named after the test process, role
// and a sequence number, removed when the test ends; it returns its path.
func New(tb testing.TB, role string) string {
	tb.Helper()
	name := fmt.Sprintf("corraltest-%d-%s-%d", os.Getpid(), role, seq.Add(1))
	path, err := Create(name)
	tb.Cleanup(func() {
		if err := Remove(filepath.Join(Dir, name)); err != nil {
			tb.Errorf("delete netns %s: %v", name, err)
		}
	})
	if err != nil {
		tb.Fatalf("create netns %s: %v", name, err)
	}
	return path
}

// Create makes the named namespace with lo up and returns its path. On
// error the namespace may exist: Remove it.
func Create(name string) (string, error) {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		ns, err := netns.NewNamed(name) // enters it
		if err == nil {
			err = loUp(ns)
			ns.Close()
		}
		if serr := netns.Set(orig); serr != nil {
			errc <- fmt.Errorf("back to the original namespace: %w", serr)
			return // the thread stays locked and dies
		}
		runtime.UnlockOSThread()
		errc <- err
	}()
	return filepath.Join(Dir, name), <-errc
}

func loUp(ns netns.NsHandle) error {
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return err
	}
	return h.LinkSetUp(lo)
}

// Remove unmounts and removes a named namespace; one already gone is no
// error.
func Remove(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
		return err
	}
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

// Run runs fn on a locked thread inside the namespace at path (sockets it
// opens stay there) and returns the thread to its own namespace.
func Run(path string, fn func() error) error {
	target, err := netns.GetFromPath(path)
	if err != nil {
		return err
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- fmt.Errorf("back to the original namespace: %w", err)
			return // the thread stays locked and dies
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
