package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// pullResult is what one fetch produced, shared by every caller of a deduplicated pull.
type pullResult struct {
	img  *Image
	size int64
}

// Pull makes the image ref names present, following the kubelet's imagePullPolicy
// (Always, IfNotPresent, Never; empty defaults as Kubernetes does). It returns the image,
// whether the registry was contacted (pulled: the agent emits "Pulling image" and
// "Successfully pulled image" then, and "Container image ... already present on
// machine" otherwise) and the image's size. auth, when not nil, holds the pod's
// credentials for the image's own registry; mirrors use their credentials from the
// registries config. Concurrent pulls of one reference share one fetch.
//
// Errors are *PullError: ErrImageNeverPull, ErrInvalidImageName or ErrImagePull, the
// latter also matching ErrNotFound or ErrUnauthorized when the registry said so.
func (s *Store) Pull(ctx context.Context, ref, policy string, auth *Auth) (img *Image, pulled bool, size int64, err error) {
	r, err := ParseReference(ref)
	if err != nil {
		return nil, false, 0, &PullError{Image: ref, Reason: ReasonInvalidImageName, Err: err}
	}
	p, err := ResolvePolicy(policy, r)
	if err != nil {
		return nil, false, 0, fmt.Errorf("pull image %q: %w", ref, err)
	}
	if p != PullAlways {
		if img, err := s.present(r); err != nil || img != nil {
			if err != nil {
				return nil, false, 0, fmt.Errorf("pull image %q: %w", ref, err)
			}
			return img, false, img.Size, nil
		}
		if p == PullNever {
			return nil, false, 0, &PullError{Image: ref, Reason: ReasonErrImageNeverPull,
				Err: fmt.Errorf("container image %q is not present with pull policy of Never", ref)}
		}
	}
	key := r.Name() + "\x00" + auth.fingerprint()
	res, _, err := s.pulls.do(ctx, key, func(ctx context.Context) (pullResult, error) {
		return s.pull(ctx, r, auth)
	})
	if err != nil {
		var pe *PullError
		if errors.As(err, &pe) {
			c := *pe
			c.Image = ref
			return nil, false, 0, &c
		}
		return nil, false, 0, &PullError{Image: ref, Reason: ReasonErrImagePull, Kind: classify(err), Err: err}
	}
	return res.img, true, res.size, nil
}

// present returns the held image of r, marked used, or nil.
func (s *Store) present(r name.Reference) (*Image, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	img := s.lookupLocked(r)
	if img == nil {
		return nil, nil
	}
	// A digest reference found by content under another name now names it too.
	s.idx.Refs[r.Name()] = img.ID
	if err := s.touchLocked(img); err != nil {
		return nil, err
	}
	return s.exportLocked(img), nil
}

// fingerprint tells credentials apart without keeping them in a map key.
func (a *Auth) fingerprint() string {
	if a == nil {
		return ""
	}
	h := sha256.Sum256([]byte(a.Username + "\x00" + a.Password + "\x00" + a.Auth + "\x00" + a.IdentityToken))
	return hex.EncodeToString(h[:8])
}

// pull fetches r from its endpoints in order; the first that serves it wins.
func (s *Store) pull(ctx context.Context, r name.Reference, auth *Auth) (pullResult, error) {
	eps, err := s.regs.endpoints(r, s.opts.DisableDefaultEndpoint)
	if err != nil {
		return pullResult{}, err
	}
	var attempts attemptErrors
	for _, ep := range eps {
		if err := ctx.Err(); err != nil {
			attempts.add(ep.name, err)
			break
		}
		start := time.Now()
		res, err := s.pullFrom(ctx, r, ep, auth)
		if err == nil {
			s.log.Info("pulled image", "image", r.Name(), "endpoint", ep.name,
				"image_id", res.img.ID, "size", res.size, "duration", time.Since(start))
			return res, nil
		}
		s.log.Debug("endpoint failed", "image", r.Name(), "endpoint", ep.name, "error", err)
		attempts.add(ep.name, err)
	}
	return pullResult{}, &PullError{Image: r.String(), Reason: ReasonErrImagePull,
		Kind: attempts.kind(), Err: attempts.err()}
}

// pullFrom fetches r at one endpoint: the manifest (picking this node's platform from an
// index), the config, then the layers it does not hold yet.
func (s *Store) pullFrom(ctx context.Context, r name.Reference, ep endpoint, auth *Auth) (pullResult, error) {
	opts, err := s.remoteOptions(ctx, ep, auth)
	if err != nil {
		return pullResult{}, err
	}
	desc, err := remote.Get(ep.ref, opts...)
	if err != nil {
		return pullResult{}, fmt.Errorf("fetch manifest: %w", err)
	}
	var open func() (v1.Image, error)
	var indexDigest string
	manifestDigest := desc.Digest
	switch {
	case desc.MediaType.IsIndex():
		idx, err := desc.ImageIndex()
		if err != nil {
			return pullResult{}, fmt.Errorf("read index: %w", err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return pullResult{}, fmt.Errorf("read index: %w", err)
		}
		d, err := pickPlatform(im)
		if err != nil {
			return pullResult{}, err
		}
		indexDigest, manifestDigest = desc.Digest.String(), d.Digest
		open = func() (v1.Image, error) { return idx.Image(d.Digest) }
	case desc.MediaType.IsImage():
		open = desc.Image
	default:
		return pullResult{}, fmt.Errorf("%w: unsupported manifest media type %q", ErrNotFound, desc.MediaType)
	}
	repo := r.Context().Name()
	in := storeInput{refs: []string{r.Name()}, repo: repo, indexDigest: indexDigest, hasManifest: true}
	if indexDigest != "" {
		in.refs = append(in.refs, repo+"@"+indexDigest)
	}
	// The same manifest as an image held: point the references at it, fetch nothing more.
	if held, err := s.refreshKnown(manifestDigest.String(), in); held != nil || err != nil {
		return pullResult{img: held, size: sizeOf(held)}, err
	}
	img, err := open()
	if err != nil {
		return pullResult{}, fmt.Errorf("fetch manifest %s: %w", manifestDigest, err)
	}
	return s.storeImage(ctx, img, in)
}

func sizeOf(img *Image) int64 {
	if img == nil {
		return 0
	}
	return img.Size
}

// refreshKnown returns the held image whose manifest digest is digest, with in's
// references pointed at it, or nil when no such complete image is held.
func (s *Store) refreshKnown(digest string, in storeInput) (*Image, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var held *Image
	for _, img := range s.idx.Images {
		if img.Digest == digest {
			held = img
			break
		}
	}
	if held == nil {
		return nil, nil
	}
	for _, l := range held.Layers {
		if _, ok := s.idx.Layers[l]; !ok {
			return nil, nil
		}
	}
	if in.indexDigest != "" {
		held.IndexDigest = in.indexDigest
	}
	for _, r := range append(in.refs, in.repo+"@"+digest) {
		s.idx.Refs[r] = held.ID
	}
	if err := s.touchLocked(held); err != nil {
		return nil, err
	}
	return s.exportLocked(held), nil
}

// remoteOptions are the go-containerregistry options for one endpoint: mirrors use
// their configured credentials only; the upstream registry uses the caller's, or else
// its configured ones.
func (s *Store) remoteOptions(ctx context.Context, ep endpoint, auth *Auth) ([]remote.Option, error) {
	cfg := s.regs.config(ep.host)
	creds := cfg.Auth
	if !ep.mirror && auth != nil {
		creds = auth
	}
	tr, err := s.transports.get(cfg.TLS)
	if err != nil {
		return nil, fmt.Errorf("endpoint %s: %w", ep.name, err)
	}
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuth(creds.authenticator()),
		remote.WithTransport(tr),
		remote.WithPlatform(nodePlatform()),
		remote.WithUserAgent("corral"),
	}, nil
}

// nodePlatform is the platform images are picked for: linux on this binary's arch.
func nodePlatform() v1.Platform {
	p := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	switch runtime.GOARCH {
	case "arm64":
		p.Variant = "v8"
	case "arm":
		p.Variant = "v7"
	}
	return p
}

// pickPlatform chooses the manifest for this node from an index: linux and this
// architecture, the matching variant preferred, then one without a variant.
func pickPlatform(im *v1.IndexManifest) (v1.Descriptor, error) {
	want := nodePlatform()
	best, bestScore := -1, 0
	var seen []string
	for i, d := range im.Manifests {
		if d.Platform == nil || !d.MediaType.IsImage() {
			continue
		}
		seen = append(seen, d.Platform.String())
		if d.Platform.OS != want.OS || d.Platform.Architecture != want.Architecture {
			continue
		}
		score := 1
		switch d.Platform.Variant {
		case want.Variant:
			score = 3
		case "":
			score = 2
		}
		if score > bestScore {
			best, bestScore = i, score
		}
	}
	if best < 0 {
		return v1.Descriptor{}, fmt.Errorf("%w: no manifest for platform %s in index (has %s)",
			ErrNotFound, want, strings.Join(seen, ", "))
	}
	return im.Manifests[best], nil
}

// configFrom keeps the run configuration of an image's config file.
func configFrom(cf *v1.ConfigFile) Config {
	c := cf.Config
	var ports []string
	for p := range c.ExposedPorts {
		ports = append(ports, p)
	}
	slices.Sort(ports)
	return Config{
		Entrypoint:   slices.Clone(c.Entrypoint),
		Cmd:          slices.Clone(c.Cmd),
		Env:          slices.Clone(c.Env),
		WorkingDir:   c.WorkingDir,
		User:         c.User,
		ExposedPorts: ports,
		StopSignal:   c.StopSignal,
		Labels:       c.Labels,
	}
}
