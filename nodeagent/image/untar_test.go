package image

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/corral-dev/corral/internal/roottest"
)

func unpackEntries(t *testing.T, entries ...entry) (string, error) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "layer")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := unpackLayer(t.Context(), root, bytes.NewReader(tarBytes(t, entries...)), testLogger())
	return root, err
}

func TestUnpackKeepsFilesLinksAndModes(t *testing.T) {
	root, err := unpackEntries(t,
		dir("etc/"),
		entry{name: "etc/secret", typ: tar.TypeReg, body: "s", mode: 0o640},
		entry{name: "bin/", typ: tar.TypeDir, mode: 0o711},
		entry{name: "bin/su", typ: tar.TypeReg, body: "su", mode: 0o4755},
		entry{name: "tmp/", typ: tar.TypeDir, mode: 0o1777},
		entry{name: "bin/sh", typ: tar.TypeSymlink, linkname: "busybox"},
		entry{name: "bin/abs", typ: tar.TypeSymlink, linkname: "/etc/secret"},
		file("bin/busybox", "bb"),
		entry{name: "bin/ls", typ: tar.TypeLink, linkname: "bin/busybox"},
		entry{name: "run/fifo", typ: tar.TypeFifo, mode: 0o600},
		file("implicit/parent/file", "deep"),
	)
	if err != nil {
		t.Fatalf("unpack: %v", err)
	}
	modes := map[string]os.FileMode{
		"etc/secret": 0o640,
		"bin":        os.ModeDir | 0o711,
		"bin/su":     os.ModeSetuid | 0o755,
		"tmp":        os.ModeDir | os.ModeSticky | 0o777,
		"run/fifo":   os.ModeNamedPipe | 0o600,
	}
	for p, want := range modes {
		fi, err := os.Lstat(filepath.Join(root, p))
		if err != nil || fi.Mode() != want {
			t.Errorf("%s: mode %v, %v; want %v", p, fi.Mode(), err, want)
		}
	}
	for link, want := range map[string]string{"bin/sh": "busybox", "bin/abs": "/etc/secret"} {
		if got, err := os.Readlink(filepath.Join(root, link)); err != nil || got != want {
			t.Errorf("readlink %s = %q, %v; want %q", link, got, err, want)
		}
	}
	var a, b unix.Stat_t
	unix.Lstat(filepath.Join(root, "bin/busybox"), &a)
	unix.Lstat(filepath.Join(root, "bin/ls"), &b)
	if a.Ino != b.Ino || a.Nlink != 2 {
		t.Errorf("hard link: inodes %d, %d, nlink %d", a.Ino, b.Ino, a.Nlink)
	}
	fi, _ := os.Stat(filepath.Join(root, "etc/secret"))
	if want := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC); !fi.ModTime().Equal(want) {
		t.Errorf("mtime %v, want %v", fi.ModTime(), want)
	}
	if got := readFile(t, filepath.Join(root, "implicit/parent/file")); got != "deep" {
		t.Errorf("implicit parents: %q", got)
	}
}

func TestUnpackOwnershipDevicesXattrs(t *testing.T) {
	roottest.Require(t, "mounts and files owned by other users")
	root, err := unpackEntries(t,
		entry{name: "home/", typ: tar.TypeDir, mode: 0o755, uid: 1000, gid: 1001},
		entry{name: "home/f", typ: tar.TypeReg, body: "x", mode: 0o2755, uid: 1000, gid: 1001,
			xattrs: map[string]string{"user.note": "kept", "trusted.overlay.opaque": "y"}},
		entry{name: "dev/null", typ: tar.TypeChar, mode: 0o666, major: 1, minor: 3},
		entry{name: "dev/loop9", typ: tar.TypeBlock, mode: 0o660, major: 7, minor: 9},
	)
	if err != nil {
		t.Fatalf("unpack: %v", err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(root, "home/f"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != 1000 || st.Gid != 1001 || st.Mode&0o7777 != 0o2755 {
		t.Errorf("home/f: uid %d gid %d mode %o; want 1000 1001 2755", st.Uid, st.Gid, st.Mode&0o7777)
	}
	buf := make([]byte, 64)
	if n, err := unix.Lgetxattr(filepath.Join(root, "home/f"), "user.note", buf); err != nil || string(buf[:n]) != "kept" {
		t.Errorf("xattr user.note = %q, %v", buf[:max(n, 0)], err)
	}
	if _, err := unix.Lgetxattr(filepath.Join(root, "home/f"), "trusted.overlay.opaque", buf); err == nil {
		t.Errorf("a layer set trusted.overlay.opaque on a file")
	}
	if err := unix.Lstat(filepath.Join(root, "dev/null"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR ||
		unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 {
		t.Errorf("dev/null: mode %o rdev %d:%d, %v", st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev), err)
	}
	if err := unix.Lstat(filepath.Join(root, "dev/loop9"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFBLK {
		t.Errorf("dev/loop9: mode %o, %v", st.Mode, err)
	}
}

func TestUnpackWhiteoutsInOverlayFormat(t *testing.T) {
	roottest.Require(t, "mounts and files owned by other users")
	root, err := unpackEntries(t,
		dir("a/"),
		file("a/.wh.gone", ""),
		file(".wh.top", ""),
		dir("opaque/"),
		file("opaque/.wh..wh..opq", ""),
		file("opaque/new", "n"),
		file("later/.wh..wh..opq", ""), // marker before its directory's entry
		dir("later/"),
	)
	if err != nil {
		t.Fatalf("unpack: %v", err)
	}
	for _, p := range []string{"a/gone", "top"} {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(root, p), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
			t.Errorf("%s: mode %o rdev %d, %v; want a 0/0 character device", p, st.Mode, st.Rdev, err)
		}
	}
	for _, p := range []string{"opaque", "later"} {
		buf := make([]byte, 8)
		n, err := unix.Lgetxattr(filepath.Join(root, p), "trusted.overlay.opaque", buf)
		if err != nil || string(buf[:n]) != "y" {
			t.Errorf("%s: trusted.overlay.opaque = %q, %v; want y", p, buf[:max(n, 0)], err)
		}
	}
	for _, p := range []string{"a/.wh.gone", "opaque/.wh..wh..opq"} {
		if _, err := os.Lstat(filepath.Join(root, p)); !os.IsNotExist(err) {
			t.Errorf("marker %s left on disk: %v", p, err)
		}
	}
}

func TestUnpackRefusesEscapes(t *testing.T) {
	outside := t.TempDir()
	bad := map[string][]entry{
		"dot-dot entry":     {file("../escape", "x")},
		"nested dot-dot":    {dir("a/"), file("a/../../escape", "x")},
		"hard link out":     {entry{name: "l", typ: tar.TypeLink, linkname: "../../../../etc/passwd"}},
		"whiteout dot-dot":  {file("a/.wh...", "")},
		"hard link missing": {entry{name: "l", typ: tar.TypeLink, linkname: "nope"}},
	}
	for what, entries := range bad {
		root, err := unpackEntries(t, entries...)
		if err == nil {
			t.Errorf("%s: unpack accepted it", what)
		}
		if what != "hard link missing" && !errors.Is(err, ErrPathEscape) {
			t.Errorf("%s: %v; want ErrPathEscape", what, err)
		}
		if _, err := os.Lstat(filepath.Join(filepath.Dir(root), "escape")); !os.IsNotExist(err) {
			t.Errorf("%s: wrote outside the root", what)
		}
	}

	// Symlinks in the layer resolve inside the root, absolute or climbing.
	root, err := unpackEntries(t,
		entry{name: "abs", typ: tar.TypeSymlink, linkname: outside},
		file("abs/planted", "x"),
		entry{name: "up", typ: tar.TypeSymlink, linkname: "../../../../.."},
		file("up/climbed", "y"),
		dir("d/"),
		entry{name: "d/hl", typ: tar.TypeLink, linkname: "abs/planted"},
	)
	if err != nil {
		t.Fatalf("unpack with symlinked parents: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(outside, "planted")); !os.IsNotExist(err) {
		t.Errorf("an absolute symlink led the unpack outside the root")
	}
	if got := readFile(t, filepath.Join(root, outside, "planted")); got != "x" {
		t.Errorf("abs/planted inside the root = %q", got)
	}
	if got := readFile(t, filepath.Join(root, "climbed")); got != "y" {
		t.Errorf("up/climbed inside the root = %q", got)
	}
	if got := readFile(t, filepath.Join(root, "d/hl")); got != "x" {
		t.Errorf("hard link through a symlinked dir = %q", got)
	}
}
