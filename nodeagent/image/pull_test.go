package image

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func TestPullByTagAndDigest(t *testing.T) {
	var reqs requestLog
	host := startRegistry(t, reqs.wrap)
	img := testImage(t, "a")
	ref := host + "/library/app:v1"
	push(t, ref, img)
	s := newStore(t, nil)
	ctx := ctxT(t)

	got, pulled, size, err := s.Pull(ctx, ref, PullIfNotPresent, nil)
	if err != nil {
		t.Fatalf("Pull: %v", err)
	}
	if !pulled || size <= 0 {
		t.Errorf("pulled, size = %v, %d; want true, > 0", pulled, size)
	}
	manifestDigest := digestString(t, img)
	if got.ID != configID(t, img) || got.Digest != manifestDigest {
		t.Errorf("image ID, digest = %s, %s; want %s, %s", got.ID, got.Digest, configID(t, img), manifestDigest)
	}
	wantCfg := Config{
		Entrypoint: []string{"/bin/app"}, Cmd: []string{"--serve"}, Env: []string{"PATH=/bin", "MARKER=a"},
		WorkingDir: "/srv", User: "1000:1000", ExposedPorts: []string{"53/udp", "8080/tcp"},
	}
	if !configEqual(got.Config, wantCfg) {
		t.Errorf("config = %+v, want %+v", got.Config, wantCfg)
	}
	wantRefs := []string{host + "/library/app:v1", host + "/library/app@" + manifestDigest}
	if !slices.Equal(got.Refs, wantRefs) {
		t.Errorf("refs = %v, want %v", got.Refs, wantRefs)
	}
	dirs := s.RootFS(got)
	if len(dirs) != 2 {
		t.Fatalf("RootFS = %v, want 2 layers", dirs)
	}
	if b := readFile(t, filepath.Join(dirs[0], "bin/app")); b != "app-a" {
		t.Errorf("lowest layer bin/app = %q", b)
	}
	if b := readFile(t, filepath.Join(dirs[1], "srv/index.html")); b != "hello a" {
		t.Errorf("top layer srv/index.html = %q", b)
	}

	// Present: no network, for the tag and for the digest.
	reqs.reset()
	for _, r := range []string{ref, host + "/library/app@" + manifestDigest} {
		again, pulled, _, err := s.Pull(ctx, r, PullIfNotPresent, nil)
		if err != nil || pulled || again.ID != got.ID {
			t.Errorf("Pull(%s) again = %v, pulled %v, %v", r, again, pulled, err)
		}
	}
	if n := reqs.count(""); n != 0 {
		t.Errorf("IfNotPresent with the image present made %d requests", n)
	}

	// Always: resolves the manifest, fetches no layer again.
	again, pulled, _, err := s.Pull(ctx, ref, PullAlways, nil)
	if err != nil || !pulled || again.ID != got.ID {
		t.Fatalf("Pull Always = %v, pulled %v, %v", again, pulled, err)
	}
	if n := reqs.count("GET /v2/library/app/blobs/"); n != 0 {
		t.Errorf("Always re-fetched %d blobs of a present image", n)
	}

	// A new image under the same tag: Always picks it up and shares nothing it need not.
	img2 := testImage(t, "b")
	push(t, ref, img2)
	newer, pulled, _, err := s.Pull(ctx, ref, PullAlways, nil)
	if err != nil || !pulled || newer.ID != configID(t, img2) {
		t.Fatalf("Pull Always after retag = %v, pulled %v, %v", newer, pulled, err)
	}
	if old, err := s.Get(got.ID); err != nil || slices.Contains(old.Refs, ref) {
		t.Errorf("old image after retag = %v, %v; want present without the tag", old, err)
	}
}

func configEqual(a, b Config) bool {
	return slices.Equal(a.Entrypoint, b.Entrypoint) && slices.Equal(a.Cmd, b.Cmd) &&
		slices.Equal(a.Env, b.Env) && a.WorkingDir == b.WorkingDir && a.User == b.User &&
		slices.Equal(a.ExposedPorts, b.ExposedPorts)
}

func TestPullPolicyNever(t *testing.T) {
	host := startRegistry(t, nil)
	ref := host + "/app:v1"
	push(t, ref, testImage(t, "a"))
	s := newStore(t, nil)
	ctx := ctxT(t)

	_, _, _, err := s.Pull(ctx, ref, PullNever, nil)
	var pe *PullError
	if !errors.Is(err, ErrImageNeverPull) || !errors.As(err, &pe) || pe.Reason != ReasonErrImageNeverPull {
		t.Fatalf("Pull Never of an absent image: %v; want ErrImageNeverPull", err)
	}
	if errors.Is(err, ErrImagePull) {
		t.Errorf("ErrImageNeverPull also matches ErrImagePull")
	}
	if _, _, _, err := s.Pull(ctx, ref, "", nil); err != nil {
		t.Fatal(err)
	}
	img, pulled, _, err := s.Pull(ctx, ref, PullNever, nil)
	if err != nil || pulled || img == nil {
		t.Errorf("Pull Never of a present image = %v, %v, %v", img, pulled, err)
	}
}

func TestPullErrors(t *testing.T) {
	host := startRegistry(t, nil)
	push(t, host+"/app:v1", testImage(t, "a"))
	s := newStore(t, nil)
	ctx := ctxT(t)

	tests := []struct {
		ref     string
		reason  string
		kind    error
		message string
	}{
		{host + "/app:missing", ReasonErrImagePull, ErrNotFound, "MANIFEST_UNKNOWN"},
		{host + "/nothing:v1", ReasonErrImagePull, ErrNotFound, "NAME_UNKNOWN"},
		{"Bad:Name", ReasonInvalidImageName, nil, "invalid image name"},
		{closedAddr(t) + "/app:v1", ReasonErrImagePull, nil, "connection refused"},
	}
	for _, tt := range tests {
		_, _, _, err := s.Pull(ctx, tt.ref, PullIfNotPresent, nil)
		var pe *PullError
		if !errors.As(err, &pe) {
			t.Errorf("Pull(%s) = %v, want a *PullError", tt.ref, err)
			continue
		}
		if pe.Reason != tt.reason || pe.Kind != tt.kind || pe.Image != tt.ref {
			t.Errorf("Pull(%s): reason %q kind %v image %q; want %q %v", tt.ref, pe.Reason, pe.Kind, pe.Image, tt.reason, tt.kind)
		}
		if tt.kind != nil && !errors.Is(err, tt.kind) {
			t.Errorf("Pull(%s): %v does not match %v", tt.ref, err, tt.kind)
		}
		if !strings.Contains(err.Error(), tt.message) {
			t.Errorf("Pull(%s): %q does not carry %q", tt.ref, err, tt.message)
		}
	}
}

// basicAuth wraps a handler in HTTP basic authentication.
func basicAuth(user, pass string) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, p, ok := r.BasicAuth()
			if !ok || u != user || p != pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`))
				return
			}
			h.ServeHTTP(w, r)
		})
	}
}

func TestPullCredentials(t *testing.T) {
	host := startRegistry(t, basicAuth("alice", "s3cret"))
	ref := host + "/private/app:v1"
	r, _ := name.ParseReference(ref)
	img := testImage(t, "a")
	if err := remote.Write(r, img, remote.WithAuth(&authn.Basic{Username: "alice", Password: "s3cret"})); err != nil {
		t.Fatalf("push: %v", err)
	}
	ctx := ctxT(t)

	anon := newStore(t, nil)
	_, _, _, err := anon.Pull(ctx, ref, PullIfNotPresent, nil)
	if !errors.Is(err, ErrUnauthorized) || !errors.Is(err, ErrImagePull) {
		t.Fatalf("anonymous pull: %v; want ErrUnauthorized", err)
	}
	_, _, _, err = anon.Pull(ctx, ref, PullIfNotPresent, &Auth{Username: "alice", Password: "wrong"})
	if !errors.Is(err, ErrUnauthorized) {
		t.Errorf("pull with a wrong password: %v; want ErrUnauthorized", err)
	}
	if _, _, _, err := anon.Pull(ctx, ref, PullIfNotPresent, &Auth{Username: "alice", Password: "s3cret"}); err != nil {
		t.Errorf("pull with the caller's credentials: %v", err)
	}

	for what, auth := range map[string]*Auth{
		"username":      {Username: "alice", Password: "s3cret"},
		"auth (base64)": {Auth: "YWxpY2U6czNjcmV0"},
	} {
		s := newStore(t, func(o *Options) {
			o.Registries = &Registries{Configs: map[string]RegistryConfig{host: {Auth: auth}}}
		})
		if _, _, _, err := s.Pull(ctx, ref, PullIfNotPresent, nil); err != nil {
			t.Errorf("pull with configured %s credentials: %v", what, err)
		}
	}
}

func TestPullThroughMirror(t *testing.T) {
	var mirrorReqs requestLog
	mirror := startRegistry(t, mirrorReqs.wrap)
	upstream := closedAddr(t) // unreachable
	img := testImage(t, "m")
	push(t, mirror+"/team/app:v1", img)
	push(t, mirror+"/library/nginx:1.25", img)
	push(t, mirror+"/mirrored/pause:3.6", img)
	ctx := ctxT(t)

	tests := []struct {
		what    string
		ref     string
		mirrors map[string]Mirror
		noUp    bool
	}{
		{"wildcard", upstream + "/team/app:v1", map[string]Mirror{"*": {Endpoints: []string{"http://" + mirror}}}, false},
		{"per registry, after a dead mirror", upstream + "/team/app:v1", map[string]Mirror{
			upstream: {Endpoints: []string{"http://" + closedAddr(t), "http://" + mirror}}}, false},
		{"docker hub", "nginx:1.25", map[string]Mirror{"docker.io": {Endpoints: []string{"http://" + mirror}}}, true},
		{"rewrite", "rancher/pause:3.6", map[string]Mirror{"*": {
			Endpoints: []string{"http://" + mirror}, Rewrites: map[string]string{"^rancher/(.*)$": "mirrored/$1"}}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.what, func(t *testing.T) {
			s := newStore(t, func(o *Options) {
				o.Registries = &Registries{Mirrors: tt.mirrors}
				o.DisableDefaultEndpoint = tt.noUp // never reach a public registry from a test
			})
			got, pulled, _, err := s.Pull(ctx, tt.ref, PullIfNotPresent, nil)
			if err != nil {
				t.Fatalf("Pull(%s): %v", tt.ref, err)
			}
			canonical, _ := ParseReference(tt.ref)
			if !pulled || got.ID != configID(t, img) || !slices.Contains(got.Refs, canonical.Name()) {
				t.Errorf("Pull(%s) = %+v, pulled %v; want the image under its own name", tt.ref, got, pulled)
			}
		})
	}

	// Missing at the mirror, upstream unreachable: not found, with both endpoints' words.
	s := newStore(t, func(o *Options) {
		o.Registries = &Registries{Mirrors: map[string]Mirror{"*": {Endpoints: []string{"http://" + mirror}}}}
	})
	_, _, _, err := s.Pull(ctx, upstream+"/team/absent:v1", PullIfNotPresent, nil)
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "http://"+mirror) || !strings.Contains(err.Error(), upstream) {
		t.Errorf("pull missing everywhere: %v; want ErrNotFound naming both endpoints", err)
	}
}

func TestPullMultiArch(t *testing.T) {
	host := startRegistry(t, nil)
	mine := testImage(t, "mine")
	other := testImage(t, "other")
	otherArch := "arm64"
	if runtime.GOARCH == "arm64" {
		otherArch = "amd64"
	}
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: other, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: otherArch}}},
		mutate.IndexAddendum{Add: other, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "windows", Architecture: runtime.GOARCH}}},
		mutate.IndexAddendum{Add: mine, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: runtime.GOARCH}}},
	)
	idx = mutate.IndexMediaType(idx, types.OCIImageIndex)
	ref := host + "/multi:v1"
	r, _ := name.ParseReference(ref)
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatal(err)
	}
	s := newStore(t, nil)
	ctx := ctxT(t)
	got, _, _, err := s.Pull(ctx, ref, PullIfNotPresent, nil)
	if err != nil {
		t.Fatalf("Pull: %v", err)
	}
	idxDigest := digestString(t, idx)
	if got.ID != configID(t, mine) || got.IndexDigest != idxDigest || got.Digest != digestString(t, mine) {
		t.Errorf("picked %+v; want the linux/%s image of index %s", got, runtime.GOARCH, idxDigest)
	}
	if _, pulled, _, err := s.Pull(ctx, host+"/multi@"+idxDigest, PullIfNotPresent, nil); err != nil || pulled {
		t.Errorf("pull by index digest: pulled %v, %v; want present", pulled, err)
	}

	foreign := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: other,
		Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "s390x"}}})
	r2, _ := name.ParseReference(host + "/foreign:v1")
	if err := remote.WriteIndex(r2, foreign); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := s.Pull(ctx, host+"/foreign:v1", PullIfNotPresent, nil); !errors.Is(err, ErrNotFound) ||
		!strings.Contains(err.Error(), "linux/s390x") {
		t.Errorf("pull of an index without this platform: %v; want ErrNotFound listing linux/s390x", err)
	}
}

func TestConcurrentPullsShareOneFetch(t *testing.T) {
	var reqs requestLog
	host := startRegistry(t, reqs.wrap)
	img := testImage(t, "c")
	base := layer(t, dir("base/"), file("base/shared", "shared bytes"))
	img2 := buildImage(t, v1.Config{}, base, layer(t, file("two", "2")))
	img3 := buildImage(t, v1.Config{}, base, layer(t, file("three", "3")))
	push(t, host+"/app:v1", img)
	push(t, host+"/two:v1", img2)
	push(t, host+"/three:v1", img3)
	reqs.reset()
	s := newStore(t, nil)
	ctx := ctxT(t)

	refs := []string{host + "/app:v1", host + "/app:v1", host + "/app:v1", host + "/app:v1",
		host + "/two:v1", host + "/three:v1", host + "/two:v1", host + "/three:v1"}
	var wg sync.WaitGroup
	ids := make([]string, len(refs))
	errs := make([]error, len(refs))
	for i, ref := range refs {
		wg.Go(func() {
			img, _, _, err := s.Pull(ctx, ref, PullIfNotPresent, nil)
			errs[i] = err
			if img != nil {
				ids[i] = img.ID
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Pull(%s): %v", refs[i], err)
		}
	}
	if ids[0] != ids[1] || ids[0] != ids[3] || ids[4] != ids[6] {
		t.Errorf("concurrent pulls of one ref gave different images: %v", ids)
	}
	layers, _ := img.Layers()
	for _, l := range layers {
		d := digestString(t, l)
		if n := reqs.count("GET /v2/app/blobs/" + d); n != 1 {
			t.Errorf("layer %s fetched %d times, want once", d, n)
		}
	}
	if n := reqs.count("GET /v2/app/manifests/v1"); n > 1 {
		t.Errorf("manifest of app:v1 fetched %d times by 4 concurrent pulls", n)
	}
	// The shared base layer is unpacked once: one directory, one index entry.
	shared := digestString(t, base)
	n := reqs.count("GET /v2/two/blobs/"+shared) + reqs.count("GET /v2/three/blobs/"+shared)
	if n != 1 {
		t.Errorf("shared base layer fetched %d times, want once", n)
	}
}

func TestStoreSurvivesRestart(t *testing.T) {
	host := startRegistry(t, nil)
	ref := host + "/app:v1"
	push(t, ref, testImage(t, "r"))
	root := t.TempDir()
	s, err := Open(Options{Root: root, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	img, _, _, err := s.Pull(ctx, ref, PullIfNotPresent, nil)
	if err != nil {
		t.Fatal(err)
	}

	// A crash left a half-unpacked layer in tmp/ and a complete but unrecorded layer.
	half := filepath.Join(root, "tmp", "layer-123")
	if err := os.MkdirAll(filepath.Join(half, "usr"), 0o755); err != nil {
		t.Fatal(err)
	}
	orphan := "sha256:" + strings.Repeat("ab", 32)
	if err := os.MkdirAll(filepath.Join(s.layerDir(orphan), "etc"), 0o755); err != nil {
		t.Fatal(err)
	}

	s2, err := Open(Options{Root: root, Logger: testLogger()})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	got, pulled, _, err := s2.Pull(ctx, ref, PullNever, nil)
	if err != nil || pulled || got.ID != img.ID || !slices.Equal(s2.RootFS(got), s.RootFS(img)) {
		t.Errorf("after restart: %+v, pulled %v, %v", got, pulled, err)
	}
	if _, err := os.Stat(half); !os.IsNotExist(err) {
		t.Errorf("half-unpacked layer survived Open: %v", err)
	}
	if !s2.hasLayer(orphan) {
		t.Errorf("complete unrecorded layer not adopted")
	}
}

func TestPullRefusesCorruptLayer(t *testing.T) {
	host := startRegistry(t, nil)
	img := testImage(t, "a")
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.RootFS.DiffIDs[1] = v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("0", 64)}
	lying, err := mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	ref := host + "/lying:v1"
	push(t, ref, lying)
	s := newStore(t, nil)
	_, _, _, err = s.Pull(ctxT(t), ref, PullIfNotPresent, nil)
	if !errors.Is(err, ErrImagePull) || !strings.Contains(err.Error(), "does not match the diff ID") {
		t.Fatalf("pull of a layer whose content lies: %v", err)
	}
	if _, err := s.Get(ref); !errors.Is(err, ErrNotPresent) {
		t.Errorf("image recorded after a failed pull: %v", err)
	}
	if s.hasLayer(cf.RootFS.DiffIDs[1].String()) {
		t.Errorf("the lying layer was recorded")
	}
	tmp, _ := os.ReadDir(s.tmpDir())
	if len(tmp) != 0 {
		t.Errorf("temp unpacks left behind: %v", tmp)
	}
}
