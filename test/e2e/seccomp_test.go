package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/corral-dev/corral/internal/roottest"
	"github.com/corral-dev/corral/test/framework"
)

// TestAgentSeccompProfiles runs pods under each kind of seccomp profile on
// an agent started with --seccomp-default, and reads the filter each
// container got from inside it.
func TestAgentSeccompProfiles(t *testing.T) {
	roottest.Require(t, "real containers")
	c := framework.NewProcesses(t, 1)
	conf := c.AdminConf()
	reg := framework.NewRegistry(t)
	ref := reg.Push(t, "workload:1", framework.WorkloadImage(t))
	agentDir := filepath.Join(t.TempDir(), "agent")
	// A Localhost profile that allows everything but unlinking files.
	if err := os.MkdirAll(filepath.Join(agentDir, "seccomp", "profiles"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(agentDir, "seccomp", "profiles", "no-unlink.json"),
		`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["unlink", "unlinkat"], "action": "SCMP_ACT_ERRNO"}]}`)
	node := uniqueName("seccomp")
	startAgentProc(t, node, c.APIAddr(0), filepath.Join(filepath.Dir(conf), "token"), agentDir, "--seccomp-default")
	pod := func(name, podSC, ctrSC string) string {
		return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s}
spec:
  nodeName: %s
  securityContext: {%s}
  containers:
  - name: app
    image: %s
    securityContext: {%s}
`, name, node, podSC, ref, ctrSC)
	}
	file := filepath.Join(t.TempDir(), "pods.yml")
	writeFile(t, file, strings.Join([]string{
		pod("node-default", "", ""),
		pod("unconfined", "seccompProfile: {type: Unconfined}", ""),
		pod("local", "seccompProfile: {type: RuntimeDefault}", "seccompProfile: {type: Localhost, localhostProfile: profiles/no-unlink.json}"),
		pod("privileged", "", "privileged: true"),
		pod("missing", "", "seccompProfile: {type: Localhost, localhostProfile: profiles/nope.json}"),
	}, "---\n"))
	ok(t, conf, "apply", "-f", file)
	for _, tc := range []struct {
		pod, mode string
		unlink    bool // rm is allowed
	}{
		{"node-default", "2", true}, // RuntimeDefault from --seccomp-default
		{"unconfined", "0", true},
		{"local", "2", false}, // the container's profile wins over the pod's
		{"privileged", "0", true},
	} {
		framework.WaitFor(t, tc.pod+" ready", 60*time.Second, func() bool { c := container(t, conf, tc.pod); return c != nil && c.Ready })
		status := ok(t, conf, "exec", tc.pod, "--", "/workload", "cat", "/proc/self/status")
		if !strings.Contains(status, "\nSeccomp:\t"+tc.mode+"\n") {
			t.Errorf("%s: want Seccomp mode %s in /proc/self/status:\n%s", tc.pod, tc.mode, status)
		}
		ok(t, conf, "exec", tc.pod, "--", "/workload", "touch", "/tmp/f")
		_, errOut, code := corral(t, conf, "", "exec", tc.pod, "--", "/workload", "rm", "/tmp/f")
		if (code == 0) != tc.unlink {
			t.Errorf("%s: rm exit code %d (%s), want allowed=%v", tc.pod, code, strings.TrimSpace(errOut), tc.unlink)
		}
	}
	framework.WaitFor(t, "missing profile: CreateContainerConfigError naming the file", 60*time.Second, func() bool {
		c := container(t, conf, "missing")
		return waitingReason(c) == "CreateContainerConfigError" &&
			strings.Contains(c.State.Waiting.Message, filepath.Join(agentDir, "seccomp", "profiles", "nope.json"))
	})
	ok(t, conf, "delete", "pod", "node-default", "unconfined", "local", "privileged", "missing")
	framework.WaitFor(t, "all containers removed", 60*time.Second, func() bool {
		entries, _ := os.ReadDir(filepath.Join(agentDir, "run", "containers"))
		return len(entries) == 0
	})
}
