package volume

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
	"google.golang.org/protobuf/proto"

	corralpb "github.com/corral-dev/corral/proto"
)

// newManager returns a Manager over a fresh pods dir; the pod "uid-1" is
// torn down before the dir is removed.
func newManager(t *testing.T) *Manager {
	t.Helper()
	m, err := NewManager(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.TearDown(context.Background(), "uid-1"); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return m
}

func testPod(vols ...*corralpb.Volume) *corralpb.Pod {
	return &corralpb.Pod{
		Metadata: &corralpb.ObjectMeta{Name: "p", Namespace: "ns", Uid: "uid-1"},
		Spec:     &corralpb.PodSpec{Volumes: vols},
	}
}

func cmVolume(name, cm string, mutate ...func(*corralpb.ConfigMapVolumeSource)) *corralpb.Volume {
	src := &corralpb.ConfigMapVolumeSource{Name: cm}
	for _, f := range mutate {
		f(src)
	}
	return &corralpb.Volume{Name: name, ConfigMap: src}
}

func emptyDirVolume(name, medium, size string) *corralpb.Volume {
	return &corralpb.Volume{Name: name, EmptyDir: &corralpb.EmptyDirVolumeSource{Medium: medium, SizeLimit: size}}
}

func hostPathVolume(name, path, typ string) *corralpb.Volume {
	return &corralpb.Volume{Name: name, HostPath: &corralpb.HostPathVolumeSource{Path: path, Type: proto.String(typ)}}
}

// configMaps is a ConfigMapGetter over a map keyed "ns/name".
func configMaps(cms ...*corralpb.ConfigMap) ConfigMapGetter {
	byKey := map[string]*corralpb.ConfigMap{}
	for _, cm := range cms {
		byKey[cm.GetMetadata().GetNamespace()+"/"+cm.GetMetadata().GetName()] = cm
	}
	return func(ns, name string) (*corralpb.ConfigMap, bool) {
		cm, ok := byKey[ns+"/"+name]
		return cm, ok
	}
}

func configMap(name string, data map[string]string) *corralpb.ConfigMap {
	return &corralpb.ConfigMap{Metadata: &corralpb.ObjectMeta{Name: name, Namespace: "ns"}, Data: data}
}

// tree lists the regular files and symlinks below dir as path → content
// (files) or "-> target" (symlinks), skipping the writer's "..*" entries
// except "..data".
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		switch {
		case e.Type()&os.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				t.Fatal(err)
			}
			if e.Name() == dataLink {
				continue
			}
			out[e.Name()] = "-> " + target
		case strings.HasPrefix(e.Name(), ".."):
		case e.IsDir():
			out[e.Name()+"/"] = ""
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			out[e.Name()] = string(b)
		}
	}
	return out
}

// mountsBelow lists the mount points at or below dir.
func mountsBelow(t *testing.T, dir string) []string {
	t.Helper()
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	infos, err := mountinfo.GetMounts(mountinfo.PrefixFilter(real))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mi := range infos {
		out = append(out, mi.Mountpoint)
	}
	return out
}
