package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// containerMeta is the runtime's own record of a container, StateDir/meta/<id>.json,
// beside libcontainer's state: what libcontainer does not keep (pod, attempt, image,
// the process to exec with) and, once the container has ended, its final status.
type containerMeta struct {
	ID        string         `json:"id"`
	PodUID    string         `json:"podUID"`
	Name      string         `json:"name"`
	Attempt   int            `json:"attempt"`
	Image     string         `json:"image"`
	ImageID   string         `json:"imageID"`
	LogDir    string         `json:"logDir"`
	CreatedAt time.Time      `json:"createdAt"`
	Process   *specs.Process `json:"process"` // env, cwd, user, rlimits for Exec
	UsesInit  bool           `json:"usesInit"`

	StartedAt  time.Time `json:"startedAt,omitzero"`
	StartError string    `json:"startError,omitempty"`
	// InitExit is the init's exit code (128+signal when killed) as seen by the Runtime
	// that spawned it; the fallback when exit.json is missing.
	InitExit *int `json:"initExit,omitempty"`
	// Final is the status of the ended container, recorded the first time it is seen
	// ended, while its cgroup (the OOM counter) still exists.
	Final *finalStatus `json:"final,omitempty"`
}

type finalStatus struct {
	ExitCode   int       `json:"exitCode"`
	Reason     string    `json:"reason"`
	Message    string    `json:"message,omitempty"`
	StartedAt  time.Time `json:"startedAt,omitzero"`
	FinishedAt time.Time `json:"finishedAt"`
}

func (r *Runtime) metaPath(id string) string { return filepath.Join(r.metaDir(), id+".json") }

// loadMeta reads a container's metadata; the error wraps os.ErrNotExist when absent.
func (r *Runtime) loadMeta(id string) (*containerMeta, error) {
	var m containerMeta
	if err := readJSON(r.metaPath(id), &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// updateMeta applies fn to the stored metadata of id and writes it back. It returns
// os.ErrNotExist (wrapped) when the container was removed meanwhile.
func (r *Runtime) updateMeta(id string, fn func(*containerMeta)) error {
	r.metaMu.Lock()
	defer r.metaMu.Unlock()
	m, err := r.loadMeta(id)
	if err != nil {
		return err
	}
	fn(m)
	return writeJSON(r.metaPath(id), m)
}

// createMeta stores the metadata of a new container; it fails if id exists.
func (r *Runtime) createMeta(m *containerMeta) error {
	r.metaMu.Lock()
	defer r.metaMu.Unlock()
	if _, err := os.Stat(r.metaPath(m.ID)); err == nil {
		return fmt.Errorf("container %s: %w", m.ID, os.ErrExist)
	}
	return writeJSON(r.metaPath(m.ID), m)
}

func (r *Runtime) removeMeta(id string) error {
	r.metaMu.Lock()
	defer r.metaMu.Unlock()
	if err := os.Remove(r.metaPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove metadata of %s: %w", id, err)
	}
	return nil
}

// containerIDs lists every container the runtime knows: those with metadata and those
// libcontainer has state for (a creation interrupted before the metadata was written,
// or a removal interrupted after it was deleted).
func (r *Runtime) containerIDs() ([]string, error) {
	seen := map[string]bool{}
	var ids []string
	metas, err := os.ReadDir(r.metaDir())
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", r.metaDir(), err)
	}
	for _, e := range metas {
		if id, ok := strings.CutSuffix(e.Name(), ".json"); ok && !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	states, err := os.ReadDir(r.containersRoot())
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", r.containersRoot(), err)
	}
	for _, e := range states {
		if e.IsDir() && !seen[e.Name()] {
			seen[e.Name()] = true
			ids = append(ids, e.Name())
		}
	}
	return ids, nil
}

// containerIDsOfPod lists the containers of one pod.
func (r *Runtime) containerIDsOfPod(podUID string) ([]string, error) {
	ids, err := r.containerIDs()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, id := range ids {
		m, err := r.loadMeta(id)
		switch {
		case err == nil && m.PodUID == podUID:
			out = append(out, id)
		case err != nil && strings.HasPrefix(id, podUID+"-"):
			out = append(out, id) // no metadata: the ID's prefix is all there is
		}
	}
	return out, nil
}

// ContainerID is the ID of attempt of container name of pod podUID.
func ContainerID(podUID, name string, attempt int) string {
	return fmt.Sprintf("%s-%s-%d", podUID, name, attempt)
}
