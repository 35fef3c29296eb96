package runtime

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/corral-dev/corral/nodeagent/runtime/containerinit"
)

func testSandbox() (*Sandbox, *SandboxConfig) {
	sbc := &SandboxConfig{PodUID: "uid1", Namespace: "default", Name: "web"}
	sb := &Sandbox{
		PodUID: "uid1", Hostname: "web",
		NetNSPath: "/run/netns/corral-x-uid1", IPCNSPath: "/state/sandboxes/uid1/ipc", UTSNSPath: "/state/sandboxes/uid1/uts",
		HostsPath: "/state/sandboxes/uid1/hosts", HostnamePath: "/state/sandboxes/uid1/hostname",
		ResolvConfPath: "/state/sandboxes/uid1/resolv.conf", ShmPath: "/state/sandboxes/uid1/shm",
		Config: *sbc,
	}
	return sb, sbc
}

func testContainer() *ContainerConfig {
	return &ContainerConfig{PodUID: "uid1", Name: "app", RootFS: "/rootfs", Args: []string{"/bin/app", "-v"}}
}

func findMount(s *specs.Spec, dst string) *specs.Mount {
	for i := range s.Mounts {
		if s.Mounts[i].Destination == dst {
			return &s.Mounts[i]
		}
	}
	return nil
}

func nsTypes(s *specs.Spec) map[specs.LinuxNamespaceType]string {
	out := map[specs.LinuxNamespaceType]string{}
	for _, n := range s.Linux.Namespaces {
		out[n.Type] = n.Path
	}
	return out
}

func TestSpecDefaults(t *testing.T) {
	sb, sbc := testSandbox()
	s, err := Spec(sb, sbc, testContainer(), "/corral/n1/uid1/app-0", "/data/bin/corral-init")
	if err != nil {
		t.Fatal(err)
	}
	wantCaps := []string{ // kernel order
		"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID",
		"CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SYS_CHROOT", "CAP_MKNOD", "CAP_AUDIT_WRITE", "CAP_SETFCAP",
	}
	c := s.Process.Capabilities
	for name, got := range map[string][]string{"bounding": c.Bounding, "effective": c.Effective, "permitted": c.Permitted} {
		if !reflect.DeepEqual(got, wantCaps) {
			t.Errorf("%s capabilities = %v, want %v", name, got, wantCaps)
		}
	}
	if len(c.Inheritable) != 0 || len(c.Ambient) != 0 {
		t.Errorf("inheritable %v ambient %v, want none", c.Inheritable, c.Ambient)
	}
	if !reflect.DeepEqual(s.Linux.MaskedPaths, maskedPaths) || !slices.Contains(s.Linux.MaskedPaths, "/proc/kcore") {
		t.Errorf("masked paths = %v", s.Linux.MaskedPaths)
	}
	if !reflect.DeepEqual(s.Linux.ReadonlyPaths, []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}) {
		t.Errorf("readonly paths = %v", s.Linux.ReadonlyPaths)
	}
	wantArgs := containerinit.Args([]string{"/bin/app", "-v"}, containerinit.LogOptions{})
	if !reflect.DeepEqual(s.Process.Args, wantArgs) || wantArgs[0] != "/.corral/init" {
		t.Errorf("args = %v, want %v", s.Process.Args, wantArgs)
	}
	if want := []string{defaultPath, "HOSTNAME=web"}; !reflect.DeepEqual(s.Process.Env, want) {
		t.Errorf("env = %v, want %v", s.Process.Env, want)
	}
	if s.Process.Cwd != "/" || s.Process.NoNewPrivileges || s.Root.Readonly || s.Root.Path != "/rootfs" {
		t.Errorf("cwd %q nnp %v root %+v", s.Process.Cwd, s.Process.NoNewPrivileges, s.Root)
	}
	if want := []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 524288}}; !reflect.DeepEqual(s.Process.Rlimits, want) {
		t.Errorf("rlimits = %v", s.Process.Rlimits)
	}
	wantNS := map[specs.LinuxNamespaceType]string{
		specs.MountNamespace: "", specs.PIDNamespace: "", specs.CgroupNamespace: "",
		specs.IPCNamespace: sb.IPCNSPath, specs.UTSNamespace: sb.UTSNSPath, specs.NetworkNamespace: sb.NetNSPath,
	}
	if got := nsTypes(s); !reflect.DeepEqual(got, wantNS) {
		t.Errorf("namespaces = %v, want %v", got, wantNS)
	}
	if s.Linux.CgroupsPath != "/corral/n1/uid1/app-0" || s.Linux.Resources.Memory != nil || s.Linux.Resources.CPU != nil {
		t.Errorf("cgroups path %q resources %+v", s.Linux.CgroupsPath, s.Linux.Resources)
	}
	checkDefaultDevices(t, s.Linux.Resources.Devices)
	checkDefaultMounts(t, s, sb)
}

func checkDefaultDevices(t *testing.T, rules []specs.LinuxDeviceCgroup) {
	t.Helper()
	if len(rules) != 10 || rules[0].Allow || rules[0].Access != "rwm" || rules[0].Type != "" {
		t.Fatalf("device rules = %+v, want deny all then 9 allows", rules)
	}
	var got []string
	for _, r := range rules[1:] {
		if !r.Allow || r.Type != "c" || r.Access != "rwm" {
			t.Errorf("rule %+v", r)
		}
		got = append(got, specsDev(*r.Major, *r.Minor))
	}
	want := []string{"1:3", "1:5", "1:7", "1:8", "1:9", "5:0", "5:1", "5:2", "136:*"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("allowed devices = %v, want %v", got, want)
	}
}

func specsDev(major, minor int64) string {
	if minor < 0 {
		return fmt.Sprintf("%d:*", major)
	}
	return fmt.Sprintf("%d:%d", major, minor)
}

func checkDefaultMounts(t *testing.T, s *specs.Spec, sb *Sandbox) {
	t.Helper()
	var dsts []string
	for _, m := range s.Mounts {
		dsts = append(dsts, m.Destination)
	}
	want := []string{"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup",
		"/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/.corral/init"}
	if !reflect.DeepEqual(dsts, want) {
		t.Fatalf("mounts = %v, want %v", dsts, want)
	}
	for dst, want := range map[string]specs.Mount{
		"/sys":             {Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		"/sys/fs/cgroup":   {Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
		"/dev/shm":         {Type: "bind", Source: sb.ShmPath, Options: []string{"rbind", "rprivate", "rw"}},
		"/etc/resolv.conf": {Type: "bind", Source: sb.ResolvConfPath, Options: []string{"rbind", "rprivate", "rw"}},
		"/.corral/init":    {Type: "bind", Source: "/data/bin/corral-init", Options: []string{"bind", "ro", "nodev", "nosuid"}},
	} {
		want.Destination = dst
		if got := findMount(s, dst); !reflect.DeepEqual(*got, want) {
			t.Errorf("mount %s = %+v, want %+v", dst, *got, want)
		}
	}
}

func TestSpecPrivileged(t *testing.T) {
	sb, sbc := testSandbox()
	c := testContainer()
	c.Privileged = true
	c.CapDrop = []string{"ALL"} // privileged wins, as in Kubernetes
	s, err := Spec(sb, sbc, c, "/p/uid1/app-0", "")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s.Process.Capabilities.Bounding, allCaps) || len(allCaps) < 38 {
		t.Errorf("caps = %v, want all %d", s.Process.Capabilities.Bounding, len(allCaps))
	}
	if s.Linux.MaskedPaths != nil || s.Linux.ReadonlyPaths != nil {
		t.Errorf("masked %v readonly %v, want none", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
	if m := findMount(s, "/sys"); m.Options[3] != "rw" {
		t.Errorf("/sys options %v, want rw", m.Options)
	}
	if m := findMount(s, "/sys/fs/cgroup"); m.Options[4] != "rw" {
		t.Errorf("cgroup options %v, want rw", m.Options)
	}
	if want := []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}; !reflect.DeepEqual(s.Linux.Resources.Devices, want) {
		t.Errorf("devices = %+v", s.Linux.Resources.Devices)
	}
	if findMount(s, "/.corral/init") != nil || !reflect.DeepEqual(s.Process.Args, c.Args) {
		t.Errorf("without an init binary the command runs directly: args %v", s.Process.Args)
	}
}

func TestSpecCapabilities(t *testing.T) {
	for _, tc := range []struct {
		name      string
		add, drop []string
		want      []string // added to / removed from the default set
		notWant   []string
		exact     []string
		err       bool
	}{
		{name: "add and drop", add: []string{"NET_ADMIN", "sys_time"}, drop: []string{"CHOWN", "CAP_KILL"},
			want: []string{"CAP_NET_ADMIN", "CAP_SYS_TIME", "CAP_SETUID"}, notWant: []string{"CAP_CHOWN", "CAP_KILL"}},
		{name: "drop all", drop: []string{"ALL"}, exact: []string{}},
		{name: "drop all add one", add: []string{"NET_BIND_SERVICE"}, drop: []string{"all"}, exact: []string{"CAP_NET_BIND_SERVICE"}},
		{name: "add all drop one", add: []string{"ALL"}, drop: []string{"NET_RAW"}, want: []string{"CAP_SYS_ADMIN", "CAP_NET_ADMIN"}, notWant: []string{"CAP_NET_RAW"}},
		{name: "unknown", add: []string{"FLY"}, err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sb, sbc := testSandbox()
			c := testContainer()
			c.CapAdd, c.CapDrop = tc.add, tc.drop
			s, err := Spec(sb, sbc, c, "/p/u/c-0", "")
			if tc.err {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("err = %v, want ErrInvalid", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := s.Process.Capabilities.Effective
			if tc.exact != nil && !slices.Equal(got, tc.exact) {
				t.Errorf("caps = %v, want %v", got, tc.exact)
			}
			for _, w := range tc.want {
				if !slices.Contains(got, w) {
					t.Errorf("caps %v lack %s", got, w)
				}
			}
			for _, w := range tc.notWant {
				if slices.Contains(got, w) {
					t.Errorf("caps %v have %s", got, w)
				}
			}
		})
	}
}

func TestSpecHostNamespaces(t *testing.T) {
	for _, tc := range []struct {
		name    string
		set     func(*SandboxConfig, *Sandbox)
		without []specs.LinuxNamespaceType
	}{
		{"hostNetwork", func(c *SandboxConfig, s *Sandbox) { c.HostNetwork, s.NetNSPath, s.UTSNSPath = true, "", "" },
			[]specs.LinuxNamespaceType{specs.NetworkNamespace, specs.UTSNamespace}},
		{"hostIPC", func(c *SandboxConfig, s *Sandbox) { c.HostIPC, s.IPCNSPath, s.ShmPath = true, "", "/dev/shm" },
			[]specs.LinuxNamespaceType{specs.IPCNamespace}},
		{"hostPID", func(c *SandboxConfig, s *Sandbox) { c.HostPID = true }, []specs.LinuxNamespaceType{specs.PIDNamespace}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sb, sbc := testSandbox()
			tc.set(sbc, sb)
			s, err := Spec(sb, sbc, testContainer(), "/p/u/c-0", "")
			if err != nil {
				t.Fatal(err)
			}
			got := nsTypes(s)
			for _, ns := range tc.without {
				if _, ok := got[ns]; ok {
					t.Errorf("namespaces %v include %s", got, ns)
				}
			}
			if len(got) != 6-len(tc.without) {
				t.Errorf("namespaces = %v", got)
			}
		})
	}
}

func TestSpecProcess(t *testing.T) {
	sb, sbc := testSandbox()
	c := testContainer()
	c.Env = []string{"PATH=/opt/bin", "A=1"}
	c.WorkingDir = "/work"
	c.User = &User{UID: 1000, GID: 2000, AdditionalGIDs: []uint32{3000, 4000}}
	c.NoNewPrivileges = true
	c.ReadOnlyRootFS = true
	c.TTY = true
	c.Log = containerinit.LogOptions{MaxSize: 1 << 20, MaxFiles: 3}
	c.Resources = Resources{CPUShares: 512, CPUQuota: 50000, MemoryLimit: 64 << 20}
	sbc.Sysctls = map[string]string{"net.ipv4.ip_unprivileged_port_start": "0"}
	s, err := Spec(sb, sbc, c, "/p/u/c-0", "/init")
	if err != nil {
		t.Fatal(err)
	}
	p := s.Process
	if want := []string{"HOSTNAME=web", "PATH=/opt/bin", "A=1"}; !reflect.DeepEqual(p.Env, want) {
		t.Errorf("env = %v, want %v", p.Env, want)
	}
	if want := (specs.User{UID: 1000, GID: 2000, AdditionalGids: []uint32{3000, 4000}}); !reflect.DeepEqual(p.User, want) {
		t.Errorf("user = %+v", p.User)
	}
	if p.Cwd != "/work" || !p.NoNewPrivileges || !s.Root.Readonly {
		t.Errorf("cwd %q nnp %v readonly %v", p.Cwd, p.NoNewPrivileges, s.Root.Readonly)
	}
	wantArgs := containerinit.Args(c.Args, containerinit.LogOptions{MaxSize: 1 << 20, MaxFiles: 3})
	if !reflect.DeepEqual(p.Args, wantArgs) {
		t.Errorf("args = %v, want %v", p.Args, wantArgs)
	}
	if m := findMount(s, "/etc/hosts"); m.Options[2] != "ro" {
		t.Errorf("read-only rootfs: /etc/hosts options %v", m.Options)
	}
	r := s.Linux.Resources
	if *r.Memory.Limit != 64<<20 || *r.CPU.Shares != 512 || *r.CPU.Quota != 50000 || *r.CPU.Period != 100000 {
		t.Errorf("resources memory %d shares %d quota %d period %d", *r.Memory.Limit, *r.CPU.Shares, *r.CPU.Quota, *r.CPU.Period)
	}
	if s.Linux.Sysctl["net.ipv4.ip_unprivileged_port_start"] != "0" {
		t.Errorf("sysctls = %v", s.Linux.Sysctl)
	}
}

func TestSpecMounts(t *testing.T) {
	sb, sbc := testSandbox()
	c := testContainer()
	c.Mounts = []Mount{
		{Source: "/host/data/sub", Destination: "/data/sub", ReadOnly: true},
		{Source: "/host/data", Destination: "/data", Propagation: "HostToContainer"},
		{Destination: "/cache", Type: "tmpfs"},
		{Source: "/host/hosts", Destination: "/etc/hosts"},
	}
	s, err := Spec(sb, sbc, c, "/p/u/c-0", "")
	if err != nil {
		t.Fatal(err)
	}
	var dsts []string
	for _, m := range s.Mounts {
		dsts = append(dsts, m.Destination)
	}
	want := []string{"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup",
		"/etc/hostname", "/etc/resolv.conf", "/data", "/cache", "/data/sub", "/etc/hosts"}
	if !reflect.DeepEqual(dsts, want) {
		t.Fatalf("mounts = %v, want %v", dsts, want)
	}
	if m := findMount(s, "/data/sub"); !reflect.DeepEqual(m.Options, []string{"rbind", "rprivate", "ro"}) {
		t.Errorf("/data/sub options %v", m.Options)
	}
	if m := findMount(s, "/data"); !reflect.DeepEqual(m.Options, []string{"rbind", "rslave", "rw"}) || s.Linux.RootfsPropagation != "rslave" {
		t.Errorf("/data options %v rootfs propagation %q", m.Options, s.Linux.RootfsPropagation)
	}
	if m := findMount(s, "/cache"); m.Type != "tmpfs" {
		t.Errorf("/cache = %+v", m)
	}
	if m := findMount(s, "/etc/hosts"); m.Source != "/host/hosts" {
		t.Errorf("user /etc/hosts replaced by %+v", m)
	}

	c.Mounts = []Mount{{Source: "/host/dev", Destination: "/dev"}}
	s, err = Spec(sb, sbc, c, "/p/u/c-0", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range s.Mounts {
		if len(m.Destination) > 5 && m.Destination[:5] == "/dev/" {
			t.Errorf("a user /dev leaves default %s", m.Destination)
		}
	}
}

func TestSpecInvalid(t *testing.T) {
	sb, sbc := testSandbox()
	for name, mod := range map[string]func(*ContainerConfig){
		"relative rootfs":      func(c *ContainerConfig) { c.RootFS = "rootfs" },
		"no command":           func(c *ContainerConfig) { c.Args = nil },
		"relative workdir":     func(c *ContainerConfig) { c.WorkingDir = "work" },
		"relative destination": func(c *ContainerConfig) { c.Mounts = []Mount{{Source: "/a", Destination: "a"}} },
		"relative source":      func(c *ContainerConfig) { c.Mounts = []Mount{{Source: "a", Destination: "/a"}} },
		"bad propagation": func(c *ContainerConfig) {
			c.Mounts = []Mount{{Source: "/a", Destination: "/a", Propagation: "sideways"}}
		},
		"bad type": func(c *ContainerConfig) { c.Mounts = []Mount{{Source: "/a", Destination: "/a", Type: "nfs"}} },
	} {
		c := testContainer()
		mod(c)
		if _, err := Spec(sb, sbc, c, "/p/u/c-0", ""); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
	if _, err := Spec(nil, sbc, testContainer(), "/p", ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("nil sandbox: err = %v", err)
	}
	if _, err := Spec(sb, sbc, testContainer(), "p/u", ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("relative cgroups path: err = %v", err)
	}
}

func TestCPUConversions(t *testing.T) {
	for _, tc := range []struct {
		milli  int64
		shares uint64
		quota  int64
	}{
		{0, 2, 0}, {1, 2, 1000}, {100, 102, 10000}, {250, 256, 25000}, {1000, 1024, 100000}, {2500, 2560, 250000},
	} {
		if got := MilliCPUToShares(tc.milli); got != tc.shares {
			t.Errorf("MilliCPUToShares(%d) = %d, want %d", tc.milli, got, tc.shares)
		}
		if got := MilliCPUToQuota(tc.milli, 0); got != tc.quota {
			t.Errorf("MilliCPUToQuota(%d) = %d, want %d", tc.milli, got, tc.quota)
		}
	}
	if got := CgroupPath("/corral/n1", "uid", "app", 3); got != "/corral/n1/uid/app-3" {
		t.Errorf("CgroupPath = %q", got)
	}
}
