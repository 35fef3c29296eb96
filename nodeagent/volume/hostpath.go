package volume

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	corralpb "github.com/corral-dev/corral/proto"
)

// hostPath types, as Kubernetes spells them.
const (
	hostPathUnset             = ""
	hostPathDirectoryOrCreate = "DirectoryOrCreate"
	hostPathDirectory         = "Directory"
	hostPathFileOrCreate      = "FileOrCreate"
	hostPathFile              = "File"
	hostPathSocket            = "Socket"
	hostPathCharDevice        = "CharDevice"
	hostPathBlockDevice       = "BlockDevice"
)

// checkHostPath runs Kubernetes' hostPath type check: "" checks nothing
// (a missing path becomes a directory, as container runtimes make it),
// the *OrCreate types create what is missing (a directory with mkdir -p
// 0755, an empty 0644 file whose parent must exist), the others require an
// existing object of that type. Symlinks are followed, as stat(2) does.
func checkHostPath(hp *corralpb.HostPathVolumeSource) error {
	path := hp.GetPath()
	if !filepath.IsAbs(path) {
		return errorf(ErrInvalid, "hostPath %q is not an absolute path", path)
	}
	typ := hp.GetType()
	switch typ {
	case hostPathUnset:
		// No check; but a missing path is created as a directory, as
		// Docker and containerd do for a bind mount's source, so that
		// manifests written for them (the tutorial's fluentd mounts
		// /var/lib/docker/containers) run here too.
		if !exists(path) {
			if err := os.MkdirAll(path, 0o755); err != nil {
				return fmt.Errorf("create directory %s: %w", path, underlying(err))
			}
		}
		return nil
	case hostPathDirectoryOrCreate:
		if !exists(path) {
			if err := os.MkdirAll(path, 0o755); err != nil {
				return fmt.Errorf("%w: create directory %s: %w", ErrHostPathType, path, underlying(err))
			}
			return nil
		}
		return wantType(path, fs.ModeDir, "a directory")
	case hostPathDirectory:
		return wantType(path, fs.ModeDir, "a directory")
	case hostPathFileOrCreate:
		if !exists(path) {
			return createFile(path)
		}
		return wantType(path, 0, "a file")
	case hostPathFile:
		return wantType(path, 0, "a file")
	case hostPathSocket:
		return wantType(path, fs.ModeSocket, "a socket file")
	case hostPathCharDevice:
		return wantType(path, fs.ModeDevice|fs.ModeCharDevice, "a character device")
	case hostPathBlockDevice:
		return wantType(path, fs.ModeDevice, "a block device")
	default:
		return errorf(ErrInvalid, "%s is an invalid volume type", typ)
	}
}

// wantType checks that path exists and its file type is exactly want
// (0 = regular file).
func wantType(path string, want fs.FileMode, what string) error {
	fi, err := os.Stat(path)
	if err == nil && fi.Mode().Type() == want {
		return nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		// Neither missing nor of another type: add why stat failed.
		return fmt.Errorf("%w: %s is not %s: %w", ErrHostPathType, path, what, underlying(err))
	}
	return errorf(ErrHostPathType, "hostPath type check failed: %s is not %s", path, what)
}

// createFile creates an empty file with mode 0644; its parent must exist.
func createFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("%w: create file %s: %w", ErrHostPathType, path, underlying(err))
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("%w: create file %s: %w", ErrHostPathType, path, err)
	}
	return nil
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// underlying strips a *fs.PathError so the path is not said twice.
func underlying(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
