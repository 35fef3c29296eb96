package image

import (
	"archive/tar"
	"compress/gzip"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// writeDockerSave writes a `docker save`-style archive of refToImage.
func writeDockerSave(t *testing.T, path string, gz bool, refToImage map[string]v1.Image) {
	t.Helper()
	m := map[name.Reference]v1.Image{}
	for ref, img := range refToImage {
		r, err := name.ParseReference(ref)
		if err != nil {
			t.Fatal(err)
		}
		m[r] = img
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var w io.Writer = f
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(f)
		w = zw
	}
	if len(m) == 1 {
		for r, img := range m {
			err = tarball.Write(r, img, w)
		}
	} else {
		err = tarball.MultiRefWrite(m, w)
	}
	if err != nil {
		t.Fatalf("write archive: %v", err)
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// writeOCILayoutTar writes an OCI image layout holding img (named by annotation) and a
// multi-arch index, as a tar.
func writeOCILayoutTar(t *testing.T, path string, img v1.Image, multi v1.ImageIndex) {
	t.Helper()
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{
		"io.containerd.image.name":          "docker.io/library/busybox:1.36",
		"org.opencontainers.image.ref.name": "1.36",
	})); err != nil {
		t.Fatal(err)
	}
	if err := p.AppendIndex(multi, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": "registry.example/multi:v1",
	})); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		hdr.Name = rel
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			_, err = tw.Write(b)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestImportDir(t *testing.T) {
	importDir := t.TempDir()
	nginx, pause, gzipped, busybox, mine := testImage(t, "nginx"), testImage(t, "pause"),
		testImage(t, "gz"), testImage(t, "busybox"), testImage(t, "multi-mine")
	writeDockerSave(t, filepath.Join(importDir, "one.tar"), false, map[string]v1.Image{"nginx:1.25": nginx})
	writeDockerSave(t, filepath.Join(importDir, "two.tar.gz"), true, map[string]v1.Image{
		"registry.k8s.io/pause:3.9": pause, "10.0.0.1:5000/team/gz:v1": gzipped})
	multi := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: testImage(t, "multi-other"), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "riscv64"}}},
		mutate.IndexAddendum{Add: mine, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: runtime.GOARCH}}})
	writeOCILayoutTar(t, filepath.Join(importDir, "layout.tar"), busybox, multi)
	if err := os.WriteFile(filepath.Join(importDir, "broken.tar"), []byte("not a tar"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(importDir, "README"), []byte("ignored"), 0o644); err != nil {
		t.Fatal(err)
	}

	// No registry at all: only imported images can be had.
	s := newStore(t, func(o *Options) { o.DisableDefaultEndpoint = true })
	ctx := ctxT(t)
	imported, err := s.ImportDir(ctx, importDir)
	if err == nil || !strings.Contains(err.Error(), "broken.tar") {
		t.Errorf("ImportDir error = %v; want one naming broken.tar", err)
	}
	if len(imported) != 5 {
		t.Errorf("imported %d images, want 5", len(imported))
	}
	want := map[string]v1.Image{
		"nginx:1.25":                nginx,
		"registry.k8s.io/pause:3.9": pause,
		"10.0.0.1:5000/team/gz:v1":  gzipped,
		"busybox:1.36":              busybox,
		"registry.example/multi:v1": mine,
	}
	for ref, wantImg := range want {
		img, pulled, _, err := s.Pull(ctx, ref, PullIfNotPresent, nil)
		if err != nil || pulled || img.ID != configID(t, wantImg) {
			t.Errorf("Pull(%s) after import = %v, pulled %v, %v", ref, img, pulled, err)
			continue
		}
		if got := readFile(t, filepath.Join(s.RootFS(img)[0], "bin/app")); !strings.HasPrefix(got, "app-") {
			t.Errorf("%s: unpacked bin/app = %q", ref, got)
		}
	}
	if _, _, _, err := s.Pull(ctx, "nginx:1.25", PullAlways, nil); err == nil {
		t.Errorf("Pull Always of an imported image succeeded without any registry")
	}

	// Idempotent: nothing changed, nothing imported; a touched archive re-imports
	// without unpacking its layers again.
	nginxImg, _ := s.Get("nginx:1.25")
	layerDir := s.RootFS(nginxImg)[0]
	before, _ := os.Stat(layerDir)
	again, _ := s.ImportDir(ctx, importDir)
	if len(again) != 0 {
		t.Errorf("second ImportDir imported %d images, want 0", len(again))
	}
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(filepath.Join(importDir, "one.tar"), later, later); err != nil {
		t.Fatal(err)
	}
	again, _ = s.ImportDir(ctx, importDir)
	if len(again) != 1 || again[0].ID != nginxImg.ID {
		t.Errorf("ImportDir after touching one.tar = %v", again)
	}
	after, _ := os.Stat(layerDir)
	if !os.SameFile(before, after) {
		t.Errorf("re-import unpacked a held layer again")
	}
	if !slices.Contains(again[0].Refs, "index.docker.io/library/nginx:1.25") {
		t.Errorf("refs = %v", again[0].Refs)
	}

	// Missing directory: nothing to do.
	if imgs, err := s.ImportDir(ctx, filepath.Join(importDir, "absent")); err != nil || imgs != nil {
		t.Errorf("ImportDir of a missing dir = %v, %v", imgs, err)
	}
}
