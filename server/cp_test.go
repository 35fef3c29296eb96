package server_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/corral-dev/corral/test/framework"
)

// corral cp through a follower and a real agent API, whose "container"
// runs commands as host processes: tar in, tar out, as kubectl cp does.
func TestCpFromCLIThroughServerToAgent(t *testing.T) {
	c := framework.NewInProcess(t, 3)
	server := c.APIAddr((framework.Leader(t, c) + 1) % 3)
	agent := &hostContainers{root: t.TempDir(), pods: map[string][]string{"default/web": {"app"}, "default/two": {"a", "b"}}}
	registerNode(t, c, "w1", serveAgent(t, c, agent, "w1"))
	applyPod(t, c, "web", "w1", "app")
	applyPod(t, c, "two", "w1", "a", "b")
	run := func(args ...string) (string, string, int) {
		t.Helper()
		var out framework.SyncBuffer
		errOut, code := corralCLI(ctx(t), c, server, "", &out, args...)
		return out.String(), errOut, code
	}
	write := func(p, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	read := func(p string) string {
		t.Helper()
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	inPod, local := t.TempDir(), t.TempDir() // the pod's files are the host's here

	// Out of the pod: a file, then a directory (a symlink in it skipped).
	write(filepath.Join(inPod, "etc", "app.conf"), "listen 80\n")
	write(filepath.Join(inPod, "etc", "conf.d", "extra.conf"), "gzip on\n")
	if err := os.Symlink("/etc/passwd", filepath.Join(inPod, "etc", "passwd-link")); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := run("cp", "web:"+filepath.Join(inPod, "etc", "app.conf"), filepath.Join(local, "copy.conf")); code != 0 || out != "" || errOut != "" {
		t.Fatalf("cp of a file out of the pod: exit %d, %q, %q", code, out, errOut)
	}
	if got := read(filepath.Join(local, "copy.conf")); got != "listen 80\n" {
		t.Fatalf("copied file: %q", got)
	}
	out, errOut, code := run("cp", "default/web:"+filepath.Join(inPod, "etc"), filepath.Join(local, "etc-copy"))
	if code != 0 || out != "" || !strings.Contains(errOut, "skipping symlink") {
		t.Fatalf("cp of a directory out of the pod: exit %d, %q, %q", code, out, errOut)
	}
	if got := read(filepath.Join(local, "etc-copy", "conf.d", "extra.conf")); got != "gzip on\n" {
		t.Fatalf("copied nested file: %q", got)
	}
	if _, err := os.Lstat(filepath.Join(local, "etc-copy", "passwd-link")); !os.IsNotExist(err) {
		t.Fatalf("the symlink was copied: %v", err)
	}

	// Into the pod: a directory under a new name, then a file.
	write(filepath.Join(local, "site", "index.html"), "<h1>hi</h1>\n")
	write(filepath.Join(local, "site", "css", "a.css"), "body{}\n")
	if out, errOut, code := run("cp", filepath.Join(local, "site"), "web:"+filepath.Join(inPod, "www"), "-c", "app"); code != 0 || out != "" || errOut != "" {
		t.Fatalf("cp of a directory into the pod: exit %d, %q, %q", code, out, errOut)
	}
	if got := read(filepath.Join(inPod, "www", "css", "a.css")); got != "body{}\n" {
		t.Fatalf("file copied into the pod: %q", got)
	}
	if out, errOut, code := run("cp", filepath.Join(local, "copy.conf"), "web:"+filepath.Join(inPod, "new.conf")); code != 0 || out != "" || errOut != "" {
		t.Fatalf("cp of a file into the pod: exit %d, %q, %q", code, out, errOut)
	}
	if got := read(filepath.Join(inPod, "new.conf")); got != "listen 80\n" {
		t.Fatalf("file copied into the pod: %q", got)
	}

	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"cp", "a", "b"}, "error: one of src or dest must be a remote file specification\n"},
		{[]string{"cp", "web:/a", "web:/b"}, "error: one of src or dest must be a local file specification\n"},
		{[]string{"cp", "web:", "b"}, "error: remote path cannot be empty\n"},
		{[]string{"cp", "web:" + filepath.Join(inPod, "missing"), filepath.Join(local, "x")}, "tar in pod web exited with code 2: "},
		{[]string{"cp", "gone:/a", filepath.Join(local, "x")}, `Error from server (NotFound): pods "gone" not found`},
		{[]string{"cp", "two:/a", filepath.Join(local, "x")}, "a container name must be specified for pod two, choose one of: [a b]"},
	} {
		_, errOut, code := run(tc.args...)
		if code != 1 || !strings.Contains(errOut, tc.err) {
			t.Errorf("corral %s: exit %d, stderr %q; want %q", strings.Join(tc.args, " "), code, errOut, tc.err)
		}
	}
	if _, err := os.Stat(filepath.Join(local, "x")); !os.IsNotExist(err) {
		t.Fatalf("a failed copy left %s: %v", filepath.Join(local, "x"), err)
	}
}
