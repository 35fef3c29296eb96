package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Status prints NODE ROLE ADDRESS PID STATE for every node and the registry.
func (l *Lab) Status() error {
	st, err := l.state()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(l.out, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "NODE\tROLE\tADDRESS\tPID\tSTATE")
	for _, n := range st.Nodes {
		pid := nodeProc(st.Dir, n.Name).pid()
		state := "stopped"
		if pid != 0 {
			state = "running"
		}
		if n.Partitioned {
			state += ",partitioned"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", n.Name, n.Role, n.Address, pidString(pid), state)
	}
	pid := registryProc(st.Dir).pid()
	state := "stopped"
	if pid != 0 {
		state = "running"
	}
	fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", "(registry)", "registry", st.RegistryAddr, pidString(pid), state)
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("print status: %w", err)
	}
	return nil
}

func pidString(pid int) string {
	if pid == 0 {
		return "-"
	}
	return strconv.Itoa(pid)
}

// node returns the named node of the lab, locked state and unlock func.
func (l *Lab) node(name string) (*State, *Node, func(), error) {
	unlock, err := l.lock()
	if err != nil {
		return nil, nil, nil, err
	}
	st, err := l.state()
	if err != nil {
		unlock()
		return nil, nil, nil, err
	}
	n := st.Node(name)
	if n == nil {
		unlock()
		return nil, nil, nil, fmt.Errorf("the lab has no node %q (see `corral lab status --dir %s`)", name, l.dir)
	}
	return st, n, unlock, nil
}

// Kill SIGKILLs a node's process (its containers keep running).
func (l *Lab) Kill(name string) error {
	st, n, unlock, err := l.node(name)
	if err != nil {
		return err
	}
	defer unlock()
	if !nodeProc(st.Dir, n.Name).kill() {
		fmt.Fprintf(l.out, "%s was not running.\n", n.Name)
		return nil
	}
	fmt.Fprintf(l.out, "%s killed (SIGKILL).\n", n.Name)
	return nil
}

// Start starts a stopped node's process again with the same flags and
// waits until the node is Ready (unless its link is cut).
func (l *Lab) Start(ctx context.Context, name string, timeout time.Duration) error {
	st, n, unlock, err := l.node(name)
	if err != nil {
		return err
	}
	defer unlock()
	started, err := l.startNode(st, n)
	if err != nil {
		return err
	}
	if !started {
		fmt.Fprintf(l.out, "%s is already running.\n", n.Name)
		return nil
	}
	if !n.Partitioned {
		if err := l.waitReady(ctx, st, []string{n.Name}, timeout); err != nil {
			return err
		}
	}
	fmt.Fprintf(l.out, "%s started (pid %d).\n", n.Name, nodeProc(st.Dir, n.Name).pid())
	return nil
}

// Partition cuts a node off: its veth's host side goes down.
func (l *Lab) Partition(name string) error {
	st, n, unlock, err := l.node(name)
	if err != nil {
		return err
	}
	defer unlock()
	if err := setLinkUp(l.names.hostVeth(n.Index), false); err != nil {
		return err
	}
	n.Partitioned = true
	if err := st.save(); err != nil {
		return err
	}
	fmt.Fprintf(l.out, "%s partitioned: its link %s is down (`corral lab heal --dir %s` restores it).\n", n.Name, l.names.hostVeth(n.Index), l.dir)
	return nil
}

// Heal sets every node's link up again.
func (l *Lab) Heal() error {
	unlock, err := l.lock()
	if err != nil {
		return err
	}
	defer unlock()
	st, err := l.state()
	if err != nil {
		return err
	}
	for _, n := range st.Nodes {
		if err := setLinkUp(l.names.hostVeth(n.Index), true); err != nil {
			return err
		}
		n.Partitioned = false
	}
	if err := st.save(); err != nil {
		return err
	}
	fmt.Fprintln(l.out, "Every node's link is up.")
	return nil
}

// nodeName is what a lab node may be called: a DNS label.
var nodeName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,40}[a-z0-9])?$`)

// AddNode adds an agent node with labels ("k=v,..."), starts it and waits
// until it is Ready.
func (l *Lab) AddNode(ctx context.Context, name, labels string, timeout time.Duration) error {
	if !nodeName.MatchString(name) {
		return fmt.Errorf("node name %q: want lowercase letters, digits and '-' (at most 42)", name)
	}
	unlock, err := l.lock()
	if err != nil {
		return err
	}
	defer unlock()
	st, err := l.state()
	if err != nil {
		return err
	}
	if st.Node(name) != nil || name == "registry" {
		return fmt.Errorf("the lab already has a node %q", name)
	}
	n, err := st.addAgent(name, labels)
	if err != nil {
		return err
	}
	if err := st.save(); err != nil {
		return err
	}
	if _, err := l.startNode(st, n); err != nil {
		return err
	}
	if err := l.waitReady(ctx, st, []string{name}, timeout); err != nil {
		return err
	}
	if err := l.routePods(ctx, st); err != nil {
		return err
	}
	fmt.Fprintf(l.out, "%s added at %s and Ready.\n", name, n.Address)
	return nil
}

// RemoveNode stops an agent node, removes its traces (containers, mounts,
// cgroups, namespace, link, data) and deletes its Node object.
func (l *Lab) RemoveNode(ctx context.Context, name string) error {
	st, n, unlock, err := l.node(name)
	if err != nil {
		return err
	}
	defer unlock()
	if n.Role != RoleAgent {
		return fmt.Errorf("%s is a server: remove-node removes agents (a lab keeps its servers until `lab down`)", name)
	}
	nodeProc(st.Dir, name).stop(10 * time.Second)
	killCgroups(cgroupLeaf(st.Bridge, name))
	if _, err := unmountUnder(filepath.Join(st.Dir, name)); err != nil {
		return err
	}
	if err := errors.Join(removeCgroups(cgroupLeaf(st.Bridge, name)), removePodNetns(st.Dir, name)); err != nil {
		return err
	}
	removeNodeNet(l.names, name, n.Index)
	if err := os.RemoveAll(filepath.Join(st.Dir, name)); err != nil {
		return fmt.Errorf("remove %s's data: %w", name, err)
	}
	for i, m := range st.Nodes {
		if m == n {
			st.Nodes = append(st.Nodes[:i], st.Nodes[i+1:]...)
			break
		}
	}
	if err := st.save(); err != nil {
		return err
	}
	if _, err := l.corral(ctx, st, "delete", "node", name); err != nil {
		return fmt.Errorf("node %s stopped and cleaned, but deleting its Node object failed: %w", name, err)
	}
	if err := l.routePods(ctx, st); err != nil {
		return err
	}
	fmt.Fprintf(l.out, "%s removed.\n", name)
	return nil
}

// Push loads a `docker save` tarball and serves it from the lab's registry
// under ref (as the nodes pull it: `image: REF`), also after a restart.
func (l *Lab) Push(ctx context.Context, tarPath, ref string) error {
	st, err := l.state()
	if err != nil {
		return err
	}
	if registryProc(st.Dir).pid() == 0 {
		return fmt.Errorf("the lab registry is not running (run `corral lab up --dir %s`)", st.Dir)
	}
	img, err := tarball.ImageFromPath(tarPath, nil)
	if err != nil {
		return fmt.Errorf("load image tarball %s: %w", tarPath, err)
	}
	digest, err := img.Digest()
	if err != nil {
		return fmt.Errorf("image tarball %s: %w", tarPath, err)
	}
	if err := pushTo(ctx, st.RegistryAddr, ref, img); err != nil {
		return err
	}
	if err := storePushed(st.Dir, tarPath, ref); err != nil {
		return err
	}
	p, _ := MirrorPath(ref)
	fmt.Fprintf(l.out, "Pushed %s (%s) to the lab registry as %s/%s; pods use it as image: %s\n", ref, digest, st.RegistryAddr, p, ref)
	return nil
}
