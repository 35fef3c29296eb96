package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Options configure a Lab handle.
type Options struct {
	// Dir is the lab's directory (made absolute).
	Dir string
	// Binary is the corral binary the lab's processes run; empty means
	// this process's own executable.
	Binary string
	// Out receives what the user reads.
	Out io.Writer
	// Logger receives diagnostics.
	Logger *slog.Logger
}

// Lab operates the lab in one directory.
type Lab struct {
	dir   string
	names names
	bin   string
	out   io.Writer
	log   *slog.Logger
}

// Open returns a handle on the lab in opts.Dir; it need not exist yet.
func Open(opts Options) (*Lab, error) {
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("lab dir %q: %w", opts.Dir, err)
	}
	dir = filepath.Clean(dir)
	if dir == "/" {
		return nil, errors.New("lab dir must not be /")
	}
	bin := opts.Binary
	if bin == "" {
		if bin, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("find the corral binary: %w", err)
		}
	}
	out, logger := opts.Out, opts.Logger
	if out == nil {
		out = io.Discard
	}
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Lab{dir: dir, names: namesFor(dir), bin: bin, out: out, log: logger}, nil
}

// Dir is the lab's absolute directory.
func (l *Lab) Dir() string { return l.dir }

// lock takes the lab's lock (DIR/lab.lock) so that lab commands on one
// directory do not interleave; the returned func releases it.
func (l *Lab) lock() (func(), error) {
	if err := os.MkdirAll(l.dir, 0o700); err != nil {
		return nil, fmt.Errorf("create lab dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(l.dir, "lab.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lab lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("lock lab: %w", err)
	}
	return func() { _ = f.Close() }, nil
}

// state loads lab.json, failing when the lab was never brought up.
func (l *Lab) state() (*State, error) {
	st, err := loadState(l.dir)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return nil, fmt.Errorf("no lab in %s (run `corral lab up --dir %s`)", l.dir, l.dir)
	}
	return st, nil
}

// newState lays out a new lab: servers server-1..N and agents worker-1..M.
func (l *Lab) newState(o UpOptions) (*State, error) {
	prefix, err := choosePrefix(l.names)
	if err != nil {
		return nil, err
	}
	cluster, err := chooseClusterCIDR(l.names)
	if err != nil {
		return nil, err
	}
	st := &State{Dir: l.dir, Binary: l.bin, Bridge: l.names.bridge(), Prefix: prefix, ClusterCIDR: cluster,
		APIPort: apiPort, RaftPort: raftPort, RegistryAddr: fmt.Sprintf("%s.1:%d", prefix, registryPort)}
	for i := 1; i <= o.Servers; i++ {
		idx, addr := st.nextAddress()
		st.Nodes = append(st.Nodes, &Node{Name: "server-" + strconv.Itoa(i), Role: RoleServer, Index: idx, Address: addr})
	}
	for _, n := range st.Nodes {
		n.Args = l.serverArgs(st, n, o)
	}
	for i := 1; i <= o.Agents; i++ {
		if _, err := st.addAgent("worker-"+strconv.Itoa(i), ""); err != nil {
			return nil, err
		}
	}
	return st, nil
}

func (l *Lab) serverArgs(st *State, n *Node, o UpOptions) []string {
	args := []string{"server", "--name", n.Name, "--data-dir", filepath.Join(st.Dir, n.Name),
		"--api-addr", st.APIAddr(n), "--raft-addr", fmt.Sprintf("%s:%d", n.Address, st.RaftPort),
		"--bootstrap-expect", strconv.Itoa(o.Servers), "--node-ip", n.Address, "--cluster-cidr", st.ClusterCIDR,
		"--cgroup-parent", cgroupParent(st.Bridge, n.Name), "--token-file", bootstrapTokenPath(st.Dir)}
	var join []string
	for _, m := range st.Nodes {
		if m.Role == RoleServer && m != n {
			join = append(join, st.APIAddr(m))
		}
	}
	if len(join) > 0 {
		args = append(args, "--join", strings.Join(join, ","))
	}
	if o.NodeGracePeriod > 0 {
		args = append(args, "--node-monitor-grace-period", o.NodeGracePeriod.String())
	}
	return args
}

// addAgent adds an agent node called name with labels to the layout.
func (st *State) addAgent(name, labels string) (*Node, error) {
	var servers []string
	for _, m := range st.Nodes {
		if m.Role == RoleServer {
			servers = append(servers, st.APIAddr(m))
		}
	}
	idx, addr := st.nextAddress()
	if addr == "" {
		return nil, errors.New("the lab's address range is full")
	}
	n := &Node{Name: name, Role: RoleAgent, Index: idx, Address: addr}
	n.Args = []string{"agent", "--name", name, "--data-dir", filepath.Join(st.Dir, name),
		"--server", strings.Join(servers, ","), "--token-file", filepath.Join(st.Dir, "token"),
		"--node-ip", addr, "--registries", registriesPath(st.Dir), "--cgroup-parent", cgroupParent(st.Bridge, name)}
	if labels != "" {
		n.Args = append(n.Args, "--labels", labels)
	}
	st.Nodes = append(st.Nodes, n)
	return n, nil
}

func registriesPath(dir string) string { return filepath.Join(dir, "registries.yaml") }

// cgroupParent is a lab node's cgroup parent: named after the lab's bridge
// too, so that two labs' nodes of the same name never share cgroups.
func cgroupParent(bridge, node string) string { return "/corral/" + cgroupLeaf(bridge, node) }

func cgroupLeaf(bridge, node string) string { return bridge + "-" + node }

// writeRegistries points every registry ("*") at the lab's registry, for
// the agents and for the servers' embedded agents (DIR/<server>/agent).
func writeRegistries(st *State) error {
	data := []byte(fmt.Sprintf("# corral lab: every registry is mirrored to the lab's offline registry.\nmirrors:\n  \"*\":\n    endpoint: [\"http://%s\"]\n", st.RegistryAddr))
	paths := []string{registriesPath(st.Dir)}
	for _, n := range st.Nodes {
		if n.Role == RoleServer {
			paths = append(paths, filepath.Join(st.Dir, n.Name, "agent", "registries.yaml"))
		}
	}
	for _, p := range paths {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return fmt.Errorf("create %s: %w", filepath.Dir(p), err)
		}
		if err := writeAtomic(p, data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// startNode starts n's process in its namespace unless it runs already.
func (l *Lab) startNode(st *State, n *Node) (bool, error) {
	p := nodeProc(st.Dir, n.Name)
	if p.pid() != 0 {
		return false, nil
	}
	if !nodeNetReady(st, l.names, n) {
		if err := createNodeNet(st, l.names, n); err != nil {
			return false, err
		}
	}
	pid, err := p.start(st.Binary, n.Args, filepath.Join(st.Dir, n.Name, "log"), netnsPath(l.names.netns(n.Name)))
	if err != nil {
		return false, fmt.Errorf("node %s: %w", n.Name, err)
	}
	l.log.Debug("started node", "node", n.Name, "pid", pid)
	return true, nil
}

// startRegistry starts the registry process unless it runs already.
func (l *Lab) startRegistry(st *State) error {
	p := registryProc(st.Dir)
	if p.pid() != 0 {
		return nil
	}
	args := []string{"lab", "registry", "--dir", st.Dir, "--addr", st.RegistryAddr}
	if _, err := p.start(st.Binary, args, filepath.Join(st.Dir, "registry.log"), ""); err != nil {
		return fmt.Errorf("lab registry: %w", err)
	}
	return nil
}

// adminConf is DIR/admin.conf, the CLI config of the lab.
func (l *Lab) adminConf() string { return filepath.Join(l.dir, "admin.conf") }

// corral runs the CLI of the lab's binary against the lab.
func (l *Lab) corral(ctx context.Context, st *State, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, st.Binary, append([]string{"--config", l.adminConf()}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return out, fmt.Errorf("corral %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(ee.Stderr)))
		}
		return out, fmt.Errorf("corral %s: %w", strings.Join(args, " "), err)
	}
	return out, nil
}

// labNode is what the lab reads of a registered node.
type labNode struct {
	Name, Ready, PodCIDR, InternalIP string
}

// nodes lists the registered nodes.
func (l *Lab) nodes(ctx context.Context, st *State) ([]labNode, error) {
	out, err := l.corral(ctx, st, "get", "nodes", "-o", "json")
	if err != nil {
		return nil, err
	}
	var list struct {
		Items []struct {
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
			Spec struct {
				PodCIDR string `json:"podCIDR"`
			} `json:"spec"`
			Status struct {
				Conditions []struct {
					Type   string `json:"type"`
					Status string `json:"status"`
				} `json:"conditions"`
				Addresses []struct {
					Type    string `json:"type"`
					Address string `json:"address"`
				} `json:"addresses"`
			} `json:"status"`
		} `json:"items"`
	}
	if err := json.Unmarshal(out, &list); err != nil {
		return nil, fmt.Errorf("parse node list: %w", err)
	}
	var nodes []labNode
	for _, it := range list.Items {
		n := labNode{Name: it.Metadata.Name, Ready: "Unknown", PodCIDR: it.Spec.PodCIDR}
		for _, c := range it.Status.Conditions {
			if c.Type == "Ready" {
				n.Ready = c.Status
			}
		}
		for _, a := range it.Status.Addresses {
			if a.Type == "InternalIP" && n.InternalIP == "" {
				n.InternalIP = a.Address
			}
		}
		nodes = append(nodes, n)
	}
	return nodes, nil
}

// readyNodes returns each registered node's Ready condition status.
func (l *Lab) readyNodes(ctx context.Context, st *State) (map[string]string, error) {
	nodes, err := l.nodes(ctx, st)
	if err != nil {
		return nil, err
	}
	ready := map[string]string{}
	for _, n := range nodes {
		ready[n.Name] = n.Ready
	}
	return ready, nil
}

// waitReady waits until every named node is Ready.
func (l *Lab) waitReady(ctx context.Context, st *State, nodes []string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ready, err := l.readyNodes(ctx, st)
		var missing []string
		for _, n := range nodes {
			if ready[n] != "True" {
				missing = append(missing, n)
			}
		}
		if err == nil && len(missing) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("nodes not ready after %s: %w", timeout, err)
			}
			return fmt.Errorf("nodes not ready after %s: %s (logs in %s/<node>/log)", timeout, strings.Join(missing, ", "), st.Dir)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}
