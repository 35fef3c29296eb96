package image

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Usage is the size and free space of a filesystem, in bytes.
type Usage struct {
	// Capacity is the filesystem's size.
	Capacity uint64
	// Available is the space unprivileged users may still use.
	Available uint64
}

// DiskUsageFunc reports the usage of the filesystem holding path.
type DiskUsageFunc func(path string) (Usage, error)

// StatfsUsage is the default DiskUsageFunc: statfs(2).
func StatfsUsage(path string) (Usage, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return Usage{}, fmt.Errorf("statfs %s: %w", path, err)
	}
	bs := uint64(st.Bsize) // block sizes are positive
	return Usage{Capacity: st.Blocks * bs, Available: st.Bavail * bs}, nil
}

// GCResult tells what a GC run saw and did.
type GCResult struct {
	// UsagePercent is the filesystem's usage when GC started.
	UsagePercent int
	// Needed is the bytes to free to get down to the low threshold (0: nothing to do).
	Needed int64
	// Freed is the bytes of layers and blobs removed.
	Freed int64
	// Removed are the IDs of the images removed, in order.
	Removed []string
}

// GC removes images when the filesystem holding the store is at or above highPercent
// usage, least recently used first, until the bytes freed would bring it down to
// lowPercent: the kubelet's imageGCHighThresholdPercent (85) and
// imageGCLowThresholdPercent (80). Images named in inUse (by reference, ID or digest),
// images a container filesystem uses, and images added less than MinimumGCAge ago are
// kept; layers no image uses any more go first. When everything eligible is not enough,
// the error matches ErrGCInsufficient (the agent's FreeDiskSpaceFailed event).
func (s *Store) GC(ctx context.Context, inUse []string, highPercent, lowPercent int) (GCResult, error) {
	var res GCResult
	if lowPercent < 0 || highPercent > 100 || lowPercent > highPercent {
		return res, fmt.Errorf("image gc: thresholds low %d%%, high %d%%: want 0 <= low <= high <= 100",
			lowPercent, highPercent)
	}
	u, err := s.opts.DiskUsage(s.root)
	if err != nil {
		return res, fmt.Errorf("image gc: %w", err)
	}
	if u.Capacity == 0 || u.Available > u.Capacity {
		return res, fmt.Errorf("image gc: implausible usage: capacity %d, available %d", u.Capacity, u.Available)
	}
	res.UsagePercent = 100 - int(u.Available*100/u.Capacity)
	if highPercent >= 100 || res.UsagePercent < highPercent {
		return res, nil
	}
	res.Needed = int64(u.Capacity*uint64(100-lowPercent)/100) - int64(u.Available)
	if res.Needed <= 0 {
		return res, nil
	}
	res.Freed, res.Removed, err = s.free(ctx, inUse, res.Needed)
	if err != nil {
		return res, fmt.Errorf("image gc: %w", err)
	}
	s.log.Info("image garbage collection", "usage_percent", res.UsagePercent, "needed_bytes", res.Needed,
		"freed_bytes", res.Freed, "removed", len(res.Removed))
	if res.Freed < res.Needed {
		return res, fmt.Errorf("image gc: %w: attempted to free %d bytes, but only found %d bytes eligible to free",
			ErrGCInsufficient, res.Needed, res.Freed)
	}
	return res, nil
}

// free removes unused layers, then unused images by age of use, until needed bytes are
// freed or nothing eligible is left.
func (s *Store) free(ctx context.Context, inUse []string, needed int64) (int64, []string, error) {
	s.mu.Lock()
	keep := map[string]bool{}
	for _, ref := range inUse {
		if img, err := s.resolveLocked(ref); err == nil {
			keep[img.ID] = true
		}
	}
	for _, id := range s.idx.Containers {
		keep[id] = true
	}
	now := s.opts.Now()
	var candidates []*Image
	for _, img := range s.idx.Images {
		if !keep[img.ID] && now.Sub(img.Added) >= s.opts.MinimumGCAge {
			candidates = append(candidates, img)
		}
	}
	slices.SortFunc(candidates, func(a, b *Image) int {
		if c := a.LastUsed.Compare(b.LastUsed); c != 0 {
			return c
		}
		if c := a.Added.Compare(b.Added); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	freed, trash := s.dropUnusedLayersLocked()
	var removed []string
	for _, img := range candidates {
		if freed >= needed || ctx.Err() != nil {
			break
		}
		n, t := s.removeImageLocked(img.ID)
		freed += n
		trash = append(trash, t...)
		removed = append(removed, img.ID)
	}
	err := s.saveLocked()
	s.mu.Unlock()
	s.deleteTrash(trash)
	return freed, removed, err
}

// Remove removes the image ref names. A tag of an image that has other tags is only
// untagged; otherwise (the last tag, a digest reference or an image ID) the image goes
// with all its references, and so do the layers no other image uses. An image a
// container filesystem uses is refused with ErrInUse.
func (s *Store) Remove(ref string) error {
	s.mu.Lock()
	img, err := s.resolveLocked(ref)
	if err != nil {
		s.mu.Unlock()
		return fmt.Errorf("remove image: %w", err)
	}
	if key, ok := s.otherTag(ref, img.ID); ok {
		delete(s.idx.Refs, key)
		err := s.saveLocked()
		s.mu.Unlock()
		return err
	}
	for cid, id := range s.idx.Containers {
		if id == img.ID {
			s.mu.Unlock()
			return fmt.Errorf("remove image %s: %w by container %s", ref, ErrInUse, cid)
		}
	}
	_, trash := s.removeImageLocked(img.ID)
	err = s.saveLocked()
	s.mu.Unlock()
	s.deleteTrash(trash)
	if err != nil {
		return fmt.Errorf("remove image %s: %w", ref, err)
	}
	s.log.Info("removed image", "image", ref, "image_id", img.ID)
	return nil
}

// otherTag returns ref's key when ref is a tag of image id and id has another tag.
func (s *Store) otherTag(ref, id string) (string, bool) {
	if isDigest(ref) {
		return "", false
	}
	r, err := ParseReference(ref)
	if err != nil || strings.Contains(r.Name(), "@") {
		return "", false
	}
	for other, oid := range s.idx.Refs {
		if oid == id && other != r.Name() && !strings.Contains(other, "@") {
			return r.Name(), true
		}
	}
	return "", false
}

// removeImageLocked forgets an image and moves the layers only it used to the trash.
func (s *Store) removeImageLocked(id string) (int64, []string) {
	img, ok := s.idx.Images[id]
	if !ok {
		return 0, nil
	}
	s.forgetImageLocked(img.ID)
	return s.dropUnusedLayersLocked()
}

// dropUnusedLayersLocked forgets the layers no image uses and no pull has pinned and
// moves their directories to the trash; it returns their size.
func (s *Store) dropUnusedLayersLocked() (int64, []string) {
	used := map[string]bool{}
	for _, img := range s.idx.Images {
		for _, l := range img.Layers {
			used[l] = true
		}
	}
	var freed int64
	var trash []string
	for diffID, rec := range s.idx.Layers {
		if used[diffID] || s.pinned[diffID] > 0 {
			continue
		}
		dst := filepath.Join(s.tmpDir(), "trash-"+strings.TrimPrefix(diffID, "sha256:")+"-"+fmt.Sprint(time.Now().UnixNano()))
		if err := os.Rename(s.layerDir(diffID), dst); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("could not remove layer", "layer", diffID, "error", err)
			continue
		}
		delete(s.idx.Layers, diffID)
		freed += rec.Size
		trash = append(trash, dst)
	}
	return freed, trash
}

// deleteTrash removes directories already unlinked from the store, outside its lock.
func (s *Store) deleteTrash(dirs []string) {
	for _, d := range dirs {
		if err := os.RemoveAll(d); err != nil {
			s.log.Warn("could not delete removed layer", "path", d, "error", err)
		}
	}
}
