package containerinit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// maxEntry bounds the bytes kept for one entry. The init writes at most
// 16 KiB of text per entry; anything longer is not one of its lines.
const maxEntry = 1 << 20

// rotatedName is the path of container.log.n (container.log for n = 0).
func rotatedName(dir string, n int) string {
	if n == 0 {
		return filepath.Join(dir, LogFile)
	}
	return filepath.Join(dir, LogFile+"."+strconv.Itoa(n))
}

// openLogFiles opens container.log and its rotated files in dir, oldest
// first. A file rotated away meanwhile is skipped, as is a second name
// for a file already open.
func openLogFiles(dir string) ([]*os.File, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read logs: %w", err)
	}
	var nums []int
	for _, e := range entries {
		name := e.Name()
		if name == LogFile {
			nums = append(nums, 0)
		} else if s, ok := strings.CutPrefix(name, LogFile+"."); ok {
			if n, err := strconv.Atoi(s); err == nil && n > 0 {
				nums = append(nums, n)
			}
		}
	}
	slices.Sort(nums)
	slices.Reverse(nums) // highest number = oldest
	var files []*os.File
	var infos []os.FileInfo
	for _, n := range nums {
		f, err := os.Open(rotatedName(dir, n))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		var fi os.FileInfo
		if err == nil {
			fi, err = f.Stat()
		}
		if err != nil {
			for _, f := range files {
				f.Close()
			}
			return nil, fmt.Errorf("read logs: %w", err)
		}
		if slices.ContainsFunc(infos, func(o os.FileInfo) bool { return os.SameFile(o, fi) }) {
			f.Close()
			continue
		}
		files, infos = append(files, f), append(infos, fi)
	}
	return files, nil
}

// position is a place in the list of log files: file index and offset.
type position struct {
	file int
	off  int64
}

// findStart returns where the output starts: after the last entry logged
// before since, and so that tail lines (if tail >= 0) follow. It reads
// backward from the end. A line is an "F" entry with the "P" entries of
// its stream before it; trailing "P" entries of a stream count as a line.
func findStart(files []*os.File, tail int, since time.Time) (position, error) {
	if tail < 0 && since.IsZero() {
		return position{}, nil
	}
	count := 0
	var seen [2]bool // per stream: an entry of it was counted
	for i := len(files) - 1; i >= 0; i-- {
		fi, err := files[i].Stat()
		if err != nil {
			return position{}, fmt.Errorf("read logs: %w", err)
		}
		var start position
		stopped, err := scanBackward(files[i], fi.Size(), func(entry []byte, end int64) bool {
			l, err := parseLine(entry)
			if err != nil {
				return true // not a line
			}
			if !since.IsZero() && l.Time.Before(since) {
				start = position{i, end}
				return false
			}
			if tail < 0 {
				return true
			}
			if s := streamIndex(l.Stream); !l.Partial || !seen[s] {
				count++
				seen[s] = true
			}
			if count > tail {
				start = position{i, end}
				return false
			}
			return true
		})
		if err != nil {
			return position{}, fmt.Errorf("read logs %s: %w", files[i].Name(), err)
		}
		if stopped {
			return start, nil
		}
	}
	return position{}, nil
}

// scanBackward calls fn for each complete ('\n'-terminated) entry of the
// first size bytes of r, last first, with the entry (without '\n') and the
// offset just past its '\n', until fn returns false (stopped = true).
// Bytes after the last '\n' are an entry still being written: skipped.
func scanBackward(r io.ReaderAt, size int64, fn func(entry []byte, end int64) bool) (stopped bool, err error) {
	const block = 32 << 10
	var buf []byte // bytes [pos, pos+len(buf)) of r
	pos := size
	found := false // a '\n' was found: buf ends with one, or is empty
	for {
		if !found {
			if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
				buf, found = buf[:i+1], true
				continue
			}
			buf = buf[:0] // part of an entry not to pass on
		} else if len(buf) > 0 {
			i := bytes.LastIndexByte(buf[:len(buf)-1], '\n')
			if i >= 0 || pos == 0 {
				if !fn(buf[i+1:len(buf)-1], pos+int64(len(buf))) {
					return true, nil
				}
				buf = buf[:i+1]
				continue
			}
			if len(buf) > maxEntry { // not one of the init's entries: skip it
				buf, found = buf[:0], false
			}
		}
		if pos == 0 {
			return false, nil
		}
		n := min(block, pos)
		pos -= n
		grown := make([]byte, int(n)+len(buf))
		if _, err := r.ReadAt(grown[:n], pos); err != nil {
			return false, err
		}
		copy(grown[n:], buf)
		buf = grown
	}
}

// entryReader reads a log file forward, entry by entry.
type entryReader struct {
	f          *os.File
	info       os.FileInfo // identifies the file across renames
	buf        []byte
	start, end int // unread bytes: buf[start:end]
}

func newEntryReader(f *os.File, off int64) (*entryReader, error) {
	fi, err := f.Stat()
	if err == nil {
		_, err = f.Seek(off, io.SeekStart)
	}
	if err != nil {
		return nil, fmt.Errorf("read logs %s: %w", f.Name(), err)
	}
	return &entryReader{f: f, info: fi, buf: make([]byte, 64<<10)}, nil
}

// copy passes every complete entry to out until the end of the file. An
// unfinished entry at the end stays buffered for the next call.
func (r *entryReader) copy(out *emitter) error {
	for {
		for {
			i := bytes.IndexByte(r.buf[r.start:r.end], '\n')
			if i < 0 {
				break
			}
			if err := out.entry(r.buf[r.start : r.start+i]); err != nil {
				return err
			}
			r.start += i + 1
		}
		r.end = copy(r.buf, r.buf[r.start:r.end])
		r.start = 0
		if r.end == len(r.buf) {
			if len(r.buf) >= maxEntry {
				r.end = 0 // not one of the init's entries: drop it
			} else {
				r.buf = append(r.buf, make([]byte, len(r.buf))...)
			}
		}
		n, err := r.f.Read(r.buf[r.end:])
		r.end += n
		if n > 0 {
			continue
		}
		if err == nil || err == io.EOF {
			return nil
		}
		return fmt.Errorf("read logs %s: %w", r.f.Name(), err)
	}
}
