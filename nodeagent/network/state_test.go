package network

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

func TestHostVethName(t *testing.T) {
	a := hostVethName("corral0", "uid-1")
	if len(a) != 12 || !strings.HasPrefix(a, "veth") || !isHostVethName(a) {
		t.Fatalf("hostVethName = %q", a)
	}
	if a != hostVethName("corral0", "uid-1") {
		t.Fatal("not stable")
	}
	if a == hostVethName("corral1", "uid-1") || a == hostVethName("corral0", "uid-2") {
		t.Fatal("does not depend on bridge and pod")
	}
	for _, n := range []string{"veth0", "eth0", "vethABCDEF01", "vethxyzxyzxy", "veth0123456789"} {
		if isHostVethName(n) {
			t.Errorf("isHostVethName(%q)", n)
		}
	}
}

func TestNormalizePorts(t *testing.T) {
	got, err := normalizePorts([]PortMapping{{HostPort: 80}, {HostPort: 0, ContainerPort: 81}, {HostPort: 53, ContainerPort: 5353, Protocol: "udp"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []PortMapping{{HostPort: 80, ContainerPort: 80, Protocol: "TCP"}, {HostPort: 53, ContainerPort: 5353, Protocol: "UDP"}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("normalizePorts = %+v, want %+v", got, want)
	}
	if _, err := normalizePorts([]PortMapping{{HostPort: 80, Protocol: "ICMP"}}); err == nil {
		t.Error("protocol ICMP accepted")
	}
	if _, err := normalizePorts([]PortMapping{{HostPort: 80, HostIP: netip.MustParseAddr("::1")}}); err == nil {
		t.Error("IPv6 host IP accepted")
	}
}

func TestPortConflict(t *testing.T) {
	ip1, ip2 := netip.MustParseAddr("192.168.1.1"), netip.MustParseAddr("192.168.1.2")
	pods := []*podRecord{
		{UID: "a", Namespace: "default", Name: "web", Ports: []PortMapping{{HostPort: 80, ContainerPort: 80, Protocol: "TCP"}}},
		{UID: "b", Namespace: "kube", Name: "dns", Ports: []PortMapping{{HostPort: 53, ContainerPort: 53, Protocol: "UDP", HostIP: ip1}}},
	}
	for _, c := range []struct {
		name     string
		uid      string
		ports    []PortMapping
		conflict string // the other pod, "" none
	}{
		{"same port and protocol", "c", []PortMapping{{HostPort: 80, Protocol: "TCP"}}, "default/web"},
		{"specific IP against any", "c", []PortMapping{{HostPort: 80, Protocol: "TCP", HostIP: ip2}}, "default/web"},
		{"any against specific IP", "c", []PortMapping{{HostPort: 53, Protocol: "UDP"}}, "kube/dns"},
		{"unspecified IP against specific IP", "c", []PortMapping{{HostPort: 53, Protocol: "UDP", HostIP: netip.IPv4Unspecified()}}, "kube/dns"},
		{"same specific IP", "c", []PortMapping{{HostPort: 53, Protocol: "UDP", HostIP: ip1}}, "kube/dns"},
		{"other specific IP", "c", []PortMapping{{HostPort: 53, Protocol: "UDP", HostIP: ip2}}, ""},
		{"other protocol", "c", []PortMapping{{HostPort: 80, Protocol: "UDP"}, {HostPort: 53, Protocol: "TCP"}}, ""},
		{"other port", "c", []PortMapping{{HostPort: 8080, Protocol: "TCP"}}, ""},
		{"the pod itself", "a", []PortMapping{{HostPort: 80, Protocol: "TCP"}}, ""},
		{"twice in the pod", "c", []PortMapping{{HostPort: 81, Protocol: "TCP"}, {HostPort: 81, Protocol: "TCP"}}, "default/new"},
	} {
		err := portConflict(pods, c.uid, "default/new", c.ports)
		if c.conflict == "" {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if !errors.Is(err, ErrPortConflict) || !strings.Contains(err.Error(), c.conflict) {
			t.Errorf("%s: %v, want ErrPortConflict naming %s", c.name, err, c.conflict)
			continue
		}
		p := c.ports[len(c.ports)-1]
		if !strings.Contains(err.Error(), p.Protocol) || !strings.Contains(err.Error(), "port "+strconv.Itoa(int(p.HostPort))) {
			t.Errorf("%s: %v does not name the port and protocol", c.name, err)
		}
	}
}
