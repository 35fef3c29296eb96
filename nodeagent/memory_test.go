package nodeagent

import (
	"fmt"
	"strings"
	"testing"
)

const sampleSmaps = `00400000-00401000 r--p 00000000 fe:00 247785                             /usr/bin/corral
Size:                  4 kB
Rss:                   4 kB
Anonymous:             0 kB
00401000-0103d000 r-xp 00001000 fe:00 247785                             /usr/bin/corral
Size:              12528 kB
Rss:               12400 kB
Anonymous:             0 kB
FilePmdMapped:      8192 kB
0103d000-01d05000 r--p 00c3d000 fe:00 247785                             /usr/bin/corral
Rss:               13068 kB
Anonymous:             0 kB
01d05000-01d0a000 r--p 01904000 fe:00 247785                             /usr/bin/corral
Rss:                  20 kB
Anonymous:            20 kB
01d0a000-01d8e000 rw-p 01909000 fe:00 247785                             /usr/bin/corral
Rss:                 528 kB
Anonymous:           400 kB
7f0000000000-7f0000001000 r--p 00000000 fe:01 247785                     /mnt/other/file
Rss:                   4 kB
Anonymous:             0 kB
7ffd35452000-7ffd35473000 rw-p 00000000 00:00 0                          [stack]
Rss:                  16 kB
`

func TestReadTextMappingsFindsTheProgramsReadOnlyMappings(t *testing.T) {
	maps, err := readTextMappings(strings.NewReader(sampleSmaps), "fe:00", 247785)
	if err != nil {
		t.Fatal(err)
	}
	want := []textMapping{
		{start: 0x400000, end: 0x401000, rss: 4 << 10},
		{start: 0x401000, end: 0x103d000, rss: 12400 << 10},
		{start: 0x103d000, end: 0x1d05000, rss: 13068 << 10},
		{start: 0x1d05000, end: 0x1d0a000, rss: 20 << 10, anonymous: 20 << 10},
	}
	if fmt.Sprint(maps) != fmt.Sprint(want) {
		t.Fatalf("mappings:\n got %v\nwant %v", maps, want)
	}
}

// textRSS sums the resident bytes of this program's read-only mappings:
// those without private copies (clean) and those with (private).
func textRSS(t *testing.T) (clean, private int64) {
	t.Helper()
	maps, err := selfTextMappings()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range maps {
		if m.anonymous > 0 {
			private += m.rss
		} else {
			clean += m.rss
		}
	}
	return clean, private
}

func TestReleaseStartupTextUnmapsTheProgramsCode(t *testing.T) {
	clean, private := textRSS(t)
	if clean == 0 {
		t.Fatal("no resident read-only mapping of the test binary found in /proc/self/smaps")
	}
	released, err := ReleaseStartupText()
	if err != nil {
		t.Fatal(err)
	}
	if released == 0 {
		t.Fatal("nothing released")
	}
	// The test keeps running, so some code faults back in; what start-up
	// alone touched does not.
	cleanAfter, privateAfter := textRSS(t)
	t.Logf("read-only mappings resident: %d KiB before, %d KiB after (%d KiB released); with private copies: %d KiB", clean>>10, cleanAfter>>10, released>>10, private>>10)
	if cleanAfter >= clean {
		t.Errorf("resident code and read-only data went from %d to %d bytes; want fewer", clean, cleanAfter)
	}
	if privateAfter != private {
		t.Errorf("mappings with private copies (RELRO) went from %d to %d resident bytes; want them left alone", private, privateAfter)
	}
}
