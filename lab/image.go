package lab

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	goruntime "runtime"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/corral-dev/corral/standin"
)

// StandinImages are the image names the seed's manifests use; the lab's
// registry serves the stand-in under each.
var StandinImages = []string{
	"nginx:1.25",
	"fluent/fluentd:v1.16",
	"prom/node-exporter:latest",
	"registry.k8s.io/kube-proxy:v1.28.0",
	"monitoring-agent:latest",
	"log-collector:latest",
	"security-scanner:latest",
}

// standinListen are the ports of the stand-ins that the seed runs with
// hostNetwork, where every port is the node's: their real programs' ports,
// so that they do not collide on a node. Others listen on
// standin.LabListen in their pod's own network namespace.
var standinListen = map[string]string{
	"prom/node-exporter:latest":          ":9100",
	"registry.k8s.io/kube-proxy:v1.28.0": ":10249,:10256",
}

// StandinFor is the stand-in image as served under ref: base with the
// listen addresses ref's real program uses, when it has its own.
func StandinFor(base v1.Image, ref string) (v1.Image, error) {
	listen, ok := standinListen[ref]
	if !ok {
		return base, nil
	}
	cf, err := base.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("stand-in image config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.Config.Env = append(cf.Config.Env, "WORKLOAD_LISTEN="+listen)
	img, err := mutate.ConfigFile(base, cf)
	if err != nil {
		return nil, fmt.Errorf("stand-in image for %s: %w", ref, err)
	}
	return img, nil
}

// standinPath is where the stand-in images hold the corral binary; the
// entrypoint.
const standinPath = "usr/local/bin/corral-standin"

// standinLinks are further paths of the binary that the seed's commands use.
var standinLinks = []string{"usr/local/bin/kube-proxy"}

// MirrorPath returns where a registry mirrored with "*" stores ref: the
// repository path within its registry (Docker Hub's "library/" implied)
// and the tag or digest, e.g. "library/nginx:1.25" for "nginx:1.25" and
// "kube-proxy:v1.28.0" for "registry.k8s.io/kube-proxy:v1.28.0".
func MirrorPath(ref string) (string, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", fmt.Errorf("image reference %q: %w", ref, err)
	}
	sep := ":"
	if _, ok := r.(name.Digest); ok {
		sep = "@"
	}
	return r.Context().RepositoryStr() + sep + r.Identifier(), nil
}

// StandinImage builds the stand-in image from the (static) corral binary at
// bin: one layer with the binary at /usr/local/bin/corral-standin, hard
// links at the paths the seed's commands use, /tmp, and minimal /etc/passwd
// and /etc/group; CORRAL_STANDIN=1 in its environment makes the binary run
// as the stand-in workload.
func StandinImage(bin string) (v1.Image, error) {
	data, err := standinLayer(bin)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
		tarball.WithCompressionLevel(gzip.BestSpeed))
	if err != nil {
		return nil, fmt.Errorf("stand-in layer: %w", err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, fmt.Errorf("stand-in image: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("stand-in image config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = goruntime.GOARCH, "linux"
	cf.Config.Entrypoint = []string{"/" + standinPath}
	cf.Config.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", standin.EnvVar + "=1"}
	cf.Config.Labels = map[string]string{"dev.corral.stand-in": "true"}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("stand-in image config: %w", err)
	}
	return img, nil
}

// standinLayer is the stand-in's layer as an uncompressed tar.
func standinLayer(bin string) ([]byte, error) {
	self, err := os.ReadFile(bin)
	if err != nil {
		return nil, fmt.Errorf("read corral binary: %w", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, d := range []struct {
		name string
		mode int64
	}{{"etc/", 0o755}, {"tmp/", 0o1777}, {"usr/", 0o755}, {"usr/local/", 0o755}, {"usr/local/bin/", 0o755}} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d.name, Mode: d.mode}); err != nil {
			return nil, fmt.Errorf("stand-in layer: %w", err)
		}
	}
	files := []struct {
		name string
		mode int64
		data []byte
	}{
		{"etc/group", 0o644, []byte("root:x:0:\nnogroup:x:65534:\n")},
		{"etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")},
		{standinPath, 0o755, self},
	}
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: f.mode, Size: int64(len(f.data))}); err != nil {
			return nil, fmt.Errorf("stand-in layer: %w", err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, fmt.Errorf("stand-in layer: %w", err)
		}
	}
	for _, l := range standinLinks {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeLink, Name: l, Linkname: standinPath, Mode: 0o755}); err != nil {
			return nil, fmt.Errorf("stand-in layer: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("stand-in layer: %w", err)
	}
	return buf.Bytes(), nil
}
