package probe

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"syscall"

	"github.com/vishvananda/netns"
)

// NetNSDialer dials from inside the network namespace at Path (a file
// such as /var/run/netns/NAME or /proc/PID/ns/net), so that a probe of
// 127.0.0.1 reaches the pod's loopback, not the host's.
//
// Each dial runs on a fresh goroutine locked to its OS thread: the thread
// enters the namespace, the socket is created there, and the thread
// returns to its own namespace before connecting (the socket stays in the
// pod's). If the thread cannot return, the goroutine ends still locked, so
// the Go runtime destroys the thread instead of reusing it in the wrong
// namespace. Host names are resolved in the host's namespace, as kubelet
// does.
type NetNSDialer struct {
	Path string
}

// DialContext dials address over network ("tcp", "tcp4", "tcp6") from
// inside the namespace.
func (d *NetNSDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("dial %s %s in netns %s: %w", network, address, d.Path, err)
	}
	if net.ParseIP(host) == nil {
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, fmt.Errorf("dial %s %s in netns %s: %w", network, address, d.Path, err)
		}
		if len(ips) == 0 {
			return nil, fmt.Errorf("dial %s %s in netns %s: no address for %s", network, address, d.Path, host)
		}
		host = ips[0].Unmap().String()
	}
	type result struct {
		conn net.Conn
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		conn, restored, err := d.dialLocked(ctx, network, net.JoinHostPort(host, port))
		ch <- result{conn, err}
		if restored {
			runtime.UnlockOSThread()
		}
		// Otherwise the goroutine exits locked: the runtime kills the thread.
	}()
	r := <-ch
	return r.conn, r.err
}

// dialLocked runs on a locked thread. restored reports whether the thread
// is back in its original namespace.
func (d *NetNSDialer) dialLocked(ctx context.Context, network, address string) (conn net.Conn, restored bool, err error) {
	orig, err := netns.Get()
	if err != nil {
		return nil, true, fmt.Errorf("dial %s %s in netns %s: current namespace: %w", network, address, d.Path, err)
	}
	defer orig.Close()
	target, err := netns.GetFromPath(d.Path)
	if err != nil {
		return nil, true, fmt.Errorf("dial %s %s in netns %s: %w", network, address, d.Path, err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		// setns(2) failed, so the thread did not move.
		return nil, true, fmt.Errorf("dial %s %s: enter netns %s: %w", network, address, d.Path, err)
	}
	var restoreErr error
	entered := true
	leave := func() {
		if !entered {
			return
		}
		entered = false
		restoreErr = netns.Set(orig)
	}
	dialer := net.Dialer{
		// Called once the socket exists, before connect(2): leave now.
		ControlContext: func(context.Context, string, string, syscall.RawConn) error {
			leave()
			return nil
		},
	}
	conn, err = dialer.DialContext(ctx, network, address)
	leave()
	// A thread that could not return is discarded by the caller; the
	// connection itself is sound, its socket belongs to the namespace.
	return conn, restoreErr == nil, err
}
