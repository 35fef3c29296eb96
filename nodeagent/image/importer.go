package image

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Annotations that name an image in an OCI layout's index.json.
const (
	annotationContainerdName = "io.containerd.image.name"
	annotationRefName        = "org.opencontainers.image.ref.name"
)

// ImportDir imports every image archive (*.tar, *.tar.gz, *.tgz: `docker save` output
// or an OCI image layout) in dir, as the agent does for DATA_DIR/images at start, so
// air-gapped nodes run their images with IfNotPresent. An archive already imported with
// the same size and modification time is skipped; layers already held are not unpacked
// again. A broken archive does not stop the others: their errors come back joined. A
// missing dir imports nothing.
func (s *Store) ImportDir(ctx context.Context, dir string) ([]*Image, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("import images: %w", err)
	}
	var out []*Image
	var errs []error
	for _, e := range entries {
		if !isArchiveName(e.Name()) || !e.Type().IsRegular() {
			continue
		}
		p := filepath.Join(dir, e.Name())
		info, err := e.Info()
		if err != nil {
			errs = append(errs, fmt.Errorf("import %s: %w", p, err))
			continue
		}
		stamp := fmt.Sprintf("%d:%d", info.Size(), info.ModTime().UnixNano())
		if s.importStamp(p) == stamp {
			s.log.Debug("archive already imported", "path", p)
			continue
		}
		imgs, err := s.Import(ctx, p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := s.setImportStamp(p, stamp); err != nil {
			errs = append(errs, err)
		}
		out = append(out, imgs...)
	}
	return out, errors.Join(errs...)
}

func isArchiveName(n string) bool {
	return strings.HasSuffix(n, ".tar") || strings.HasSuffix(n, ".tar.gz") || strings.HasSuffix(n, ".tgz")
}

func (s *Store) importStamp(path string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.idx.Imports[path]
}

func (s *Store) setImportStamp(path, stamp string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.idx.Imports[path] = stamp
	return s.saveLocked()
}

// Import imports the images of one archive: a `docker save` tarball (its RepoTags become
// references) or an OCI image layout tarball (named by the io.containerd.image.name or
// org.opencontainers.image.ref.name annotation), either of them optionally gzipped.
func (s *Store) Import(ctx context.Context, path string) ([]*Image, error) {
	imgs, err := s.importArchive(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	for _, img := range imgs {
		s.log.Info("imported image", "path", path, "image_id", img.ID, "refs", strings.Join(img.Refs, ","))
	}
	return imgs, nil
}

func (s *Store) importArchive(ctx context.Context, path string) ([]*Image, error) {
	plain, cleanup, err := s.gunzipped(path)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	names, err := topLevelNames(plain)
	if err != nil {
		return nil, err
	}
	switch {
	case names["manifest.json"]:
		return s.importDocker(ctx, plain)
	case names["index.json"] && names["oci-layout"]:
		dir, err := os.MkdirTemp(s.tmpDir(), "import-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		if err := extractPlain(plain, dir); err != nil {
			return nil, err
		}
		return s.importLayout(ctx, dir)
	}
	return nil, errors.New("neither a docker save archive (manifest.json) nor an OCI layout (index.json, oci-layout)")
}

// gunzipped returns path itself, or for a gzipped file a decompressed temporary copy:
// go-containerregistry's tarball reader seeks through the archive many times.
func (s *Store) gunzipped(path string) (string, func(), error) {
	f, err := os.Open(path)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	magic, err := br.Peek(2)
	if err != nil || magic[0] != 0x1f || magic[1] != 0x8b {
		return path, func() {}, nil // too short to be gzip: read it as a tar
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		return "", nil, fmt.Errorf("gunzip: %w", err)
	}
	defer zr.Close()
	tmp, err := os.CreateTemp(s.tmpDir(), "import-*.tar")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { os.Remove(tmp.Name()) }
	_, err = io.Copy(tmp, zr)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		cleanup()
		return "", nil, fmt.Errorf("gunzip: %w", err)
	}
	return tmp.Name(), cleanup, nil
}

// topLevelNames lists the names of an archive's entries without a directory.
func topLevelNames(path string) (map[string]bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names := map[string]bool{}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read archive: %w", err)
		}
		if n := strings.TrimPrefix(hdr.Name, "./"); !strings.Contains(n, "/") {
			names[n] = true
		}
	}
}

// importDocker imports each image of a `docker save` archive.
func (s *Store) importDocker(ctx context.Context, path string) ([]*Image, error) {
	opener := func() (io.ReadCloser, error) { return os.Open(path) }
	m, err := tarball.LoadManifest(opener)
	if err != nil {
		return nil, fmt.Errorf("read manifest.json: %w", err)
	}
	var out []*Image
	for i, d := range m {
		var tag *name.Tag
		var refs []string
		for _, t := range d.RepoTags {
			nt, err := name.NewTag(t)
			if err != nil {
				return nil, fmt.Errorf("image %d: repo tag %q: %w", i, t, err)
			}
			refs = append(refs, nt.Name())
			if tag == nil {
				tag = &nt
			}
		}
		if tag == nil && len(m) > 1 {
			s.log.Warn("skipped untagged image in a multi-image archive", "path", path, "config", d.Config)
			continue
		}
		img, err := tarball.Image(opener, tag)
		if err != nil {
			return nil, fmt.Errorf("image %d: %w", i, err)
		}
		res, err := s.storeImage(ctx, img, storeInput{refs: refs})
		if err != nil {
			return nil, fmt.Errorf("image %d: %w", i, err)
		}
		out = append(out, res.img)
	}
	return out, nil
}

// importLayout imports each image an OCI layout's index.json lists, picking this node's
// platform from nested indexes.
func (s *Store) importLayout(ctx context.Context, dir string) ([]*Image, error) {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("read OCI layout: %w", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("read OCI layout index: %w", err)
	}
	var out []*Image
	for _, d := range im.Manifests {
		in := storeInput{hasManifest: true}
		var img v1.Image
		switch {
		case d.MediaType.IsIndex():
			img, err = imageOfIndex(idx, d.Digest)
			in.indexDigest = d.Digest.String()
		case d.MediaType.IsImage():
			img, err = idx.Image(d.Digest)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("manifest %s: %w", d.Digest, err)
		}
		if r := layoutRef(d.Annotations); r != nil {
			in.repo = r.Context().Name()
			in.refs = []string{r.Name()}
			if in.indexDigest != "" {
				in.refs = append(in.refs, in.repo+"@"+in.indexDigest)
			}
		} else {
			s.log.Warn("imported an image without a name", "dir", dir, "digest", d.Digest.String())
		}
		res, err := s.storeImage(ctx, img, in)
		if err != nil {
			return nil, fmt.Errorf("manifest %s: %w", d.Digest, err)
		}
		out = append(out, res.img)
	}
	return out, nil
}

func imageOfIndex(parent v1.ImageIndex, h v1.Hash) (v1.Image, error) {
	idx, err := parent.ImageIndex(h)
	if err != nil {
		return nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	d, err := pickPlatform(im)
	if err != nil {
		return nil, err
	}
	return idx.Image(d.Digest)
}

// layoutRef reads an image's name from its annotations; a bare tag ("1.25"), which
// names no repository, is no name.
func layoutRef(ann map[string]string) name.Reference {
	for _, key := range []string{annotationContainerdName, annotationRefName} {
		v := ann[key]
		if v == "" || !strings.ContainsAny(v, "/:@") {
			continue
		}
		if r, err := name.ParseReference(v); err == nil {
			return r
		}
	}
	return nil
}

// extractPlain extracts the directories and regular files of a tar into dir, refusing
// names that climb out of it; an OCI layout needs nothing else.
func extractPlain(path, dir string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read archive: %w", err)
		}
		rel, err := cleanName(hdr.Name)
		if err != nil || rel == "" {
			if err != nil {
				return err
			}
			continue
		}
		target := filepath.Join(dir, filepath.FromSlash(rel))
		switch hdr.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(target, 0o700)
		case tar.TypeReg:
			err = writePlainFile(target, tr)
		}
		if err != nil {
			return fmt.Errorf("extract %q: %w", hdr.Name, err)
		}
	}
}

func writePlainFile(target string, r io.Reader) error {
	if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
