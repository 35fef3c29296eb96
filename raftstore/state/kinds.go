package state

import (
	corralpb "github.com/corral-dev/corral/proto"
	"google.golang.org/protobuf/proto"
)

// kindInfo is what the store needs to know about an object kind. It is a
// small local table rather than package api's Kind so that the store does
// not depend on the object model's rules, only on its shape.
type kindInfo struct {
	name       string // "DaemonSet", as in the Object oneof; also the table name
	resource   string // "daemonsets"
	group      string // "apps"; "" for core
	namespaced bool
	ordinal    int // position in kinds; the bit in a kindSet
}

// groupResource is the name kubectl prints in errors: "daemonsets.apps",
// "pods", "priorityclasses.scheduling.k8s.io".
func (k *kindInfo) groupResource() string {
	if k.group == "" {
		return k.resource
	}
	return k.resource + "." + k.group
}

// The object kinds, as named in the Object oneof.
var (
	kindNamespace          = &kindInfo{name: "Namespace", resource: "namespaces"}
	kindNode               = &kindInfo{name: "Node", resource: "nodes"}
	kindPod                = &kindInfo{name: "Pod", resource: "pods", namespaced: true}
	kindDaemonSet          = &kindInfo{name: "DaemonSet", resource: "daemonsets", group: "apps", namespaced: true}
	kindConfigMap          = &kindInfo{name: "ConfigMap", resource: "configmaps", namespaced: true}
	kindControllerRevision = &kindInfo{name: "ControllerRevision", resource: "controllerrevisions", group: "apps", namespaced: true}
	kindEvent              = &kindInfo{name: "Event", resource: "events", namespaced: true}
	kindPriorityClass      = &kindInfo{name: "PriorityClass", resource: "priorityclasses", group: "scheduling.k8s.io"}
)

// kinds lists every object kind in the Object oneof's order. Every loop over
// kinds (cascading deletes, snapshots, ByOwner) walks it in this order, which
// keeps the store deterministic.
var kinds = []*kindInfo{
	kindNamespace, kindNode, kindPod, kindDaemonSet,
	kindConfigMap, kindControllerRevision, kindEvent, kindPriorityClass,
}

var kindsByName = func() map[string]*kindInfo {
	m := make(map[string]*kindInfo, len(kinds))
	for i, k := range kinds {
		k.ordinal = i
		m[k.name] = k
	}
	return m
}()

// lookupKind returns the kind named exactly name ("DaemonSet").
func lookupKind(name string) (*kindInfo, bool) {
	k, ok := kindsByName[name]
	return k, ok
}

// kindSet is a set of kinds, one bit per kind ordinal. Iterating it in bit
// order is iterating kinds in their fixed order.
type kindSet uint16

func (s *kindSet) add(k *kindInfo)     { *s |= 1 << k.ordinal }
func (s kindSet) has(k *kindInfo) bool { return s&(1<<k.ordinal) != 0 }
func (s kindSet) each(fn func(*kindInfo)) {
	for _, k := range kinds {
		if s.has(k) {
			fn(k)
		}
	}
}

// kindOf returns the kind of a set object, or nil for a nil or empty one.
func kindOf(o *corralpb.Object) *kindInfo {
	if o == nil {
		return nil
	}
	switch o.Kind.(type) {
	case *corralpb.Object_Namespace:
		return kindNamespace
	case *corralpb.Object_Node:
		return kindNode
	case *corralpb.Object_Pod:
		return kindPod
	case *corralpb.Object_DaemonSet:
		return kindDaemonSet
	case *corralpb.Object_ConfigMap:
		return kindConfigMap
	case *corralpb.Object_ControllerRevision:
		return kindControllerRevision
	case *corralpb.Object_Event:
		return kindEvent
	case *corralpb.Object_PriorityClass:
		return kindPriorityClass
	}
	return nil
}

// metaOf returns the object's metadata, or nil when the object, its inner
// message or its metadata is missing. It never allocates.
func metaOf(o *corralpb.Object) *corralpb.ObjectMeta {
	if o == nil {
		return nil
	}
	switch v := o.Kind.(type) {
	case *corralpb.Object_Namespace:
		return v.Namespace.GetMetadata()
	case *corralpb.Object_Node:
		return v.Node.GetMetadata()
	case *corralpb.Object_Pod:
		return v.Pod.GetMetadata()
	case *corralpb.Object_DaemonSet:
		return v.DaemonSet.GetMetadata()
	case *corralpb.Object_ConfigMap:
		return v.ConfigMap.GetMetadata()
	case *corralpb.Object_ControllerRevision:
		return v.ControllerRevision.GetMetadata()
	case *corralpb.Object_Event:
		return v.Event.GetMetadata()
	case *corralpb.Object_PriorityClass:
		return v.PriorityClass.GetMetadata()
	}
	return nil
}

// innerOf returns the object's inner message (the *corralpb.Pod etc.), or nil.
func innerOf(o *corralpb.Object) proto.Message {
	r := o.ProtoReflect()
	f := r.WhichOneof(r.Descriptor().Oneofs().ByName("kind"))
	if f == nil {
		return nil
	}
	return r.Get(f).Message().Interface()
}
