package volume

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// maxResolveRetries bounds openat2's EAGAIN retries (a rename or mount
// raced with the lookup).
const maxResolveRetries = 16

// openBeneath opens rel below the directory dirfd. Resolution may not leave
// dirfd: ".." above it, absolute symlinks and symlinks leading out fail with
// EXDEV, /proc magic links with ELOOP.
func openBeneath(dirfd int, rel string, flags int) (int, error) {
	how := unix.OpenHow{
		Flags:   uint64(flags | unix.O_CLOEXEC),
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
	}
	for i := 0; ; i++ {
		fd, err := unix.Openat2(dirfd, rel, &how)
		if (errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR)) && i < maxResolveRetries {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "openat2", Path: rel, Err: err}
		}
		return fd, nil
	}
}

// mkdirBeneath creates the missing directories of rel below rootFD, one
// component at a time, each resolved beneath the root, with the root's
// permission bits (kubelet's SafeMakeDir).
func mkdirBeneath(rootFD int, rel string) error {
	var st unix.Stat_t
	if err := unix.Fstat(rootFD, &st); err != nil {
		return fmt.Errorf("stat volume root: %w", err)
	}
	perm := st.Mode & 0o777
	segs := strings.Split(rel, "/")
	for i, seg := range segs {
		fd, err := openBeneath(rootFD, strings.Join(segs[:i+1], "/"), unix.O_PATH)
		if err == nil {
			unix.Close(fd)
			continue
		}
		if !errors.Is(err, unix.ENOENT) {
			return err
		}
		parent := "."
		if i > 0 {
			parent = strings.Join(segs[:i], "/")
		}
		if err := mkdirAt(rootFD, parent, seg, perm); err != nil {
			return err
		}
	}
	return nil
}

// mkdirAt creates name in the directory parent (resolved beneath rootFD)
// and sets its mode without following a symlink swapped in meanwhile.
func mkdirAt(rootFD int, parent, name string, perm uint32) error {
	pfd, err := openBeneath(rootFD, parent, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	if err := unix.Mkdirat(pfd, name, perm); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return nil // made concurrently; resolving it again checks it
		}
		return fmt.Errorf("mkdir %s: %w", name, err)
	}
	dfd, err := openBeneath(pfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	if err := unix.Fchmod(dfd, perm); err != nil {
		return fmt.Errorf("chmod %s: %w", name, err)
	}
	return nil
}

// bindPin bind-mounts the object open as fd onto pin (created as a
// directory or an empty file to match). An existing pin of the same object
// is kept; a pin of anything else is unmounted first.
func bindPin(fd int, pin string) error {
	var src unix.Stat_t
	if err := unix.Fstat(fd, &src); err != nil {
		return fmt.Errorf("pin: stat source: %w", err)
	}
	isDir := src.Mode&unix.S_IFMT == unix.S_IFDIR
	if err := os.MkdirAll(filepath.Dir(pin), 0o750); err != nil {
		return fmt.Errorf("pin: %w", err)
	}
	var cur unix.Stat_t
	switch err := unix.Lstat(pin, &cur); {
	case err == nil && cur.Dev == src.Dev && cur.Ino == src.Ino:
		return nil
	case err == nil:
		if err := unmountAll(pin); err != nil {
			return fmt.Errorf("pin: %w", err)
		}
		if err := os.Remove(pin); err != nil {
			return fmt.Errorf("pin: %w", err)
		}
	case !errors.Is(err, unix.ENOENT):
		return fmt.Errorf("pin: stat %s: %w", pin, err)
	}
	if err := placeholder(pin, isDir); err != nil {
		return fmt.Errorf("pin: %w", err)
	}
	source := fmt.Sprintf("/proc/self/fd/%d", fd)
	if err := unix.Mount(source, pin, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		_ = os.Remove(pin) // an unused placeholder; the mount error is what matters
		return fmt.Errorf("pin: bind mount onto %s: %w", pin, err)
	}
	return nil
}

func placeholder(p string, dir bool) error {
	if dir {
		return os.Mkdir(p, 0o750)
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o640)
	if err != nil {
		return err
	}
	return f.Close()
}
