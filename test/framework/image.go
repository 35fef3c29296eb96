package framework

import (
	"archive/tar"
	"bytes"
	"io"
	"log"
	"maps"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

var (
	workloadOnce sync.Once
	workloadBin  []byte
	workloadErr  error
)

// workloadBinary builds test/workload statically, once per test process.
func workloadBinary(t testing.TB) []byte {
	t.Helper()
	workloadOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		dir, err := os.MkdirTemp("", "corral-workload-")
		if err != nil {
			workloadErr = err
			return
		}
		defer os.RemoveAll(dir)
		out := filepath.Join(dir, "workload")
		cmd := exec.Command("go", "build", "-o", out, "./test/workload")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			workloadErr = &buildError{string(b), err}
			return
		}
		workloadBin, workloadErr = os.ReadFile(out)
	})
	if workloadErr != nil {
		t.Fatal(workloadErr)
	}
	return workloadBin
}

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string { return "build test/workload: " + e.err.Error() + "\n" + e.out }

// WorkloadImage is the stand-in workload as an image: /workload (also at
// every extra path, e.g. /usr/local/bin/kube-proxy), a /tmp directory, and
// ENTRYPOINT ["/workload"].
func WorkloadImage(t testing.TB, extraPaths ...string) v1.Image {
	t.Helper()
	bin := workloadBinary(t)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	addDir := func(d string) {
		for p := d; p != "." && p != "/" && !dirs[p]; p = filepath.Dir(p) {
			dirs[p] = true
		}
	}
	paths := append([]string{"workload"}, extraPaths...)
	for _, p := range paths {
		addDir(filepath.Dir(strings.TrimPrefix(p, "/")))
	}
	addDir("tmp")
	addDir("etc")
	var sorted []string
	for d := range dirs {
		sorted = append(sorted, d)
	}
	sort.Strings(sorted) // parents sort before their children
	for _, d := range sorted {
		mode := int64(0o755)
		if d == "tmp" {
			mode = 0o1777
		}
		must(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: mode}))
	}
	files := map[string][]byte{"etc/passwd": []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"),
		"etc/group": []byte("root:x:0:\nnogroup:x:65534:\n")}
	for _, p := range paths {
		files[strings.TrimPrefix(p, "/")] = bin
	}
	for _, p := range slices.Sorted(maps.Keys(files)) {
		must(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: p, Mode: 0o755, Size: int64(len(files[p]))}))
		_, err := tw.Write(files[p])
		must(t, err)
	}
	must(t, tw.Close())
	data := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	must(t, err)
	img, err := mutate.AppendLayers(empty.Image, layer)
	must(t, err)
	cf, err := img.ConfigFile()
	must(t, err)
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = runtime.GOARCH, "linux"
	cf.Config.Entrypoint = []string{"/workload"}
	cf.Config.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "WORKLOAD=stand-in"}
	img, err = mutate.ConfigFile(img, cf)
	must(t, err)
	return img
}

// Registry is an in-process image registry on loopback.
type Registry struct {
	// Host is "127.0.0.1:PORT".
	Host string
}

// NewRegistry serves go-containerregistry's in-memory registry on
// 127.0.0.1 until the test ends.
func NewRegistry(t testing.TB) *Registry {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return &Registry{Host: strings.TrimPrefix(srv.URL, "http://")}
}

// Push stores img under repo:tag and returns the full reference.
func (r *Registry) Push(t testing.TB, repoTag string, img v1.Image) string {
	t.Helper()
	ref, err := name.ParseReference(r.Host+"/"+repoTag, name.Insecure)
	must(t, err)
	must(t, remote.Write(ref, img))
	return ref.String()
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
