package state

import (
	"fmt"

	"github.com/hashicorp/go-memdb"

	corralpb "github.com/corral-dev/corral/proto"
)

// The links table holds the store's secondary indexes that point at
// objects by name rather than by row: a pod's node, an object's owners. A
// memdb index holds the row itself, so every new version of an object is
// inserted into every index of its table again, even when its key there
// did not change. Status reports, most of the writes of a fleet, change
// neither a pod's node nor its owners: with these relations in a table of
// their own, a report inserts the pod into its id index alone, where it
// used to insert it three times (on each server).
const tableLinks = "links"

// Relations a link records.
const (
	relNode  = "node"  // a pod's spec.nodeName
	relOwner = "owner" // each distinct metadata.ownerReferences[].uid
)

// link is a row of the links table: the object kind/ns/name has value for
// rel. Its key is rel NUL value NUL, the kind's ordinal byte, ns NUL name
// NUL, so a prefix scan of (rel, value) walks the related objects kind by
// kind in the kinds' order, each kind by namespace, then name.
type link struct {
	key      []byte
	kind     *kindInfo
	ns, name string
}

func newLink(rel, value string, k *kindInfo, ns, name string) *link {
	key := terminated(rel, value)
	key = append(key, byte(k.ordinal))
	key = append(key, ns...)
	key = append(key, 0)
	key = append(key, name...)
	key = append(key, 0)
	return &link{key: key, kind: k, ns: ns, name: name}
}

// relation is one (rel, value) pair of an object.
type relation struct{ rel, value string }

// relationsOf lists o's relations: its distinct owner uids, and for a pod
// bound to a node, that node. A nil o has none.
func relationsOf(k *kindInfo, o *corralpb.Object) []relation {
	if o == nil {
		return nil
	}
	var out []relation
	refs := metaOf(o).GetOwnerReferences()
	for i, r := range refs {
		if r.GetUid() != "" && !seenUID(refs[:i], r.GetUid()) {
			out = append(out, relation{relOwner, r.GetUid()})
		}
	}
	if k == kindPod {
		if node := o.GetPod().GetSpec().GetNodeName(); node != "" {
			out = append(out, relation{relNode, node})
		}
	}
	return out
}

// relink brings the links of the object k/ns/name from prior's relations
// to next's (either may be nil: a create, a delete), through the batch's
// undo log.
func (w *writer) relink(k *kindInfo, prior, next *corralpb.Object) error {
	before, after := relationsOf(k, prior), relationsOf(k, next)
	if len(before) == 0 && len(after) == 0 {
		return nil
	}
	m := metaOf(next)
	if next == nil {
		m = metaOf(prior)
	}
	ns, name := m.GetNamespace(), m.GetName()
	for _, r := range before {
		if !hasRelation(after, r) {
			if err := w.deleteRow(tableLinks, newLink(r.rel, r.value, k, ns, name)); err != nil {
				return fmt.Errorf("unlink %s %s/%s from %s %s: %w", k.name, ns, name, r.rel, r.value, err)
			}
		}
	}
	for _, r := range after {
		if !hasRelation(before, r) {
			if err := w.insertRow(tableLinks, nil, newLink(r.rel, r.value, k, ns, name)); err != nil {
				return fmt.Errorf("link %s %s/%s to %s %s: %w", k.name, ns, name, r.rel, r.value, err)
			}
		}
	}
	return nil
}

func hasRelation(rs []relation, r relation) bool {
	for _, x := range rs {
		if x == r {
			return true
		}
	}
	return false
}

// insertLinks stores the links of a restored object.
func insertLinks(txn *memdb.Txn, k *kindInfo, o *corralpb.Object) error {
	m := metaOf(o)
	for _, r := range relationsOf(k, o) {
		if err := txn.Insert(tableLinks, newLink(r.rel, r.value, k, m.GetNamespace(), m.GetName())); err != nil {
			return err
		}
	}
	return nil
}

// related returns the objects with value for rel, in the links' order, and
// adds to ws the channels that fire when the set changes or one of them
// does.
func (s *Store) related(ws memdb.WatchSet, rel, value string) ([]*corralpb.Object, error) {
	txn := s.db.Txn(false)
	it, err := txn.Get(tableLinks, indexID+"_prefix", rel, value)
	if err != nil {
		return nil, err
	}
	ws.Add(it.WatchCh())
	var out []*corralpb.Object
	for raw := it.Next(); raw != nil; raw = it.Next() {
		l := raw.(*link)
		ch, obj, err := txn.FirstWatch(l.kind.name, indexID, l.ns, l.name)
		if err != nil {
			return nil, err
		}
		if obj == nil {
			// Links change in the transaction that changes their object.
			return nil, fmt.Errorf("%s %s/%s is linked to %s %s but not stored", l.kind.name, l.ns, l.name, rel, value)
		}
		ws.Add(ch)
		out = append(out, obj.(*corralpb.Object))
	}
	return out, nil
}

// linksTableSchema holds *link rows by key; the id index also scans by a
// (rel, value) prefix.
func linksTableSchema() *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: tableLinks,
		Indexes: map[string]*memdb.IndexSchema{
			indexID: {Name: indexID, Unique: true, Indexer: linkIndexer{}},
		},
	}
}

// linkIndexer indexes links by key. FromArgs and PrefixFromArgs take rel
// and value and return the prefix of every link of that relation, which a
// prefix scan ("id_prefix") walks; no link's whole key is ever just that.
type linkIndexer struct{}

func (linkIndexer) FromObject(raw any) (bool, []byte, error) {
	l, ok := raw.(*link)
	if !ok {
		return false, nil, fmt.Errorf("links row %T is not a link", raw)
	}
	return true, l.key, nil
}

func (x linkIndexer) FromArgs(args ...any) ([]byte, error) { return x.PrefixFromArgs(args...) }

func (linkIndexer) PrefixFromArgs(args ...any) ([]byte, error) {
	return terminatedArgs(args, 2, "links take a relation and a value")
}
