package volume

import (
	"fmt"
	"os"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

// emptyDir media.
const (
	mediumDefault = ""
	mediumMemory  = "Memory"
)

// setupEmptyDir creates the emptyDir's directory, world-writable as
// kubelet makes it so that any container user can write, and for medium
// Memory mounts a tmpfs on it (size=sizeLimit when set) unless one is
// already there.
func (m *Manager) setupEmptyDir(dir string, src *corralpb.EmptyDirVolumeSource) error {
	switch src.GetMedium() {
	case mediumDefault, mediumMemory:
	default:
		return errorf(ErrInvalid, "emptyDir medium %q is not supported", src.GetMedium())
	}
	var size int64
	if s := src.GetSizeLimit(); s != "" {
		q, err := api.ParseQuantity(s)
		if err != nil {
			return fmt.Errorf("%w: emptyDir sizeLimit: %w", ErrInvalid, err)
		}
		size = q.Value()
		if size < 0 {
			return errorf(ErrInvalid, "emptyDir sizeLimit %q is negative", s)
		}
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("create emptyDir: %w", err)
	}
	if src.GetMedium() == mediumMemory {
		if err := mountTmpfs(dir, size); err != nil {
			return err
		}
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		return fmt.Errorf("create emptyDir: %w", err)
	}
	return nil
}

// mountTmpfs mounts a tmpfs of size bytes (0: the kernel's default, half of
// RAM) on dir unless dir is already a mount point.
func mountTmpfs(dir string, size int64) error {
	mounted, err := mountinfo.Mounted(dir)
	if err != nil {
		return fmt.Errorf("check emptyDir mount: %w", err)
	}
	if mounted {
		return nil
	}
	opts := "mode=0777"
	if size > 0 {
		opts = fmt.Sprintf("%s,size=%d", opts, size)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, opts); err != nil {
		return fmt.Errorf("mount tmpfs emptyDir (%s) on %s: %w", opts, dir, err)
	}
	return nil
}
