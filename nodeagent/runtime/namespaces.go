package runtime

import (
	"errors"
	"fmt"
	"os"
	goruntime "runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Persistent namespaces without a pause process: a namespace lives as long as something
// refers to it, and a bind mount of its /proc/<pid>/task/<tid>/ns/<kind> file is such a
// reference. A locked OS thread unshares the namespaces, the bind mounts pin them, and
// the thread goes back to the agent's namespaces.
//
// A Go thread left in another namespace must never run other goroutines: the thread
// is returned to the scheduler only after every switch back succeeded, and is otherwise
// left locked, so that it exits with its goroutine.

const (
	nsfsMagic  = 0x6e736673 // statfs type of a namespace file (NSFS_MAGIC)
	tmpfsMagic = 0x01021994 // statfs type of a tmpfs (TMPFS_MAGIC)
)

// nsRequest names the namespaces to make; an empty field skips that kind.
type nsRequest struct {
	netName  string // network namespace name under /run/netns (netns.NewNamed)
	ipcFile  string // file to bind the new IPC namespace on
	utsFile  string // file to bind the new UTS namespace on
	hostname string // set in the new UTS namespace
}

// makeNamespaces creates the requested namespaces on a dedicated, locked OS thread.
// On error, some of them may exist: the caller removes them (removeNamespaces).
func makeNamespaces(req nsRequest) error {
	errc := make(chan error, 1)
	go func() {
		goruntime.LockOSThread()
		restored, err := makeNamespacesLocked(req)
		if restored {
			goruntime.UnlockOSThread()
		} // else: the thread stays locked and exits with this goroutine.
		errc <- err
	}()
	return <-errc
}

// makeNamespacesLocked runs on a locked thread. It reports whether the thread is back
// in all of its original namespaces.
func makeNamespacesLocked(req nsRequest) (restored bool, err error) {
	orig, err := openThreadNamespaces()
	if err != nil {
		return true, err // nothing was changed yet
	}
	defer orig.close()
	err = enterNewNamespaces(req)
	if rerr := orig.restore(); rerr != nil {
		return false, errors.Join(err, rerr)
	}
	return true, err
}

func enterNewNamespaces(req nsRequest) error {
	if req.netName != "" {
		h, err := netns.NewNamed(req.netName) // the thread is now in the new netns
		if err != nil {
			return fmt.Errorf("create network namespace %s: %w", req.netName, err)
		}
		err = loopbackUp(h)
		h.Close()
		if err != nil {
			return err
		}
	}
	if req.ipcFile != "" {
		if err := unix.Unshare(unix.CLONE_NEWIPC); err != nil {
			return fmt.Errorf("unshare ipc namespace: %w", err)
		}
		if err := bindThreadNamespace("ipc", req.ipcFile); err != nil {
			return err
		}
	}
	if req.utsFile != "" {
		if err := unix.Unshare(unix.CLONE_NEWUTS); err != nil {
			return fmt.Errorf("unshare uts namespace: %w", err)
		}
		if err := unix.Sethostname([]byte(req.hostname)); err != nil {
			return fmt.Errorf("set hostname %q: %w", req.hostname, err)
		}
		if err := bindThreadNamespace("uts", req.utsFile); err != nil {
			return err
		}
	}
	return nil
}

// loopbackUp brings "lo" up in the network namespace h.
func loopbackUp(h netns.NsHandle) error {
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		return fmt.Errorf("netlink handle in pod netns: %w", err)
	}
	defer nl.Close()
	lo, err := nl.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find loopback in pod netns: %w", err)
	}
	if err := nl.LinkSetUp(lo); err != nil {
		return fmt.Errorf("bring loopback up in pod netns: %w", err)
	}
	return nil
}

// bindThreadNamespace bind-mounts the calling thread's namespace of kind onto target,
// which it creates.
func bindThreadNamespace(kind, target string) error {
	f, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return fmt.Errorf("create %s namespace file: %w", kind, err)
	}
	f.Close()
	src := fmt.Sprintf("/proc/%d/task/%d/ns/%s", os.Getpid(), unix.Gettid(), kind)
	if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind-mount %s namespace on %s: %w", kind, target, err)
	}
	return nil
}

// threadNamespaces are open handles on a thread's network, IPC and UTS namespaces.
type threadNamespaces map[int]int // CLONE_NEW* → fd

func openThreadNamespaces() (threadNamespaces, error) {
	ns := threadNamespaces{}
	for kind, name := range map[int]string{unix.CLONE_NEWNET: "net", unix.CLONE_NEWIPC: "ipc", unix.CLONE_NEWUTS: "uts"} {
		fd, err := unix.Open(fmt.Sprintf("/proc/thread-self/ns/%s", name), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			ns.close()
			return nil, fmt.Errorf("open current %s namespace: %w", name, err)
		}
		ns[kind] = fd
	}
	return ns, nil
}

// restore moves the calling thread back into the namespaces ns holds.
func (ns threadNamespaces) restore() error {
	var errs []error
	for kind, fd := range ns {
		if err := unix.Setns(fd, kind); err != nil {
			errs = append(errs, fmt.Errorf("return to namespace %#x: %w", kind, err))
		}
	}
	return errors.Join(errs...)
}

func (ns threadNamespaces) close() {
	for _, fd := range ns {
		unix.Close(fd)
	}
}

// unmountAndRemove detaches whatever is mounted on p and removes p; a missing p is fine.
func unmountAndRemove(p string) error {
	for {
		err := unix.Unmount(p, unix.MNT_DETACH)
		if err == nil {
			continue // stacked mounts: unmount until nothing is mounted there
		}
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EINVAL) { // EINVAL: not a mount point
			return fmt.Errorf("unmount %s: %w", p, err)
		}
		break
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", p, err)
	}
	return nil
}

// fsType is the statfs type of p, 0 when p cannot be inspected.
func fsType(p string) int64 {
	var st unix.Statfs_t
	if err := unix.Statfs(p, &st); err != nil {
		return 0
	}
	return int64(st.Type)
}
