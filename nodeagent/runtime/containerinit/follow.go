package containerinit

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// follow keeps copying new entries after the initial read, starting with
// r (the newest file read, nil if there was none). When container.log is
// no longer r's file, r was rotated: follow finishes r and moves to the
// next newer file. It returns once exit.json exists and the last file is
// read to its end: the init writes exit.json after its last log line.
//
// Best effort, as kubelet's: a follower that sleeps while more rotations
// than there are files happen loses the lines rotated away.
func follow(ctx context.Context, dir string, r *entryReader, out *emitter) error {
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	defer func() {
		if r != nil {
			r.f.Close()
		}
	}()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if r != nil {
			if err := r.copy(out); err != nil {
				return err
			}
		}
		if err := out.flush(); err != nil {
			return err
		}
		_, err := os.Stat(filepath.Join(dir, ExitFile))
		exited := err == nil // checked before the last look for new lines
		next, err := nextLog(dir, r)
		if err != nil {
			return err
		}
		if next != nil {
			if r != nil {
				// Lines written to r after the copy above and before the
				// rotation that nextLog saw: the init writes no more to r.
				err := r.copy(out)
				r.f.Close()
				if err != nil {
					next.f.Close()
					return err
				}
			}
			r = next
			continue
		}
		if exited {
			return nil // r was read to its end after exit.json appeared
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// nextLog returns a reader of the file written after r's, or nil when r
// is still container.log (or the next file is not there yet).
func nextLog(dir string, r *entryReader) (*entryReader, error) {
	current := rotatedName(dir, 0)
	fi, err := os.Stat(current)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read logs: %w", err)
	}
	if r != nil && err == nil && os.SameFile(fi, r.info) {
		return nil, nil
	}
	name := current
	if r != nil {
		// r was rotated to container.log.k: next is .k-1, or container.log.
		if k := rotatedIndex(dir, r.info); k > 1 {
			name = rotatedName(dir, k-1)
		}
	}
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // mid-rotation, or not started: look again later
	}
	if err != nil {
		return nil, fmt.Errorf("read logs: %w", err)
	}
	next, err := newEntryReader(f, 0)
	if err != nil || (r != nil && os.SameFile(next.info, r.info)) {
		f.Close()
		return nil, err
	}
	return next, nil
}

// rotatedIndex returns k when container.log.k is the file fi, else 0. It
// tolerates the one-name gap a rotation in progress leaves.
func rotatedIndex(dir string, fi os.FileInfo) int {
	misses := 0
	for k := 1; misses < 2 && k <= 1000; k++ {
		st, err := os.Stat(rotatedName(dir, k))
		if err != nil {
			misses++
			continue
		}
		misses = 0
		if os.SameFile(st, fi) {
			return k
		}
	}
	return 0
}
