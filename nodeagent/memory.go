package nodeagent

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ReleaseStartupText unmaps the pages of the program's own read-only
// segments (code and read-only data) from this process and reports how many
// bytes were mapped. It is meant for the end of start-up.
//
// Start-up runs code once and never again: every package's init, flag
// parsing, certificate bootstrap. With the kernel's fault-around and large
// page-cache folios it leaves nearly the whole 27 MB binary mapped, and
// counted in the agent's RSS, though an idle agent runs a few hundred
// kilobytes of it. MADV_DONTNEED drops the mappings only; the pages stay in
// the page cache, shared with any other process of the binary, and what is
// used again faults back in from there. Unmapped, they are also the first
// memory the kernel reclaims when a small node runs short.
//
// A mapping holding private copies of its pages is left alone: the
// relocation-time writes of RELRO, or breakpoints a debugger or uprobe put
// in the code. Dropping those would lose them.
func ReleaseStartupText() (int64, error) {
	maps, err := selfTextMappings()
	if err != nil {
		return 0, fmt.Errorf("release start-up text: %w", err)
	}
	var released int64
	for _, m := range maps {
		if m.anonymous > 0 {
			continue
		}
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, m.start, m.end-m.start, unix.MADV_DONTNEED); errno != 0 {
			return released, fmt.Errorf("release start-up text: madvise %#x-%#x: %w", m.start, m.end, errno)
		}
		released += m.rss
	}
	return released, nil
}

// selfTextMappings are this process's read-only mappings of its program.
func selfTextMappings() ([]textMapping, error) {
	var self unix.Stat_t
	if err := unix.Stat("/proc/self/exe", &self); err != nil {
		return nil, err
	}
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readTextMappings(f, fmt.Sprintf("%02x:%02x", unix.Major(self.Dev), unix.Minor(self.Dev)), self.Ino)
}

// textMapping is a read-only, private mapping of the program's file, as
// /proc/self/smaps describes it.
type textMapping struct {
	start, end uintptr
	rss        int64 // bytes resident
	anonymous  int64 // bytes of private copies
}

// readTextMappings parses smaps for the read-only private mappings (r-xp,
// r--p) of the file with inode ino on device dev ("fd:01", as smaps
// writes it).
func readTextMappings(r io.Reader, dev string, ino uint64) ([]textMapping, error) {
	var maps []textMapping
	var cur *textMapping
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if strings.HasSuffix(fields[0], ":") { // "Rss:  12 kB"
			if cur == nil || len(fields) < 2 {
				continue
			}
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				continue
			}
			switch fields[0] {
			case "Rss:":
				cur.rss = kb << 10
			case "Anonymous:":
				cur.anonymous = kb << 10
			}
			continue
		}
		// A mapping's header: "start-end perms offset dev inode [path]".
		cur = nil
		if len(fields) < 5 || (fields[1] != "r-xp" && fields[1] != "r--p") || fields[3] != dev {
			continue
		}
		if n, err := strconv.ParseUint(fields[4], 10, 64); err != nil || n != ino || n == 0 {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			return nil, fmt.Errorf("smaps: bad range %q", fields[0])
		}
		maps = append(maps, textMapping{start: uintptr(start), end: uintptr(end)})
		cur = &maps[len(maps)-1]
	}
	return maps, sc.Err()
}
