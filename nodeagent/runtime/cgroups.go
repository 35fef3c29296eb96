package runtime

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/moby/sys/mountinfo"
	"github.com/opencontainers/cgroups"
	"golang.org/x/sys/unix"
)

// cgroupMounts lists the mount points of every cgroup hierarchy (v1 and v2).
func cgroupMounts() ([]string, error) {
	ms, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup", "cgroup2"))
	if err != nil {
		return nil, fmt.Errorf("read cgroup mounts: %w", err)
	}
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		out = append(out, m.Mountpoint)
	}
	return out, nil
}

// removeCgroupDirs removes the pod's cgroup directory <parent>/<podUID> in every
// hierarchy. libcontainer creates it (MkdirAll) but removes only container leaves.
func removeCgroupDirs(parent, podUID string) error {
	mounts, err := cgroupMounts()
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range mounts {
		p := filepath.Join(m, parent, podUID)
		if err := cgroups.RemovePath(p); err != nil {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// removeContainerCgroups removes what Destroy leaves of a container's cgroups: the
// leaves if still there, and the pod directories above them once they are empty.
func removeContainerCgroups(paths map[string]string) error {
	var errs []error
	for _, p := range paths {
		if err := cgroups.RemovePath(p); err != nil {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", p, err))
			continue
		}
		// The pod directory: other containers of the pod may still use it.
		err := unix.Rmdir(filepath.Dir(p))
		if err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EBUSY) && !errors.Is(err, unix.ENOTEMPTY) {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", filepath.Dir(p), err))
		}
	}
	return errors.Join(errs...)
}

// oomKills is the number of OOM kills the container's memory cgroup recorded:
// oom_kill in memory.oom_control (v1) or memory.events (v2). 0 when unknown.
func oomKills(paths map[string]string) int {
	if p, ok := paths["memory"]; ok {
		return counter(filepath.Join(p, "memory.oom_control"), "oom_kill")
	}
	if p, ok := paths[""]; ok { // cgroup v2
		return counter(filepath.Join(p, "memory.events"), "oom_kill")
	}
	return 0
}

// counter reads "key N" from a flat-keyed cgroup file.
func counter(file, key string) int {
	f, err := os.Open(file)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == key {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}
