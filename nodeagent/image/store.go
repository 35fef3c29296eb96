package image

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
)

// Options configure a Store.
type Options struct {
	// Root is the store's directory, DATA_DIR/images by convention. Required.
	Root string
	// Registries holds mirrors and credentials; nil means none.
	Registries *Registries
	// DisableDefaultEndpoint makes pulls use only mirror endpoints, never the upstream
	// registry (K3s's --disable-default-registry-endpoint).
	DisableDefaultEndpoint bool
	// MaxConcurrentDownloads bounds the layers one pull fetches at once (default 3).
	MaxConcurrentDownloads int
	// MinimumGCAge keeps images added less than this long ago from garbage collection
	// (the kubelet's imageMinimumGCAge; DefaultMinimumGCAge there). Zero means no minimum.
	MinimumGCAge time.Duration
	// DiskUsage reports the usage of the filesystem holding the store (default: statfs).
	DiskUsage DiskUsageFunc
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives the store's logs (default slog.Default()).
	Logger *slog.Logger
}

// DefaultMinimumGCAge is the kubelet's default imageMinimumGCAge.
const DefaultMinimumGCAge = 2 * time.Minute

// Config is the part of an image's configuration that runs it.
type Config struct {
	// Entrypoint and Cmd follow Docker's ENTRYPOINT/CMD rules.
	Entrypoint []string `json:"entrypoint,omitempty"`
	// Cmd is the default arguments (or command when Entrypoint is empty).
	Cmd []string `json:"cmd,omitempty"`
	// Env holds "KEY=value" entries.
	Env []string `json:"env,omitempty"`
	// WorkingDir is the default working directory.
	WorkingDir string `json:"working_dir,omitempty"`
	// User is "uid", "uid:gid", "name" or "name:group" as the image says.
	User string `json:"user,omitempty"`
	// ExposedPorts holds "port/proto" entries, sorted.
	ExposedPorts []string `json:"exposed_ports,omitempty"`
	// StopSignal is the signal that stops the container, if the image names one.
	StopSignal string `json:"stop_signal,omitempty"`
	// Labels are the image's labels.
	Labels map[string]string `json:"labels,omitempty"`
}

// Image is an image the store holds. Values returned by the store are copies.
type Image struct {
	// ID is the config digest ("sha256:..."), Docker's image ID; the store's key.
	ID string `json:"id"`
	// Digest is the platform manifest's digest; empty for images imported from
	// `docker save` archives, which carry no manifest.
	Digest string `json:"digest,omitempty"`
	// IndexDigest is the digest of the multi-arch index the image was picked from.
	IndexDigest string `json:"index_digest,omitempty"`
	// Refs are the canonical references that resolved to the image, sorted.
	Refs []string `json:"-"`
	// Layers are the layers' DiffIDs (uncompressed digests), lowest first.
	Layers []string `json:"layers"`
	// Config is the image's run configuration.
	Config Config `json:"config"`
	// Size is the image's size in bytes: the manifest's config and layer sizes for a
	// pulled image, the uncompressed layers for an imported one.
	Size int64 `json:"size"`
	// Added is when the store first got the image.
	Added time.Time `json:"added"`
	// LastUsed is when a pull or mount last asked for it; GC removes the least recently
	// used first.
	LastUsed time.Time `json:"last_used"`
}

func (img *Image) clone() *Image {
	c := *img
	c.Refs = slices.Clone(img.Refs)
	c.Layers = slices.Clone(img.Layers)
	c.Config.Entrypoint = slices.Clone(img.Config.Entrypoint)
	c.Config.Cmd = slices.Clone(img.Config.Cmd)
	c.Config.Env = slices.Clone(img.Config.Env)
	c.Config.ExposedPorts = slices.Clone(img.Config.ExposedPorts)
	if img.Config.Labels != nil {
		c.Config.Labels = make(map[string]string, len(img.Config.Labels))
		for k, v := range img.Config.Labels {
			c.Config.Labels[k] = v
		}
	}
	return &c
}

// Store is the node's image store: see the package documentation for its model. Its
// methods are safe for concurrent use.
type Store struct {
	root       string
	opts       Options
	regs       *Registries
	log        *slog.Logger
	transports transports
	layerLocks keyedMutex
	pulls      flightGroup

	mu     sync.Mutex
	idx    *index
	pinned map[string]int // layer DiffID → pulls or imports about to reference it
}

// Open opens (creating if needed) the store in opts.Root and recovers from a crash:
// half-unpacked layers are discarded, layers unpacked but not yet recorded are adopted,
// and images whose layers are gone are forgotten.
func Open(opts Options) (*Store, error) {
	if opts.Root == "" {
		return nil, errors.New("open image store: no root directory")
	}
	root, err := filepath.Abs(opts.Root)
	if err != nil {
		return nil, fmt.Errorf("open image store: %w", err)
	}
	if opts.MaxConcurrentDownloads <= 0 {
		opts.MaxConcurrentDownloads = 3
	}
	if opts.DiskUsage == nil {
		opts.DiskUsage = StatfsUsage
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	regs := opts.Registries
	if regs == nil {
		regs = &Registries{}
	}
	s := &Store{root: root, opts: opts, regs: regs, log: opts.Logger, pinned: map[string]int{}}
	for _, d := range []string{s.blobsDir(), s.layersDir(), s.containersDir(), s.emptyDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("open image store: %w", err)
		}
	}
	if err := os.RemoveAll(s.tmpDir()); err != nil {
		return nil, fmt.Errorf("open image store: clear temp dir: %w", err)
	}
	if err := os.Mkdir(s.tmpDir(), 0o700); err != nil {
		return nil, fmt.Errorf("open image store: %w", err)
	}
	if s.idx, err = loadIndex(s.indexPath()); err != nil {
		return nil, fmt.Errorf("open image store: %w", err)
	}
	if err := s.recover(); err != nil {
		return nil, fmt.Errorf("open image store: %w", err)
	}
	return s, nil
}

// Root returns the store's directory.
func (s *Store) Root() string { return s.root }

func (s *Store) indexPath() string     { return filepath.Join(s.root, "index.json") }
func (s *Store) blobsDir() string      { return filepath.Join(s.root, "blobs", "sha256") }
func (s *Store) layersDir() string     { return filepath.Join(s.root, "layers", "sha256") }
func (s *Store) containersDir() string { return filepath.Join(s.root, "containers") }
func (s *Store) tmpDir() string        { return filepath.Join(s.root, "tmp") }
func (s *Store) emptyDir() string      { return filepath.Join(s.root, "empty") }

// blobPath is where the manifest or config blob with digest d is kept.
func (s *Store) blobPath(d string) string {
	return filepath.Join(s.blobsDir(), strings.TrimPrefix(d, "sha256:"))
}

// layerDir is where the layer with DiffID diffID ("sha256:<hex>") is unpacked.
func (s *Store) layerDir(diffID string) string {
	return filepath.Join(s.layersDir(), strings.TrimPrefix(diffID, "sha256:"))
}

// RootFS returns the unpacked layer directories of img, lowest first: overlayfs's
// lowerdir reversed.
func (s *Store) RootFS(img *Image) []string {
	dirs := make([]string, len(img.Layers))
	for i, l := range img.Layers {
		dirs[i] = s.layerDir(l)
	}
	return dirs
}

// Get returns the image a reference, a manifest digest or an image ID names, or an
// error matching ErrNotPresent.
func (s *Store) Get(ref string) (*Image, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	img, err := s.resolveLocked(ref)
	if err != nil {
		return nil, err
	}
	return s.exportLocked(img), nil
}

// List returns every image the store holds, ordered by ID.
func (s *Store) List() []*Image {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Image, 0, len(s.idx.Images))
	for _, img := range s.idx.Images {
		out = append(out, s.exportLocked(img))
	}
	slices.SortFunc(out, func(a, b *Image) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// resolveLocked finds the image ref names: a reference, or a bare "sha256:" digest that
// is an image ID or a manifest or index digest.
func (s *Store) resolveLocked(ref string) (*Image, error) {
	if isDigest(ref) {
		if img := s.byDigestLocked(ref); img != nil {
			return img, nil
		}
		return nil, fmt.Errorf("image %s: %w", ref, ErrNotPresent)
	}
	r, err := ParseReference(ref)
	if err != nil {
		return nil, err
	}
	if img := s.lookupLocked(r); img != nil {
		return img, nil
	}
	return nil, fmt.Errorf("image %s: %w", r.Name(), ErrNotPresent)
}

// lookupLocked finds the image of a parsed reference: by the reference itself, or for
// a digest reference by content (the same manifest under another name is the same image).
func (s *Store) lookupLocked(r name.Reference) *Image {
	if id, ok := s.idx.Refs[r.Name()]; ok {
		if img, ok := s.idx.Images[id]; ok {
			return img
		}
	}
	if d, ok := r.(name.Digest); ok {
		return s.byDigestLocked(d.DigestStr())
	}
	return nil
}

func (s *Store) byDigestLocked(d string) *Image {
	if img, ok := s.idx.Images[d]; ok {
		return img
	}
	for _, img := range s.idx.Images {
		if img.Digest == d || img.IndexDigest == d {
			return img
		}
	}
	return nil
}

// exportLocked copies img for a caller, with its references filled in.
func (s *Store) exportLocked(img *Image) *Image {
	c := img.clone()
	c.Refs = nil
	for ref, id := range s.idx.Refs {
		if id == img.ID {
			c.Refs = append(c.Refs, ref)
		}
	}
	slices.Sort(c.Refs)
	return c
}

// touchLocked marks img used now. LastUsed only orders garbage
// collection, so it is written with the index's next real change rather
// than synced to disk on every pull and mount: that fsync was a large part
// of a pod's start.
func (s *Store) touchLocked(img *Image) error {
	img.LastUsed = s.opts.Now()
	return nil
}

func (s *Store) saveLocked() error {
	return s.idx.save(s.indexPath())
}

func isDigest(s string) bool {
	hex, ok := strings.CutPrefix(s, "sha256:")
	if !ok || len(hex) != 64 {
		return false
	}
	return strings.Trim(hex, "0123456789abcdef") == ""
}
