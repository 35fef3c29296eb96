package volume

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	corralpb "github.com/corral-dev/corral/proto"
)

// Propagation modes of the runtime.
const (
	propagationPrivate = "rprivate"
	propagationSlave   = "rslave"
	propagationShared  = "rshared"
)

// Mounts resolves the container's volumeMounts into bind mounts, in the
// order they are listed. The pod's volumes must have been Setup. configMap
// volumes are always read-only, as in Kubernetes. A subPath is resolved
// inside its volume (refusing ".." and symlinks that lead out), created as a
// directory when missing for emptyDir and hostPath volumes, and pinned (see
// the package documentation); Mounts is idempotent for an unchanged subPath.
func (m *Manager) Mounts(pod *corralpb.Pod, c *corralpb.Container) ([]Mount, error) {
	uid, err := podUID(pod)
	if err != nil {
		return nil, err
	}
	if err := checkName("container", c.GetName()); err != nil {
		return nil, err
	}
	volumes := map[string]*corralpb.Volume{}
	for _, v := range pod.GetSpec().GetVolumes() {
		volumes[v.GetName()] = v
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Mount, 0, len(c.GetVolumeMounts()))
	for i, vm := range c.GetVolumeMounts() {
		mnt, err := m.mount(uid, c, i, vm, volumes[vm.GetName()])
		if err != nil {
			return nil, fmt.Errorf("container %q volumeMount %q at %s: %w", c.GetName(), vm.GetName(), vm.GetMountPath(), err)
		}
		out = append(out, mnt)
	}
	return out, nil
}

func (m *Manager) mount(uid string, c *corralpb.Container, index int, vm *corralpb.VolumeMount, v *corralpb.Volume) (Mount, error) {
	if v == nil {
		return Mount{}, errorf(ErrNotFound, "no volume named %q in the pod", vm.GetName())
	}
	if err := checkName("volume", v.GetName()); err != nil {
		return Mount{}, err
	}
	if !path.IsAbs(vm.GetMountPath()) {
		return Mount{}, errorf(ErrInvalid, "mountPath %q is not absolute", vm.GetMountPath())
	}
	prop, err := propagation(vm.GetMountPropagation(), c.GetSecurityContext().GetPrivileged())
	if err != nil {
		return Mount{}, err
	}
	var root string
	var create bool
	switch {
	case v.GetHostPath() != nil:
		root, create = filepath.Clean(v.GetHostPath().GetPath()), true
	case v.GetEmptyDir() != nil:
		root, create = m.volumeDir(uid, pluginEmptyDir, v.GetName()), true
	case v.GetConfigMap() != nil:
		root = m.volumeDir(uid, pluginConfigMap, v.GetName())
	default:
		return Mount{}, errorf(ErrInvalid, "volume %q has no supported source", v.GetName())
	}
	if v.GetHostPath() == nil {
		if _, err := os.Stat(root); err != nil {
			return Mount{}, fmt.Errorf("%w: volume %q is not set up: %w", ErrNotFound, v.GetName(), err)
		}
	}
	src := root
	if sub := vm.GetSubPath(); sub != "" {
		pin := m.subPathPin(uid, v.GetName(), c.GetName(), index)
		if src, err = pinSubPath(root, sub, create, pin); err != nil {
			return Mount{}, err
		}
	}
	return Mount{
		Source:      src,
		Destination: vm.GetMountPath(),
		ReadOnly:    vm.GetReadOnly() || v.GetConfigMap() != nil,
		Propagation: prop,
	}, nil
}

// propagation maps Kubernetes' mountPropagation to the runtime's: None (or
// unset) → rprivate, HostToContainer → rslave, Bidirectional → rshared,
// which only privileged containers may use.
func propagation(mode string, privileged bool) (string, error) {
	switch mode {
	case "", "None":
		return propagationPrivate, nil
	case "HostToContainer":
		return propagationSlave, nil
	case "Bidirectional":
		if !privileged {
			return "", errorf(ErrInvalid, "Bidirectional mount propagation is available only to privileged containers")
		}
		return propagationShared, nil
	default:
		return "", errorf(ErrInvalid, "invalid mountPropagation %q: must be None, HostToContainer or Bidirectional", mode)
	}
}

// validateSubPath accepts a relative path without ".." elements.
func validateSubPath(sub string) error {
	if path.IsAbs(sub) {
		return errorf(ErrInvalid, "subPath %q must be a relative path", sub)
	}
	for _, seg := range strings.Split(sub, "/") {
		if seg == ".." {
			return errorf(ErrInvalid, "subPath %q must not contain '..'", sub)
		}
	}
	return nil
}

// pinSubPath resolves sub inside root (creating missing directories when
// create is set) and bind-mounts what it found onto pin, returning pin.
func pinSubPath(root, sub string, create bool, pin string) (string, error) {
	if err := validateSubPath(sub); err != nil {
		return "", err
	}
	rootFD, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("open volume root %s: %w", root, err)
	}
	defer unix.Close(rootFD)
	clean := path.Clean(sub)
	fd, err := openBeneath(rootFD, clean, unix.O_PATH)
	if errors.Is(err, unix.ENOENT) && create {
		if err := mkdirBeneath(rootFD, clean); err != nil {
			return "", subPathError(sub, root, err)
		}
		fd, err = openBeneath(rootFD, clean, unix.O_PATH)
	}
	if err != nil {
		return "", subPathError(sub, root, err)
	}
	defer unix.Close(fd)
	if err := bindPin(fd, pin); err != nil {
		return "", fmt.Errorf("subPath %q: %w", sub, err)
	}
	return pin, nil
}

// subPathError words a resolution failure.
func subPathError(sub, root string, err error) error {
	switch {
	case errors.Is(err, unix.EXDEV), errors.Is(err, unix.ELOOP):
		return fmt.Errorf("%w: subPath %q is not within volume path %s", ErrEscape, sub, root)
	case errors.Is(err, unix.ENOENT):
		return fmt.Errorf("%w: subPath %q does not exist in volume path %s", ErrNotFound, sub, root)
	default:
		return fmt.Errorf("resolve subPath %q in %s: %w", sub, root, err)
	}
}
