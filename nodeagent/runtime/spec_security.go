package runtime

import (
	"fmt"
	"slices"
	"strings"

	"github.com/opencontainers/runc/libcontainer/capabilities"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// defaultCaps is containerd's default capability set for Kubernetes containers (the
// set Docker has always given): 14 capabilities, not runc's example spec's three.
var defaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// maskedPaths are hidden from unprivileged containers (containerd's defaults).
var maskedPaths = []string{
	"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
	"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
	"/sys/devices/virtual/powercap", "/proc/scsi",
}

// readonlyPaths are read-only in unprivileged containers (containerd's defaults).
var readonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}

// allCaps is every capability known to the capability library, in kernel order.
// libcontainer skips, with a warning, the ones the running kernel lacks.
var allCaps = capabilities.KnownCapabilities()

// capabilitySet applies Kubernetes' add/drop rules to the default set: "ALL" in add
// starts from every capability, "ALL" in drop from none, then single names are added
// and dropped. Privileged containers get every capability. The result is in kernel order.
func capabilitySet(privileged bool, add, drop []string) ([]string, error) {
	if privileged {
		return slices.Clone(allCaps), nil
	}
	set := map[string]bool{}
	for _, c := range defaultCaps {
		set[c] = true
	}
	if slices.ContainsFunc(add, isAll) {
		for _, c := range allCaps {
			set[c] = true
		}
	}
	if slices.ContainsFunc(drop, isAll) {
		clear(set)
	}
	for _, list := range []struct {
		names []string
		keep  bool
	}{{add, true}, {drop, false}} {
		for _, n := range list.names {
			if isAll(n) {
				continue
			}
			c, err := capName(n)
			if err != nil {
				return nil, err
			}
			set[c] = list.keep
		}
	}
	var out []string
	for _, c := range allCaps {
		if set[c] {
			out = append(out, c)
		}
	}
	return out, nil
}

func isAll(s string) bool { return strings.EqualFold(s, "ALL") }

// capName maps a Kubernetes capability name ("net_admin", "NET_ADMIN", "CAP_NET_ADMIN")
// to its OCI name.
func capName(n string) (string, error) {
	c := strings.ToUpper(n)
	if !strings.HasPrefix(c, "CAP_") {
		c = "CAP_" + c
	}
	if !slices.Contains(allCaps, c) {
		return "", fmt.Errorf("spec: unknown capability %q: %w", n, ErrInvalid)
	}
	return c, nil
}

// deviceRules is the device cgroup: everything for privileged containers; otherwise
// deny all, then allow the standard character devices as containerd does (null, zero,
// full, random, urandom, tty, console, ptmx, pts/*). containerd's list also allows
// /dev/net/tun (10:200); corral does not: a pod that needs it must be privileged.
func deviceRules(privileged bool) []specs.LinuxDeviceCgroup {
	if privileged {
		return []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
	}
	rules := []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}
	for _, d := range []struct{ major, minor int64 }{
		{1, 3},    // /dev/null
		{1, 5},    // /dev/zero
		{1, 7},    // /dev/full
		{1, 8},    // /dev/random
		{1, 9},    // /dev/urandom
		{5, 0},    // /dev/tty
		{5, 1},    // /dev/console
		{5, 2},    // /dev/ptmx
		{136, -1}, // /dev/pts/*
	} {
		major, minor := d.major, d.minor
		rules = append(rules, specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: &major, Minor: &minor, Access: "rwm"})
	}
	return rules
}
