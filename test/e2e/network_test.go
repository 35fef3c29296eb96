package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/corral-dev/corral/internal/roottest"
	"github.com/corral-dev/corral/lab"
	"github.com/corral-dev/corral/nodeagent/probe"
	"github.com/corral-dev/corral/test/framework"
)

// podAddr is where a pod runs and answers.
type podAddr struct {
	Name, Node, IP, HostIP, Phase string
}

// podAddrs lists the pods the selector picks ("-l ..." or "-n ns -l ...").
func podAddrs(t *testing.T, conf string, selector ...string) []podAddr {
	t.Helper()
	out := ok(t, conf, append([]string{"get", "pods", "-o", "json"}, selector...)...)
	var list struct {
		Items []struct {
			Metadata struct{ Name string } `json:"metadata"`
			Spec     struct {
				NodeName string `json:"nodeName"`
			} `json:"spec"`
			Status struct {
				Phase  string `json:"phase"`
				PodIP  string `json:"podIP"`
				HostIP string `json:"hostIP"`
				PodIPs []struct {
					IP string `json:"ip"`
				} `json:"podIPs"`
			} `json:"status"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("pods json: %v", err)
	}
	var pods []podAddr
	for _, it := range list.Items {
		if it.Status.PodIP != "" && (len(it.Status.PodIPs) != 1 || it.Status.PodIPs[0].IP != it.Status.PodIP) {
			t.Fatalf("pod %s: podIPs %v do not match podIP %s", it.Metadata.Name, it.Status.PodIPs, it.Status.PodIP)
		}
		pods = append(pods, podAddr{Name: it.Metadata.Name, Node: it.Spec.NodeName, IP: it.Status.PodIP,
			HostIP: it.Status.HostIP, Phase: it.Status.Phase})
	}
	return pods
}

// httpFrom GETs url from inside the network namespace at nsPath ("" for
// the test's own) and reports whether it answered 200.
// portForward runs `corral port-forward target :remote` until the test
// ends and returns the http:// URL of the local port it listens on.
func portForward(t *testing.T, conf, target, remote string) string {
	t.Helper()
	cmd := exec.Command(framework.Binary(t), "--config", conf, "port-forward", target, ":"+remote)
	var errOut framework.SyncBuffer
	cmd.Stderr = &errOut
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait() // killed: its exit status says so
		if t.Failed() {
			t.Logf("port-forward stderr: %s", errOut.String())
		}
	})
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	want := regexp.MustCompile(`^Forwarding from 127\.0\.0\.1:(\d+) -> ` + remote + `$`)
	timeout := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("port-forward %s ended before it listened; stderr: %s", target, errOut.String())
			}
			if m := want.FindStringSubmatch(l); m != nil {
				go func() {
					for range lines { // "Handling connection for ..."
					}
				}()
				return "http://127.0.0.1:" + m[1] + "/"
			}
		case <-timeout:
			t.Fatalf("port-forward %s did not listen within 30 s; stderr: %s", target, errOut.String())
		}
	}
}

func httpFrom(nsPath, url string) bool {
	tr := &http.Transport{DisableKeepAlives: true}
	if nsPath != "" {
		tr.DialContext = (&probe.NetNSDialer{Path: nsPath}).DialContext
	}
	c := &http.Client{Transport: tr, Timeout: 3 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

// inNetns runs fn with a netlink handle and an nftables connection inside
// the network namespace at path.
func inNetns(t *testing.T, path string, fn func(h *netlink.Handle, nft *nftables.Conn)) {
	t.Helper()
	ns, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatalf("netlink in %s: %v", path, err)
	}
	defer h.Close()
	nft, err := nftables.New(nftables.WithNetNSFd(int(ns)))
	if err != nil {
		t.Fatalf("nftables in %s: %v", path, err)
	}
	fn(h, nft)
}

// podLinks counts the veths on the node's pod bridge and the hostPort
// rules of its nftables table.
func podLinks(t *testing.T, nsPath string) (veths, hostPortRules int) {
	t.Helper()
	inNetns(t, nsPath, func(h *netlink.Handle, nft *nftables.Conn) {
		br, err := h.LinkByName("corral0")
		if err != nil {
			t.Fatalf("bridge corral0 in %s: %v", nsPath, err)
		}
		links, err := h.LinkList()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range links {
			if l.Attrs().MasterIndex == br.Attrs().Index {
				veths++
			}
		}
		tbl := &nftables.Table{Name: "corral0", Family: nftables.TableFamilyIPv4}
		rules, err := nft.GetRules(tbl, &nftables.Chain{Name: "hostports", Table: tbl})
		if err != nil {
			t.Fatalf("hostports rules in %s: %v", nsPath, err)
		}
		hostPortRules = len(rules)
	})
	return veths, hostPortRules
}

const webDaemonSet = `apiVersion: apps/v1
kind: DaemonSet
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1.25
        ports:
        - {containerPort: 80, hostPort: 8081}
        env:
        - name: POD_IP
          valueFrom: {fieldRef: {fieldPath: status.podIP}}
`

// TestPodNetworkOnLab checks the built-in pod network on a 1-server +
// 3-agent lab: pod IPs from each node's CIDR, pod-to-pod traffic across
// nodes, pod IPs reachable from every node and the host, hostPort from
// other nodes and the node itself, masquerade to the outside, and no
// leftovers after pods churn, an agent restarts and the lab goes down.
func TestPodNetworkOnLab(t *testing.T) {
	roottest.Require(t, "real containers")
	framework.Binary(t)
	dir := filepath.Join(t.TempDir(), "lab")
	nodes := []string{"server-1", "worker-1", "worker-2", "worker-3"}
	traces := newLabTraces(dir, append(append([]string{}, nodes...), "worker-4")...)
	t.Cleanup(func() {
		dumpLabLogs(t, dir, traces.nodes)
		if out, err := labCmd(t, dir, "down"); err != nil {
			t.Logf("lab down in cleanup: %v\n%s", err, out)
		}
	})
	labOK(t, dir, "up", "--servers", "1", "--agents", "3")
	conf := filepath.Join(dir, "admin.conf")
	addrs := labAddresses(t, dir)
	nsOf := map[string]string{}
	for _, n := range nodes {
		p, err := lab.NodeNetNS(dir, n)
		if err != nil {
			t.Fatal(err)
		}
		nsOf[n] = p
	}
	// Every node has a /24 of the lab's cluster CIDR, shown by describe.
	cidrOf := map[string]netip.Prefix{}
	for _, n := range nodes {
		s := strings.TrimSpace(ok(t, conf, "get", "node", n, "-o", "jsonpath={.spec.podCIDR}"))
		p, err := netip.ParsePrefix(s)
		if err != nil || p.Bits() != 24 {
			t.Fatalf("node %s podCIDR %q", n, s)
		}
		for m, q := range cidrOf {
			if q == p {
				t.Fatalf("nodes %s and %s share pod CIDR %s", n, m, p)
			}
		}
		cidrOf[n] = p
		if d := ok(t, conf, "describe", "node", n); !strings.Contains(d, "PodCIDR:") || !strings.Contains(d, p.String()) {
			t.Errorf("describe node %s does not show PodCIDR %s:\n%s", n, p, d)
		}
	}

	files := t.TempDir()
	writeFile(t, filepath.Join(files, "web.yml"), webDaemonSet)
	ok(t, conf, "apply", "-f", filepath.Join(files, "web.yml"))
	var web []podAddr
	framework.WaitFor(t, "a web pod Running with an IP on every node", 90*time.Second, func() bool {
		web = podAddrs(t, conf, "-l", "app=web")
		if len(web) != len(nodes) {
			return false
		}
		for _, p := range web {
			if p.Phase != "Running" || p.IP == "" {
				return false
			}
		}
		return true
	})
	byNode := map[string]podAddr{}
	wide := ok(t, conf, "get", "pods", "-l", "app=web", "-o", "wide")
	for _, p := range web {
		byNode[p.Node] = p
		if ip := netip.MustParseAddr(p.IP); !cidrOf[p.Node].Contains(ip) || ip == cidrOf[p.Node].Addr().Next() {
			t.Errorf("pod %s on %s has IP %s, want a pod address of %s", p.Name, p.Node, p.IP, cidrOf[p.Node])
		}
		if p.HostIP != addrs[p.Node] {
			t.Errorf("pod %s hostIP %s, want %s", p.Name, p.HostIP, addrs[p.Node])
		}
		if !regexp.MustCompile(`(?m)^` + p.Name + `\s.*\s` + regexp.QuoteMeta(p.IP) + `\s+` + p.Node + `\s`).MatchString(wide) {
			t.Errorf("get pods -o wide does not show %s with IP %s on %s:\n%s", p.Name, p.IP, p.Node, wide)
		}
		if env := ok(t, conf, "exec", p.Name, "--", "/usr/local/bin/corral-standin", "env"); !strings.Contains(env, "POD_IP="+p.IP+"\n") {
			t.Errorf("pod %s: fieldRef status.podIP not %s in its environment", p.Name, p.IP)
		}
	}

	t.Run("pod IPs answer from the host and every node", func(t *testing.T) {
		for _, p := range web {
			url := fmt.Sprintf("http://%s:80/", p.IP)
			framework.WaitFor(t, "the host reaches "+url, 20*time.Second, func() bool { return httpFrom("", url) })
			for _, n := range nodes {
				framework.WaitFor(t, n+" reaches "+url, 20*time.Second, func() bool { return httpFrom(nsOf[n], url) })
			}
		}
	})
	t.Run("port-forward into a pod's network namespace", func(t *testing.T) {
		// From this host, through the server and worker-1's agent, to
		// 127.0.0.1:80 inside the pod: a port only the pod itself sees.
		p := byNode["worker-1"]
		url := portForward(t, conf, "pod/"+p.Name, "80")
		framework.WaitFor(t, "a page through "+url, 20*time.Second, func() bool { return httpFrom("", url) })
	})
	t.Run("pod to pod across nodes", func(t *testing.T) {
		from, to := byNode["worker-1"], byNode["worker-2"]
		out, errOut, code := corral(t, conf, "", "exec", from.Name, "--", "/usr/local/bin/corral-standin", "get", fmt.Sprintf("http://%s:80/", to.IP))
		if code != 0 || !strings.Contains(out, "200 OK") {
			t.Fatalf("pod on worker-1 fetching the pod on worker-2 (%s): exit %d\n%s%s", to.IP, code, out, errOut)
		}
	})
	t.Run("hostPort from another node and from the node itself", func(t *testing.T) {
		url := fmt.Sprintf("http://%s:8081/", addrs["worker-1"])
		framework.WaitFor(t, "worker-2 reaches "+url, 20*time.Second, func() bool { return httpFrom(nsOf["worker-2"], url) })
		framework.WaitFor(t, "worker-1 reaches "+url, 20*time.Second, func() bool { return httpFrom(nsOf["worker-1"], url) })
		framework.WaitFor(t, "the host reaches "+url, 20*time.Second, func() bool { return httpFrom("", url) })
	})
	t.Run("masquerade to outside the cluster", func(t *testing.T) {
		hostIP := addrs["worker-1"][:strings.LastIndex(addrs["worker-1"], ".")] + ".1"
		lis, err := net.Listen("tcp", hostIP+":0")
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var remotes []string
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			remotes = append(remotes, r.RemoteAddr)
			mu.Unlock()
			_, _ = io.WriteString(w, "hello from the host\n")
		})}
		go func() { _ = srv.Serve(lis) }()
		defer srv.Close()
		from := byNode["worker-1"]
		out, errOut, code := corral(t, conf, "", "exec", from.Name, "--", "/usr/local/bin/corral-standin", "get", "http://"+lis.Addr().String()+"/")
		if code != 0 || !strings.Contains(out, "hello from the host") {
			t.Fatalf("pod reaching the lab host: exit %d\n%s%s", code, out, errOut)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(remotes) != 1 || !strings.HasPrefix(remotes[0], addrs["worker-1"]+":") {
			t.Fatalf("the host saw the pod's request from %v, want worker-1's address %s (masqueraded)", remotes, addrs["worker-1"])
		}
	})
	t.Run("50 pods come and go on one node", func(t *testing.T) { churnPods(t, conf, files, nsOf["worker-3"], byNode["worker-3"]) })
	t.Run("agent restart keeps pods' network", func(t *testing.T) {
		labOK(t, dir, "kill", "worker-3")
		labOK(t, dir, "start", "worker-3")
		framework.WaitFor(t, "worker-3's web pod Running with its IP", 60*time.Second, func() bool {
			for _, p := range podAddrs(t, conf, "-l", "app=web") {
				if p.Node == "worker-3" {
					return p.Phase == "Running" && p.IP == byNode["worker-3"].IP
				}
			}
			return false
		})
		if v, r := podLinks(t, nsOf["worker-3"]); v != 1 || r != 1 {
			t.Fatalf("after the agent restart worker-3 has %d pod veths and %d hostPort rules, want 1 and 1", v, r)
		}
		// The restarted agent attaches a new pod beside the old one.
		f := filepath.Join(files, "after.yml")
		writeFile(t, f, "apiVersion: v1\nkind: Pod\nmetadata: {name: after-restart}\nspec:\n  nodeName: worker-3\n  containers:\n  - {name: c, image: nginx:1.25}\n")
		ok(t, conf, "apply", "-f", f)
		framework.WaitFor(t, "a new pod on the restarted agent Running with its own IP", 60*time.Second, func() bool {
			p := podAddrs(t, conf, "--field-selector", "metadata.name=after-restart")
			return len(p) == 1 && p[0].Phase == "Running" && p[0].IP != "" && p[0].IP != byNode["worker-3"].IP
		})
		if v, r := podLinks(t, nsOf["worker-3"]); v != 2 || r != 1 {
			t.Fatalf("with a second pod worker-3 has %d pod veths and %d hostPort rules, want 2 and 1", v, r)
		}
		ok(t, conf, "delete", "-f", f)
		framework.WaitFor(t, "worker-3 back to one pod veth", 30*time.Second, func() bool { v, _ := podLinks(t, nsOf["worker-3"]); return v == 1 })
		url := fmt.Sprintf("http://%s:80/", byNode["worker-3"].IP)
		framework.WaitFor(t, "worker-1 reaches "+url, 20*time.Second, func() bool { return httpFrom(nsOf["worker-1"], url) })
	})

	t.Run("routes follow nodes joining and leaving", func(t *testing.T) {
		labOK(t, dir, "add-node", "worker-4")
		cidr := strings.TrimSpace(ok(t, conf, "get", "node", "worker-4", "-o", "jsonpath={.spec.podCIDR}"))
		addr := labAddresses(t, dir)["worker-4"]
		framework.WaitFor(t, "worker-1 routes "+cidr+" via "+addr, 30*time.Second, func() bool { return routeVia(t, nsOf["worker-1"], cidr) == addr })
		var pod podAddr
		framework.WaitFor(t, "the web pod on worker-4 Running", 60*time.Second, func() bool {
			for _, p := range podAddrs(t, conf, "-l", "app=web") {
				if p.Node == "worker-4" && p.Phase == "Running" && p.IP != "" {
					pod = p
					return true
				}
			}
			return false
		})
		url := fmt.Sprintf("http://%s:80/", pod.IP)
		framework.WaitFor(t, "worker-1 reaches "+url, 20*time.Second, func() bool { return httpFrom(nsOf["worker-1"], url) })
		labOK(t, dir, "remove-node", "worker-4")
		framework.WaitFor(t, "worker-1's route to "+cidr+" gone", 30*time.Second, func() bool { return routeVia(t, nsOf["worker-1"], cidr) == "" })
	})

	labOK(t, dir, "down")
	if left := traces.left(); len(left) > 0 {
		t.Fatalf("lab down left traces:\n%s", strings.Join(left, "\n"))
	}
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		for n, p := range cidrOf {
			if r.Dst != nil && r.Dst.String() == p.String() {
				t.Errorf("lab down left the host's route to %s's pod CIDR %s", n, p)
			}
		}
	}
}

// routeVia is the gateway of the route to cidr in the namespace, or "".
func routeVia(t *testing.T, nsPath, cidr string) string {
	t.Helper()
	gw := ""
	inNetns(t, nsPath, func(h *netlink.Handle, _ *nftables.Conn) {
		routes, err := h.RouteList(nil, netlink.FAMILY_V4)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range routes {
			if r.Dst != nil && r.Dst.String() == cidr && r.Gw != nil {
				gw = r.Gw.String()
			}
		}
	})
	return gw
}

// churnPods creates and deletes 50 pods on the node, ten at a time: live
// pods never share an address, and afterwards only keep's veth and
// hostPort rule remain on the node.
func churnPods(t *testing.T, conf, dir, nsPath string, keep podAddr) {
	const rounds, perRound = 5, 10
	var b strings.Builder
	for i := range perRound {
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: Pod\nmetadata: {name: churn-%d, labels: {app: churn}}\nspec:\n  nodeName: %s\n  containers:\n  - {name: c, image: nginx:1.25}\n", i, keep.Node)
	}
	file := filepath.Join(dir, "churn.yml")
	if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for round := range rounds {
		ok(t, conf, "apply", "-f", file)
		var pods []podAddr
		framework.WaitFor(t, fmt.Sprintf("round %d: %d churn pods Running", round, perRound), 60*time.Second, func() bool {
			pods = podAddrs(t, conf, "-l", "app=churn")
			running := 0
			for _, p := range pods {
				if p.Phase == "Running" && p.IP != "" {
					running++
				}
			}
			return running == perRound
		})
		live := map[string]string{keep.IP: keep.Name}
		for _, p := range pods {
			if other, dup := live[p.IP]; dup {
				t.Fatalf("round %d: %s and %s both have %s", round, p.Name, other, p.IP)
			}
			live[p.IP] = p.Name
			seen[p.IP]++
		}
		ok(t, conf, "delete", "-f", file)
		framework.WaitFor(t, fmt.Sprintf("round %d: churn pods gone", round), 60*time.Second, func() bool {
			return len(podAddrs(t, conf, "-l", "app=churn")) == 0
		})
	}
	framework.WaitFor(t, "the node back to one pod veth and one hostPort rule", 30*time.Second, func() bool {
		v, r := podLinks(t, nsPath)
		return v == 1 && r == 1
	})
	t.Logf("50 pods used %d distinct addresses", len(seen))
}
