package image

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/corral-dev/corral/internal/roottest"
)

// whiteoutImage has a base layer and a top layer that deletes, replaces and hides.
func whiteoutImage(t *testing.T) v1.Image {
	t.Helper()
	return buildImage(t, v1.Config{Cmd: []string{"/bin/sh"}},
		layer(t,
			dir("etc/"), file("etc/a", "1"), file("etc/gone", "g"), file("etc/keep", "k"),
			dir("data/"), file("data/old1", "o"), dir("data/sub/"), file("data/sub/old2", "o"),
			dir("bin/"), file("bin/busybox", "bb"),
		),
		layer(t,
			dir("etc/"), file("etc/a", "2"), file("etc/.wh.gone", ""),
			dir("data/"), file("data/.wh..wh..opq", ""), file("data/new", "n"),
			dir("bin/"), entry{name: "bin/sh", typ: '2', linkname: "busybox"},
		),
	)
}

func TestMountAppliesWhiteouts(t *testing.T) {
	roottest.Require(t, "mounts and files owned by other users")
	host := startRegistry(t, nil)
	ref := host + "/whiteouts:v1"
	push(t, ref, whiteoutImage(t))
	s := newStore(t, nil)
	ctx := ctxT(t)
	img, _, _, err := s.Pull(ctx, ref, PullIfNotPresent, nil)
	if err != nil {
		t.Fatal(err)
	}
	const id = "pod1_app"
	t.Cleanup(func() { unix.Unmount(filepath.Join(s.containerDir(id), "rootfs"), unix.MNT_DETACH) })
	rootfs, err := s.Mount(ctx, id, img)
	if err != nil {
		t.Fatalf("Mount: %v", err)
	}
	if mounted, _ := isMountPoint(rootfs); !mounted {
		t.Fatalf("%s is not a mount point", rootfs)
	}
	if got := readFile(t, filepath.Join(rootfs, "etc/a")); got != "2" {
		t.Errorf("etc/a = %q, want the top layer's 2", got)
	}
	if got := readFile(t, filepath.Join(rootfs, "etc/keep")); got != "k" {
		t.Errorf("etc/keep = %q", got)
	}
	if _, err := os.Lstat(filepath.Join(rootfs, "etc/gone")); !os.IsNotExist(err) {
		t.Errorf("whited-out etc/gone visible: %v", err)
	}
	ents, _ := os.ReadDir(filepath.Join(rootfs, "data"))
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"new"}) {
		t.Errorf("opaque data/ holds %v, want only [new]", names)
	}
	if got := readFile(t, filepath.Join(rootfs, "bin/sh")); got != "bb" {
		t.Errorf("bin/sh through its symlink = %q", got)
	}

	// Writes land in the container's upper dir; the image's layers stay untouched.
	if err := os.WriteFile(filepath.Join(rootfs, "etc/a"), []byte("3"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(s.containerDir(id), "upper/etc/a")); got != "3" {
		t.Errorf("upper etc/a = %q", got)
	}
	if got := readFile(t, filepath.Join(s.RootFS(img)[1], "etc/a")); got != "2" {
		t.Errorf("the image layer changed: etc/a = %q", got)
	}

	// Mounting again (an agent restart) keeps the mount; the image is claimed.
	if again, err := s.Mount(ctx, id, img); err != nil || again != rootfs {
		t.Errorf("Mount again = %q, %v", again, err)
	}
	if err := s.Remove(ref); !errors.Is(err, ErrInUse) {
		t.Errorf("Remove of a mounted image: %v; want ErrInUse", err)
	}

	checkUnmountKeepsWrites(t, s, id, img, rootfs)
	if err := s.RemoveContainerFS(id); err != nil {
		t.Fatalf("RemoveContainerFS: %v", err)
	}
	if _, err := os.Stat(s.containerDir(id)); !os.IsNotExist(err) {
		t.Errorf("container dir left: %v", err)
	}
	if err := s.Remove(ref); err != nil {
		t.Errorf("Remove after the container is gone: %v", err)
	}
}

// checkUnmountKeepsWrites unmounts a container whose etc/a was written as "3", checks the
// write survives in its upper dir, and remounts it.
func checkUnmountKeepsWrites(t *testing.T, s *Store, id string, img *Image, rootfs string) {
	t.Helper()
	if err := s.Unmount(id); err != nil {
		t.Fatalf("Unmount: %v", err)
	}
	if mounted, _ := isMountPoint(rootfs); mounted {
		t.Errorf("still mounted after Unmount")
	}
	if err := s.Unmount(id); err != nil {
		t.Errorf("Unmount of an unmounted container: %v", err)
	}
	if got := readFile(t, filepath.Join(s.containerDir(id), "upper/etc/a")); got != "3" {
		t.Errorf("Unmount lost the writable layer: %q", got)
	}
	// Remount sees the container's earlier writes.
	if _, err := s.Mount(t.Context(), id, img); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(rootfs, "etc/a")); got != "3" {
		t.Errorf("after remount etc/a = %q", got)
	}
}

func TestMountImageWithoutLayers(t *testing.T) {
	roottest.Require(t, "mounts and files owned by other users")
	host := startRegistry(t, nil)
	ref := host + "/scratch:v1"
	push(t, ref, buildImage(t, v1.Config{Cmd: []string{"/app"}}))
	s := newStore(t, nil)
	ctx := ctxT(t)
	img, _, _, err := s.Pull(ctx, ref, PullIfNotPresent, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(filepath.Join(s.containerDir("c"), "rootfs"), unix.MNT_DETACH) })
	rootfs, err := s.Mount(ctx, "c", img)
	if err != nil {
		t.Fatalf("Mount: %v", err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "x"), nil, 0o644); err != nil {
		t.Errorf("write to an empty image's rootfs: %v", err)
	}
	if err := s.RemoveContainerFS("c"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Mount(ctx, "../evil", img); err == nil {
		t.Errorf("Mount accepted a container id with a slash")
	}
}

func TestMountManyLayers(t *testing.T) {
	roottest.Require(t, "mounts and files owned by other users")
	// 60 layer paths of ~130 bytes overflow the one page mount(2) takes for options.
	var layers []v1.Layer
	for i := range 60 {
		layers = append(layers, layer(t, file("f", strconv.Itoa(i)), file("l"+strconv.Itoa(i), "x")))
	}
	host := startRegistry(t, nil)
	ref := host + "/tall:v1"
	push(t, ref, buildImage(t, v1.Config{}, layers...))
	s := newStore(t, nil)
	ctx := ctxT(t)
	img, _, _, err := s.Pull(ctx, ref, PullIfNotPresent, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(filepath.Join(s.containerDir("tall"), "rootfs"), unix.MNT_DETACH) })
	rootfs, err := s.Mount(ctx, "tall", img)
	if err != nil {
		t.Fatalf("Mount of 60 layers: %v", err)
	}
	if got := readFile(t, filepath.Join(rootfs, "f")); got != "59" {
		t.Errorf("f = %q, want the top layer's 59", got)
	}
	if got := readFile(t, filepath.Join(rootfs, "l0")); got != "x" {
		t.Errorf("l0 from the lowest layer = %q", got)
	}
	if err := s.RemoveContainerFS("tall"); err != nil {
		t.Fatal(err)
	}
}
