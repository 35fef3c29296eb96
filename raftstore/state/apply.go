package state

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/hashicorp/go-memdb"
	"google.golang.org/protobuf/proto"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

// Apply applies one committed Raft log entry at index and answers each of
// its batches. It is deterministic: the same entries in the same order give
// the same state, results and events on every server.
//
// The whole entry is one memdb write transaction, committed at the end, so
// readers see an entry's changes all at once and the cost of copying index
// paths is shared by its batches (group commit). Within it, in order:
//
//  1. cluster_config (which also creates the default, kube-system and
//     kube-public namespaces when missing), put_members, delete_members;
//  2. each batch, atomically: its ops apply in order, and when one fails the
//     batch's earlier changes are undone, so a batch applies whole or not at
//     all and a failing batch leaves no trace for the others; results[i]
//     answers batches[i];
//  3. the store's latest index; after the commit the entry's events are
//     published.
//
// Objects in the result are the stored ones, shared with the store: callers
// must not mutate them. Apply does not keep references to e.
func (s *Store) Apply(index uint64, e *corralpb.LogEntry) *corralpb.LogResult {
	return s.apply(index, e, false)
}

// ApplyOwned is Apply for an entry decoded for this call alone (the FSM's):
// the objects it creates or replaces are stored as they are, stamped,
// rather than copied. The caller must not use e afterwards.
func (s *Store) ApplyOwned(index uint64, e *corralpb.LogEntry) *corralpb.LogResult {
	return s.apply(index, e, true)
}

func (s *Store) apply(index uint64, e *corralpb.LogEntry, owned bool) *corralpb.LogResult {
	if s.view {
		panic("state: Apply on a read-only snapshot view")
	}
	txn := s.db.Txn(true)
	defer txn.Abort()
	w := &writer{txn: txn, index: index, rv: strconv.FormatUint(index, 10), owned: owned}
	res := &corralpb.LogResult{}
	var events []Event
	if e != nil {
		w.applyCluster(e)
		events = append(events, w.events...)
		res.IdentityConflicts = w.putIdentities(e.GetPutIdentities(), e.GetDeleteIdentities())
		if len(e.GetBatches()) > 0 {
			res.Results = make([]*corralpb.BatchResult, len(e.GetBatches()))
		}
		for i, b := range e.GetBatches() {
			res.Results[i] = w.applyBatch(b)
			if res.Results[i].GetCode() == corralpb.ErrorCode_OK {
				events = append(events, w.events...)
			}
		}
	}
	if err := w.setKindIndexes(); err != nil {
		panic(fmt.Sprintf("state: apply at %d: %v", index, err)) // the index table's indexer cannot fail
	}
	if err := setIndex(txn, indexKeyLatest, index); err != nil {
		panic(fmt.Sprintf("state: apply at %d: %v", index, err))
	}
	txn.Commit()
	s.hub.publish(events)
	return res
}

// applyCluster applies the entry's cluster config and member changes.
// Members without a name are skipped: they cannot be stored, and skipping
// them is as deterministic as any other answer. Errors here are bugs of
// this package (the rows always index), hence the panics.
func (w *writer) applyCluster(e *corralpb.LogEntry) {
	w.reset()
	if cfg := e.GetClusterConfig(); cfg != nil {
		if err := w.putClusterConfig(cfg); err != nil {
			panic(fmt.Sprintf("state: apply cluster config at %d: %v", w.index, err))
		}
	}
	changed, err := w.putMembers(e.GetPutMembers(), e.GetDeleteMembers())
	if err != nil {
		panic(fmt.Sprintf("state: apply members at %d: %v", w.index, err))
	}
	if changed {
		err = setIndex(w.txn, indexKeyMembers, w.index)
	}
	if err == nil && e.GetClusterConfig() != nil {
		err = setIndex(w.txn, indexKeyMeta, w.index)
	}
	w.entryTouched |= w.touched
	w.entryStatusTouched |= w.statusTouched
	if err != nil {
		panic(fmt.Sprintf("state: apply at %d: %v", w.index, err))
	}
}

// applyBatch applies one batch: all its ops, or, when one fails, none.
func (w *writer) applyBatch(b *corralpb.Batch) *corralpb.BatchResult {
	w.reset()
	if err := w.checkGuard(b); err != nil {
		return failed(w.index, err)
	}
	var objects []*corralpb.Object
	if !b.GetOmitObjects() {
		objects = make([]*corralpb.Object, 0, len(b.GetOps()))
	}
	bases := b.GetBases()
	if len(bases) > 0 && !w.owned {
		// What ops take from a base is stored: it must be the store's.
		bases = make([]*corralpb.Object, len(b.GetBases()))
		for i, base := range b.GetBases() {
			bases[i] = proto.Clone(base).(*corralpb.Object)
		}
	}
	for i, op := range b.GetOps() {
		if op.GetBase() != 0 {
			var err error
			if op, err = w.filled(i, op, bases); err != nil {
				w.rollback()
				return failed(w.index, err)
			}
		}
		obj, err := w.apply(op)
		if err != nil {
			w.rollback()
			return failed(w.index, err)
		}
		if !b.GetOmitObjects() {
			objects = append(objects, obj)
		}
	}
	w.entryTouched |= w.touched
	w.entryStatusTouched |= w.statusTouched
	w.entryReadinessLost = w.entryReadinessLost || w.readinessLost
	return &corralpb.BatchResult{Code: corralpb.ErrorCode_OK, Objects: objects, Index: w.index}
}

// filled returns op (the batch's i-th) with its object completed from the
// base it names (api.Fill).
func (w *writer) filled(i int, op *corralpb.Op, bases []*corralpb.Object) (*corralpb.Op, error) {
	n := op.GetBase()
	if int(n) > len(bases) {
		return nil, invalidf("op %d: base %d: the batch has %d", i, n, len(bases))
	}
	if op.GetObject() == nil {
		return nil, invalidf("op %d: base %d with no object", i, n)
	}
	if !w.owned {
		op = proto.Clone(op).(*corralpb.Op) // Fill completes the object in place
	}
	api.Fill(op.GetObject(), bases[n-1])
	return op, nil
}

// failed is the result of a batch that was not applied.
func failed(index uint64, err error) *corralpb.BatchResult {
	oe, ok := err.(*opError)
	if !ok {
		oe = &opError{code: corralpb.ErrorCode_INVALID, msg: "internal error: " + err.Error()}
	}
	return &corralpb.BatchResult{Code: oe.code, Message: oe.msg, Index: index}
}

// StatusGuard after a kind in a batch's guard kinds ("Pod/status") guards
// on changes to the status of objects of that kind; the kind alone guards
// on their creation, deletion and everything but the status.
const StatusGuard = "/status"

// ReadinessGuard after "Pod" ("Pod/readiness") guards on pods losing
// readiness: a Ready pod that stops being Ready, becomes Ready again since
// a later time (it restarted between two reports), or is deleted. A plan
// that deletes pods because enough others are available stays safe when
// more become ready meanwhile, and guarding on every status change of
// every pod refused it again and again while a rollout's new pods
// reported in.
const ReadinessGuard = "/readiness"

// checkGuard refuses a batch planned from a snapshot older than a change to
// one of its guard kinds: a change stored in the index table, or one an
// earlier batch of this entry made (which no snapshot can include).
func (w *writer) checkGuard(b *corralpb.Batch) error {
	if b.GetGuardIndex() == 0 {
		return nil
	}
	for _, name := range b.GetGuardKinds() {
		kind, status := strings.CutSuffix(name, StatusGuard)
		kind, readiness := strings.CutSuffix(kind, ReadinessGuard)
		k, ok := lookupKind(kind)
		if !ok || (readiness && k != kindPod) {
			return invalidf("guard: unknown kind %q", name)
		}
		key, what, inEntry := k.name, k.resource, w.entryTouched.has(k)
		switch {
		case status:
			key, what, inEntry = k.name+StatusGuard, k.resource+"' status", w.entryStatusTouched.has(k)
		case readiness:
			key, what, inEntry = k.name+ReadinessGuard, k.resource+"' readiness", w.entryReadinessLost
		}
		if inEntry || indexValue(w.txn, key) > b.GetGuardIndex() {
			return &opError{
				code: corralpb.ErrorCode_STALE,
				msg:  fmt.Sprintf("stale plan: %s changed after index %d", what, b.GetGuardIndex()),
			}
		}
	}
	return nil
}

// writer applies one entry inside its write transaction. touched, events
// and undo describe the current batch: the kinds it changed, its events, and
// how to take its changes back.
type writer struct {
	txn     *memdb.Txn
	index   uint64
	rv      string  // index as a resourceVersion
	touched kindSet // kinds created, changed (but for status) or deleted
	// statusTouched are the kinds whose objects' status changed.
	statusTouched kindSet
	// entryTouched and entryStatusTouched gather touched and statusTouched
	// over the entry's applied batches: the index table records them once,
	// at the end of the entry, and guards of later batches see them.
	entryTouched, entryStatusTouched kindSet
	// readinessLost: a pod of the batch lost readiness (ReadinessGuard);
	// entryReadinessLost gathers it over the entry's applied batches.
	readinessLost, entryReadinessLost bool
	events                            []Event
	undo                              []undoStep
	owned                             bool // the entry's objects may be stored without a copy
}

// undoStep reverses one change to a table: prior is the row before it (nil
// when there was none), written the row after it (nil after a delete).
type undoStep struct {
	table   string
	prior   any
	written any
}

// reset starts a new batch.
func (w *writer) reset() {
	w.touched, w.statusTouched, w.readinessLost = 0, 0, false
	w.events = w.events[:0]
	w.undo = w.undo[:0]
}

// insertRow writes row into table, where prior (nil for none) was stored.
func (w *writer) insertRow(table string, prior, row any) error {
	if err := w.txn.Insert(table, row); err != nil {
		return err
	}
	w.undo = append(w.undo, undoStep{table: table, prior: prior, written: row})
	return nil
}

// deleteRow removes row from table.
func (w *writer) deleteRow(table string, row any) error {
	if err := w.txn.Delete(table, row); err != nil {
		return err
	}
	w.undo = append(w.undo, undoStep{table: table, prior: row})
	return nil
}

// rollback undoes the current batch's changes, newest first, leaving the
// transaction as the batch found it.
func (w *writer) rollback() {
	for i := len(w.undo) - 1; i >= 0; i-- {
		u := w.undo[i]
		var err error
		if u.prior != nil {
			err = w.txn.Insert(u.table, u.prior)
		} else {
			err = w.txn.Delete(u.table, u.written)
		}
		if err != nil {
			// Rows that were stored a moment ago always store again.
			panic(fmt.Sprintf("state: undo a change to %s at %d: %v", u.table, w.index, err))
		}
	}
	w.undo = w.undo[:0]
	w.touched, w.statusTouched, w.readinessLost = 0, 0, false
	w.events = w.events[:0]
}

// setKindIndexes records the entry's index as the last change of every kind
// the entry changed.
func (w *writer) setKindIndexes() error {
	var err error
	set := func(key string) {
		if err != nil {
			return
		}
		prior, ferr := w.txn.First(tableIndex, indexID, key)
		if ferr != nil {
			err = ferr
			return
		}
		err = w.insertRow(tableIndex, prior, &indexEntry{Key: key, Value: w.index})
	}
	w.entryTouched.each(func(k *kindInfo) { set(k.name) })
	w.entryStatusTouched.each(func(k *kindInfo) { set(k.name + StatusGuard) })
	if w.entryReadinessLost {
		set(kindPod.name + ReadinessGuard)
	}
	return err
}

// putIdentities removes bindings, then binds names to keys. A binding whose
// name is held by another key than its own or the one it replaces, or that
// replaces a key of a name no longer bound, is not applied; its name is
// returned.
func (w *writer) putIdentities(put []*corralpb.Identity, del []string) []string {
	for _, name := range del {
		if _, err := w.txn.DeleteAll(tableIdentities, indexID, name); err != nil {
			panic(fmt.Sprintf("state: delete identity %s at %d: %v", name, w.index, err))
		}
	}
	var conflicts []string
	for _, id := range put {
		if id.GetName() == "" || id.GetPublicKeySha256() == "" {
			conflicts = append(conflicts, id.GetName())
			continue
		}
		row := &corralpb.Identity{Name: id.GetName(), PublicKeySha256: id.GetPublicKeySha256(), CreateIndex: w.index, ModifyIndex: w.index}
		raw, err := w.txn.First(tableIdentities, indexID, id.GetName())
		if err != nil {
			panic(fmt.Sprintf("state: get identity %s at %d: %v", id.GetName(), w.index, err))
		}
		if raw == nil && id.GetReplaces() != "" {
			// A renewal of a binding that is gone: the name was freed
			// (its node deleted, its server removed) and must be joined
			// again with a token.
			conflicts = append(conflicts, id.GetName())
			continue
		}
		if raw != nil {
			old := raw.(*corralpb.Identity)
			if old.GetPublicKeySha256() != id.GetPublicKeySha256() && old.GetPublicKeySha256() != id.GetReplaces() {
				conflicts = append(conflicts, id.GetName())
				continue
			}
			row.CreateIndex = old.GetCreateIndex()
		}
		if err := w.txn.Insert(tableIdentities, row); err != nil {
			panic(fmt.Sprintf("state: put identity %s at %d: %v", id.GetName(), w.index, err))
		}
	}
	return conflicts
}

// putMembers stores and removes members and reports whether any changed.
func (w *writer) putMembers(put []*corralpb.Member, del []string) (bool, error) {
	changed := false
	for _, m := range put {
		if m.GetName() == "" {
			continue
		}
		if err := w.txn.Insert(tableMembers, proto.Clone(m)); err != nil {
			return changed, fmt.Errorf("put member %s: %w", m.GetName(), err)
		}
		changed = true
	}
	for _, name := range del {
		raw, err := w.txn.First(tableMembers, indexID, name)
		if err != nil {
			return changed, fmt.Errorf("delete member %s: %w", name, err)
		}
		if raw == nil {
			continue
		}
		if err := w.txn.Delete(tableMembers, raw); err != nil {
			return changed, fmt.Errorf("delete member %s: %w", name, err)
		}
		changed = true
	}
	return changed, nil
}
