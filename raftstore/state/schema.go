package state

import (
	"fmt"

	"github.com/hashicorp/go-memdb"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

// Table and index names besides the object tables, which are named after
// their kind ("DaemonSet").
const (
	tableMembers    = "members"
	tableIdentities = "identities"
	tableMeta       = "meta"
	tableIndex      = "index"

	indexID = "id"
	// indexNamespace scans the id index by namespace prefix: ids are
	// "namespace\x00name\x00", so no index of its own is needed (one radix
	// insert fewer per write).
	indexNamespace = indexID + "_prefix"
	indexPodCIDR   = "podcidr"
	indexCorrelate = "correlate"
)

// Keys of the index table that are not kinds. Kinds are CamelCase, so these
// lower-case keys never collide with one.
const (
	indexKeyLatest  = "latest"
	indexKeyMembers = tableMembers
	indexKeyMeta    = tableMeta
)

// metaKeyConfig is the meta table's key for the ClusterConfig.
const metaKeyConfig = "config"

// indexEntry is a row of the index table: the Raft index of the last change
// to a kind (or to members, meta, or the whole store for "latest").
type indexEntry struct {
	Key   string
	Value uint64
}

// schema returns the store's memdb schema: one table per object kind, plus
// members, meta and index.
func schema() *memdb.DBSchema {
	db := &memdb.DBSchema{Tables: make(map[string]*memdb.TableSchema)}
	for _, k := range kinds {
		db.Tables[k.name] = objectTableSchema(k)
	}
	for _, t := range []*memdb.TableSchema{membersTableSchema(), identitiesTableSchema(), metaTableSchema(), indexTableSchema(), linksTableSchema()} {
		db.Tables[t.Name] = t
	}
	return db
}

// objectTableSchema is the table of one object kind. Rows are
// *corralpb.Object. Every table has "id" (namespace, name), which also
// scans by namespace; events have "correlate" and nodes "podcidr". Pods by
// node and objects by owner are in the links table.
func objectTableSchema(k *kindInfo) *memdb.TableSchema {
	t := &memdb.TableSchema{
		Name: k.name,
		Indexes: map[string]*memdb.IndexSchema{
			indexID: {Name: indexID, Unique: true, Indexer: objectIDIndexer{}},
		},
	}
	if k == kindEvent {
		t.Indexes[indexCorrelate] = &memdb.IndexSchema{
			Name: indexCorrelate, AllowMissing: true, Indexer: correlateIndexer{},
		}
	}
	if k == kindNode {
		t.Indexes[indexPodCIDR] = &memdb.IndexSchema{
			Name: indexPodCIDR, AllowMissing: true, Indexer: podCIDRIndexer{},
		}
	}
	return t
}

// membersTableSchema holds *corralpb.Member rows by name.
func membersTableSchema() *memdb.TableSchema {
	return keyedTable(tableMembers, func(raw any) string {
		if m, ok := raw.(*corralpb.Member); ok {
			return m.GetName()
		}
		return ""
	})
}

// identitiesTableSchema holds *corralpb.Identity rows by name: which key
// holds each node's and server's name.
func identitiesTableSchema() *memdb.TableSchema {
	return keyedTable(tableIdentities, func(raw any) string {
		if m, ok := raw.(*corralpb.Identity); ok {
			return m.GetName()
		}
		return ""
	})
}

// metaTableSchema holds cluster-wide singletons; today only the
// *corralpb.ClusterConfig, under metaKeyConfig.
func metaTableSchema() *memdb.TableSchema {
	return keyedTable(tableMeta, func(raw any) string {
		if _, ok := raw.(*corralpb.ClusterConfig); ok {
			return metaKeyConfig
		}
		return ""
	})
}

// indexTableSchema holds *indexEntry rows by key, as Nomad's index table.
func indexTableSchema() *memdb.TableSchema {
	return keyedTable(tableIndex, func(raw any) string {
		if e, ok := raw.(*indexEntry); ok {
			return e.Key
		}
		return ""
	})
}

// keyedTable is a table with a single string primary key.
func keyedTable(name string, key func(any) string) *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: name,
		Indexes: map[string]*memdb.IndexSchema{
			indexID: {Name: indexID, Unique: true, Indexer: stringKeyIndexer{key: key}},
		},
	}
}

// Index keys are strings terminated by a NUL byte, as memdb's own string
// indexers do, so that an exact lookup of "a" never matches "ab". The id key
// is namespace NUL name NUL: NUL sorts before every other byte, so iterating
// the id index walks objects sorted by namespace, then name.

// terminatedArgs is the key of a lookup by strings: its arguments, which
// must be n strings (usage says what they are in the error for another
// count), each followed by a NUL byte.
func terminatedArgs(args []any, n int, usage string) ([]byte, error) {
	if len(args) != n {
		return nil, fmt.Errorf("%s, got %d arguments", usage, len(args))
	}
	size := 0
	for i := range args {
		s, err := stringArg(args, i)
		if err != nil {
			return nil, err
		}
		size += len(s) + 1
	}
	key := make([]byte, 0, size)
	for _, a := range args {
		key = append(key, a.(string)...)
		key = append(key, 0)
	}
	return key, nil
}

// stringArg returns args[i] as a string.
func stringArg(args []any, i int) (string, error) {
	if i >= len(args) {
		return "", fmt.Errorf("missing argument %d", i)
	}
	s, ok := args[i].(string)
	if !ok {
		return "", fmt.Errorf("argument %d: got %T, want string", i, args[i])
	}
	return s, nil
}

// terminated returns the strings joined and each followed by a NUL byte.
func terminated(parts ...string) []byte {
	n := 0
	for _, p := range parts {
		n += len(p) + 1
	}
	b := make([]byte, 0, n)
	for _, p := range parts {
		b = append(b, p...)
		b = append(b, 0)
	}
	return b
}

// objectIDIndexer indexes objects by (namespace, name). FromArgs takes the
// namespace and the name.
type objectIDIndexer struct{}

func (objectIDIndexer) FromObject(raw any) (bool, []byte, error) {
	m := metaOf(asObject(raw))
	if m == nil || m.GetName() == "" {
		return false, nil, fmt.Errorf("object has no metadata.name")
	}
	return true, terminated(m.GetNamespace(), m.GetName()), nil
}

func (objectIDIndexer) FromArgs(args ...any) ([]byte, error) {
	return terminatedArgs(args, 2, "id index takes namespace and name")
}

// PrefixFromArgs takes a namespace and returns the prefix of every id in it.
func (objectIDIndexer) PrefixFromArgs(args ...any) ([]byte, error) {
	return terminatedArgs(args, 1, "id prefix takes a namespace")
}

// podCIDRIndexer indexes nodes by spec.podCIDR, so that the FSM can refuse
// a second node with the same pod CIDR; nodes without one are not in it.
type podCIDRIndexer struct{}

func (podCIDRIndexer) FromObject(raw any) (bool, []byte, error) {
	cidr := asObject(raw).GetNode().GetSpec().GetPodCidr()
	if cidr == "" {
		return false, nil, nil
	}
	return true, terminated(cidr), nil
}

func (podCIDRIndexer) FromArgs(args ...any) ([]byte, error) {
	cidr, err := stringArg(args, 0)
	if err != nil {
		return nil, err
	}
	return terminated(cidr), nil
}

// correlateIndexer indexes events by namespace, involvedObject.name,
// reason and message (api.EventCorrelationMessage: a combined event by its
// prefix alone): the candidates an event recorder correlates a new
// occurrence with, without reading every event about the object.
type correlateIndexer struct{}

func (correlateIndexer) FromObject(raw any) (bool, []byte, error) {
	e := asObject(raw).GetEvent()
	if e == nil {
		return false, nil, nil
	}
	return true, terminated(e.GetMetadata().GetNamespace(), e.GetInvolvedObject().GetName(), e.GetReason(), api.EventCorrelationMessage(e.GetMessage())), nil
}

func (correlateIndexer) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 4 {
		return nil, fmt.Errorf("correlate index takes namespace, name, reason and message, got %d arguments", len(args))
	}
	parts := make([]string, 4)
	for i := range parts {
		s, err := stringArg(args, i)
		if err != nil {
			return nil, err
		}
		parts[i] = s
	}
	parts[3] = api.EventCorrelationMessage(parts[3])
	return terminated(parts...), nil
}

// seenUID reports whether any of refs has uid; owner lists are short.
func seenUID(refs []*corralpb.OwnerReference, uid string) bool {
	for _, r := range refs {
		if r.GetUid() == uid {
			return true
		}
	}
	return false
}

// stringKeyIndexer indexes rows by the string key returns; an empty key is
// an error (the row cannot be stored).
type stringKeyIndexer struct {
	key func(any) string
}

func (x stringKeyIndexer) FromObject(raw any) (bool, []byte, error) {
	k := x.key(raw)
	if k == "" {
		return false, nil, fmt.Errorf("row %T has no key", raw)
	}
	return true, terminated(k), nil
}

func (x stringKeyIndexer) FromArgs(args ...any) ([]byte, error) {
	k, err := stringArg(args, 0)
	if err != nil {
		return nil, err
	}
	return terminated(k), nil
}

// asObject converts a table row to an object; a row of another type gives
// nil, which every accessor treats as empty.
func asObject(raw any) *corralpb.Object {
	o, _ := raw.(*corralpb.Object)
	return o
}
