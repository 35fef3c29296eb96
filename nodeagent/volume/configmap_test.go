package volume

import (
	"context"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"testing"

	"google.golang.org/protobuf/proto"

	corralpb "github.com/corral-dev/corral/proto"
)

func TestConfigMapPayload(t *testing.T) {
	cm := &corralpb.ConfigMap{
		Metadata:   &corralpb.ObjectMeta{Name: "app", Namespace: "ns"},
		Data:       map[string]string{"a.conf": "A", "b.conf": "B"},
		BinaryData: map[string][]byte{"logo.png": {0x89, 'P', 'N', 'G', 0}},
	}
	item := func(key, path string, mode ...int32) *corralpb.KeyToPath {
		it := &corralpb.KeyToPath{Key: key, Path: path}
		if len(mode) > 0 {
			it.Mode = proto.Int32(mode[0])
		}
		return it
	}
	rows := []struct {
		name    string
		src     *corralpb.ConfigMapVolumeSource
		cm      *corralpb.ConfigMap
		want    payload
		wantErr string
	}{
		{name: "all keys, default mode 0644", src: &corralpb.ConfigMapVolumeSource{Name: "app"}, cm: cm, want: payload{
			"a.conf": {[]byte("A"), 0o644}, "b.conf": {[]byte("B"), 0o644}, "logo.png": {cm.BinaryData["logo.png"], 0o644}}},
		{name: "defaultMode 0400 (256)", src: &corralpb.ConfigMapVolumeSource{Name: "app", DefaultMode: proto.Int32(256)}, cm: cm, want: payload{
			"a.conf": {[]byte("A"), 0o400}, "b.conf": {[]byte("B"), 0o400}, "logo.png": {cm.BinaryData["logo.png"], 0o400}}},
		{name: "items select, item mode overrides defaultMode", src: &corralpb.ConfigMapVolumeSource{Name: "app", DefaultMode: proto.Int32(0o440),
			Items: []*corralpb.KeyToPath{item("a.conf", "etc/app/a.conf", 0o600), item("logo.png", "img/logo.png")}}, cm: cm, want: payload{
			"etc/app/a.conf": {[]byte("A"), 0o600}, "img/logo.png": {cm.BinaryData["logo.png"], 0o440}}},
		{name: "item with a missing key", src: &corralpb.ConfigMapVolumeSource{Name: "app", Items: []*corralpb.KeyToPath{item("nope", "x")}},
			cm: cm, wantErr: "configmap references non-existent config key: nope"},
		{name: "optional: missing item key is skipped", src: &corralpb.ConfigMapVolumeSource{Name: "app", Optional: proto.Bool(true),
			Items: []*corralpb.KeyToPath{item("nope", "x"), item("b.conf", "b")}}, cm: cm, want: payload{"b": {[]byte("B"), 0o644}}},
		{name: "optional and missing: empty", src: &corralpb.ConfigMapVolumeSource{Name: "app", Optional: proto.Bool(true)}, want: payload{}},
		{name: "path with ..", src: &corralpb.ConfigMapVolumeSource{Items: []*corralpb.KeyToPath{item("a.conf", "x/../../etc/passwd")}},
			cm: cm, wantErr: `invalid path "x/../../etc/passwd": must be clean ("../etc/passwd")`},
		{name: "path element ..", src: &corralpb.ConfigMapVolumeSource{Items: []*corralpb.KeyToPath{item("a.conf", "a/..")}},
			cm: cm, wantErr: `invalid path "a/..": must be clean (".")`},
		{name: "leading ..", src: &corralpb.ConfigMapVolumeSource{Items: []*corralpb.KeyToPath{item("a.conf", "../x")}},
			cm: cm, wantErr: `invalid path "../x": must not start with '..'`},
		{name: "writer's own name", src: &corralpb.ConfigMapVolumeSource{Items: []*corralpb.KeyToPath{item("a.conf", "..data")}},
			cm: cm, wantErr: `invalid path "..data": must not start with '..'`},
		{name: "absolute path", src: &corralpb.ConfigMapVolumeSource{Items: []*corralpb.KeyToPath{item("a.conf", "/etc/passwd")}},
			cm: cm, wantErr: `invalid path "/etc/passwd": must be relative`},
		{name: "file and directory clash", src: &corralpb.ConfigMapVolumeSource{Items: []*corralpb.KeyToPath{item("a.conf", "x"), item("b.conf", "x/y")}},
			cm: cm, wantErr: `invalid path "x/y": "x" is also a file`},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			got, err := configMapPayload(r.src, r.cm)
			if r.wantErr != "" {
				if err == nil || err.Error() != r.wantErr {
					t.Fatalf("error = %v, want %q", err, r.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, r.want) {
				t.Errorf("payload = %v, want %v", got, r.want)
			}
		})
	}
}

var tsName = regexp.MustCompile(`^\.\.\d{4}_\d\d_\d\d_\d\d_\d\d_\d\d\.\d{9}$`)

func TestSetupConfigMapVolume(t *testing.T) {
	m := newManager(t)
	pod := testPod(cmVolume("cfg", "app", func(s *corralpb.ConfigMapVolumeSource) {
		s.Items = []*corralpb.KeyToPath{
			{Key: "a.conf", Path: "conf/a.conf", Mode: proto.Int32(0o600)},
			{Key: "b.conf", Path: "b.conf"},
		}
	}))
	cms := configMaps(configMap("app", map[string]string{"a.conf": "A", "b.conf": "B", "unused": "U"}))
	if err := m.Setup(context.Background(), pod, cms); err != nil {
		t.Fatal(err)
	}
	dir := m.volumeDir("uid-1", pluginConfigMap, "cfg")
	if got, want := tree(t, dir), map[string]string{"conf": "-> ..data/conf", "b.conf": "-> ..data/b.conf"}; !reflect.DeepEqual(got, want) {
		t.Errorf("volume = %v, want %v", got, want)
	}
	ts, err := os.Readlink(filepath.Join(dir, dataLink))
	if err != nil || !tsName.MatchString(ts) {
		t.Fatalf("..data -> %q (%v), want a timestamped directory", ts, err)
	}
	for p, want := range map[string]struct {
		data string
		mode fs.FileMode
	}{"conf/a.conf": {"A", 0o600}, "b.conf": {"B", 0o644}} {
		full := filepath.Join(dir, p)
		b, err := os.ReadFile(full)
		fi, serr := os.Stat(full)
		if err != nil || serr != nil || string(b) != want.data || fi.Mode().Perm() != want.mode {
			t.Errorf("%s: %q %v (%v %v), want %q %v", p, b, fi.Mode(), err, serr, want.data, want.mode)
		}
	}
	// Idempotent: a second Setup keeps the same data directory.
	if err := m.Setup(context.Background(), pod, cms); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.Readlink(filepath.Join(dir, dataLink)); again != ts {
		t.Errorf("second Setup rewrote the volume: %s → %s", ts, again)
	}
}

func TestSetupOptionalMissingConfigMap(t *testing.T) {
	m := newManager(t)
	pod := testPod(cmVolume("cfg", "absent", func(s *corralpb.ConfigMapVolumeSource) { s.Optional = proto.Bool(true) }))
	if err := m.Setup(context.Background(), pod, configMaps()); err != nil {
		t.Fatal(err)
	}
	dir := m.volumeDir("uid-1", pluginConfigMap, "cfg")
	if got := tree(t, dir); len(got) != 0 {
		t.Errorf("optional missing configmap: volume has %v", got)
	}
	if _, err := os.Stat(filepath.Join(dir, dataLink)); err != nil {
		t.Errorf("no ..data: %v", err)
	}
}

func TestUpdateConfigMapVolume(t *testing.T) {
	m := newManager(t)
	pod := testPod(cmVolume("cfg", "app"))
	v1 := configMap("app", map[string]string{"keep": "1", "gone": "1"})
	if err := m.Setup(context.Background(), pod, configMaps(v1)); err != nil {
		t.Fatal(err)
	}
	dir := m.volumeDir("uid-1", pluginConfigMap, "cfg")
	old, _ := os.Readlink(filepath.Join(dir, dataLink))

	v2 := configMap("app", map[string]string{"keep": "2", "new": "2"})
	if err := m.Update(context.Background(), pod, configMaps(v2)); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"keep": "-> ..data/keep", "new": "-> ..data/new"}
	if got := tree(t, dir); !reflect.DeepEqual(got, want) {
		t.Errorf("after update: %v, want %v", got, want)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "keep")); string(b) != "2" {
		t.Errorf("keep = %q, want 2", b)
	}
	if _, err := os.Stat(filepath.Join(dir, old)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("old data directory %s still there: %v", old, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 4 { // ..data, one timestamped dir, keep, new
		t.Errorf("volume entries: %v", entries)
	}

	// The ConfigMap is deleted: the volume keeps its files and Update errs.
	err := m.Update(context.Background(), pod, configMaps())
	if err == nil || !errors.Is(err, ErrNotFound) {
		t.Fatalf("update without the configmap: %v", err)
	}
	if got := tree(t, dir); !reflect.DeepEqual(got, want) {
		t.Errorf("after failed update: %v, want %v", got, want)
	}
}

func TestWriteAtomicRepairsLinksAndLeftovers(t *testing.T) {
	dir := t.TempDir()
	p := payload{"a": {[]byte("1"), 0o644}}
	if _, err := writeAtomic(dir, p, testNow); err != nil {
		t.Fatal(err)
	}
	// An interrupted write left a directory and a tmp link; a link was lost.
	if err := os.Mkdir(filepath.Join(dir, "..2000_01_01_00_00_00.000000000"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("nowhere", filepath.Join(dir, dataLinkTmp)); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "a")); err != nil {
		t.Fatal(err)
	}
	changed, err := writeAtomic(dir, p, testNow)
	if err != nil || changed {
		t.Fatalf("rewrite of the same payload: changed=%v err=%v", changed, err)
	}
	entries, _ := os.ReadDir(dir)
	names := []string{}
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 3 || names[0] == "..2000_01_01_00_00_00.000000000" {
		t.Errorf("entries after repair: %v", names)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "a")); err != nil || string(b) != "1" {
		t.Errorf("a = %q, %v", b, err)
	}
	// Same payload, other modes: a change.
	p2 := maps.Clone(p)
	p2["a"] = file{[]byte("1"), 0o600}
	if changed, err := writeAtomic(dir, p2, testNow); err != nil || !changed {
		t.Errorf("mode change: changed=%v err=%v", changed, err)
	}
}
