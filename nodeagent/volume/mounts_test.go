package volume

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/corral-dev/corral/internal/roottest"
	corralpb "github.com/corral-dev/corral/proto"
)

func TestPropagation(t *testing.T) {
	rows := []struct {
		mode       string
		privileged bool
		want       string
		wantErr    bool
	}{
		{"", false, "rprivate", false},
		{"None", false, "rprivate", false},
		{"HostToContainer", false, "rslave", false},
		{"Bidirectional", true, "rshared", false},
		{"Bidirectional", false, "", true},
		{"Sideways", true, "", true},
	}
	for _, r := range rows {
		got, err := propagation(r.mode, r.privileged)
		if got != r.want || (err != nil) != r.wantErr {
			t.Errorf("propagation(%q, %v) = %q, %v; want %q, error %v", r.mode, r.privileged, got, err, r.want, r.wantErr)
		}
	}
}

func container(mounts ...*corralpb.VolumeMount) *corralpb.Container {
	return &corralpb.Container{Name: "app", VolumeMounts: mounts}
}

func TestMounts(t *testing.T) {
	m := newManager(t)
	host := t.TempDir()
	pod := testPod(hostPathVolume("logs", host, "Directory"), emptyDirVolume("cache", "", ""), cmVolume("cfg", "app"))
	if err := m.Setup(context.Background(), pod, configMaps(configMap("app", map[string]string{"k": "v"}))); err != nil {
		t.Fatal(err)
	}
	c := container(
		&corralpb.VolumeMount{Name: "logs", MountPath: "/var/log/app", ReadOnly: true, MountPropagation: "HostToContainer"},
		&corralpb.VolumeMount{Name: "cache", MountPath: "/cache"},
		&corralpb.VolumeMount{Name: "cfg", MountPath: "/etc/app"},
	)
	got, err := m.Mounts(pod, c)
	if err != nil {
		t.Fatal(err)
	}
	want := []Mount{
		{Source: host, Destination: "/var/log/app", ReadOnly: true, Propagation: "rslave"},
		{Source: m.volumeDir("uid-1", pluginEmptyDir, "cache"), Destination: "/cache", Propagation: "rprivate"},
		{Source: m.volumeDir("uid-1", pluginConfigMap, "cfg"), Destination: "/etc/app", ReadOnly: true, Propagation: "rprivate"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("mounts:\n%+v\nwant\n%+v", got, want)
	}

	errRows := []struct {
		name string
		c    *corralpb.Container
		want error
	}{
		{"unknown volume", container(&corralpb.VolumeMount{Name: "nope", MountPath: "/x"}), ErrNotFound},
		{"relative mountPath", container(&corralpb.VolumeMount{Name: "cache", MountPath: "x"}), ErrInvalid},
		{"Bidirectional, not privileged", container(&corralpb.VolumeMount{Name: "logs", MountPath: "/x", MountPropagation: "Bidirectional"}), ErrInvalid},
	}
	notSetUp := testPod(emptyDirVolume("later", "", ""))
	if _, err := m.Mounts(notSetUp, container(&corralpb.VolumeMount{Name: "later", MountPath: "/l"})); !errors.Is(err, ErrNotFound) {
		t.Errorf("volume not set up: %v", err)
	}
	for _, r := range errRows {
		if _, err := m.Mounts(pod, r.c); !errors.Is(err, r.want) {
			t.Errorf("%s: error %v, want %v", r.name, err, r.want)
		}
	}
	priv := container(&corralpb.VolumeMount{Name: "logs", MountPath: "/x", MountPropagation: "Bidirectional"})
	priv.SecurityContext = &corralpb.SecurityContext{Privileged: proto.Bool(true)}
	if got, err := m.Mounts(pod, priv); err != nil || got[0].Propagation != "rshared" {
		t.Errorf("privileged Bidirectional: %+v %v", got, err)
	}
}

func TestSubPathRefusesEscapes(t *testing.T) {
	m := newManager(t)
	pod := testPod(emptyDirVolume("data", "", ""))
	if err := m.Setup(context.Background(), pod, nil); err != nil {
		t.Fatal(err)
	}
	root := m.volumeDir("uid-1", pluginEmptyDir, "data")
	outside := t.TempDir()
	for name, target := range map[string]string{
		"up":        "../../../../../..",
		"etc":       "/etc",
		"out":       outside,
		"self-abs":  filepath.Join(root, "inner"), // absolute, even into the volume: refused
		"loop":      "loop",
		"proc-self": "/proc/self/root",
	} {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(root, "inner"), 0o755); err != nil {
		t.Fatal(err)
	}
	rows := []struct {
		sub  string
		want error
	}{
		{"../x", ErrInvalid},
		{"a/../../x", ErrInvalid},
		{"/etc", ErrInvalid},
		{"up", ErrEscape},
		{"up/tmp", ErrEscape},
		{"etc", ErrEscape},
		{"etc/passwd", ErrEscape},
		{"out", ErrEscape},
		{"out/created-outside", ErrEscape},
		{"self-abs", ErrEscape},
		{"loop", ErrEscape},
		{"proc-self", ErrEscape},
	}
	for _, r := range rows {
		c := container(&corralpb.VolumeMount{Name: "data", MountPath: "/d", SubPath: r.sub})
		if _, err := m.Mounts(pod, c); !errors.Is(err, r.want) {
			t.Errorf("subPath %q: error %v, want %v", r.sub, err, r.want)
		}
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("something was created outside the volume: %v", entries)
	}
	if mounts := mountsBelow(t, m.podDir("uid-1")); len(mounts) != 0 {
		t.Errorf("refused subPaths left mounts: %v", mounts)
	}
}

func TestSubPathPinned(t *testing.T) {
	roottest.Require(t, "mounts")
	m := newManager(t)
	host := t.TempDir()
	pod := testPod(emptyDirVolume("data", "", ""), cmVolume("cfg", "app"), hostPathVolume("host", host, "Directory"))
	if err := m.Setup(context.Background(), pod, configMaps(configMap("app", map[string]string{"app.conf": "x=1"}))); err != nil {
		t.Fatal(err)
	}
	c := container(
		&corralpb.VolumeMount{Name: "data", MountPath: "/d", SubPath: "a/b"},
		&corralpb.VolumeMount{Name: "cfg", MountPath: "/etc/app.conf", SubPath: "app.conf"},
		&corralpb.VolumeMount{Name: "host", MountPath: "/h", SubPath: "made/here"},
	)
	got, err := m.Mounts(pod, c)
	if err != nil {
		t.Fatal(err)
	}
	root := m.volumeDir("uid-1", pluginEmptyDir, "data")
	if fi, err := os.Stat(filepath.Join(root, "a", "b")); err != nil || fi.Mode().Perm() != 0o777 {
		t.Errorf("created subPath: %v %v (want the root's 0777)", fi, err)
	}
	if fi, err := os.Stat(filepath.Join(host, "made", "here")); err != nil || !fi.IsDir() {
		t.Errorf("hostPath subPath not created: %v", err)
	}
	if b, err := os.ReadFile(got[1].Source); err != nil || string(b) != "x=1" || !got[1].ReadOnly {
		t.Errorf("configMap subPath pin %s: %q %v ro=%v", got[1].Source, b, err, got[1].ReadOnly)
	}
	if err := os.WriteFile(filepath.Join(got[0].Source, "f"), []byte("via pin"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "a", "b", "f")); string(b) != "via pin" {
		t.Errorf("pin does not show the subPath: %q", b)
	}
	// Idempotent: the same pins, no stacked mounts.
	before := len(mountsBelow(t, m.podDir("uid-1")))
	again, err := m.Mounts(pod, c)
	if err != nil || !reflect.DeepEqual(again, got) || len(mountsBelow(t, m.podDir("uid-1"))) != before || before != 3 {
		t.Errorf("second Mounts: %+v %v, %d mounts before", again, err, before)
	}
	// The container swaps its subPath for a symlink to the host's root: the
	// existing pin still shows the original directory, a new resolution
	// refuses it.
	if err := os.Rename(filepath.Join(root, "a", "b"), filepath.Join(root, "a", "old")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/", filepath.Join(root, "a", "b")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(got[0].Source, "f")); err != nil {
		t.Errorf("pin lost its directory: %v", err)
	}
	if _, err := m.Mounts(pod, c); !errors.Is(err, ErrEscape) {
		t.Errorf("swapped subPath: %v, want ErrEscape", err)
	}
	// A configMap subPath that does not exist is not created.
	bad := container(&corralpb.VolumeMount{Name: "cfg", MountPath: "/x", SubPath: "nope"})
	if _, err := m.Mounts(pod, bad); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing configMap subPath: %v", err)
	}
}

func TestTmpfsEmptyDir(t *testing.T) {
	roottest.Require(t, "mounts")
	m := newManager(t)
	pod := testPod(emptyDirVolume("mem", "Memory", "1Mi"))
	for range 2 { // idempotent: one mount
		if err := m.Setup(context.Background(), pod, nil); err != nil {
			t.Fatal(err)
		}
	}
	dir := m.volumeDir("uid-1", pluginEmptyDir, "mem")
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type != unix.TMPFS_MAGIC || st.Blocks*uint64(st.Bsize) != 1<<20 {
		t.Errorf("emptyDir: fs type %#x size %d, want tmpfs of 1MiB", st.Type, st.Blocks*uint64(st.Bsize))
	}
	if mounts := mountsBelow(t, m.podDir("uid-1")); len(mounts) != 1 {
		t.Errorf("mounts: %v", mounts)
	}
	if err := m.TearDown(context.Background(), "uid-1"); err != nil {
		t.Fatal(err)
	}
	if mounts := mountsBelow(t, m.podsDir); len(mounts) != 0 {
		t.Errorf("mounts after TearDown: %v", mounts)
	}
	if _, err := os.Stat(m.podDir("uid-1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pod dir after TearDown: %v", err)
	}
}

func TestBadEmptyDir(t *testing.T) {
	m := newManager(t)
	for _, v := range []*corralpb.Volume{emptyDirVolume("a", "HugePages", ""), emptyDirVolume("b", "", "lots")} {
		if err := m.Setup(context.Background(), testPod(v), nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("%v: %v, want ErrInvalid", v, err)
		}
	}
}

func TestTearDownLeavesNothing(t *testing.T) {
	m := newManager(t)
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "precious"), []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	vols := []*corralpb.Volume{
		hostPathVolume("host", host, "Directory"),
		emptyDirVolume("disk", "", ""),
		cmVolume("cfg", "app"),
	}
	mounts := []*corralpb.VolumeMount{{Name: "host", MountPath: "/h"}, {Name: "disk", MountPath: "/d"}}
	if os.Geteuid() == 0 {
		vols = append(vols, emptyDirVolume("mem", "Memory", ""))
		mounts = append(mounts,
			&corralpb.VolumeMount{Name: "host", MountPath: "/hs", SubPath: "sub"},
			&corralpb.VolumeMount{Name: "mem", MountPath: "/ms", SubPath: "x/y"},
			&corralpb.VolumeMount{Name: "cfg", MountPath: "/c", SubPath: "k"})
	}
	pod := testPod(vols...)
	if err := m.Setup(context.Background(), pod, configMaps(configMap("app", map[string]string{"k": "v"}))); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Mounts(pod, container(mounts...)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(m.volumeDir("uid-1", pluginEmptyDir, "disk"), "data"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for range 2 { // idempotent
		if err := m.TearDown(context.Background(), "uid-1"); err != nil {
			t.Fatal(err)
		}
	}
	if entries, err := os.ReadDir(m.podsDir); err != nil || len(entries) != 0 {
		t.Errorf("pods dir after TearDown: %v %v", entries, err)
	}
	if got := mountsBelow(t, m.podsDir); len(got) != 0 {
		t.Errorf("mounts after TearDown: %v", got)
	}
	if b, err := os.ReadFile(filepath.Join(host, "precious")); err != nil || string(b) != "keep" {
		t.Errorf("hostPath content damaged: %q %v", b, err)
	}
}

func TestTearDownKeepsOtherFilesOfThePod(t *testing.T) {
	m := newManager(t)
	if err := m.Setup(context.Background(), testPod(emptyDirVolume("d", "", "")), nil); err != nil {
		t.Fatal(err)
	}
	logs := filepath.Join(m.podDir("uid-1"), "logs")
	if err := os.Mkdir(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := m.TearDown(context.Background(), "uid-1"); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(m.podDir("uid-1"))
	if len(entries) != 1 || entries[0].Name() != "logs" {
		t.Errorf("pod dir after TearDown: %v", entries)
	}
	if err := m.TearDown(context.Background(), "../x"); !errors.Is(err, ErrInvalid) {
		t.Errorf("TearDown(../x): %v", err)
	}
}
