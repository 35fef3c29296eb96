package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// storeInput is what a source (registry, archive) knows about an image beyond the
// image itself.
type storeInput struct {
	refs        []string // canonical references to point at the image
	repo        string   // repository for the manifest digest reference; "" for none
	indexDigest string   // the index the image was picked from, if any
	hasManifest bool     // false for `docker save` images, whose manifest is synthetic
}

// storeImage unpacks the layers of img the store lacks and records the image with its
// references.
func (s *Store) storeImage(ctx context.Context, img v1.Image, in storeInput) (pullResult, error) {
	rawCfg, err := img.RawConfigFile()
	if err != nil {
		return pullResult{}, fmt.Errorf("fetch config: %w", err)
	}
	cf, err := v1.ParseConfigFile(bytes.NewReader(rawCfg))
	if err != nil {
		return pullResult{}, fmt.Errorf("parse config: %w", err)
	}
	id := digestOf(rawCfg)
	layers, err := img.Layers()
	if err != nil {
		return pullResult{}, fmt.Errorf("list layers: %w", err)
	}
	if len(layers) != len(cf.RootFS.DiffIDs) {
		return pullResult{}, fmt.Errorf("image %s: %d layers but %d diff IDs in its config",
			id, len(layers), len(cf.RootFS.DiffIDs))
	}
	diffIDs := make([]string, len(layers))
	for i, d := range cf.RootFS.DiffIDs {
		diffIDs[i] = d.String()
	}
	var rawManifest []byte
	var size int64
	if in.hasManifest {
		if rawManifest, err = img.RawManifest(); err != nil {
			return pullResult{}, fmt.Errorf("read manifest: %w", err)
		}
		m, err := img.Manifest()
		if err != nil {
			return pullResult{}, fmt.Errorf("read manifest: %w", err)
		}
		size = m.Config.Size
		for _, l := range m.Layers {
			size += l.Size
		}
	}
	s.pin(diffIDs)
	defer s.unpin(diffIDs)
	if err := s.ensureLayers(ctx, diffIDs, layers); err != nil {
		return pullResult{}, err
	}
	if err := writeFileAtomic(s.blobPath(id), rawCfg, 0o600); err != nil {
		return pullResult{}, fmt.Errorf("save config blob: %w", err)
	}
	rec := &Image{ID: id, Layers: diffIDs, Config: configFrom(cf), Size: size, IndexDigest: in.indexDigest}
	refs := in.refs
	if rawManifest != nil {
		rec.Digest = digestOf(rawManifest)
		if err := writeFileAtomic(s.blobPath(rec.Digest), rawManifest, 0o600); err != nil {
			return pullResult{}, fmt.Errorf("save manifest blob: %w", err)
		}
		if in.repo != "" {
			refs = append(refs, in.repo+"@"+rec.Digest)
		}
	}
	out, err := s.recordImage(rec, refs, int64(len(rawCfg)))
	if err != nil {
		return pullResult{}, err
	}
	return pullResult{img: out, size: out.Size}, nil
}

// recordImage adds or refreshes an image in the index and points refs at it. An image
// without a manifest gets its size from its unpacked layers' tar lengths.
func (s *Store) recordImage(rec *Image, refs []string, configSize int64) (*Image, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	if rec.Digest == "" {
		rec.Size = configSize
		for _, l := range rec.Layers {
			if lr, ok := s.idx.Layers[l]; ok {
				rec.Size += lr.TarSize
			}
		}
	}
	cur, ok := s.idx.Images[rec.ID]
	if !ok {
		rec.Added = now
		s.idx.Images[rec.ID] = rec
		cur = rec
	} else if rec.Digest != "" {
		cur.Digest, cur.Size = rec.Digest, rec.Size
	}
	if rec.IndexDigest != "" {
		cur.IndexDigest = rec.IndexDigest
	}
	cur.LastUsed = now
	for _, r := range refs {
		s.idx.Refs[r] = rec.ID
	}
	if err := s.saveLocked(); err != nil {
		return nil, err
	}
	return s.exportLocked(cur), nil
}

// pin keeps layers from garbage collection while an image that uses them is stored.
func (s *Store) pin(diffIDs []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range diffIDs {
		s.pinned[d]++
	}
}

func (s *Store) unpin(diffIDs []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range diffIDs {
		if s.pinned[d]--; s.pinned[d] <= 0 {
			delete(s.pinned, d)
		}
	}
}

// ensureLayers unpacks the missing layers, a bounded number at once.
func (s *Store) ensureLayers(ctx context.Context, diffIDs []string, layers []v1.Layer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, s.opts.MaxConcurrentDownloads)
	errs := make([]error, len(layers))
	var wg sync.WaitGroup
	for i := range layers {
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				errs[i] = ctx.Err()
				return
			}
			defer func() { <-sem }()
			if err := s.ensureLayer(ctx, diffIDs[i], layers[i].Uncompressed); err != nil {
				errs[i] = fmt.Errorf("layer %s: %w", diffIDs[i], err)
				cancel()
			}
		})
	}
	wg.Wait()
	var first error
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
		if first == nil {
			first = err
		}
	}
	return first
}

func (s *Store) hasLayer(diffID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.idx.Layers[diffID]
	return ok
}

// ensureLayer unpacks one layer unless it is already there: into a temp directory,
// checked against its DiffID, synced, then renamed into place and recorded, so a crash
// never leaves a half-unpacked layer that counts.
func (s *Store) ensureLayer(ctx context.Context, diffID string, open func() (io.ReadCloser, error)) error {
	unlock := s.layerLocks.lock(diffID)
	defer unlock()
	if s.hasLayer(diffID) {
		return nil
	}
	start := time.Now()
	tmp, err := os.MkdirTemp(s.tmpDir(), "layer-")
	if err != nil {
		return fmt.Errorf("make temp dir: %w", err)
	}
	defer os.RemoveAll(tmp) // gone after a successful rename
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("chmod temp dir: %w", err)
	}
	rc, err := open()
	if err != nil {
		return fmt.Errorf("open layer: %w", err)
	}
	defer rc.Close()
	h := sha256.New()
	cr := &countingReader{r: io.TeeReader(rc, h)}
	size, err := unpackLayer(ctx, tmp, cr, s.log)
	if err != nil {
		return fmt.Errorf("unpack: %w", err)
	}
	if _, err := io.Copy(io.Discard, cr); err != nil { // the tar's padding, for the digest
		return fmt.Errorf("read layer: %w", err)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != diffID {
		return fmt.Errorf("content digest %s does not match the diff ID", got)
	}
	if err := syncFS(tmp); err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	dst := s.layerDir(diffID)
	if err := os.RemoveAll(dst); err != nil {
		return fmt.Errorf("clear %s: %w", dst, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("move into place: %w", err)
	}
	if err := syncDir(s.layersDir()); err != nil {
		return fmt.Errorf("sync layers dir: %w", err)
	}
	s.mu.Lock()
	s.idx.Layers[diffID] = &layerRecord{Size: size, TarSize: cr.n}
	err = s.saveLocked()
	s.mu.Unlock()
	if err != nil {
		return err
	}
	s.log.Debug("unpacked layer", "layer", diffID, "bytes", size, "duration", time.Since(start))
	return nil
}

// syncFS flushes the filesystem holding path to disk.
func syncFS(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Syncfs(int(f.Fd()))
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func digestOf(b []byte) string {
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:])
}
