// Package e2e drives the real corral binary as a user would: server
// processes on loopback and the CLI against them, asserting what a kubectl
// user sees.
package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/corral-dev/corral/internal/roottest"
	"github.com/corral-dev/corral/server"
	"github.com/corral-dev/corral/test/common"
	"github.com/corral-dev/corral/test/framework"
)

// corral runs the CLI with args and returns stdout, stderr and the exit
// code.
func corral(t *testing.T, conf string, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(framework.Binary(t), append([]string{"--config", conf}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run corral %v: %v", args, err)
	}
	return out.String(), errOut.String(), code
}

// ok runs the CLI and fails the test on a non-zero exit.
func ok(t *testing.T, conf string, args ...string) string {
	t.Helper()
	out, errOut, code := corral(t, conf, "", args...)
	if code != 0 {
		t.Fatalf("corral %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// fails runs the CLI, expects a non-zero exit, and returns stderr.
func fails(t *testing.T, conf string, args ...string) string {
	t.Helper()
	out, errOut, code := corral(t, conf, "", args...)
	if code == 0 {
		t.Fatalf("corral %s succeeded, want an error\nstdout: %s", strings.Join(args, " "), out)
	}
	return errOut
}

// confFor writes an admin.conf that talks to server i only.
func confFor(t *testing.T, c *framework.Processes, i int) string {
	t.Helper()
	data, err := os.ReadFile(c.AdminConf())
	if err != nil {
		t.Fatal(err)
	}
	var conf server.ClientConfig
	if err := yaml.Unmarshal(data, &conf); err != nil {
		t.Fatal(err)
	}
	conf.Servers = []string{c.APIAddr(i)}
	out, err := yaml.Marshal(conf)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "server.conf")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSeedOnThreeServerProcesses is the control plane's acceptance test:
// three server processes, every seed manifest applied with the CLI, the
// DaemonSets read back identically through each server, the leader killed
// with SIGKILL, and the state still complete through the survivors.
func TestSeedOnThreeServerProcesses(t *testing.T) {
	c := framework.NewProcesses(t, 3)
	conf := c.AdminConf()
	out := ok(t, conf, "apply", "-f", common.ExamplesDir())
	for _, want := range []string{
		"namespace/monitoring created", "configmap/kube-proxy created",
		"daemonset.apps/nginx-daemonset created", "daemonset.apps/node-exporter created",
		"daemonset.apps/kube-proxy created", "daemonset.apps/fluentd created",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("apply output lacks %q:\n%s", want, out)
		}
	}
	if again := ok(t, conf, "apply", "-f", common.ExamplesDir()); strings.Contains(again, "created") || !strings.Contains(again, "daemonset.apps/nginx-daemonset unchanged") {
		t.Errorf("re-apply output:\n%s", again)
	}
	// The controller writes each DaemonSet's status once: wait for it, then
	// every server must return the same document.
	var want string
	framework.WaitFor(t, "DaemonSet status written and the same on every server", 20*time.Second, func() bool {
		want = ok(t, conf, "get", "ds", "-A", "-o", "json")
		if strings.Count(want, `"observedGeneration": 1`) != 10 {
			return false
		}
		for i := 0; i < 3; i++ {
			if got := ok(t, confFor(t, c, i), "get", "ds", "-A", "-o", "json"); got != want {
				return false
			}
		}
		return true
	})
	var list struct {
		Kind  string `json:"kind"`
		Items []struct {
			Metadata struct {
				Name       string `json:"name"`
				Namespace  string `json:"namespace"`
				Generation int64  `json:"generation"`
			} `json:"metadata"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(want), &list); err != nil {
		t.Fatalf("get ds -A -o json is not JSON: %v\n%s", err, want)
	}
	if list.Kind != "List" || len(list.Items) != 10 || list.Items[0].Metadata.Generation != 1 {
		t.Fatalf("get ds -A -o json: kind %q, %d items:\n%s", list.Kind, len(list.Items), want)
	}
	table := ok(t, conf, "get", "ds", "-n", "kube-system")
	if !regexp.MustCompile(`(?m)^NAME\s+DESIRED\s+CURRENT\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+NODE SELECTOR\s+AGE$`).MatchString(table) ||
		!regexp.MustCompile(`(?m)^fluentd\s+0\s+0\s+0\s+0\s+0\s+<none>\s+\d+s$`).MatchString(table) {
		t.Errorf("get ds -n kube-system:\n%s", table)
	}

	members := ok(t, conf, "cluster", "members")
	if strings.Count(members, "Leader") != 1 || strings.Count(members, "Follower") != 2 {
		t.Fatalf("cluster members:\n%s", members)
	}
	leader := framework.Leader(t, c)
	if err := syscall.Kill(c.Pid(leader), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c.Kill(t, leader)
	for i := 0; i < 3; i++ {
		if i == leader {
			continue
		}
		if got := ok(t, confFor(t, c, i), "get", "ds", "-A", "-o", "json"); got != want {
			t.Fatalf("after the leader's death server %d returns:\n%s", i, got)
		}
	}
	// admin.conf lists every server: the CLI skips the dead one.
	ok(t, conf, "create", "namespace", "after-failover")
	if out := ok(t, conf, "get", "ns", "after-failover", "-o", "name"); strings.TrimSpace(out) != "namespace/after-failover" {
		t.Fatalf("get ns -o name: %q", out)
	}
}

// TestBadInputIsRefusedWithItsPath checks kubectl-style errors for bad
// manifests and missing objects, and that nothing is half-applied.
func TestBadInputIsRefusedWithItsPath(t *testing.T) {
	c := framework.NewProcesses(t, 1)
	conf := c.AdminConf()
	dir := t.TempDir()
	typo := strings.Replace(readFile(t, filepath.Join(common.ExamplesDir(), "daemonset-basic.yml")),
		"image: nginx:1.25", "image: nginx:1.25\n          imagePullPolcy: Always", 1)
	path := filepath.Join(dir, "typo.yml")
	writeFile(t, path, typo)
	errOut := fails(t, conf, "apply", "-f", path)
	if !strings.Contains(errOut, "spec.template.spec.containers[0].imagePullPolcy") || !strings.Contains(errOut, "unknown field") {
		t.Errorf("unknown field error:\n%s", errOut)
	}
	errOut = fails(t, conf, "apply", "-f", filepath.Join(common.ExamplesDir(), "node-exporter.yml"))
	if !strings.Contains(errOut, `namespaces "monitoring" not found`) {
		t.Errorf("missing namespace error:\n%s", errOut)
	}
	errOut = fails(t, conf, "get", "ds", "nope")
	if !strings.Contains(errOut, `Error from server (NotFound): daemonsets.apps "nope" not found`) {
		t.Errorf("missing object error:\n%s", errOut)
	}
	if out := ok(t, conf, "get", "ds"); strings.TrimSpace(out) != "" {
		t.Errorf("a refused apply left objects behind:\n%s", out)
	}
}

// TestNodesLabelsTaintsCordon applies a Node (agents come later) and edits
// it with label, taint, cordon, uncordon and annotate as kubectl does.
func TestNodesLabelsTaintsCordon(t *testing.T) {
	c := framework.NewProcesses(t, 1)
	conf := c.AdminConf()
	path := filepath.Join(t.TempDir(), "node.yml")
	writeFile(t, path, "apiVersion: v1\nkind: Node\nmetadata:\n  name: node1\n")
	ok(t, conf, "apply", "-f", path)
	if out := ok(t, conf, "label", "nodes", "node1", "disktype=ssd"); strings.TrimSpace(out) != "node/node1 labeled" {
		t.Errorf("label: %q", out)
	}
	errOut := fails(t, conf, "label", "nodes", "node1", "disktype=hdd")
	if !strings.Contains(errOut, "'disktype' already has a value (ssd), and --overwrite is false") {
		t.Errorf("label without --overwrite: %q", errOut)
	}
	if out := ok(t, conf, "get", "nodes", "-l", "disktype=ssd", "-o", "name"); strings.TrimSpace(out) != "node/node1" {
		t.Errorf("get nodes -l disktype=ssd: %q", out)
	}
	ok(t, conf, "taint", "nodes", "node1", "dedicated=edge:NoSchedule")
	ok(t, conf, "cordon", "node1")
	node := ok(t, conf, "get", "node", "node1", "-o", "json")
	if !strings.Contains(node, `"unschedulable": true`) || !strings.Contains(node, `"key": "dedicated"`) {
		t.Errorf("node after taint and cordon:\n%s", node)
	}
	if out := ok(t, conf, "annotate", "node/node1", "rack=r1 (row 2)"); strings.TrimSpace(out) != "node/node1 annotated" {
		t.Errorf("annotate: %q", out)
	}
	errOut = fails(t, conf, "annotate", "nodes", "node1", "rack=r2")
	if !strings.Contains(errOut, "--overwrite is false but found the following declared annotation(s): 'rack' already has a value (r1 (row 2))") {
		t.Errorf("annotate without --overwrite: %q", errOut)
	}
	// The server checks the key, names the field, and stores nothing.
	errOut = fails(t, conf, "annotate", "nodes", "node1", "a/b/c=x", "ok=1")
	if !strings.Contains(errOut, "metadata.annotations") || !strings.Contains(errOut, "a/b/c") {
		t.Errorf("annotate with an invalid key: %q", errOut)
	}
	if out := ok(t, conf, "annotate", "nodes", "node1", "--list"); out != "rack=r1 (row 2)\n" {
		t.Errorf("annotate --list: %q", out)
	}
	ok(t, conf, "uncordon", "node1")
	ok(t, conf, "taint", "nodes", "node1", "dedicated:NoSchedule-")
	ok(t, conf, "label", "nodes", "node1", "disktype-")
	ok(t, conf, "annotate", "nodes", "node1", "rack-")
	node = ok(t, conf, "get", "node", "node1", "-o", "json")
	if strings.Contains(node, "unschedulable") || strings.Contains(node, "dedicated") || strings.Contains(node, "disktype") || strings.Contains(node, "rack") {
		t.Errorf("node after uncordon, untaint, unlabel and the annotation's removal:\n%s", node)
	}
}

// TestSnapshotSaveAndRestore backs a live cluster up with the CLI and seeds
// a new single-server cluster from the file.
func TestSnapshotSaveAndRestore(t *testing.T) {
	c := framework.NewProcesses(t, 3)
	conf := c.AdminConf()
	ok(t, conf, "apply", "-f", filepath.Join(common.ExamplesDir(), "daemonset-basic.yml"))
	file := filepath.Join(t.TempDir(), "backup.snap")
	ok(t, conf, "snapshot", "save", file)
	dir := filepath.Join(t.TempDir(), "restored")
	ok(t, conf, "snapshot", "restore", file, "--data-dir", dir)
	srv := exec.Command(framework.Binary(t), "server", "--name", "restored", "--data-dir", dir,
		"--api-addr", "127.0.0.1:0", "--raft-addr", "127.0.0.1:0", "--no-agent")
	srv.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	newConf := filepath.Join(dir, "admin.conf")
	framework.WaitFor(t, "the restored cluster to serve the DaemonSet", 30*time.Second, func() bool {
		if _, err := os.Stat(newConf); err != nil {
			return false
		}
		out, _, code := corral(t, newConf, "", "get", "ds", "nginx-daemonset", "-o", "name")
		return code == 0 && strings.TrimSpace(out) == "daemonset.apps/nginx-daemonset"
	})
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestCredentialFilesMustBePrivate: a server whose admin.conf or join token
// others may read, and an agent given such a token file, refuse to start.
func TestCredentialFilesMustBePrivate(t *testing.T) {
	roottest.Require(t, "real containers") // the agent needs root before it looks at its token
	run := func(args ...string) (string, int) {
		t.Helper()
		cmd := exec.Command(framework.Binary(t), args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		done := make(chan error, 1)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Fatalf("corral %v kept running with an open credential file:\n%s", args, out.String())
		}
		return out.String(), cmd.ProcessState.ExitCode()
	}
	for _, name := range []string{"token", "admin.conf"} {
		dir := t.TempDir()
		path := filepath.Join(dir, name)
		writeFile(t, path, "secret\n")
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
		out, code := run("server", "--name", "s", "--data-dir", dir, "--api-addr", "127.0.0.1:0", "--raft-addr", "127.0.0.1:0", "--no-agent")
		if code == 0 || !strings.Contains(out, path+" holds a key or credentials but is open to others (mode 0644): run chmod 600 "+path) {
			t.Errorf("server with a %s of mode 0644: exit %d\n%s", name, code, out)
		}
	}
	token := filepath.Join(t.TempDir(), "token")
	writeFile(t, token, "K10secret\n")
	if err := os.Chmod(token, 0o640); err != nil {
		t.Fatal(err)
	}
	out, code := run("agent", "--name", uniqueName("open-token"), "--data-dir", t.TempDir(), "--server", "127.0.0.1:1", "--token-file", token)
	if code == 0 || !strings.Contains(out, "open to others (mode 0640)") {
		t.Errorf("agent with a token file of mode 0640: exit %d\n%s", code, out)
	}
}
