package image

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// OCI whiteout markers in layer tars.
const (
	whiteoutPrefix = ".wh."
	whiteoutOpaque = ".wh..wh..opq"
)

// Overlayfs's own markers: a 0/0 character device hides a lower file, this xattr makes
// a directory hide the lower layers' contents.
const (
	overlayOpaqueXattr = "trusted.overlay.opaque"
	overlayXattrPrefix = "trusted.overlay."
	paxXattrPrefix     = "SCHILY.xattr."
)

// unpacker writes one layer tar into its own directory in overlayfs's format.
type unpacker struct {
	root   string
	log    *slog.Logger
	root0  bool     // running as root: ownership and device nodes are kept
	opaque []string // directories to mark opaque once every entry is written
	dirs   []*tar.Header
	size   int64
}

// unpackLayer extracts the layer tar r into root, which must exist and be empty, and
// returns the bytes of regular files written. Whiteouts become overlayfs whiteouts
// (".wh.name" → a 0/0 character device "name"; ".wh..wh..opq" → the directory gets
// trusted.overlay.opaque=y). Entries and hard links that would land outside root are
// refused with ErrPathEscape; symlinks met on the way are resolved inside root.
func unpackLayer(ctx context.Context, root string, r io.Reader, log *slog.Logger) (int64, error) {
	u := &unpacker{root: root, log: log, root0: os.Geteuid() == 0}
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("read tar: %w", err)
		}
		if err := u.entry(hdr, tr); err != nil {
			return 0, fmt.Errorf("entry %q: %w", hdr.Name, err)
		}
	}
	for _, dir := range u.opaque {
		if err := unix.Lsetxattr(dir, overlayOpaqueXattr, []byte("y"), 0); err != nil {
			return 0, fmt.Errorf("mark %s opaque: %w", dir, err)
		}
	}
	// Directory times last: writing into a directory changes its mtime.
	for _, hdr := range slices.Backward(u.dirs) {
		target, err := u.target(hdr.Name)
		if err != nil {
			return 0, err
		}
		if err := setTimes(target, hdr); err != nil && !errors.Is(err, unix.ENOENT) {
			return 0, fmt.Errorf("set times of %q: %w", hdr.Name, err)
		}
	}
	return u.size, nil
}

// cleanName turns a tar entry name into a path relative to the root, refusing names
// that climb out of it. "" means the root itself.
func cleanName(name string) (string, error) {
	p := path.Clean(strings.TrimLeft(name, "/"))
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", fmt.Errorf("%w: %q", ErrPathEscape, name)
	}
	if p == "." {
		return "", nil
	}
	return p, nil
}

// target resolves the host path of an entry: its parent resolved inside the root
// (directories created as needed), then its own last component, not followed.
func (u *unpacker) target(name string) (string, error) {
	p, err := cleanName(name)
	if err != nil {
		return "", err
	}
	if p == "" {
		return u.root, nil
	}
	parent, err := resolveInRoot(u.root, path.Dir(p), true)
	if err != nil {
		return "", err
	}
	return filepath.Join(parent, path.Base(p)), nil
}

func (u *unpacker) entry(hdr *tar.Header, r io.Reader) error {
	base := path.Base(hdr.Name)
	if base == whiteoutOpaque {
		dir, err := u.target(path.Dir(hdr.Name))
		if err != nil {
			return err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		u.opaque = append(u.opaque, dir)
		return nil
	}
	if hidden, ok := strings.CutPrefix(base, whiteoutPrefix); ok {
		if hidden == "" || hidden == "." || hidden == ".." {
			return fmt.Errorf("%w: whiteout of %q", ErrPathEscape, hidden)
		}
		target, err := u.target(path.Join(path.Dir(hdr.Name), hidden))
		if err != nil {
			return err
		}
		if err := os.RemoveAll(target); err != nil {
			return err
		}
		return unix.Mknod(target, unix.S_IFCHR, 0)
	}
	target, err := u.target(hdr.Name)
	if err != nil {
		return err
	}
	if err := u.clear(target, hdr); err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := os.Mkdir(target, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
		u.dirs = append(u.dirs, hdr)
	case tar.TypeReg:
		if err := u.writeFile(target, r); err != nil {
			return err
		}
	case tar.TypeSymlink:
		if err := os.Symlink(hdr.Linkname, target); err != nil {
			return err
		}
	case tar.TypeLink:
		return u.hardlink(target, hdr.Linkname) // shares the target's metadata
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		if ok, err := u.mknod(target, hdr); !ok || err != nil {
			return err
		}
	default:
		u.log.Debug("skipped tar entry of unsupported type", "path", hdr.Name, "type", string(hdr.Typeflag))
		return nil
	}
	return u.metadata(target, hdr)
}

// clear removes what is at target unless both it and the entry are directories
// (a later entry replaces an earlier one; directories merge).
func (u *unpacker) clear(target string, hdr *tar.Header) error {
	if target == u.root {
		if hdr.Typeflag != tar.TypeDir {
			return fmt.Errorf("%w: the root must be a directory", ErrPathEscape)
		}
		return nil
	}
	fi, err := os.Lstat(target)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() && hdr.Typeflag == tar.TypeDir {
		return nil
	}
	return os.RemoveAll(target)
}

func (u *unpacker) writeFile(target string, r io.Reader) error {
	f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, r)
	u.size += n
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// hardlink links target to the entry linkname names, which must already be in this
// layer, inside the root.
func (u *unpacker) hardlink(target, linkname string) error {
	lp, err := cleanName(linkname)
	if err != nil {
		return fmt.Errorf("hard link: %w", err)
	}
	if lp == "" {
		return fmt.Errorf("hard link to the layer root")
	}
	parent, err := resolveInRoot(u.root, path.Dir(lp), false)
	if err != nil {
		return fmt.Errorf("hard link target %q: %w", linkname, err)
	}
	src := filepath.Join(parent, path.Base(lp))
	fi, err := os.Lstat(src)
	if err != nil {
		return fmt.Errorf("hard link target %q: %w", linkname, err)
	}
	if fi.IsDir() {
		return fmt.Errorf("hard link target %q is a directory", linkname)
	}
	return os.Link(src, target)
}

// mknod creates a device node or FIFO; without privilege a device is skipped (ok false).
func (u *unpacker) mknod(target string, hdr *tar.Header) (ok bool, err error) {
	mode := uint32(hdr.Mode & 0o7777)
	switch hdr.Typeflag {
	case tar.TypeChar:
		mode |= unix.S_IFCHR
	case tar.TypeBlock:
		mode |= unix.S_IFBLK
	default:
		mode |= unix.S_IFIFO
	}
	dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
	err = unix.Mknod(target, mode, int(dev))
	if errors.Is(err, unix.EPERM) && !u.root0 {
		u.log.Debug("skipped device node without privilege", "path", hdr.Name)
		return false, nil
	}
	return err == nil, err
}

// metadata applies ownership, xattrs, mode and times. Symlinks get no mode; ownership
// is kept only when running as root.
func (u *unpacker) metadata(target string, hdr *tar.Header) error {
	if u.root0 {
		if err := os.Lchown(target, hdr.Uid, hdr.Gid); err != nil {
			return err
		}
	}
	for key, value := range hdr.PAXRecords {
		attr, ok := strings.CutPrefix(key, paxXattrPrefix)
		if !ok || strings.HasPrefix(attr, overlayXattrPrefix) {
			continue // a layer does not get to set overlayfs's own attributes
		}
		if err := unix.Lsetxattr(target, attr, []byte(value), 0); err != nil {
			u.log.Debug("skipped xattr", "path", hdr.Name, "xattr", attr, "error", err)
		}
	}
	if hdr.Typeflag != tar.TypeSymlink {
		// After chown, which clears setuid and setgid bits.
		if err := unix.Fchmodat(unix.AT_FDCWD, target, uint32(hdr.Mode&0o7777), 0); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	if hdr.Typeflag == tar.TypeDir {
		return nil // set after the directory's contents
	}
	return setTimes(target, hdr)
}

func setTimes(target string, hdr *tar.Header) error {
	atime := hdr.AccessTime
	if atime.IsZero() {
		atime = hdr.ModTime
	}
	ts := []unix.Timespec{timespec(atime), timespec(hdr.ModTime)}
	return unix.UtimesNanoAt(unix.AT_FDCWD, target, ts, unix.AT_SYMLINK_NOFOLLOW)
}

func timespec(t time.Time) unix.Timespec {
	if t.IsZero() {
		return unix.Timespec{Sec: 0, Nsec: unix.UTIME_OMIT}
	}
	return unix.NsecToTimespec(t.UnixNano())
}

// resolveInRoot returns the host path of rel (slash-separated, relative) inside root,
// following symlinks as if root were "/": absolute targets restart at root and ".."
// stops at it, so the result never leaves root. With create, missing directories are
// made (0755); a component that exists and is not a directory is an error.
func resolveInRoot(root, rel string, create bool) (string, error) {
	cur := root
	todo := strings.Split(rel, "/")
	links := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if cur != root {
				cur = filepath.Dir(cur)
			}
			continue
		}
		next := filepath.Join(cur, c)
		fi, err := os.Lstat(next)
		if errors.Is(err, os.ErrNotExist) && create {
			if err := os.Mkdir(next, 0o755); err != nil {
				return "", err
			}
			cur = next
			continue
		}
		if err != nil {
			return "", err
		}
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			if links++; links > 255 {
				return "", fmt.Errorf("resolve %q: too many symlinks", rel)
			}
			dest, err := os.Readlink(next)
			if err != nil {
				return "", err
			}
			if path.IsAbs(dest) {
				cur = root
			}
			todo = append(strings.Split(dest, "/"), todo...)
		case fi.IsDir():
			cur = next
		default:
			return "", fmt.Errorf("resolve %q: %s is not a directory", rel, c)
		}
	}
	return cur, nil
}
