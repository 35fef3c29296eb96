package state

import (
	"fmt"

	"github.com/hashicorp/go-memdb"

	corralpb "github.com/corral-dev/corral/proto"
)

// Reads. Every query runs in its own read transaction, so it sees one
// committed state. Returned objects are shared with the store: callers must
// not mutate them (clone first). ws may be nil; otherwise the query adds the
// channels that fire when what it read changes (Nomad's blocking-query
// pattern: run the query, then ws.WatchCtx(ctx), then run it again). As
// with any memdb watch, a channel may also fire without a visible change
// (a neighbouring key changed, or a failed batch touched and restored the
// row), so the query must be re-run to see what changed.

// Get returns the object kind/namespace/name, or nil, nil when it does not
// exist. Cluster-scoped kinds take an empty namespace.
func (s *Store) Get(ws memdb.WatchSet, kind, namespace, name string) (*corralpb.Object, error) {
	k, err := kindTable(kind)
	if err != nil {
		return nil, err
	}
	ch, raw, err := s.db.Txn(false).FirstWatch(k.name, indexID, namespace, name)
	if err != nil {
		return nil, fmt.Errorf("get %s %s/%s: %w", kind, namespace, name, err)
	}
	ws.Add(ch)
	if raw == nil {
		return nil, nil
	}
	return raw.(*corralpb.Object), nil
}

// List returns the objects of kind in namespace ("" for every namespace),
// sorted by namespace, then name. The namespace is ignored for
// cluster-scoped kinds, as kubectl does.
func (s *Store) List(ws memdb.WatchSet, kind, namespace string) ([]*corralpb.Object, error) {
	k, err := kindTable(kind)
	if err != nil {
		return nil, err
	}
	txn := s.db.Txn(false)
	var it memdb.ResultIterator
	if namespace == "" || !k.namespaced {
		it, err = txn.Get(k.name, indexID)
	} else {
		it, err = txn.Get(k.name, indexNamespace, namespace)
	}
	if err != nil {
		return nil, fmt.Errorf("list %s in %q: %w", kind, namespace, err)
	}
	return collect(ws, it, nil), nil
}

// PodsByNode returns the pods whose spec.nodeName is node, sorted by
// namespace, then name. Pods not bound to a node are never returned.
func (s *Store) PodsByNode(ws memdb.WatchSet, node string) ([]*corralpb.Object, error) {
	pods, err := s.related(ws, relNode, node)
	if err != nil {
		return nil, fmt.Errorf("list pods on node %s: %w", node, err)
	}
	return pods, nil
}

// ByOwner returns every object, of any kind, with an ownerReference whose
// uid is ownerUID: kind by kind in the Object oneof's order, each kind
// sorted by namespace, then name.
func (s *Store) ByOwner(ws memdb.WatchSet, ownerUID string) ([]*corralpb.Object, error) {
	objs, err := s.related(ws, relOwner, ownerUID)
	if err != nil {
		return nil, fmt.Errorf("list objects owned by %s: %w", ownerUID, err)
	}
	return objs, nil
}

// Members returns the cluster's members sorted by name.
func (s *Store) Members(ws memdb.WatchSet) ([]*corralpb.Member, error) {
	it, err := s.db.Txn(false).Get(tableMembers, indexID)
	if err != nil {
		return nil, fmt.Errorf("list members: %w", err)
	}
	ws.Add(it.WatchCh())
	var out []*corralpb.Member
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*corralpb.Member))
	}
	return out, nil
}

// Identity returns the key binding of a name ("node:NAME", "server:NAME"),
// or nil.
func (s *Store) Identity(name string) (*corralpb.Identity, error) {
	raw, err := s.db.Txn(false).First(tableIdentities, indexID, name)
	if err != nil {
		return nil, fmt.Errorf("get identity %s: %w", name, err)
	}
	if raw == nil {
		return nil, nil
	}
	return raw.(*corralpb.Identity), nil
}

// Identities returns every name-to-key binding, sorted by name.
func (s *Store) Identities() ([]*corralpb.Identity, error) {
	it, err := s.db.Txn(false).Get(tableIdentities, indexID)
	if err != nil {
		return nil, fmt.Errorf("list identities: %w", err)
	}
	var out []*corralpb.Identity
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*corralpb.Identity))
	}
	return out, nil
}

// ClusterConfig returns the cluster config, or nil, nil before bootstrap.
func (s *Store) ClusterConfig(ws memdb.WatchSet) (*corralpb.ClusterConfig, error) {
	ch, raw, err := s.db.Txn(false).FirstWatch(tableMeta, indexID, metaKeyConfig)
	if err != nil {
		return nil, fmt.Errorf("get cluster config: %w", err)
	}
	ws.Add(ch)
	if raw == nil {
		return nil, nil
	}
	return raw.(*corralpb.ClusterConfig), nil
}

// collect appends the iterator's objects to out and adds its watch channel
// to ws.
func collect(ws memdb.WatchSet, it memdb.ResultIterator, out []*corralpb.Object) []*corralpb.Object {
	ws.Add(it.WatchCh())
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*corralpb.Object))
	}
	return out
}

// NodeByPodCIDR returns the node whose spec.podCIDR is cidr, or nil.
func (s *Store) NodeByPodCIDR(ws memdb.WatchSet, cidr string) (*corralpb.Object, error) {
	ch, raw, err := s.db.Txn(false).FirstWatch(kindNode.name, indexPodCIDR, cidr)
	if err != nil {
		return nil, fmt.Errorf("look up node with pod CIDR %s: %w", cidr, err)
	}
	ws.Add(ch)
	return asObject(raw), nil
}
