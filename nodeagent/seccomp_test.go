package nodeagent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/corral-dev/corral/nodeagent/runtime"
	corralpb "github.com/corral-dev/corral/proto"
)

func TestSeccompProfileResolution(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "profiles"), 0o755); err != nil {
		t.Fatal(err)
	}
	audit := []byte(`{"defaultAction": "SCMP_ACT_LOG"}`)
	if err := os.WriteFile(filepath.Join(dir, "profiles", "audit.json"), audit, 0o644); err != nil {
		t.Fatal(err)
	}
	profile := func(typ, local string) *corralpb.SeccompProfile {
		p := &corralpb.SeccompProfile{Type: typ}
		if local != "" {
			p.LocalhostProfile = proto.String(local)
		}
		return p
	}
	pod := func(podLevel, ctrLevel *corralpb.SeccompProfile) (*corralpb.Pod, *corralpb.Container) {
		c := &corralpb.Container{Name: "c"}
		if ctrLevel != nil {
			c.SecurityContext = &corralpb.SecurityContext{SeccompProfile: ctrLevel}
		}
		p := &corralpb.Pod{Spec: &corralpb.PodSpec{Containers: []*corralpb.Container{c}}}
		if podLevel != nil {
			p.Spec.SecurityContext = &corralpb.PodSecurityContext{SeccompProfile: podLevel}
		}
		return p, c
	}
	for _, tc := range []struct {
		name          string
		nodeDefault   bool
		podLevel, ctr *corralpb.SeccompProfile
		wantType      string // "" = unconfined
		wantErr       string
	}{
		{name: "nothing said", wantType: ""},
		{name: "nothing said, --seccomp-default", nodeDefault: true, wantType: runtime.SeccompRuntimeDefault},
		{name: "pod level", podLevel: profile("RuntimeDefault", ""), wantType: runtime.SeccompRuntimeDefault},
		{name: "container wins", podLevel: profile("RuntimeDefault", ""), ctr: profile("Unconfined", ""), wantType: ""},
		{name: "explicit Unconfined beats --seccomp-default", nodeDefault: true, podLevel: profile("Unconfined", ""), wantType: ""},
		{name: "localhost", ctr: profile("Localhost", "profiles/audit.json"), wantType: runtime.SeccompLocalhost},
		{name: "localhost missing", ctr: profile("Localhost", "profiles/nope.json"), wantErr: "failed to load seccomp profile"},
		{name: "localhost escaping", ctr: profile("Localhost", "../../etc/shadow"), wantErr: "under the node's seccomp directory"},
	} {
		w := &podWorker{m: &PodManager{cfg: PodManagerConfig{SeccompDir: dir, SeccompDefault: tc.nodeDefault}}}
		p, c := pod(tc.podLevel, tc.ctr)
		got, err := w.seccompProfile(p, c)
		switch {
		case tc.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.wantErr)
			}
		case err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.wantType == "" && got != nil:
			t.Errorf("%s: profile %+v, want unconfined", tc.name, got)
		case tc.wantType != "" && (got == nil || got.Type != tc.wantType):
			t.Errorf("%s: profile %+v, want %s", tc.name, got, tc.wantType)
		case tc.wantType == runtime.SeccompLocalhost && string(got.Localhost) != string(audit):
			t.Errorf("%s: profile content %q", tc.name, got.Localhost)
		}
	}
}
