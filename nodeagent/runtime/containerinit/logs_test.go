package containerinit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

// cri formats one entry as the init writes it; at is seconds after t0.
func cri(at int, stream, tag, msg string) string {
	ts := t0.Add(time.Duration(at) * time.Second).Format("2006-01-02T15:04:05.000000000Z07:00")
	return ts + " " + stream + " " + tag + " " + msg + "\n"
}

// writeLogs writes the files of a log directory; files[name] = entries.
func writeLogs(t *testing.T, files map[string][]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, entries := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(strings.Join(entries, "")), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func readAll(t *testing.T, dir string, opts ReadOptions) string {
	t.Helper()
	var out bytes.Buffer
	if err := ReadLogs(context.Background(), dir, opts, &out); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func TestParseLogLine(t *testing.T) {
	ts := "2026-11-28T12:00:00.123456789Z"
	at := time.Date(2026, 11, 28, 12, 0, 0, 123456789, time.UTC)
	for _, tc := range []struct {
		line string
		want LogLine
		err  bool
	}{
		{ts + " stdout F hello world\n", LogLine{at, "stdout", false, []byte("hello world")}, false},
		{ts + " stderr P  two  spaces ", LogLine{at, "stderr", true, []byte(" two  spaces ")}, false},
		{ts + " stdout F ", LogLine{at, "stdout", false, []byte{}}, false},
		{ts + " stdout F", LogLine{at, "stdout", false, nil}, false},
		{"2026-11-28T12:00:00Z stdout F x", LogLine{t0, "stdout", false, []byte("x")}, false},
		{ts + " stdin F x", LogLine{}, true},
		{ts + " stdout X x", LogLine{}, true},
		{"yesterday stdout F x", LogLine{}, true},
		{ts, LogLine{}, true},
		{"", LogLine{}, true},
	} {
		got, err := ParseLogLine([]byte(tc.line))
		if tc.err {
			if !errors.Is(err, ErrMalformedLogLine) {
				t.Errorf("ParseLogLine(%q) error = %v, want ErrMalformedLogLine", tc.line, err)
			}
			continue
		}
		if err != nil || !got.Time.Equal(tc.want.Time) || got.Stream != tc.want.Stream ||
			got.Partial != tc.want.Partial || !bytes.Equal(got.Message, tc.want.Message) {
			t.Errorf("ParseLogLine(%q) = %+v, %v; want %+v", tc.line, got, err, tc.want)
		}
	}
}

func TestArgs(t *testing.T) {
	for _, tc := range []struct {
		opts LogOptions
		want []string
	}{
		{LogOptions{}, []string{InitPath, "container-init", "--", "nginx", "-g", "daemon off;"}},
		{LogOptions{MaxSize: 1 << 20, MaxFiles: 3}, []string{InitPath, "container-init",
			"--log-max-size", "1048576", "--log-max-files", "3", "--", "nginx", "-g", "daemon off;"}},
		{LogOptions{NoCapture: true}, []string{InitPath, "container-init", "--no-log-capture",
			"--", "nginx", "-g", "daemon off;"}},
	} {
		if got := Args([]string{"nginx", "-g", "daemon off;"}, tc.opts); !slices.Equal(got, tc.want) {
			t.Errorf("Args(%+v) = %q, want %q", tc.opts, got, tc.want)
		}
	}
}

func TestReadExit(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadExit(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("ReadExit of a running container: %v, want os.ErrNotExist", err)
	}
	json := `{"exitCode":127,"signal":0,"startedAt":"2026-11-28T12:00:00.000000001Z",` +
		`"finishedAt":"2026-11-28T12:00:01.500000000Z","reason":"StartError","message":"exec: \"x\": not \\ found"}`
	if err := os.WriteFile(filepath.Join(dir, ExitFile), []byte(json+"\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	got, err := ReadExit(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := &Exit{ExitCode: 127, StartedAt: t0.Add(1), FinishedAt: t0.Add(1500 * time.Millisecond),
		Reason: ReasonStartError, Message: `exec: "x": not \ found`}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ReadExit = %+v, want %+v", got, want)
	}
	os.WriteFile(filepath.Join(dir, ExitFile), []byte("{"), 0o640)
	if _, err := ReadExit(dir); err == nil || errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadExit of a broken file: %v", err)
	}
}

func TestReadLogs(t *testing.T) {
	dir := writeLogs(t, map[string][]string{
		LogFile + ".2": {cri(1, "stdout", "F", "one"), cri(2, "stderr", "F", "two")},
		LogFile + ".1": {cri(3, "stdout", "P", "thr"), cri(3, "stdout", "P", "e"),
			"garbage that is not a CRI line\n", cri(4, "stdout", "F", "e!")},
		LogFile: {cri(5, "stderr", "F", "four"), cri(6, "stdout", "F", ""), cri(7, "stdout", "F", "six"),
			"2026-11-28T12:00:08.000000000Z stdout F being writ"},
		"container.log.x": {cri(0, "stdout", "F", "not a log file")},
	})
	ts := func(at int) string { return t0.Add(time.Duration(at)*time.Second).Format(time.RFC3339Nano) + " " }
	for _, tc := range []struct {
		name string
		opts ReadOptions
		want string
	}{
		{"all", ReadOptions{Tail: -1}, "one\ntwo\nthree!\nfour\n\nsix\n"},
		{"tail 0", ReadOptions{Tail: 0}, ""},
		{"tail 2", ReadOptions{Tail: 2}, "\nsix\n"},
		{"tail 4 joins partial lines", ReadOptions{Tail: 4}, "three!\nfour\n\nsix\n"},
		{"tail 5 crosses two rotations", ReadOptions{Tail: 5}, "two\nthree!\nfour\n\nsix\n"},
		{"tail 100", ReadOptions{Tail: 100}, "one\ntwo\nthree!\nfour\n\nsix\n"},
		{"timestamps", ReadOptions{Tail: 3, Timestamps: true},
			ts(5) + "four\n" + ts(6) + "\n" + ts(7) + "six\n"},
		{"timestamps once per line", ReadOptions{Tail: -1, Since: t0.Add(3 * time.Second), Timestamps: true},
			ts(3) + "three!\n" + ts(5) + "four\n" + ts(6) + "\n" + ts(7) + "six\n"},
		{"since", ReadOptions{Tail: -1, Since: t0.Add(5 * time.Second)}, "four\n\nsix\n"},
		{"since and tail", ReadOptions{Tail: 1, Since: t0.Add(5 * time.Second)}, "six\n"},
		{"since after everything", ReadOptions{Tail: -1, Since: t0.Add(time.Hour)}, ""},
		{"limit bytes", ReadOptions{Tail: -1, LimitBytes: 9}, "one\ntwo\nt"},
		{"limit bytes with timestamps", ReadOptions{Tail: 1, Timestamps: true, LimitBytes: 5}, ts(7)[:5]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := readAll(t, dir, tc.opts); got != tc.want {
				t.Errorf("got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestReadLogsEmpty(t *testing.T) {
	if got := readAll(t, t.TempDir(), ReadOptions{Tail: -1}); got != "" {
		t.Errorf("no log: %q", got)
	}
	err := ReadLogs(context.Background(), filepath.Join(t.TempDir(), "missing"), ReadOptions{Tail: -1}, &bytes.Buffer{})
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing directory: %v", err)
	}
}

// TestReadLogsLarge reads a log much larger than the backward scanner's
// block, with an oversized garbage line among its entries.
func TestReadLogsLarge(t *testing.T) {
	var entries []string
	var want strings.Builder
	for i := range 20000 {
		if i == 10000 {
			entries = append(entries, strings.Repeat("x", 3*maxEntry)+"\n")
		}
		msg := fmt.Sprintf("line %d %s", i, strings.Repeat("-", i%97))
		entries = append(entries, cri(i, "stdout", "F", msg))
		if i >= 5000 {
			fmt.Fprintln(&want, msg)
		}
	}
	dir := writeLogs(t, map[string][]string{LogFile: entries})
	if got := readAll(t, dir, ReadOptions{Tail: 15000}); got != want.String() {
		t.Errorf("tail 15000: %d bytes, want %d", len(got), want.Len())
	}
	if got := readAll(t, dir, ReadOptions{Tail: -1, Since: t0.Add(5000 * time.Second)}); got != want.String() {
		t.Errorf("since: %d bytes, want %d", len(got), want.Len())
	}
	if got := readAll(t, dir, ReadOptions{Tail: -1}); !strings.HasSuffix(got, want.String()) || strings.Contains(got, "xxx") {
		t.Errorf("all: %d bytes", len(got))
	}
}

// TestFollowRotationByHand follows a log that is rotated by renames, as
// the init rotates it, including a rotation that has not created the new
// container.log yet.
func TestFollowRotationByHand(t *testing.T) {
	dir := writeLogs(t, map[string][]string{LogFile: {cri(1, "stdout", "F", "a")}})
	appendTo := func(name string, entries ...string) {
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		f.WriteString(strings.Join(entries, ""))
	}
	rename := func(from, to string) {
		if err := os.Rename(filepath.Join(dir, from), filepath.Join(dir, to)); err != nil {
			t.Fatal(err)
		}
	}
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- ReadLogs(context.Background(), dir, ReadOptions{Tail: 1, Follow: true, Timestamps: false}, &out)
	}()
	waitFor(t, "a", func() bool { return out.String() == "a\n" })
	appendTo(LogFile, cri(2, "stdout", "P", "b"))
	rename(LogFile, LogFile+".1") // mid-rotation: no container.log
	// Not a wait for a result (the test holds either way): a chance for
	// the follower to poll while container.log is missing.
	time.Sleep(2 * pollInterval)
	appendTo(LogFile, cri(2, "stdout", "F", "c"), cri(3, "stderr", "F", "d"))
	waitFor(t, "d", func() bool { return out.String() == "a\nbc\nd\n" })
	rename(LogFile+".1", LogFile+".2")
	rename(LogFile, LogFile+".1")
	appendTo(LogFile+".1", cri(4, "stdout", "F", "e")) // written before the rename completed
	appendTo(LogFile, cri(5, "stdout", "F", "f"))
	os.WriteFile(filepath.Join(dir, ExitFile), []byte("{}"), 0o640)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still following after exit.json")
	}
	if want := "a\nbc\nd\ne\nf\n"; out.String() != want {
		t.Errorf("followed %q, want %q", out.String(), want)
	}
}
