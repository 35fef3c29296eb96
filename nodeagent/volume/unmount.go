package volume

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// maxUnmountRounds bounds the passes over stacked mounts.
const maxUnmountRounds = 8

// unmountBelow unmounts every mount point strictly below dir, deepest
// first, and fails if any remains.
func unmountBelow(dir string) error {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", dir, err)
	}
	for range maxUnmountRounds {
		mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(real))
		if err != nil {
			return fmt.Errorf("list mounts below %s: %w", dir, err)
		}
		var points []string
		for _, mi := range mounts {
			if mi.Mountpoint != real {
				points = append(points, mi.Mountpoint)
			}
		}
		if len(points) == 0 {
			return nil
		}
		sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
		for _, p := range points {
			if err := unmount(p); err != nil {
				return err
			}
		}
	}
	return fmt.Errorf("mounts remain below %s after %d rounds", dir, maxUnmountRounds)
}

// unmountAll removes every mount stacked on p.
func unmountAll(p string) error {
	for range maxUnmountRounds {
		err := unix.Unmount(p, unix.MNT_DETACH)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			return nil // not (or no longer) a mount point
		}
		if err != nil {
			return fmt.Errorf("unmount %s: %w", p, err)
		}
	}
	return fmt.Errorf("unmount %s: still mounted after %d rounds", p, maxUnmountRounds)
}

// unmount unmounts p, lazily when it is busy; "not mounted" is success.
func unmount(p string) error {
	err := unix.Unmount(p, 0)
	if errors.Is(err, unix.EBUSY) {
		err = unix.Unmount(p, unix.MNT_DETACH)
	}
	if err == nil || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
		return nil
	}
	return fmt.Errorf("unmount %s: %w", p, err)
}

// isNotEmpty reports a rmdir of a directory that still has entries.
func isNotEmpty(err error) bool {
	return errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST)
}
