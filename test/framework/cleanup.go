package framework

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"
)

// CleanupNode removes every trace a node agent can leave on this machine
// once its agent is dead: it kills every process in the node's cgroups
// (/sys/fs/cgroup/*/corral/<node>), unmounts everything under dataDir
// (overlay root filesystems, namespace bind mounts, tmpfs volumes), and
// removes the cgroup directories, the pods' network namespaces and the
// node's pod-network bridge and nftables table (AgentBridge). Tests call it in their cleanup, also when
// they fail; it reports what it had to remove.
func CleanupNode(t testing.TB, dataDir, node string) {
	t.Helper()
	groups, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", "corral", node))
	if unified := filepath.Join("/sys/fs/cgroup/unified/corral", node); exists(unified) {
		groups = append(groups, unified)
	}
	killed := 0
	for _, g := range groups {
		_ = filepath.WalkDir(g, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.Name() != "cgroup.procs" {
				return nil
			}
			data, _ := os.ReadFile(p)
			for _, f := range strings.Fields(string(data)) {
				if pid, err := strconv.Atoi(f); err == nil && syscall.Kill(pid, syscall.SIGKILL) == nil {
					killed++
				}
			}
			return nil
		})
	}
	unmounted := 0
	for _, m := range mountsUnder(dataDir) {
		if syscall.Unmount(m, syscall.MNT_DETACH) == nil {
			unmounted++
		}
	}
	for _, g := range groups {
		removeCgroupTree(g)
	}
	// Pod network namespaces live in /run/netns, named after the agent's
	// state dir (DATA_DIR/run): unmount and remove them too.
	sum := sha256.Sum256([]byte(filepath.Join(dataDir, "run")))
	prefix := "corral-" + hex.EncodeToString(sum[:4]) + "-"
	if entries, err := os.ReadDir("/run/netns"); err == nil {
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), prefix) {
				p := filepath.Join("/run/netns", e.Name())
				_ = syscall.Unmount(p, syscall.MNT_DETACH)
				if os.Remove(p) == nil {
					unmounted++
				}
			}
		}
	}
	links := removeAgentNetwork(node)
	if killed+unmounted+links > 0 {
		t.Logf("cleanup of node %s: killed %d processes, unmounted %d mounts, removed %d bridges and nftables tables", node, killed, unmounted, links)
	}
}

// mountsUnder lists mount points under dir, deepest first.
// It reads this thread's mount table (/proc/thread-self/mountinfo):
// libcontainer may leave the process's main thread, which /proc/self
// names, inside a container's mount namespace.
func mountsUnder(dir string) []string {
	infos, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(infos))
	for _, in := range infos {
		out = append(out, in.Mountpoint)
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// removeCgroupTree removes a cgroup and its children, deepest first,
// retrying briefly while killed processes exit.
func removeCgroupTree(root string) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		var dirs []string
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		failed := false
		for _, d := range dirs {
			if err := syscall.Rmdir(d); err != nil && !os.IsNotExist(err) {
				failed = true
			}
		}
		if !failed || time.Now().After(deadline) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
