package lab

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moby/sys/mountinfo"
)

// nodeCgroups lists the cgroup directories of a node's containers:
// /sys/fs/cgroup/*/corral/<node> (v1 hierarchies, the v2 unified one of a
// hybrid machine) and /sys/fs/cgroup/corral/<node> (v2).
func nodeCgroups(node string) []string {
	groups, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", "corral", node))
	if v2 := filepath.Join("/sys/fs/cgroup", "corral", node); isDir(v2) {
		groups = append(groups, v2)
	}
	return groups
}

// killCgroups SIGKILLs every process in the node's cgroups and returns how
// many it signalled.
func killCgroups(node string) int {
	killed := 0
	for _, g := range nodeCgroups(node) {
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
	return killed
}

// removeCgroups removes the node's cgroup trees, deepest first, retrying
// while killed processes exit.
func removeCgroups(node string) error {
	var errs []error
	for _, g := range nodeCgroups(node) {
		if err := removeCgroupTree(g); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func removeCgroupTree(root string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		var dirs []string
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		var last error
		for _, d := range dirs {
			if err := syscall.Rmdir(d); err != nil && !errors.Is(err, syscall.ENOENT) {
				last = fmt.Errorf("remove cgroup %s: %w", d, err)
			}
		}
		if last == nil || time.Now().After(deadline) {
			return last
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// mountsUnder lists the mount points at or under dir, deepest first.
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

// unmountUnder detaches every mount under dir, repeating while stacked
// mounts reappear; it returns how many it detached.
func unmountUnder(dir string) (int, error) {
	n := 0
	for round := 0; round < 5; round++ {
		mps := mountsUnder(dir)
		if len(mps) == 0 {
			return n, nil
		}
		for _, m := range mps {
			if syscall.Unmount(m, syscall.MNT_DETACH) == nil {
				n++
			}
		}
	}
	if left := mountsUnder(dir); len(left) > 0 {
		return n, fmt.Errorf("mounts left under %s: %s", dir, strings.Join(left, ", "))
	}
	return n, nil
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// podNetnsPrefixes are the prefixes of the pod network namespaces a
// node's runtime names under /run/netns: "corral-" and a hash of its state
// dir (DATA_DIR/run for an agent, DATA_DIR/agent/run for a server's).
func podNetnsPrefixes(dir, node string) []string {
	var out []string
	for _, stateDir := range []string{filepath.Join(dir, node, "run"), filepath.Join(dir, node, "agent", "run")} {
		sum := sha256.Sum256([]byte(filepath.Clean(stateDir)))
		out = append(out, "corral-"+hex.EncodeToString(sum[:4])+"-")
	}
	return out
}

// removePodNetns unmounts and removes the node's pod network namespaces.
func removePodNetns(dir, node string) error {
	entries, _ := os.ReadDir(netnsDir)
	var errs []error
	for _, prefix := range podNetnsPrefixes(dir, node) {
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), prefix) {
				continue
			}
			p := netnsPath(e.Name())
			_ = syscall.Unmount(p, syscall.MNT_DETACH)
			if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
				errs = append(errs, fmt.Errorf("remove pod namespace %s: %w", p, err))
			}
		}
	}
	return errors.Join(errs...)
}
