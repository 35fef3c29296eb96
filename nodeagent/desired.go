package nodeagent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"google.golang.org/protobuf/proto"

	corralpb "github.com/corral-dev/corral/proto"
)

// Desired is the set of pods the node must run and the ConfigMaps they use,
// as the assignments stream last described it. It is kept on disk so that an
// agent that starts with no server reachable still knows its pods.
type Desired struct {
	mu         sync.Mutex
	path       string
	pods       map[string]*corralpb.Pod // namespace/name
	configMaps map[string]*corralpb.ConfigMap
	routes     map[string]*corralpb.NodeRoute // by node name
	version    string
	changed    chan struct{}
	// fromServers is set by the first message of an assignments stream
	// (Apply): the set no longer is only what was saved on disk.
	fromServers bool
}

// OpenDesired loads the set saved at path, if any.
func OpenDesired(path string) (*Desired, error) {
	d := &Desired{path: path, pods: map[string]*corralpb.Pod{}, configMaps: map[string]*corralpb.ConfigMap{},
		routes: map[string]*corralpb.NodeRoute{}, changed: make(chan struct{}, 1)}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return d, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read saved assignments: %w", err)
	}
	var msg corralpb.AssignmentsMessage
	if err := proto.Unmarshal(data, &msg); err != nil {
		return nil, fmt.Errorf("saved assignments %s are corrupt: %w", path, err)
	}
	d.apply(&msg)
	return d, nil
}

func podKey(ns, name string) string { return ns + "/" + name }

// Apply merges one assignments message: a complete message replaces the
// set, others change it. The result is saved before Apply returns.
func (d *Desired) Apply(msg *corralpb.AssignmentsMessage) error {
	d.mu.Lock()
	d.apply(msg)
	d.fromServers = true
	snapshot := d.snapshotLocked()
	d.mu.Unlock()
	select {
	case d.changed <- struct{}{}:
	default:
	}
	return d.save(snapshot)
}

func (d *Desired) apply(msg *corralpb.AssignmentsMessage) {
	if msg.GetComplete() {
		d.pods = map[string]*corralpb.Pod{}
		d.configMaps = map[string]*corralpb.ConfigMap{}
		d.routes = map[string]*corralpb.NodeRoute{}
	}
	for _, it := range msg.GetItems() {
		switch v := it.GetItem().(type) {
		case *corralpb.Assignment_Pod:
			m := v.Pod.GetMetadata()
			d.pods[podKey(m.GetNamespace(), m.GetName())] = v.Pod
		case *corralpb.Assignment_ConfigMap:
			m := v.ConfigMap.GetMetadata()
			d.configMaps[podKey(m.GetNamespace(), m.GetName())] = v.ConfigMap
		case *corralpb.Assignment_Route:
			d.routes[v.Route.GetNodeName()] = v.Route
		case *corralpb.Assignment_Removed:
			k := podKey(v.Removed.GetNamespace(), v.Removed.GetName())
			switch v.Removed.GetKind() {
			case "ConfigMap":
				delete(d.configMaps, k)
			case "Node":
				delete(d.routes, v.Removed.GetName())
			default:
				delete(d.pods, k)
			}
		}
	}
	if msg.GetResourceVersion() != "" {
		d.version = msg.GetResourceVersion()
	}
}

// snapshotLocked is the whole set as one complete message.
func (d *Desired) snapshotLocked() *corralpb.AssignmentsMessage {
	msg := &corralpb.AssignmentsMessage{Complete: true, ResourceVersion: d.version}
	for _, k := range sortedKeys(d.pods) {
		msg.Items = append(msg.Items, &corralpb.Assignment{Item: &corralpb.Assignment_Pod{Pod: d.pods[k]}})
	}
	for _, k := range sortedKeys(d.configMaps) {
		msg.Items = append(msg.Items, &corralpb.Assignment{Item: &corralpb.Assignment_ConfigMap{ConfigMap: d.configMaps[k]}})
	}
	for _, k := range sortedKeys(d.routes) {
		msg.Items = append(msg.Items, &corralpb.Assignment{Item: &corralpb.Assignment_Route{Route: d.routes[k]}})
	}
	return msg
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (d *Desired) save(msg *corralpb.AssignmentsMessage) error {
	data, err := proto.Marshal(msg)
	if err != nil {
		return fmt.Errorf("encode assignments: %w", err)
	}
	if err := writeFileAtomic(d.path, data); err != nil {
		return fmt.Errorf("save assignments: %w", err)
	}
	return nil
}

// writeFileAtomic replaces path with data through a synced temporary file
// and a rename: a reader, or a crash, sees the old content or the new.
func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Pods returns the desired pods by namespace/name. The pods are shared: do
// not mutate them.
func (d *Desired) Pods() map[string]*corralpb.Pod {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]*corralpb.Pod, len(d.pods))
	for k, v := range d.pods {
		out[k] = v
	}
	return out
}

// ConfigMap returns a ConfigMap one of the pods uses.
func (d *Desired) ConfigMap(namespace, name string) (*corralpb.ConfigMap, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	cm, ok := d.configMaps[podKey(namespace, name)]
	return cm, ok
}

// Routes returns every node's route, sorted by node name.
func (d *Desired) Routes() []*corralpb.NodeRoute {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]*corralpb.NodeRoute, 0, len(d.routes))
	for _, k := range sortedKeys(d.routes) {
		out = append(out, d.routes[k])
	}
	return out
}

// Changed is signalled after every Apply.
func (d *Desired) Changed() <-chan struct{} { return d.changed }

// FromServers reports whether a server's assignments have been applied
// (Pods, called after, includes them).
func (d *Desired) FromServers() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.fromServers
}
