package containerinit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// ReadOptions selects and formats what ReadLogs writes, as the flags of
// "kubectl logs" do.
type ReadOptions struct {
	// Tail is how many lines from the end to show, counted across rotated
	// files; negative shows all. 0 shows none: with Follow, only new lines.
	Tail int
	// Follow keeps writing new lines, across rotations, until the context
	// ends or the command has ended and every line was written.
	Follow bool
	// Timestamps prefixes every line with its RFC 3339 time and a space.
	Timestamps bool
	// Since drops lines logged before it; zero keeps all.
	Since time.Time
	// LimitBytes stops after writing this many bytes; 0 (or less) means no
	// limit.
	LimitBytes int64
}

// pollInterval is how often a follower looks for new lines, a rotation
// or exit.json once it has read everything.
const pollInterval = 200 * time.Millisecond

// errLimit ends reading once LimitBytes have been written.
var errLimit = errors.New("byte limit reached")

// ReadLogs writes the logs the init wrote in dir to w, as "kubectl logs"
// shows them: the text of each line (partial entries joined), oldest first,
// stdout and stderr interleaved as they were read. Malformed lines are
// skipped. A container that logged nothing yet has no output. With Follow
// it returns ctx.Err() when ctx ends first.
func ReadLogs(ctx context.Context, dir string, opts ReadOptions, w io.Writer) error {
	bw := bufio.NewWriterSize(w, 32<<10)
	out := &emitter{w: bw, opts: opts, left: opts.LimitBytes}
	err := readLogs(ctx, dir, opts, out)
	if errors.Is(err, errLimit) {
		err = nil
	}
	if ferr := bw.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("write logs: %w", ferr)
	}
	return err
}

func readLogs(ctx context.Context, dir string, opts ReadOptions, out *emitter) error {
	files, err := openLogFiles(dir)
	if err != nil {
		return err
	}
	defer func() {
		for _, f := range files {
			f.Close() // read-only: nothing to lose; follow may have closed it
		}
	}()
	start, err := findStart(files, opts.Tail, opts.Since)
	if err != nil {
		return err
	}
	var r *entryReader
	for i := start.file; i < len(files); i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		off := int64(0)
		if i == start.file {
			off = start.off
		}
		if r, err = newEntryReader(files[i], off); err != nil {
			return err
		}
		if err := r.copy(out); err != nil {
			return err
		}
	}
	if !opts.Follow {
		return nil
	}
	return follow(ctx, dir, r, out)
}

// emitter formats log entries for ReadLogs.
type emitter struct {
	w       *bufio.Writer
	opts    ReadOptions
	left    int64   // bytes still allowed, when opts.LimitBytes > 0
	midLine [2]bool // per stream: the last entry written was partial
}

// entry writes one raw entry (a line of container.log without '\n').
func (e *emitter) entry(raw []byte) error {
	l, err := parseLine(raw)
	if err != nil {
		return nil // skipped, as kubelet does
	}
	if !e.opts.Since.IsZero() && l.Time.Before(e.opts.Since) {
		return nil
	}
	s := streamIndex(l.Stream)
	if e.opts.Timestamps && !e.midLine[s] {
		var buf [48]byte
		if err := e.write(append(l.Time.AppendFormat(buf[:0], time.RFC3339Nano), ' ')); err != nil {
			return err
		}
	}
	e.midLine[s] = l.Partial
	if err := e.write(l.Message); err != nil {
		return err
	}
	if l.Partial {
		return nil
	}
	return e.write([]byte{'\n'})
}

func (e *emitter) write(b []byte) error {
	limited := e.opts.LimitBytes > 0
	if limited && int64(len(b)) > e.left {
		b = b[:e.left]
	}
	if _, err := e.w.Write(b); err != nil {
		return fmt.Errorf("write logs: %w", err)
	}
	if limited {
		if e.left -= int64(len(b)); e.left == 0 {
			return errLimit
		}
	}
	return nil
}

func (e *emitter) flush() error {
	if err := e.w.Flush(); err != nil {
		return fmt.Errorf("write logs: %w", err)
	}
	return nil
}
