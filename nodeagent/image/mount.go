package image

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// Mount gives container containerID a writable root filesystem over img: an overlayfs
// whose lower layers are the image's unpacked layers and whose upper and work
// directories are the container's own, under the store. It returns the mount point.
// Mounting a container that is already mounted returns its mount point unchanged, so an
// agent that restarts re-adopts running containers' filesystems. The container's
// record keeps img from garbage collection until RemoveContainerFS.
func (s *Store) Mount(ctx context.Context, containerID string, img *Image) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if err := checkContainerID(containerID); err != nil {
		return "", err
	}
	lowers, err := s.claim(containerID, img)
	if err != nil {
		return "", fmt.Errorf("mount container %s: %w", containerID, err)
	}
	dir := s.containerDir(containerID)
	rootfs := filepath.Join(dir, "rootfs")
	upper := filepath.Join(dir, "upper")
	work := filepath.Join(dir, "work")
	for _, d := range []string{rootfs, upper, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", fmt.Errorf("mount container %s: %w", containerID, err)
		}
	}
	mounted, err := isMountPoint(rootfs)
	if err != nil {
		return "", fmt.Errorf("mount container %s: %w", containerID, err)
	}
	if mounted {
		return rootfs, nil
	}
	if err := mountOverlay(rootfs, lowers, upper, work); err != nil {
		return "", fmt.Errorf("mount container %s: overlay on %s: %w", containerID, rootfs, err)
	}
	s.log.Debug("mounted container rootfs", "container", containerID, "image_id", img.ID, "layers", len(lowers))
	return rootfs, nil
}

// claim records that containerID uses img and returns the overlay lower directories,
// topmost first.
func (s *Store) claim(containerID string, img *Image) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.idx.Images[img.ID]
	if !ok {
		return nil, fmt.Errorf("image %s: %w", img.ID, ErrNotPresent)
	}
	for _, l := range rec.Layers {
		if _, ok := s.idx.Layers[l]; !ok {
			return nil, fmt.Errorf("image %s: layer %s: %w", img.ID, l, ErrNotPresent)
		}
	}
	s.idx.Containers[containerID] = rec.ID
	if err := s.touchLocked(rec); err != nil {
		return nil, err
	}
	lowers := s.RootFS(rec)
	slices.Reverse(lowers)
	if len(lowers) == 0 {
		lowers = []string{s.emptyDir()}
	}
	return lowers, nil
}

// Unmount unmounts container containerID's root filesystem, keeping its writable layer.
// Unmounting what is not mounted is not an error.
func (s *Store) Unmount(containerID string) error {
	if err := checkContainerID(containerID); err != nil {
		return err
	}
	rootfs := filepath.Join(s.containerDir(containerID), "rootfs")
	for range 8 { // mounts may be stacked
		mounted, err := isMountPoint(rootfs)
		if err != nil || !mounted {
			return err
		}
		err = unix.Unmount(rootfs, 0)
		if errors.Is(err, unix.EBUSY) {
			s.log.Warn("rootfs busy, detaching it lazily", "container", containerID)
			err = unix.Unmount(rootfs, unix.MNT_DETACH)
		}
		if err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("unmount container %s: %w", containerID, err)
		}
	}
	return fmt.Errorf("unmount container %s: still mounted", containerID)
}

// RemoveContainerFS unmounts and deletes container containerID's filesystem, its
// writable layer included, and releases its image for garbage collection.
func (s *Store) RemoveContainerFS(containerID string) error {
	if err := s.Unmount(containerID); err != nil {
		return err
	}
	if err := os.RemoveAll(s.containerDir(containerID)); err != nil {
		return fmt.Errorf("remove container %s filesystem: %w", containerID, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.idx.Containers[containerID]; !ok {
		return nil
	}
	delete(s.idx.Containers, containerID)
	return s.saveLocked()
}

func (s *Store) containerDir(id string) string { return filepath.Join(s.containersDir(), id) }

// checkContainerID refuses IDs that are not a single path component.
func checkContainerID(id string) error {
	if id == "" || id == "." || id == ".." || len(id) > 255 || strings.ContainsAny(id, "/\x00") {
		return fmt.Errorf("invalid container id %q", id)
	}
	return nil
}

// isMountPoint reports whether something is mounted on dir: its device differs from its
// parent's.
func isMountPoint(dir string) (bool, error) {
	var st, pst unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, fmt.Errorf("stat %s: %w", dir, err)
	}
	if err := unix.Lstat(filepath.Dir(dir), &pst); err != nil {
		return false, fmt.Errorf("stat %s: %w", filepath.Dir(dir), err)
	}
	return st.Dev != pst.Dev, nil
}

// mountOverlay mounts an overlayfs on target. It adds lower layers one by one through
// the new mount API ("lowerdir+", Linux 6.8+), which has no limit on their number or
// path length; older kernels get mount(2) with the options in one page.
func mountOverlay(target string, lowers []string, upper, work string) error {
	err := fsmountOverlay(target, lowers, upper, work)
	if !errors.Is(err, errNoLowerdirPlus) {
		return err
	}
	data := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", strings.Join(lowers, ":"), upper, work)
	if len(data) >= os.Getpagesize() {
		return fmt.Errorf("%d layers do not fit the mount options of this kernel", len(lowers))
	}
	return unix.Mount("overlay", target, "overlay", 0, data)
}

var errNoLowerdirPlus = errors.New("kernel lacks overlayfs lowerdir+")

func fsmountOverlay(target string, lowers []string, upper, work string) error {
	fd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if errors.Is(err, unix.ENOSYS) {
		return errNoLowerdirPlus
	}
	if err != nil {
		return fmt.Errorf("fsopen: %w", err)
	}
	defer unix.Close(fd)
	for i, l := range lowers {
		if err := unix.FsconfigSetString(fd, "lowerdir+", l); err != nil {
			if i == 0 && errors.Is(err, unix.EINVAL) {
				return errNoLowerdirPlus
			}
			return fmt.Errorf("lowerdir %s: %w", l, err)
		}
	}
	if err := unix.FsconfigSetString(fd, "upperdir", upper); err != nil {
		return fmt.Errorf("upperdir: %w", err)
	}
	if err := unix.FsconfigSetString(fd, "workdir", work); err != nil {
		return fmt.Errorf("workdir: %w", err)
	}
	if err := unix.FsconfigCreate(fd); err != nil {
		return fmt.Errorf("create: %w", err)
	}
	mfd, err := unix.Fsmount(fd, unix.FSMOUNT_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("fsmount: %w", err)
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("move mount: %w", err)
	}
	return nil
}
