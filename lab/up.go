package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/corral-dev/corral/pki"
)

// UpOptions say what `lab up` makes.
type UpOptions struct {
	// Servers and Agents are the numbers of server and agent nodes.
	Servers int
	// Agents is the number of agent nodes.
	Agents int
	// NodeGracePeriod, when set, is the servers' node monitor grace period
	// (tests lower it to see partitioned nodes turn Unknown quickly).
	NodeGracePeriod time.Duration
	// Timeout bounds the wait for every node to be Ready.
	Timeout time.Duration
}

// Up brings the lab up: network, registry, servers, agents, admin.conf,
// and waits until every node is Ready. On a lab that runs already it says
// so; on one with stopped parts it starts them.
func (l *Lab) Up(ctx context.Context, o UpOptions) error {
	if o.Servers < 1 || o.Agents < 0 {
		return fmt.Errorf("a lab needs at least one server and no negative number of agents (got --servers %d --agents %d)", o.Servers, o.Agents)
	}
	if o.Timeout <= 0 {
		o.Timeout = 3 * time.Minute
	}
	unlock, err := l.lock()
	if err != nil {
		return err
	}
	defer unlock()
	start := time.Now()
	st, err := loadState(l.dir)
	if err != nil {
		return err
	}
	if st == nil {
		if st, err = l.newState(o); err != nil {
			return err
		}
		if err := st.save(); err != nil {
			return err
		}
	} else if l.allRunning(st) {
		fmt.Fprintf(l.out, "The lab in %s is already up (%d nodes); `corral lab status --dir %s` shows it.\n", st.Dir, len(st.Nodes), st.Dir)
		return nil
	} else if o.Servers != countRole(st, RoleServer) || o.Agents != countRole(st, RoleAgent) {
		fmt.Fprintf(l.out, "A lab exists in %s with %d servers and %d agents: starting what is stopped of it.\n",
			st.Dir, countRole(st, RoleServer), countRole(st, RoleAgent))
	}
	if err := l.bringUp(ctx, st, o.Timeout); err != nil {
		return err
	}
	l.printNext(st, time.Since(start))
	return nil
}

// bringUp starts whatever of st is not running and waits for readiness.
func (l *Lab) bringUp(ctx context.Context, st *State, timeout time.Duration) error {
	if err := ensureBridge(st); err != nil {
		return err
	}
	if err := writeRegistries(st); err != nil {
		return err
	}
	if err := writeBootstrapToken(st); err != nil {
		return err
	}
	if err := l.startRegistry(st); err != nil {
		return err
	}
	var servers, all []string
	for _, n := range st.Nodes {
		all = append(all, n.Name)
		if n.Role != RoleServer {
			continue
		}
		servers = append(servers, n.Name)
		if _, err := l.startNode(st, n); err != nil {
			return err
		}
	}
	fmt.Fprintf(l.out, "Starting %d servers (%s) on bridge %s, %s.0/24...\n", len(servers), strings.Join(servers, ", "), st.Bridge, st.Prefix)
	if err := l.waitClientFiles(ctx, st, timeout); err != nil {
		return err
	}
	if err := waitRegistry(ctx, st.Dir, timeout); err != nil {
		return err
	}
	for _, n := range st.Nodes {
		if n.Role == RoleAgent {
			if _, err := l.startNode(st, n); err != nil {
				return err
			}
		}
	}
	fmt.Fprintf(l.out, "Waiting for %d nodes to be Ready...\n", len(all))
	if err := l.waitReady(ctx, st, all, timeout); err != nil {
		return err
	}
	if err := l.copyAdminConf(st); err != nil {
		return err
	}
	return l.routePods(ctx, st)
}

// writeBootstrapToken writes the secret the lab's servers bootstrap their
// cluster with (their --token-file), once: a restarted server reads the
// same one.
func writeBootstrapToken(st *State) error {
	path := bootstrapTokenPath(st.Dir)
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	return writeAtomic(path, []byte(pki.NewSecret()+"\n"), 0o600)
}

func bootstrapTokenPath(dir string) string { return filepath.Join(dir, "bootstrap-token") }

// waitClientFiles waits for a server to write its admin.conf and token and
// copies them to DIR/admin.conf and DIR/token.
func (l *Lab) waitClientFiles(ctx context.Context, st *State, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if err := l.copyAdminConf(st); err == nil {
			return nil
		}
		for _, n := range st.Nodes {
			if n.Role == RoleServer && nodeProc(st.Dir, n.Name).pid() == 0 {
				return fmt.Errorf("server %s exited; see %s", n.Name, filepath.Join(st.Dir, n.Name, "log"))
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the servers wrote no admin.conf within %s; see %s/server-*/log", timeout, st.Dir)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// copyAdminConf copies the first running server's admin.conf (every
// server's address, reachable from the host over the bridge) and token.
func (l *Lab) copyAdminConf(st *State) error {
	for _, n := range st.Nodes {
		if n.Role != RoleServer {
			continue
		}
		conf, err1 := os.ReadFile(filepath.Join(st.Dir, n.Name, "admin.conf"))
		token, err2 := os.ReadFile(filepath.Join(st.Dir, n.Name, "token"))
		if err1 != nil || err2 != nil || len(conf) == 0 || len(token) == 0 {
			continue
		}
		if err := writeAtomic(l.adminConf(), conf, 0o600); err != nil {
			return err
		}
		return writeAtomic(filepath.Join(st.Dir, "token"), token, 0o600)
	}
	return errors.New("no server has written admin.conf yet")
}

func (l *Lab) allRunning(st *State) bool {
	if registryProc(st.Dir).pid() == 0 {
		return false
	}
	for _, n := range st.Nodes {
		if nodeProc(st.Dir, n.Name).pid() == 0 || !nodeNetReady(st, l.names, n) {
			return false
		}
	}
	return true
}

func countRole(st *State, r Role) int {
	c := 0
	for _, n := range st.Nodes {
		if n.Role == r {
			c++
		}
	}
	return c
}

// printNext tells the user what they got and what to type next.
func (l *Lab) printNext(st *State, took time.Duration) {
	w := l.out
	fmt.Fprintf(w, "\nLab up in %s: %d servers, %d agents on bridge %s (%s.0/24), image registry at %s.\n",
		took.Round(100*time.Millisecond), countRole(st, RoleServer), countRole(st, RoleAgent), st.Bridge, st.Prefix, st.RegistryAddr)
	if st.ClusterCIDR != "" {
		fmt.Fprintf(w, "Pods get addresses from %s; this host routes to them, so `curl POD-IP` works here too.\n", st.ClusterCIDR)
	}
	fmt.Fprintf(w, "\nNote: the images are STAND-INS. The lab's offline registry serves one small program of corral\n"+
		"(HTTP 200 on /, /health and /ready on ports 80, 8080 and 9100 — node-exporter's on 9100, kube-proxy's on\n"+
		"10249 and 10256, as they run with hostNetwork; it logs its argv, environment and mounts)\n"+
		"under each image name the tutorial uses: %s.\n", strings.Join(StandinImages, ", "))
	fmt.Fprintf(w, "Serve your own image with: corral lab push IMAGE.tar REF --dir %s\n", st.Dir)
	fmt.Fprintf(w, "\nNext:\n  export CORRAL_CONFIG=%s\n  corral get nodes\n  corral apply -f deploy/examples/daemonset-basic.yml\n  corral get pods -o wide\n", l.adminConf())
	fmt.Fprintf(w, "\nAlso: corral lab status|kill NODE|start NODE|partition NODE|heal|add-node NAME|remove-node NAME|down --dir %s\n", st.Dir)
}

// Down stops every process of the lab and removes every trace of it:
// containers (the processes in the nodes' cgroups), mounts under DIR,
// cgroup directories, network namespaces, veths, the bridge, and the data
// in DIR. It works from lab.json and from the names the directory implies,
// so it also cleans up after a lab that failed half-way up.
func (l *Lab) Down(ctx context.Context) error {
	unlock, err := l.lock()
	if err != nil {
		return err
	}
	defer unlock()
	nodes := l.knownNodes()
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func() { defer wg.Done(); nodeProc(l.dir, n).stop(10 * time.Second) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); registryProc(l.dir).stop(5 * time.Second) }()
	wg.Wait()
	killed := 0
	for _, n := range nodes {
		killed += killCgroups(cgroupLeaf(l.names.bridge(), n))
	}
	var errs []error
	unmounted, err := unmountUnder(l.dir)
	errs = append(errs, err)
	for _, n := range nodes {
		errs = append(errs, removeCgroups(cgroupLeaf(l.names.bridge(), n)), removePodNetns(l.dir, n))
	}
	errs = append(errs, removeLabLinks(l.names), l.removeFiles(nodes))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("lab down: %w", err)
	}
	fmt.Fprintf(l.out, "Lab in %s is down: %d nodes stopped, %d container processes killed, %d mounts removed; bridge %s and namespaces %s* deleted.\n",
		l.dir, len(nodes), killed, unmounted, l.names.bridge(), l.names.netnsPrefix())
	return nil
}

// knownNodes lists node names from lab.json and from DIR's node dirs.
func (l *Lab) knownNodes() []string {
	seen := map[string]bool{}
	var out []string
	if st, _ := loadState(l.dir); st != nil {
		for _, n := range st.Nodes {
			seen[n.Name] = true
			out = append(out, n.Name)
		}
	}
	entries, _ := os.ReadDir(l.dir)
	for _, e := range entries {
		if _, err := os.Stat(filepath.Join(l.dir, e.Name(), "pid")); err == nil && e.IsDir() && !seen[e.Name()] {
			out = append(out, e.Name())
		}
	}
	return out
}

// removeFiles removes what the lab wrote in DIR, then DIR if empty.
func (l *Lab) removeFiles(nodes []string) error {
	paths := []string{"admin.conf", "token", "bootstrap-token", "registries.yaml", "registry", "pushed", "registry.pid", "registry.log", "lab.json", "lab.json.tmp"}
	paths = append(paths, nodes...)
	var errs []error
	for _, p := range paths {
		if err := os.RemoveAll(filepath.Join(l.dir, p)); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", p, err))
		}
	}
	_ = os.Remove(filepath.Join(l.dir, "lab.lock"))
	_ = os.Remove(l.dir) // only if empty: the user's files stay
	return errors.Join(errs...)
}
