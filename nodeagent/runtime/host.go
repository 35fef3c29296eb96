package runtime

import (
	"fmt"
	"slices"
	"strings"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// hostLimits is what the agent process itself holds: a container cannot get more.
// An agent without CAP_SYS_RESOURCE (some sandboxes) cannot raise a container's hard
// RLIMIT_NOFILE past its own, and no agent can grant a capability it lacks (containerd
// likewise gives privileged containers the capabilities it has, not every one).
type hostLimits struct {
	caps        map[string]bool // permitted capabilities of the agent, "CAP_..."
	nofileHard  uint64
	sysResource bool // CAP_SYS_RESOURCE: may raise hard limits
}

func readHostLimits() (hostLimits, error) {
	c, err := capability.NewPid2(0)
	if err != nil {
		return hostLimits{}, fmt.Errorf("read own capabilities: %w", err)
	}
	if err := c.Load(); err != nil {
		return hostLimits{}, fmt.Errorf("read own capabilities: %w", err)
	}
	h := hostLimits{caps: map[string]bool{}}
	for _, cp := range capability.ListKnown() {
		if c.Get(capability.PERMITTED, cp) && c.Get(capability.BOUNDING, cp) {
			h.caps["CAP_"+strings.ToUpper(cp.String())] = true
		}
	}
	h.sysResource = h.caps["CAP_SYS_RESOURCE"]
	var l unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &l); err != nil {
		return hostLimits{}, fmt.Errorf("read own RLIMIT_NOFILE: %w", err)
	}
	h.nofileHard = l.Max
	return h, nil
}

// fit narrows spec's process to what the agent can grant and returns what it dropped.
func (h hostLimits) fit(p *specs.Process) (dropped []string) {
	if c := p.Capabilities; c != nil {
		keep := func(list []string) []string {
			return slices.DeleteFunc(list, func(name string) bool {
				if h.caps[name] {
					return false
				}
				if !slices.Contains(dropped, name) {
					dropped = append(dropped, name)
				}
				return true
			})
		}
		c.Bounding, c.Effective, c.Permitted = keep(c.Bounding), keep(c.Effective), keep(c.Permitted)
		c.Inheritable, c.Ambient = keep(c.Inheritable), keep(c.Ambient)
	}
	for i, l := range p.Rlimits {
		if l.Type == "RLIMIT_NOFILE" && !h.sysResource && l.Hard > h.nofileHard {
			p.Rlimits[i].Hard = h.nofileHard
			p.Rlimits[i].Soft = min(l.Soft, h.nofileHard)
			dropped = append(dropped, fmt.Sprintf("RLIMIT_NOFILE hard %d>%d", l.Hard, h.nofileHard))
		}
	}
	return dropped
}
