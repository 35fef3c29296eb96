package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReplaceRefusals(t *testing.T) {
	fake := newFakeCluster()
	h := newHarness(t, fake)
	fake.put(objs(seedDaemonSet())[0])
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: nginx-daemonset}\nspec:\n  selector: {matchLabels: {app: x}}\n  template: {metadata: {labels: {app: other}}, spec: {containers: [{name: c, image: nginx}]}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{}, "error: must specify --filename to replace\n"},
		{[]string{"-f", bad, "--force", "--dry-run=client"}, "error: --dry-run can not be used with --force\n"},
		{[]string{"-f", bad}, "spec.template.metadata.labels: Invalid value"},
		{[]string{"x", "-f", bad}, `unknown command "x" for "corral replace"`},
	} {
		_, errOut, code := h.run(append([]string{"replace"}, tc.args...)...)
		if code != 1 || !strings.Contains(errOut, tc.err) {
			t.Errorf("replace %q: exit %d, stderr %q; want %q", tc.args, code, errOut, tc.err)
		}
	}
	if fake.updates != 0 || len(fake.deletes) != 0 {
		t.Fatalf("refused replaces wrote: %d updates, %d deletes", fake.updates, len(fake.deletes))
	}
}
