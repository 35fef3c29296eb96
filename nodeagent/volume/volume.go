package volume

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	corralpb "github.com/corral-dev/corral/proto"
)

// Sentinel errors; the errors this package returns wrap one of them.
var (
	// ErrNotFound: a ConfigMap, a key of it, a volume or a subPath is missing.
	ErrNotFound = errors.New("not found")
	// ErrHostPathType: a hostPath failed its type check.
	ErrHostPathType = errors.New("hostPath type check failed")
	// ErrInvalid: a path, name, medium or propagation mode is not acceptable.
	ErrInvalid = errors.New("invalid volume request")
	// ErrEscape: a subPath resolves outside its volume.
	ErrEscape = errors.New("path escapes the volume")
)

// worded is an error whose text is fixed (kubelet's wording) and which
// matches a sentinel with errors.Is.
type worded struct {
	msg      string
	sentinel error
}

func (e *worded) Error() string { return e.msg }
func (e *worded) Unwrap() error { return e.sentinel }

func errorf(sentinel error, format string, args ...any) error {
	return &worded{msg: fmt.Sprintf(format, args...), sentinel: sentinel}
}

// SetupError reports a volume that could not be prepared. Its text is
// kubelet's FailedMount event message:
// `MountVolume.SetUp failed for volume "logs" : hostPath type check failed: /var/log/x is not a directory`.
type SetupError struct {
	// Volume is the volume's name in the pod.
	Volume string
	// Err is the cause.
	Err error
}

// Error returns kubelet's FailedMount message.
func (e *SetupError) Error() string {
	return fmt.Sprintf("MountVolume.SetUp failed for volume %q : %v", e.Volume, e.Err)
}

// Unwrap returns the cause.
func (e *SetupError) Unwrap() error { return e.Err }

// Mount is one bind mount for a container, in the runtime's terms.
type Mount struct {
	// Source is the host path to bind-mount.
	Source string
	// Destination is the absolute path inside the container.
	Destination string
	// ReadOnly mounts it read-only (always for configMap volumes, as kubelet).
	ReadOnly bool
	// Propagation is "rprivate", "rslave" or "rshared".
	Propagation string
}

// ConfigMapGetter returns a ConfigMap of the pod's namespace by name, and
// whether it exists. The Manager never mutates what it returns.
type ConfigMapGetter func(namespace, name string) (*corralpb.ConfigMap, bool)

// Manager prepares and removes pods' volumes under one pods directory.
// It is safe for concurrent use.
type Manager struct {
	podsDir string
	now     func() time.Time
	mu      sync.Mutex // serialises disk changes; volume operations are short
}

// NewManager returns a Manager over podsDir (DATA_DIR/pods), creating it.
func NewManager(podsDir string) (*Manager, error) {
	if !filepath.IsAbs(podsDir) {
		return nil, fmt.Errorf("volume manager: pods dir %q is not absolute: %w", podsDir, ErrInvalid)
	}
	if err := os.MkdirAll(podsDir, 0o750); err != nil {
		return nil, fmt.Errorf("volume manager: %w", err)
	}
	return &Manager{podsDir: filepath.Clean(podsDir), now: time.Now}, nil
}

// Setup prepares every volume of pod: hostPath type checks (creating what
// the *OrCreate types ask for), emptyDir directories and tmpfs mounts, and
// configMap files. It is idempotent. A volume that fails does not stop the
// others; the result joins one *SetupError per failed volume.
func (m *Manager) Setup(ctx context.Context, pod *corralpb.Pod, configMaps ConfigMapGetter) error {
	uid, err := podUID(pod)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	for _, v := range pod.GetSpec().GetVolumes() {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("set up volumes of pod %s: %w", uid, err)
		}
		if err := m.setupVolume(uid, pod.GetMetadata().GetNamespace(), v, configMaps); err != nil {
			errs = append(errs, &SetupError{Volume: v.GetName(), Err: err})
		}
	}
	return errors.Join(errs...)
}

func (m *Manager) setupVolume(uid, ns string, v *corralpb.Volume, configMaps ConfigMapGetter) error {
	if err := checkName("volume", v.GetName()); err != nil {
		return err
	}
	switch {
	case v.GetHostPath() != nil:
		return checkHostPath(v.GetHostPath())
	case v.GetEmptyDir() != nil:
		return m.setupEmptyDir(m.volumeDir(uid, pluginEmptyDir, v.GetName()), v.GetEmptyDir())
	case v.GetConfigMap() != nil:
		_, err := m.writeConfigMap(uid, ns, v, configMaps)
		return err
	default:
		return errorf(ErrInvalid, "volume %q has no supported source (hostPath, emptyDir, configMap)", v.GetName())
	}
}

// Update rewrites the pod's configMap volumes whose ConfigMap changed. A
// container sees each volume switch from the old set of files to the new one
// at once. A ConfigMap that is gone leaves the volume as it was (an error
// unless optional; an optional one is emptied), as kubelet does.
func (m *Manager) Update(ctx context.Context, pod *corralpb.Pod, configMaps ConfigMapGetter) error {
	uid, err := podUID(pod)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	for _, v := range pod.GetSpec().GetVolumes() {
		if v.GetConfigMap() == nil {
			continue
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("update volumes of pod %s: %w", uid, err)
		}
		if err := checkName("volume", v.GetName()); err != nil {
			errs = append(errs, &SetupError{Volume: v.GetName(), Err: err})
			continue
		}
		if _, err := m.writeConfigMap(uid, pod.GetMetadata().GetNamespace(), v, configMaps); err != nil {
			errs = append(errs, &SetupError{Volume: v.GetName(), Err: err})
		}
	}
	return errors.Join(errs...)
}

// TearDown unmounts everything the Manager mounted for the pod (tmpfs
// emptyDirs, subPath pins) and removes the pod's volume directories. It
// removes nothing while anything below the pod's directory is still mounted,
// so it never deletes through a bind mount into a hostPath. The pod's
// directory itself goes too when nothing else (logs) is left in it.
func (m *Manager) TearDown(ctx context.Context, podUID string) error {
	if err := checkName("pod uid", podUID); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("tear down volumes of pod %s: %w", podUID, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	dir := m.podDir(podUID)
	if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := unmountBelow(dir); err != nil {
		return fmt.Errorf("tear down volumes of pod %s: %w", podUID, err)
	}
	for _, sub := range []string{"volumes", "volume-subpaths"} {
		if err := os.RemoveAll(filepath.Join(dir, sub)); err != nil {
			return fmt.Errorf("tear down volumes of pod %s: %w", podUID, err)
		}
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) && !isNotEmpty(err) {
		return fmt.Errorf("tear down volumes of pod %s: %w", podUID, err)
	}
	return nil
}

// Plugin directory names under <pod>/volumes.
const (
	pluginEmptyDir  = "empty-dir"
	pluginConfigMap = "configmap"
)

func (m *Manager) podDir(uid string) string { return filepath.Join(m.podsDir, uid) }

func (m *Manager) volumeDir(uid, plugin, name string) string {
	return filepath.Join(m.podsDir, uid, "volumes", plugin, name)
}

func (m *Manager) subPathPin(uid, volume, container string, index int) string {
	return filepath.Join(m.podsDir, uid, "volume-subpaths", volume, container, fmt.Sprint(index))
}

func podUID(pod *corralpb.Pod) (string, error) {
	uid := pod.GetMetadata().GetUid()
	if err := checkName("pod uid", uid); err != nil {
		return "", err
	}
	return uid, nil
}

// checkName refuses names that cannot be one path component.
func checkName(what, name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return errorf(ErrInvalid, "invalid %s %q", what, name)
	}
	return nil
}
