package runtime

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	goruntime "runtime/debug"
	"strings"
	"sync"

	// The device cgroup manager registers itself here; without it libcontainer fails
	// with "cgroup manager is not configured to set device rules".
	_ "github.com/opencontainers/cgroups/devices"
	"github.com/opencontainers/runc/libcontainer"
	// nsenter's cgo constructor joins the namespaces when this binary is re-executed
	// as a container's bootstrap ("<binary> init").
	_ "github.com/opencontainers/runc/libcontainer/nsenter"
)

// Config is what New needs. Every field but Logger is required, except InitBinary (see below).
type Config struct {
	// StateDir holds libcontainer's state (StateDir/containers), the runtime's container
	// metadata (StateDir/meta) and the sandboxes (StateDir/sandboxes), e.g. DATA_DIR/run.
	StateDir string
	// PodsDir holds per-pod host directories: PodsDir/<podUID>/containers/<name>/<attempt>/
	// gets the container's logs and exit.json (e.g. DATA_DIR/pods).
	PodsDir string
	// CgroupParent is this node's cgroup, e.g. "/corral/<node>": one per agent so that
	// several agents can share a machine.
	CgroupParent string
	// InitBinary is the host path of the static container init (DATA_DIR/bin/corral-init),
	// bind-mounted read-only at /.corral/init in every container. Empty runs the
	// container's command directly as its PID 1: then exit codes are known only to the
	// Runtime that started the container (tests, debugging).
	InitBinary string
	// Logger receives lifecycle transitions (Info) and details (Debug); nil discards.
	Logger *slog.Logger
}

// Runtime runs pods' sandboxes and containers on this node. Its state is on disk, so a
// Runtime made by New in a restarted agent sees (re-adopts) everything that runs.
// Its methods are safe for concurrent use.
type Runtime struct {
	cfg      Config
	log      *slog.Logger
	nsPrefix string // network namespace name prefix, unique per StateDir
	host     hostLimits

	metaMu sync.Mutex // serialises metadata read-modify-write
	sbMu   sync.Mutex // serialises sandbox creation and removal

	reapMu  sync.Mutex
	reapers map[string]chan struct{} // closed once the init's exit code is recorded
}

// New checks cfg, creates the state directories and returns the runtime.
func New(cfg Config) (*Runtime, error) {
	for name, p := range map[string]string{"StateDir": cfg.StateDir, "PodsDir": cfg.PodsDir, "CgroupParent": cfg.CgroupParent} {
		if !filepath.IsAbs(p) {
			return nil, fmt.Errorf("runtime config: %s %q must be an absolute path: %w", name, p, ErrInvalid)
		}
	}
	if cfg.InitBinary != "" {
		if _, err := os.Stat(cfg.InitBinary); err != nil {
			return nil, fmt.Errorf("runtime config: init binary: %w", err)
		}
	}
	r := &Runtime{cfg: cfg, log: cfg.Logger, reapers: map[string]chan struct{}{}}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	host, err := readHostLimits()
	if err != nil {
		return nil, fmt.Errorf("runtime: %w", err)
	}
	r.host = host
	sum := sha256.Sum256([]byte(filepath.Clean(cfg.StateDir)))
	r.nsPrefix = "corral-" + hex.EncodeToString(sum[:4]) + "-"
	for _, d := range []string{r.containersRoot(), r.metaDir(), r.sandboxesDir(), cfg.PodsDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("runtime: create %s: %w", d, err)
		}
	}
	return r, nil
}

// Init runs libcontainer's container bootstrap and never returns. The binary that
// embeds the runtime must call it first thing in main when os.Args[1] == "init":
// libcontainer starts every container by re-executing /proc/self/exe init.
func Init() {
	libcontainer.Init()
}

// Version is the runtime name and version reported in Node status,
// "corral-runc://<runc version>".
func (r *Runtime) Version() string {
	return "corral-runc://" + runcVersion()
}

// pinnedRunc is the runc version go.mod pins (a test keeps them equal); the build
// information, when the binary carries it, has the last word.
const pinnedRunc = "1.5.3"

func runcVersion() string {
	if bi, ok := goruntime.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/opencontainers/runc" && d.Version != "" {
				return strings.TrimPrefix(d.Version, "v")
			}
		}
	}
	return pinnedRunc
}

func (r *Runtime) containersRoot() string { return filepath.Join(r.cfg.StateDir, "containers") }
func (r *Runtime) metaDir() string        { return filepath.Join(r.cfg.StateDir, "meta") }
func (r *Runtime) sandboxesDir() string   { return filepath.Join(r.cfg.StateDir, "sandboxes") }
func (r *Runtime) sandboxDir(podUID string) string {
	return filepath.Join(r.sandboxesDir(), podUID)
}

// attemptDir is the host directory of one container attempt: logs and exit.json.
func (r *Runtime) attemptDir(podUID, name string, attempt int) string {
	return filepath.Join(r.cfg.PodsDir, podUID, "containers", name, fmt.Sprint(attempt))
}

// writeJSON writes v to path atomically (temporary file and rename).
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}

// validName reports whether s can be part of a container ID and a file name:
// libcontainer accepts letters, digits, "_", "+", "-" and ".".
func validName(s string) bool {
	if s == "" || s == "." || s == ".." || len(s) > 200 {
		return false
	}
	for _, c := range s {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '_' || c == '+' || c == '-' || c == '.'
		if !ok {
			return false
		}
	}
	return true
}
