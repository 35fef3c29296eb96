package volume

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// Names the atomic writer owns inside a volume directory. User-visible
// names never start with "..", so they cannot clash.
const (
	dataLink     = "..data"
	dataLinkTmp  = "..data_tmp"
	tsLayout     = "..2006_01_02_15_04_05.000000000"
	maxTSRetries = 1000
)

// writeAtomic makes dir hold exactly the files of p, the way kubelet's
// atomic writer does:
//
//  1. if the directory "..data" points at already holds p, only repair the
//     user-visible links and stop;
//  2. write p into a new timestamped directory;
//  3. point a new symlink "..data_tmp" at it and rename it over "..data"
//     (the commit: readers through "..data" now see the new set);
//  4. make each top-level name a symlink "name -> ..data/name" and remove
//     the names p no longer has;
//  5. remove the old timestamped directory and any leftovers of an
//     interrupted write.
//
// It reports whether the content changed.
func writeAtomic(dir string, p payload, now time.Time) (bool, error) {
	if err := validatePayload(p); err != nil {
		return false, err
	}
	current, err := os.Readlink(filepath.Join(dir, dataLink))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("read %s: %w", dataLink, err)
	}
	if !isTSName(current) {
		current = ""
	}
	changed := true
	if current != "" {
		same, err := sameFiles(filepath.Join(dir, current), p)
		if err != nil {
			return false, err
		}
		changed = !same
	}
	ts := current
	if changed {
		if ts, err = writeTSDir(dir, p, now); err != nil {
			return false, err
		}
		if err := swapData(dir, ts); err != nil {
			_ = os.RemoveAll(filepath.Join(dir, ts)) // never committed; the error below says why
			return false, err
		}
	}
	if err := syncLinks(dir, p); err != nil {
		return changed, err
	}
	if err := removeStale(dir, ts); err != nil {
		return changed, err
	}
	return changed, nil
}

// isTSName reports whether name can be one of the writer's timestamped
// directories.
func isTSName(name string) bool {
	return strings.HasPrefix(name, "..") && name != dataLink && name != dataLinkTmp &&
		!strings.ContainsRune(name, '/') && len(name) > 2
}

// writeTSDir writes p into a new directory named after now (made unique if
// taken) and returns its name.
func writeTSDir(dir string, p payload, now time.Time) (string, error) {
	var name string
	for i := 0; ; i++ {
		name = now.UTC().Add(time.Duration(i)).Format(tsLayout)
		err := os.Mkdir(filepath.Join(dir, name), 0o755)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) || i >= maxTSRetries {
			return "", fmt.Errorf("create data directory: %w", err)
		}
	}
	root := filepath.Join(dir, name)
	if err := writeFiles(root, p); err != nil {
		_ = os.RemoveAll(root) // half-written, never visible; the error says why
		return "", err
	}
	return name, nil
}

func writeFiles(root string, p payload) error {
	if err := os.Chmod(root, 0o755); err != nil {
		return fmt.Errorf("write volume files: %w", err)
	}
	for rel, f := range p {
		full := filepath.Join(root, filepath.FromSlash(rel))
		if err := mkdirAllMode(root, path.Dir(rel)); err != nil {
			return fmt.Errorf("write volume file %s: %w", rel, err)
		}
		if err := os.WriteFile(full, f.data, f.mode); err != nil {
			return fmt.Errorf("write volume file %s: %w", rel, err)
		}
		// WriteFile's mode is filtered by the umask; the volume's is not.
		if err := os.Chmod(full, f.mode); err != nil {
			return fmt.Errorf("write volume file %s: %w", rel, err)
		}
	}
	return nil
}

// mkdirAllMode creates rel's directories below root with mode 0755
// regardless of the umask.
func mkdirAllMode(root, rel string) error {
	if rel == "." {
		return nil
	}
	cur := root
	for _, seg := range strings.Split(rel, "/") {
		cur = filepath.Join(cur, seg)
		if err := os.Mkdir(cur, 0o755); err != nil {
			if errors.Is(err, fs.ErrExist) {
				continue
			}
			return err
		}
		if err := os.Chmod(cur, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// swapData points "..data" at ts with one rename(2).
func swapData(dir, ts string) error {
	tmp := filepath.Join(dir, dataLinkTmp)
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("swap %s: %w", dataLink, err)
	}
	if err := os.Symlink(ts, tmp); err != nil {
		return fmt.Errorf("swap %s: %w", dataLink, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, dataLink)); err != nil {
		return fmt.Errorf("swap %s: %w", dataLink, err)
	}
	return nil
}

// syncLinks makes each top-level name of p a symlink into "..data" and
// removes user-visible names p does not have.
func syncLinks(dir string, p payload) error {
	want := map[string]bool{}
	for rel := range p {
		want[strings.SplitN(rel, "/", 2)[0]] = true
	}
	for name := range want {
		link := filepath.Join(dir, name)
		target := dataLink + "/" + name
		if cur, err := os.Readlink(link); err == nil && cur == target {
			continue
		}
		if err := os.RemoveAll(link); err != nil {
			return fmt.Errorf("link %s: %w", name, err)
		}
		if err := os.Symlink(target, link); err != nil {
			return fmt.Errorf("link %s: %w", name, err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("list volume: %w", err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "..") || want[e.Name()] {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("remove stale %s: %w", e.Name(), err)
		}
	}
	return nil
}

// removeStale removes the writer's entries other than "..data" and the
// directory keep: replaced data directories and leftovers of writes that
// were interrupted.
func removeStale(dir, keep string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("list volume: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, "..") || name == dataLink || name == keep {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("remove old data %s: %w", name, err)
		}
	}
	return nil
}

// sameFiles reports whether root holds exactly the regular files of p with
// the same content and permissions.
func sameFiles(root string, p payload) (bool, error) {
	seen := 0
	same := true
	err := filepath.WalkDir(root, func(full string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(root, full)
		if err != nil {
			return err
		}
		f, ok := p[filepath.ToSlash(rel)]
		if !ok || !d.Type().IsRegular() {
			same = false
			return filepath.SkipAll
		}
		seen++
		info, err := d.Info()
		if err != nil {
			return err
		}
		data, err := os.ReadFile(full)
		if err != nil {
			return err
		}
		if info.Mode().Perm() != f.mode || !bytes.Equal(data, f.data) {
			same = false
			return filepath.SkipAll
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil // "..data" dangles: rewrite
		}
		return false, fmt.Errorf("compare volume files: %w", err)
	}
	return same && seen == len(p), nil
}
