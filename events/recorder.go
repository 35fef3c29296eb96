package events

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

// Event types, as Kubernetes names them.
const (
	TypeNormal  = "Normal"
	TypeWarning = "Warning"
)

// MaxMessageLength is the longest message stored; longer ones are cut
// (Kubernetes' events API keeps notes to 1 kB as well).
const MaxMessageLength = 1024

// Recorder records events about objects. Implementations never block on
// the event sink and never fail: events are best effort.
type Recorder interface {
	// Event records an event of eventType (TypeNormal or TypeWarning) about
	// obj, with a CamelCase reason ("Pulling", "SuccessfulCreate") and a
	// human message.
	Event(obj *corralpb.Object, eventType, reason, message string)
}

// Eventf records an event with a message formatted as fmt.Sprintf does.
func Eventf(r Recorder, obj *corralpb.Object, eventType, reason, format string, args ...any) {
	r.Event(obj, eventType, reason, fmt.Sprintf(format, args...))
}

// Discard is a Recorder that drops every event.
var Discard Recorder = discard{}

type discard struct{}

func (discard) Event(*corralpb.Object, string, string, string) {}

// metaGetter is what every object kind's message offers.
type metaGetter interface {
	GetMetadata() *corralpb.ObjectMeta
}

// Reference returns the object reference an event about obj carries: kind,
// apiVersion, namespace, name, uid and resourceVersion. It does not change
// obj, so it is safe on objects shared with the state store. It returns nil
// for an empty object.
func Reference(obj *corralpb.Object) *corralpb.ObjectReference {
	kind, ok := api.KindByName(api.KindOf(obj))
	if !ok {
		return nil
	}
	var m *corralpb.ObjectMeta
	if g, ok := api.Inner(obj).(metaGetter); ok {
		m = g.GetMetadata()
	}
	return &corralpb.ObjectReference{
		Kind: kind.Kind, ApiVersion: kind.APIVersion(),
		Namespace: m.GetNamespace(), Name: m.GetName(), Uid: m.GetUid(),
		ResourceVersion: m.GetResourceVersion(),
	}
}

// truncate cuts a message to MaxMessageLength bytes without splitting a
// UTF-8 sequence: the message as an event stores it.
func truncate(msg string) string {
	if len(msg) <= MaxMessageLength {
		return msg
	}
	cut := MaxMessageLength
	for cut > 0 && msg[cut]&0xC0 == 0x80 {
		cut--
	}
	return msg[:cut]
}

// cloneRef returns a copy of ref, or an empty reference for nil.
func cloneRef(ref *corralpb.ObjectReference) *corralpb.ObjectReference {
	if ref == nil {
		return &corralpb.ObjectReference{}
	}
	return proto.Clone(ref).(*corralpb.ObjectReference)
}
