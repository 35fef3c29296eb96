package nodeagent

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/types/known/timestamppb"

	corralpb "github.com/corral-dev/corral/proto"
	"github.com/corral-dev/corral/version"
)

// MaxPods is the pods capacity a node reports, as the kubelet's default.
const MaxPods = 110

// nodeStatus describes this machine as a NodeStatus: capacity (cpu, memory,
// pods), allocatable, addresses, system info, the Ready condition and the
// agent API's port.
func nodeStatus(name, nodeIP string, agentPort int, runtimeVersion string, now time.Time) (*corralpb.NodeStatus, error) {
	memKiB, err := memTotalKiB()
	if err != nil {
		return nil, err
	}
	capacity := map[string]string{
		"cpu":    strconv.Itoa(runtime.NumCPU()),
		"memory": fmt.Sprintf("%dKi", memKiB),
		"pods":   strconv.Itoa(MaxPods),
	}
	allocatable := make(map[string]string, len(capacity))
	for k, v := range capacity {
		allocatable[k] = v
	}
	if nodeIP == "" {
		nodeIP = defaultIP()
	}
	ts := timestamppb.New(now.UTC().Truncate(time.Second))
	st := &corralpb.NodeStatus{
		Capacity:    capacity,
		Allocatable: allocatable,
		Addresses: []*corralpb.NodeAddress{
			{Type: "InternalIP", Address: nodeIP},
			{Type: "Hostname", Address: name},
		},
		NodeInfo: systemInfo(runtimeVersion),
		Conditions: []*corralpb.NodeCondition{{
			Type: "Ready", Status: "True", Reason: "KubeletReady", Message: "kubelet is posting ready status",
			LastHeartbeatTime: ts, LastTransitionTime: ts,
		}},
	}
	if agentPort > 0 {
		st.DaemonEndpoints = &corralpb.NodeDaemonEndpoints{KubeletEndpoint: &corralpb.DaemonEndpoint{Port: int32(agentPort)}}
	}
	return st, nil
}

func memTotalKiB() (int64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, fmt.Errorf("read memory size: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			return strconv.ParseInt(fields[1], 10, 64)
		}
	}
	return 0, fmt.Errorf("read memory size: no MemTotal in /proc/meminfo")
}

func systemInfo(runtimeVersion string) *corralpb.NodeSystemInfo {
	var uts unix.Utsname
	kernel := ""
	if unix.Uname(&uts) == nil {
		kernel = string(bytes.TrimRight(uts.Release[:], "\x00"))
	}
	return &corralpb.NodeSystemInfo{
		MachineId:               readTrimmed("/etc/machine-id"),
		BootId:                  readTrimmed("/proc/sys/kernel/random/boot_id"),
		KernelVersion:           kernel,
		OsImage:                 osImage(),
		ContainerRuntimeVersion: runtimeVersion,
		KubeletVersion:          "corral-" + version.Version,
		OperatingSystem:         runtime.GOOS,
		Architecture:            runtime.GOARCH,
	}
}

func readTrimmed(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// osImage is PRETTY_NAME from os-release, as the kubelet reports it.
func osImage() string {
	for _, p := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
				return strings.Trim(v, `"`)
			}
		}
	}
	return "Linux"
}

// DefaultNodeIP is the node's address when none is given: the source
// address of the default route (IPv4 first), else 127.0.0.1.
func DefaultNodeIP() string { return defaultIP() }

// defaultIP is the address of the interface that holds the default route,
// found by asking the kernel which source address it would use (no packet
// is sent), or the loopback address.
func defaultIP() string {
	for _, target := range []string{"192.0.2.1:9", "[2001:db8::1]:9"} {
		c, err := net.Dial("udp", target)
		if err != nil {
			continue
		}
		addr := c.LocalAddr().(*net.UDPAddr).IP.String()
		_ = c.Close()
		return addr
	}
	return "127.0.0.1"
}
