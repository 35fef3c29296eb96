package network

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// hostNS is an open handle on the node's network namespace with a netlink
// handle acting in it; close it after use.
type hostNS struct {
	ns netns.NsHandle
	nl *netlink.Handle
}

// openNS opens the namespace at path ("" the process's).
func openNS(path string) (*hostNS, error) {
	if path == "" {
		path = "/proc/self/ns/net"
	}
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("open network namespace %s: %w", path, err)
	}
	nl, err := netlink.NewHandleAt(ns)
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("netlink in network namespace %s: %w", path, err)
	}
	return &hostNS{ns: ns, nl: nl}, nil
}

func (h *hostNS) close() {
	h.nl.Close()
	_ = h.ns.Close()
}

// nft is an nftables connection into the namespace, valid while h is open.
func (h *hostNS) nft(opts ...nftables.ConnOption) (*nftables.Conn, error) {
	c, err := nftables.New(append(opts, nftables.WithNetNSFd(int(h.ns)))...)
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	return c, nil
}

// inNS runs fn on an OS thread that has entered ns, and returns the thread
// to its namespace afterwards. If that fails, the thread stays locked and
// ends with its goroutine, so no other goroutine runs in the wrong
// namespace.
func inNS(ns netns.NsHandle, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("current network namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter network namespace: %w", err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- fmt.Errorf("leave network namespace: %w", err)
			return // the thread stays locked: it dies with this goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// setSysctl writes value to /proc/sys/<key> in ns unless it holds it
// already. Sysctls under net/ are per namespace, /proc/sys shows the
// writing thread's.
func setSysctl(ns netns.NsHandle, key, value string) error {
	return inNS(ns, func() error {
		path := filepath.Join("/proc/sys", key)
		if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) == value {
			return nil
		}
		if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
			return fmt.Errorf("set %s=%s: %w", key, value, err)
		}
		return nil
	})
}
