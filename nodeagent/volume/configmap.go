package volume

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	corralpb "github.com/corral-dev/corral/proto"
)

// defaultConfigMapMode is Kubernetes' configMap defaultMode (0644 = 420).
const defaultConfigMapMode = 0o644

// maxPathLen and maxSegmentLen bound a projected file's path, as kubelet's
// atomic writer does.
const (
	maxPathLen    = 4096
	maxSegmentLen = 255
)

// file is one projected file of a volume.
type file struct {
	data []byte
	mode fs.FileMode
}

// payload maps a relative path inside the volume to its file.
type payload map[string]file

// writeConfigMap projects the volume's ConfigMap into its directory with the
// atomic writer and reports whether anything changed. A missing ConfigMap is
// an error (the volume keeps its files) unless the volume is optional; an
// optional one gets an empty volume.
func (m *Manager) writeConfigMap(uid, ns string, v *corralpb.Volume, configMaps ConfigMapGetter) (bool, error) {
	src := v.GetConfigMap()
	var cm *corralpb.ConfigMap
	if configMaps != nil {
		if got, ok := configMaps(ns, src.GetName()); ok {
			cm = got
		}
	}
	if cm == nil && !src.GetOptional() {
		return false, errorf(ErrNotFound, "configmap %q not found", src.GetName())
	}
	p, err := configMapPayload(src, cm)
	if err != nil {
		return false, err
	}
	dir := m.volumeDir(uid, pluginConfigMap, v.GetName())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, fmt.Errorf("configmap volume: %w", err)
	}
	changed, err := writeAtomic(dir, p, m.now())
	if err != nil {
		return false, fmt.Errorf("write configmap %q: %w", src.GetName(), err)
	}
	return changed, nil
}

// configMapPayload computes the files of a configMap volume: every key of
// data and binaryData, or only the listed items (key → path, with their own
// mode). A missing item key is an error unless the volume is optional. cm
// may be nil (an optional, missing ConfigMap): the payload is empty.
func configMapPayload(src *corralpb.ConfigMapVolumeSource, cm *corralpb.ConfigMap) (payload, error) {
	p := payload{}
	if cm == nil {
		return p, nil
	}
	defMode := fs.FileMode(defaultConfigMapMode)
	if src.DefaultMode != nil {
		defMode = fs.FileMode(src.GetDefaultMode()) & fs.ModePerm
	}
	lookup := func(key string) ([]byte, bool) {
		if s, ok := cm.GetData()[key]; ok {
			return []byte(s), true
		}
		b, ok := cm.GetBinaryData()[key]
		return b, ok
	}
	if len(src.GetItems()) == 0 {
		for k := range cm.GetBinaryData() {
			if _, dup := cm.GetData()[k]; dup {
				return nil, errorf(ErrInvalid, "configmap %q has key %q in both data and binaryData", cm.GetMetadata().GetName(), k)
			}
		}
		for k, s := range cm.GetData() {
			p[k] = file{data: []byte(s), mode: defMode}
		}
		for k, b := range cm.GetBinaryData() {
			p[k] = file{data: b, mode: defMode}
		}
	} else {
		for _, it := range src.GetItems() {
			data, ok := lookup(it.GetKey())
			if !ok {
				if src.GetOptional() {
					continue
				}
				return nil, errorf(ErrNotFound, "configmap references non-existent config key: %s", it.GetKey())
			}
			mode := defMode
			if it.Mode != nil {
				mode = fs.FileMode(it.GetMode()) & fs.ModePerm
			}
			p[it.GetPath()] = file{data: data, mode: mode}
		}
	}
	if err := validatePayload(p); err != nil {
		return nil, err
	}
	return p, nil
}

// validatePayload checks every path (validatePath) and that no file is
// also a directory of another ("a" and "a/b").
func validatePayload(p payload) error {
	for rel := range p {
		if err := validatePath(rel); err != nil {
			return err
		}
		for dir := path.Dir(rel); dir != "."; dir = path.Dir(dir) {
			if _, clash := p[dir]; clash {
				return errorf(ErrInvalid, "invalid path %q: %q is also a file", rel, dir)
			}
		}
	}
	return nil
}

// validatePath accepts a relative, clean path without ".." elements that
// does not start with ".." (names of the writer's own entries).
func validatePath(rel string) error {
	switch {
	case rel == "":
		return errorf(ErrInvalid, "invalid path: must not be empty")
	case len(rel) > maxPathLen:
		return errorf(ErrInvalid, "invalid path %q: longer than %d", rel, maxPathLen)
	case path.IsAbs(rel):
		return errorf(ErrInvalid, "invalid path %q: must be relative", rel)
	case strings.HasPrefix(rel, ".."):
		return errorf(ErrInvalid, "invalid path %q: must not start with '..'", rel)
	case path.Clean(rel) != rel:
		return errorf(ErrInvalid, "invalid path %q: must be clean (%q)", rel, path.Clean(rel))
	}
	for _, seg := range strings.Split(rel, "/") {
		if seg == ".." {
			return errorf(ErrInvalid, "invalid path %q: must not contain '..'", rel)
		}
		if len(seg) > maxSegmentLen {
			return errorf(ErrInvalid, "invalid path %q: element longer than %d", rel, maxSegmentLen)
		}
	}
	return nil
}
