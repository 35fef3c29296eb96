package events

import (
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

// ClusterScopedNamespace holds the events about cluster-scoped objects
// (Nodes, Namespaces), as in Kubernetes.
const ClusterScopedNamespace = "default"

// Key is the correlation key of an event: two events with the same key are
// the same event seen again. It covers the involved object (kind,
// namespace, name, uid and field path), the type, the reason, the message
// (CorrelationMessage) and the source (component, host).
func Key(e *corralpb.Event) string {
	ref, src := e.GetInvolvedObject(), e.GetSource()
	return strings.Join([]string{
		src.GetComponent(), src.GetHost(),
		ref.GetKind(), ref.GetNamespace(), ref.GetName(), ref.GetUid(), ref.GetFieldPath(),
		e.GetType(), e.GetReason(), CorrelationMessage(e.GetMessage()),
	}, "\x00")
}

// CorrelationMessage is the part of msg that correlation compares: msg as
// stored (cut to MaxMessageLength), or only the prefix of a combined event
// (api.EventCorrelationMessage).
func CorrelationMessage(msg string) string {
	return api.EventCorrelationMessage(truncate(msg))
}

// Namespace returns the namespace an event about ref is stored in: ref's
// own, or ClusterScopedNamespace for a cluster-scoped object.
func Namespace(ref *corralpb.ObjectReference) string {
	if ns := ref.GetNamespace(); ns != "" {
		return ns
	}
	return ClusterScopedNamespace
}

// Name returns the name of a new event about the object called object,
// created at now: "<object>.<16 hex digits of now in Unix nanoseconds>", as
// Kubernetes names events.
func Name(object string, now time.Time) string {
	return fmt.Sprintf("%s.%016x", object, now.UnixNano())
}

// Aggregate correlates incoming with the stored events about the same
// object and returns the event to store. When one of existing has
// incoming's Key, put is a copy of it with count raised by incoming's count
// (1 when unset), lastTimestamp now and incoming's message (a combined
// event shows its latest); with several, the most recently seen one. Otherwise put is a new event (isNew): named by Name, in the
// involved object's Namespace, first and last seen now, with the count of
// incoming, and reportingComponent and reportingInstance from its source.
// A new event's metadata holds only its name and namespace: the server
// stamps the rest. Neither existing nor incoming is changed.
func Aggregate(existing []*corralpb.Event, incoming *corralpb.Event, now time.Time) (put *corralpb.Event, isNew bool) {
	n := max(incoming.GetCount(), 1)
	ts := timestamppb.New(now)
	key := Key(incoming)
	var match *corralpb.Event
	for _, e := range existing {
		if Key(e) != key {
			continue
		}
		if match == nil || newer(e, match) {
			match = e
		}
	}
	if match != nil {
		put = proto.Clone(match).(*corralpb.Event)
		put.Count = max(put.Count, 1) + n
		put.LastTimestamp = ts
		put.Message = truncate(incoming.GetMessage())
		return put, false
	}
	ref := cloneRef(incoming.GetInvolvedObject())
	src := proto.Clone(incoming.GetSource()).(*corralpb.EventSource)
	if src == nil {
		src = &corralpb.EventSource{}
	}
	put = &corralpb.Event{
		ApiVersion: "v1", Kind: "Event",
		Metadata:       &corralpb.ObjectMeta{Name: Name(ref.GetName(), now), Namespace: Namespace(ref)},
		InvolvedObject: ref,
		Reason:         incoming.GetReason(),
		Message:        truncate(incoming.GetMessage()),
		Source:         src,
		FirstTimestamp: ts,
		LastTimestamp:  proto.Clone(ts).(*timestamppb.Timestamp),
		Count:          n,
		Type:           incoming.GetType(),
		// Kubernetes fills these from the source for core/v1 events.
		ReportingComponent: src.GetComponent(),
		ReportingInstance:  src.GetHost(),
	}
	return put, true
}

// LastSeen is when an event was last seen: its lastTimestamp, else its
// firstTimestamp, else its metadata.creationTimestamp; ok is false when it
// has none of them.
func LastSeen(e *corralpb.Event) (t time.Time, ok bool) {
	for _, ts := range []*timestamppb.Timestamp{e.GetLastTimestamp(), e.GetFirstTimestamp(), e.GetMetadata().GetCreationTimestamp()} {
		if ts != nil {
			return ts.AsTime(), true
		}
	}
	return time.Time{}, false
}

// newer reports whether a was seen after b.
func newer(a, b *corralpb.Event) bool {
	ta, _ := LastSeen(a)
	tb, _ := LastSeen(b)
	return ta.After(tb)
}
