package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/corral-dev/corral/api"
	"github.com/corral-dev/corral/events"
	"github.com/corral-dev/corral/nodeagent"
	"github.com/corral-dev/corral/nodeagent/image"
	"github.com/corral-dev/corral/nodeagent/network"
	"github.com/corral-dev/corral/nodeagent/runtime"
	"github.com/corral-dev/corral/nodeagent/volume"
	"github.com/corral-dev/corral/pki"
	corralpb "github.com/corral-dev/corral/proto"
)

// agentFlags are the node agent's settings, shared by `corral agent` and
// the agent embedded in `corral server`.
type agentFlags struct {
	name         string
	dataDir      string
	servers      string
	token        string
	tokenFile    string
	labels       string
	taints       string
	nodeIP       string
	registries   string
	agentPort    int
	cgroupParent string
	bridge       string
	// seccompDefault runs containers that name no seccomp profile under
	// RuntimeDefault (the kubelet's --seccomp-default).
	seccompDefault bool
}

func newAgentCmd() *cobra.Command {
	var f agentFlags
	var logLevel string
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run a corral node agent (runs the pods bound to this node)",
		Long: `Run a node agent: it registers this machine as a Node with the servers, runs
the pods bound to it with the embedded container runtime, and reports their
status. Needs root.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			level, err := parseLevel(logLevel)
			if err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runAgent(ctx, f, nil, log)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.name, "name", "", "node name (default: the hostname)")
	fl.StringVar(&f.dataDir, "data-dir", "/var/lib/corral-agent", "directory for images, pods and the saved assignments")
	fl.StringVar(&f.servers, "server", "", "comma-separated API addresses of the servers (required)")
	fl.StringVar(&f.token, "token", "", "the cluster's join token (corral token show), needed until this node has a certificate in DATA_DIR/tls")
	fl.StringVar(&f.tokenFile, "token-file", "", "file holding the join token (mode 0600)")
	fl.StringVar(&f.labels, "labels", "", "node labels k=v,... (win over labels set with the CLI for the same keys)")
	fl.StringVar(&f.taints, "taints", "", "node taints k=v:Effect,...")
	fl.StringVar(&f.nodeIP, "node-ip", "", "the node's InternalIP (default: the default route's address)")
	fl.IntVar(&f.agentPort, "agent-port", defaultAgentPort, "port of the agent API (logs, exec) on the node IP")
	fl.StringVar(&f.cgroupParent, "cgroup-parent", "", "cgroup under which the node's pods run (default /corral/NAME; agents sharing a machine need distinct ones)")
	fl.StringVar(&f.bridge, "bridge", defaultBridge, "the pod network's bridge on this node (also names its nftables table; agents sharing a network namespace need distinct ones)")
	fl.BoolVar(&f.seccompDefault, "seccomp-default", false, seccompDefaultHelp)
	fl.StringVar(&f.registries, "registries", "", "registry mirrors and credentials file (K3s registries.yaml format; default DATA_DIR/registries.yaml)")
	fl.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	return cmd
}

// parseLabels reads k=v,... as --labels gives them.
func parseLabels(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--labels %q: want key=value", kv)
		}
		out[k] = v
	}
	return out, nil
}

func parseTaints(s string) ([]*corralpb.Taint, error) {
	var out []*corralpb.Taint
	for _, t := range strings.Split(s, ",") {
		if t = strings.TrimSpace(t); t == "" {
			continue
		}
		taint, err := api.ParseTaint(t)
		if err != nil {
			return nil, fmt.Errorf("--taints %q: %w", t, err)
		}
		out = append(out, taint)
	}
	return out, nil
}

// runAgent wires the real runtime, image store, volumes and probes under an
// agent session and runs until ctx ends. extra labels and taints (the
// control plane's, for an agent embedded in a server) are added to the
// flags'.
func runAgent(ctx context.Context, f agentFlags, extraTaints []*corralpb.Taint, log *slog.Logger) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("the node agent runs containers and needs root (run a server with --no-agent to go without)")
	}
	if f.name == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("--name not given and no hostname: %w", err)
		}
		f.name = h
	}
	token, err := readToken(f)
	if err != nil {
		return err
	}
	labels, err := parseLabels(f.labels)
	if err != nil {
		return err
	}
	taints, err := parseTaints(f.taints)
	if err != nil {
		return err
	}
	taints = append(taints, extraTaints...)
	var servers []string
	for _, s := range strings.Split(f.servers, ",") {
		if s = strings.TrimSpace(s); s != "" {
			servers = append(servers, s)
		}
	}
	if len(servers) == 0 {
		return fmt.Errorf("--server is required")
	}
	if err := os.MkdirAll(f.dataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	certDir := pki.Dir(filepath.Join(f.dataDir, "tls"))
	creds, err := nodeagent.LoadOrCertify(ctx, certDir, f.name, servers, token, log.With("component", "certs"))
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped while no server answered
		}
		if token == "" && f.tokenFile != "" {
			return fmt.Errorf("%w (--token-file %s is missing or empty)", err, f.tokenFile)
		}
		return err
	}
	if f.cgroupParent == "" {
		f.cgroupParent = "/corral/" + f.name
	}
	n, err := newNode(ctx, f, log)
	if err != nil {
		return err
	}
	if f.nodeIP == "" {
		f.nodeIP = nodeagent.DefaultNodeIP()
	}
	podNet, err := newPodNet(ctx, f, log)
	if err != nil {
		return err
	}
	agent, err := nodeagent.New(nodeagent.Config{
		Name: f.name, DataDir: f.dataDir, Servers: servers, Credentials: creds, CertDir: certDir, Labels: labels, Taints: taints,
		NodeIP: f.nodeIP, AgentPort: f.agentPort, RuntimeVersion: n.rt.Version(), Network: podNet,
		Started: func() { releaseStartupText(log) }, Logger: log.With("component", "agent"),
	})
	if err != nil {
		return err
	}
	nodeAPI := corralpb.NewNodeAPIClient(agent.Conn())
	recorder := events.NewBuffer(events.NodeSender(nodeAPI, f.name), &corralpb.EventSource{Component: "kubelet", Host: f.name}, nil, log.With("component", "events"))
	go func() { _ = recorder.Run(ctx) }()
	probes := nodeagent.NewProbeRunner(n.rt, recorder)
	defer probes.Close()
	pods := nodeagent.NewPodManager(nodeagent.PodManagerConfig{
		NodeName: f.name, NodeIP: agent.NodeIP(), PodsDir: filepath.Join(f.dataDir, "pods"), Runtime: n.rt, Images: n.images,
		Volumes: n.volumes, Network: podNet, Probes: probes, Events: recorder, Reporter: agent.Reporter(), Logger: log.With("component", "pods"),
		SeccompDir: filepath.Join(f.dataDir, "seccomp"), SeccompDefault: f.seccompDefault,
	})
	probes.OnChange(pods.Poke)
	stopAPI, err := serveAgentAPI(net.JoinHostPort(agent.NodeIP(), strconv.Itoa(f.agentPort)), pods, creds, log)
	if err != nil {
		return err
	}
	defer stopAPI()
	go collectImages(ctx, n, log)
	log.Info("node agent starting", "node", f.name, "servers", strings.Join(servers, ","))
	err = agent.Run(ctx, pods)
	pods.Wait()
	return err
}

// releaseStartupText gives back the mappings of code that only start-up ran
// (see nodeagent.ReleaseStartupText).
func releaseStartupText(log *slog.Logger) {
	n, err := nodeagent.ReleaseStartupText()
	if err != nil {
		log.Warn("release start-up code", "err", err)
		return
	}
	log.Debug("released start-up code", "resident_kib", n>>10)
}

// seccompDefaultHelp describes --seccomp-default, of `agent` and `server`.
const seccompDefaultHelp = "run containers that name no securityContext.seccompProfile under RuntimeDefault instead of Unconfined " +
	"(Localhost profiles are read from DATA_DIR/seccomp)"

// defaultBridge is the pod network's bridge, as flannel's cni0.
const defaultBridge = "corral0"

// newPodNet is the node's built-in pod network (a bridge, host-gw routes
// to the other nodes), readied with the CIDRs saved at the last
// registration, if any.
func newPodNet(ctx context.Context, f agentFlags, log *slog.Logger) (*nodeagent.PodNet, error) {
	nodeIP, err := netip.ParseAddr(f.nodeIP)
	if err != nil || !nodeIP.Is4() {
		return nil, fmt.Errorf("--node-ip %q: the pod network needs the node's IPv4 address", f.nodeIP)
	}
	if len(f.bridge) == 0 || len(f.bridge) > 15 {
		return nil, fmt.Errorf("--bridge %q: a link name of 1 to 15 characters is required", f.bridge)
	}
	netLog := log.With("component", "network")
	return nodeagent.NewPodNet(ctx, filepath.Join(f.dataDir, "network.json"), func(cluster netip.Prefix) (network.Network, error) {
		return network.New(network.Config{StateDir: filepath.Join(f.dataDir, "network"), Bridge: f.bridge, Table: f.bridge,
			ClusterCIDR: cluster, NodeIP: nodeIP, Logger: netLog})
	}, netLog)
}

// defaultAgentPort is the agent API's port, the kubelet's.
const defaultAgentPort = 10250

// readToken returns the join token of --token-file, or else of --token; a
// token file that does not exist reads as no token (one is needed only
// until the node has a certificate).
func readToken(f agentFlags) (string, error) {
	if f.tokenFile == "" {
		return f.token, nil
	}
	if err := pki.CheckPrivate(f.tokenFile); err != nil {
		return "", err
	}
	b, err := os.ReadFile(f.tokenFile)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read token file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// serveAgentAPI serves logs and exec for the servers' proxies, over mutual
// TLS: it presents the node certificate, and only servers' certificates of
// the cluster may connect.
func serveAgentAPI(addr string, c nodeagent.Containers, creds *pki.Credentials, log *slog.Logger) (func(), error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for the agent API on %s: %w", addr, err)
	}
	g := grpc.NewServer(grpc.Creds(credentials.NewTLS(
		creds.ServerConfig(tls.RequireAndVerifyClientCert, pki.OnlyRole(pki.RoleServer), "h2"))))
	corralpb.RegisterAgentAPIServer(g, nodeagent.NewAgentAPI(c, log.With("component", "agent-api")))
	go func() { _ = g.Serve(lis) }()
	return g.Stop, nil
}

// collectImages removes unused images when the disk fills, as the kubelet
// does (above 85 % used, down to 80 %), every five minutes.
func collectImages(ctx context.Context, n *node, log *slog.Logger) {
	t := time.NewTicker(5 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cs, err := n.rt.ListContainers(ctx)
		if err != nil {
			continue
		}
		var inUse []string
		for _, c := range cs {
			inUse = append(inUse, c.ImageID)
		}
		if res, err := n.images.GC(ctx, inUse, 85, 80); err != nil {
			log.Warn("image garbage collection", "err", err)
		} else if len(res.Removed) > 0 {
			log.Info("removed unused images", "images", len(res.Removed), "bytes", res.Freed)
		}
	}
}

// node is the agent's machinery on this node.
type node struct {
	rt      *runtime.Runtime
	images  *image.Store
	volumes *volume.Manager
}

func newNode(ctx context.Context, f agentFlags, log *slog.Logger) (*node, error) {
	initBin, err := installInit(f.dataDir)
	if err != nil {
		return nil, err
	}
	rt, err := runtime.New(runtime.Config{
		StateDir: filepath.Join(f.dataDir, "run"), PodsDir: filepath.Join(f.dataDir, "pods"),
		CgroupParent: f.cgroupParent, InitBinary: initBin, Logger: log.With("component", "runtime"),
	})
	if err != nil {
		return nil, fmt.Errorf("container runtime: %w", err)
	}
	regPath := f.registries
	if regPath == "" {
		regPath = filepath.Join(f.dataDir, "registries.yaml")
	}
	regs, err := image.LoadRegistries(regPath)
	if err != nil {
		return nil, err
	}
	images, err := image.Open(image.Options{Root: filepath.Join(f.dataDir, "images", "store"), Registries: regs,
		MinimumGCAge: image.DefaultMinimumGCAge, Logger: log.With("component", "images")})
	if err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	if imported, err := images.ImportDir(ctx, filepath.Join(f.dataDir, "images")); err != nil {
		log.Warn("import image archives", "err", err)
	} else if len(imported) > 0 {
		log.Info("imported image archives", "images", len(imported))
	}
	volumes, err := volume.NewManager(filepath.Join(f.dataDir, "pods"))
	if err != nil {
		return nil, err
	}
	return &node{rt: rt, images: images, volumes: volumes}, nil
}

// installInit copies this (static) binary to DATA_DIR/bin/corral-init: the
// init of every container, bind-mounted read-only. A copy, so that
// replacing the corral binary never touches what running containers use.
func installInit(dataDir string) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find own binary: %w", err)
	}
	dst := filepath.Join(dataDir, "bin", "corral-init")
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", fmt.Errorf("install container init: %w", err)
	}
	if st, err := os.Stat(dst); err == nil {
		if me, err := os.Stat(self); err == nil && me.Size() == st.Size() && !me.ModTime().After(st.ModTime()) {
			return dst, nil
		}
	}
	in, err := os.Open(self)
	if err != nil {
		return "", fmt.Errorf("install container init: %w", err)
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return "", fmt.Errorf("install container init: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return "", fmt.Errorf("install container init: %w", err)
	}
	if err := out.Close(); err != nil {
		return "", fmt.Errorf("install container init: %w", err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return "", fmt.Errorf("install container init: %w", err)
	}
	return dst, nil
}
