package cli

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An archive from a container is untrusted: an entry outside the copied
// name, however it is spelled, is refused before anything is written
// there, and links are skipped.
func TestUntarStaysInsideTheDestination(t *testing.T) {
	archive := func(entries ...tar.Header) *bytes.Buffer {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		for _, h := range entries {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeReg {
				h.Size = int64(len(h.Name))
			}
			if err := tw.WriteHeader(&h); err != nil {
				t.Fatal(err)
			}
			if h.Typeflag == tar.TypeReg {
				if _, err := tw.Write([]byte(h.Name)); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		return &b
	}
	file := func(name string) tar.Header { return tar.Header{Name: name, Typeflag: tar.TypeReg} }
	for _, evil := range []string{"../evil", "conf/../../evil", "/etc/evil", "other/evil"} {
		dst := filepath.Join(t.TempDir(), "copy")
		err := untar(archive(file("conf/ok"), file(evil)), "conf", dst, func(string, ...any) {})
		if err == nil || !strings.Contains(err.Error(), "outside the copied \"conf\"") {
			t.Errorf("entry %q: %v", evil, err)
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(dst), "evil")); !os.IsNotExist(err) {
			t.Errorf("entry %q was written: %v", evil, err)
		}
	}
	dst := filepath.Join(t.TempDir(), "copy")
	var warned []string
	err := untar(archive(tar.Header{Name: "conf/", Typeflag: tar.TypeDir}, file("conf/a/b.txt"),
		tar.Header{Name: "conf/link", Typeflag: tar.TypeSymlink, Linkname: "/etc/shadow"}), "conf", dst,
		func(f string, a ...any) { warned = append(warned, f) })
	if err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(filepath.Join(dst, "a", "b.txt")); err != nil || string(data) != "conf/a/b.txt" {
		t.Fatalf("nested file: %q, %v", data, err)
	}
	if _, err := os.Lstat(filepath.Join(dst, "link")); !os.IsNotExist(err) || len(warned) != 1 {
		t.Fatalf("symlink: %v, warnings %q", err, warned)
	}
}

func TestParsePodPath(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want podPath
		ok   bool
	}{
		{"web:/etc/x", podPath{"default", "web", "/etc/x"}, true},
		{"kube-system/fluentd:/etc/fluent", podPath{"kube-system", "fluentd", "/etc/fluent"}, true},
		{"web:", podPath{"default", "web", ""}, true},
		{"./local/file", podPath{}, false},
		{"/abs/path", podPath{}, false},
		{":nope", podPath{}, false},
	} {
		got, ok := parsePodPath(tc.in, "default")
		if got != tc.want || ok != tc.ok {
			t.Errorf("parsePodPath(%q) = %+v, %v; want %+v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
