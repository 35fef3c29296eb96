package state

import (
	"fmt"
	"strings"

	"github.com/hashicorp/go-memdb"

	corralpb "github.com/corral-dev/corral/proto"
)

// EventsAbout returns the events in namespace about objects called name:
// those named "<name>.<suffix>" (Kubernetes' naming of events, which the
// event recorders keep) whose involvedObject.name is name, sorted by name.
// It seeks the id index to the name's prefix, so it reads only those
// events, not the namespace's others. Callers filter further by kind and
// uid. Events named otherwise (a user's `corral apply` of an Event) are not
// returned.
func (s *Store) EventsAbout(ws memdb.WatchSet, namespace, name string) ([]*corralpb.Object, error) {
	txn := s.db.Txn(false)
	// The namespace's prefix iterator only lends its watch channel: a lower
	// bound seek cannot be watched.
	nsIt, err := txn.Get(kindEvent.name, indexNamespace, namespace)
	if err != nil {
		return nil, fmt.Errorf("watch events in %q: %w", namespace, err)
	}
	ws.Add(nsIt.WatchCh())
	prefix := name + "."
	it, err := txn.LowerBound(kindEvent.name, indexID, namespace, prefix)
	if err != nil {
		return nil, fmt.Errorf("list events about %s/%s: %w", namespace, name, err)
	}
	var out []*corralpb.Object
	for raw := it.Next(); raw != nil; raw = it.Next() {
		o := raw.(*corralpb.Object)
		m := o.GetEvent().GetMetadata()
		if m.GetNamespace() != namespace || !strings.HasPrefix(m.GetName(), prefix) {
			break
		}
		if o.GetEvent().GetInvolvedObject().GetName() == name {
			out = append(out, o)
		}
	}
	return out, nil
}

// EventsLike returns the events in namespace about objects called name
// with this reason and (stored, truncated) message: the ones an event
// recorder may correlate a new occurrence with. It reads only those.
func (s *Store) EventsLike(ws memdb.WatchSet, namespace, name, reason, message string) ([]*corralpb.Object, error) {
	it, err := s.db.Txn(false).Get(kindEvent.name, indexCorrelate, namespace, name, reason, message)
	if err != nil {
		return nil, fmt.Errorf("list events about %s/%s: %w", namespace, name, err)
	}
	return collect(ws, it, nil), nil
}
