package volume

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	corralpb "github.com/corral-dev/corral/proto"
)

// hostPathFixture makes one object of each kind in a temp dir.
type hostPathFixture struct {
	dir, file, socket, char, block, missing, link string
}

func newHostPathFixture(t *testing.T) hostPathFixture {
	t.Helper()
	base := t.TempDir()
	f := hostPathFixture{
		dir:     filepath.Join(base, "dir"),
		file:    filepath.Join(base, "file"),
		socket:  filepath.Join(base, "sock"),
		char:    "/dev/null",
		missing: filepath.Join(base, "missing"),
		link:    filepath.Join(base, "link-to-dir"),
	}
	if err := os.Mkdir(f.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(f.dir, f.link); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", f.socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	if os.Geteuid() == 0 {
		f.block = filepath.Join(base, "blk")
		if err := unix.Mknod(f.block, unix.S_IFBLK|0o600, int(unix.Mkdev(7, 200))); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func TestHostPathUnsetCreatesMissingDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "var", "lib", "docker", "containers")
	if err := checkHostPath(&corralpb.HostPathVolumeSource{Path: path}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || !fi.IsDir() {
		t.Fatalf("missing path with no type was not created as a directory: %v", err)
	}
}

func TestHostPathTypeChecks(t *testing.T) {
	fx := newHostPathFixture(t)
	type row struct {
		name, typ, path, wantErr string // wantErr "" = success
	}
	rows := []row{
		{"unset on a file checks nothing", "", fx.file, ""},
		{"Directory ok", "Directory", fx.dir, ""},
		{"Directory through a symlink", "Directory", fx.link, ""},
		{"Directory is a file", "Directory", fx.file, "hostPath type check failed: " + fx.file + " is not a directory"},
		{"Directory missing", "Directory", fx.missing, "hostPath type check failed: " + fx.missing + " is not a directory"},
		{"DirectoryOrCreate exists", "DirectoryOrCreate", fx.dir, ""},
		{"DirectoryOrCreate on a file", "DirectoryOrCreate", fx.file, "hostPath type check failed: " + fx.file + " is not a directory"},
		{"File ok", "File", fx.file, ""},
		{"File is a dir", "File", fx.dir, "hostPath type check failed: " + fx.dir + " is not a file"},
		{"File is a socket", "File", fx.socket, "hostPath type check failed: " + fx.socket + " is not a file"},
		{"File missing", "File", fx.missing, "hostPath type check failed: " + fx.missing + " is not a file"},
		{"FileOrCreate exists", "FileOrCreate", fx.file, ""},
		{"FileOrCreate on a dir", "FileOrCreate", fx.dir, "hostPath type check failed: " + fx.dir + " is not a file"},
		{"FileOrCreate without parent", "FileOrCreate", filepath.Join(fx.missing, "f"), "hostPath type check failed: create file " + filepath.Join(fx.missing, "f") + ": no such file or directory"},
		{"Socket ok", "Socket", fx.socket, ""},
		{"Socket is a file", "Socket", fx.file, "hostPath type check failed: " + fx.file + " is not a socket file"},
		{"CharDevice ok", "CharDevice", fx.char, ""},
		{"CharDevice is a dir", "CharDevice", fx.dir, "hostPath type check failed: " + fx.dir + " is not a character device"},
		{"BlockDevice is a char device", "BlockDevice", fx.char, "hostPath type check failed: " + fx.char + " is not a block device"},
		{"BlockDevice is a file", "BlockDevice", fx.file, "hostPath type check failed: " + fx.file + " is not a block device"},
		{"unknown type", "Pipe", fx.dir, "Pipe is an invalid volume type"},
		{"relative path", "", "var/log", `hostPath "var/log" is not an absolute path`},
	}
	if fx.block != "" {
		rows = append(rows,
			row{"BlockDevice ok", "BlockDevice", fx.block, ""},
			row{"CharDevice is a block device", "CharDevice", fx.block, "hostPath type check failed: " + fx.block + " is not a character device"})
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			err := checkHostPath(&corralpb.HostPathVolumeSource{Path: r.path, Type: proto.String(r.typ)})
			if r.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || err.Error() != r.wantErr {
				t.Fatalf("error = %v, want %q", err, r.wantErr)
			}
			if strings.HasPrefix(r.wantErr, "hostPath type check failed") && !errors.Is(err, ErrHostPathType) {
				t.Errorf("%v is not ErrHostPathType", err)
			}
		})
	}
}

func TestHostPathCreates(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "a", "b", "c")
	file := filepath.Join(base, "f.sock.conf")
	for _, v := range []*corralpb.HostPathVolumeSource{
		{Path: dir, Type: proto.String("DirectoryOrCreate")},
		{Path: file, Type: proto.String("FileOrCreate")},
	} {
		if err := checkHostPath(v); err != nil {
			t.Fatal(err)
		}
		if err := checkHostPath(v); err != nil { // idempotent
			t.Fatal(err)
		}
	}
	old := unix.Umask(0)
	unix.Umask(old)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o755&^os.FileMode(old) {
		t.Errorf("directory %s: %v %v", dir, fi.Mode(), err)
	}
	if fi, err := os.Stat(file); err != nil || !fi.Mode().IsRegular() || fi.Size() != 0 || fi.Mode().Perm() != 0o644&^os.FileMode(old) {
		t.Errorf("file %s: %v %v", file, fi.Mode(), err)
	}
}

func TestSetupReportsFailedMount(t *testing.T) {
	m := newManager(t)
	pod := testPod(
		hostPathVolume("logs", "/nonexistent/corral/x", "Directory"),
		emptyDirVolume("cache", "", ""),
		cmVolume("cfg", "missing"),
	)
	err := m.Setup(context.Background(), pod, configMaps())
	if err == nil {
		t.Fatal("Setup succeeded")
	}
	want := []string{
		`MountVolume.SetUp failed for volume "logs" : hostPath type check failed: /nonexistent/corral/x is not a directory`,
		`MountVolume.SetUp failed for volume "cfg" : configmap "missing" not found`,
	}
	if got := err.Error(); got != strings.Join(want, "\n") {
		t.Errorf("error:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	var se *SetupError
	if !errors.As(err, &se) || se.Volume != "logs" || !errors.Is(err, ErrHostPathType) || !errors.Is(err, ErrNotFound) {
		t.Errorf("error chain: %#v", err)
	}
	// The good volume was set up anyway.
	if _, err := os.Stat(m.volumeDir("uid-1", pluginEmptyDir, "cache")); err != nil {
		t.Error(err)
	}
}
