package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// indexVersion is the version of index.json's format.
const indexVersion = 1

// index is the store's metadata, saved whole to index.json after every change.
type index struct {
	Version int `json:"version"`
	// Images maps an image ID to the image.
	Images map[string]*Image `json:"images"`
	// Refs maps a canonical reference (tag or digest form) to an image ID.
	Refs map[string]string `json:"refs"`
	// Layers maps a DiffID to its unpacked layer.
	Layers map[string]*layerRecord `json:"layers"`
	// Containers maps a container ID to the ID of the image its filesystem uses.
	Containers map[string]string `json:"containers"`
	// Imports maps an imported archive's path to its size and mtime when imported.
	Imports map[string]string `json:"imports"`
}

// layerRecord describes one unpacked layer.
type layerRecord struct {
	// Size is the bytes of regular files in the unpacked layer.
	Size int64 `json:"size"`
	// TarSize is the length of the uncompressed layer tar.
	TarSize int64 `json:"tar_size"`
}

func newIndex() *index {
	return &index{
		Version:    indexVersion,
		Images:     map[string]*Image{},
		Refs:       map[string]string{},
		Layers:     map[string]*layerRecord{},
		Containers: map[string]string{},
		Imports:    map[string]string{},
	}
}

// loadIndex reads index.json; a missing file is an empty index.
func loadIndex(path string) (*index, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return newIndex(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("read index: %w", err)
	}
	idx := newIndex()
	if err := json.Unmarshal(data, idx); err != nil {
		return nil, fmt.Errorf("decode index %s: %w", path, err)
	}
	if idx.Version != indexVersion {
		return nil, fmt.Errorf("index %s: version %d, want %d", path, idx.Version, indexVersion)
	}
	// Maps absent from the file decode as nil: make them usable.
	fresh := newIndex()
	if idx.Images == nil {
		idx.Images = fresh.Images
	}
	if idx.Refs == nil {
		idx.Refs = fresh.Refs
	}
	if idx.Layers == nil {
		idx.Layers = fresh.Layers
	}
	if idx.Containers == nil {
		idx.Containers = fresh.Containers
	}
	if idx.Imports == nil {
		idx.Imports = fresh.Imports
	}
	return idx, nil
}

// save writes the index atomically: a synced temp file renamed over the old one, then
// the directory synced.
func (idx *index) save(path string) error {
	data, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return fmt.Errorf("encode index: %w", err)
	}
	if err := writeFileAtomic(path, data, 0o600); err != nil {
		return fmt.Errorf("save index: %w", err)
	}
	return nil
}

// writeFileAtomic replaces path with data so that a crash leaves the old or the new
// content, never a mix.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// recover reconciles the index with the directories after a crash.
func (s *Store) recover() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	entries, err := os.ReadDir(s.layersDir())
	if err != nil {
		return fmt.Errorf("list layers: %w", err)
	}
	onDisk := map[string]bool{}
	for _, e := range entries {
		diffID := "sha256:" + e.Name()
		if !e.IsDir() || !isDigest(diffID) {
			continue
		}
		onDisk[diffID] = true
		if _, ok := s.idx.Layers[diffID]; !ok {
			// Renamed into place after a complete unpack, but not recorded: adopt it.
			size, err := dirSize(s.layerDir(diffID))
			if err != nil {
				return fmt.Errorf("adopt layer %s: %w", diffID, err)
			}
			s.idx.Layers[diffID] = &layerRecord{Size: size}
			s.log.Info("adopted unrecorded layer", "layer", diffID)
		}
	}
	for diffID := range s.idx.Layers {
		if !onDisk[diffID] {
			delete(s.idx.Layers, diffID)
			s.log.Warn("forgot layer missing on disk", "layer", diffID)
		}
	}
	for id, img := range s.idx.Images {
		for _, l := range img.Layers {
			if _, ok := s.idx.Layers[l]; !ok {
				s.forgetImageLocked(id)
				s.log.Warn("forgot image with a missing layer", "image_id", id, "layer", l)
				break
			}
		}
	}
	for ref, id := range s.idx.Refs {
		if _, ok := s.idx.Images[id]; !ok {
			delete(s.idx.Refs, ref)
		}
	}
	for cid := range s.idx.Containers {
		if _, err := os.Stat(s.containerDir(cid)); errors.Is(err, fs.ErrNotExist) {
			delete(s.idx.Containers, cid)
		}
	}
	return s.saveLocked()
}

// forgetImageLocked drops an image, every reference to it and its manifest and config
// blobs. Its layers stay: the caller decides which are no longer needed.
func (s *Store) forgetImageLocked(id string) {
	img, ok := s.idx.Images[id]
	if !ok {
		return
	}
	delete(s.idx.Images, id)
	for ref, rid := range s.idx.Refs {
		if rid == id {
			delete(s.idx.Refs, ref)
		}
	}
	for _, blob := range []string{img.ID, img.Digest, img.IndexDigest} {
		if blob != "" && s.byDigestLocked(blob) == nil {
			_ = os.Remove(s.blobPath(blob)) // best effort: a leftover blob is harmless
		}
	}
}

// dirSize sums the sizes of the regular files under dir.
func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			n += fi.Size()
		}
		return nil
	})
	return n, err
}
