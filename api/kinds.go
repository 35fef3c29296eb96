package api

import (
	"fmt"
	"regexp"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	corralpb "github.com/corral-dev/corral/proto"
)

// Kind describes one kind of object: its API group and version, the names
// kubectl knows it by, and whether it lives in a namespace.
type Kind struct {
	// Kind is the Kubernetes kind, e.g. "DaemonSet".
	Kind string
	// Group is the API group, e.g. "apps"; "" for the core group.
	Group string
	// Version is the API version inside the group, e.g. "v1".
	Version string
	// Resource is the plural, lower-case resource name, e.g. "daemonsets".
	Resource string
	// Singular is the singular, lower-case resource name, e.g. "daemonset".
	Singular string
	// ShortNames are kubectl's abbreviations, e.g. ["ds"].
	ShortNames []string
	// Namespaced is true for kinds whose objects live in a namespace.
	Namespaced bool
}

// APIVersion returns the kind's apiVersion as written in manifests: "v1",
// "apps/v1", "scheduling.k8s.io/v1".
func (k Kind) APIVersion() string {
	if k.Group == "" {
		return k.Version
	}
	return k.Group + "/" + k.Version
}

// GroupResource returns the resource qualified by its group as kubectl prints
// it in errors: "daemonsets.apps", "pods", "priorityclasses.scheduling.k8s.io".
func (k Kind) GroupResource() string {
	if k.Group == "" {
		return k.Resource
	}
	return k.Resource + "." + k.Group
}

// qualifiedKind returns the kind qualified by its group as the API server
// names it in validation errors: "DaemonSet.apps", "Pod".
func (k Kind) qualifiedKind() string {
	if k.Group == "" {
		return k.Kind
	}
	return k.Kind + "." + k.Group
}

// kindEntry ties a Kind to its message and its branch of the Object oneof.
type kindEntry struct {
	kind  Kind
	inner func() proto.Message
	wrap  func(proto.Message) *corralpb.Object
}

var kindTable = []kindEntry{
	{
		kind:  Kind{Kind: "Namespace", Version: "v1", Resource: "namespaces", Singular: "namespace", ShortNames: []string{"ns"}},
		inner: func() proto.Message { return &corralpb.Namespace{} },
		wrap: func(m proto.Message) *corralpb.Object {
			return &corralpb.Object{Kind: &corralpb.Object_Namespace{Namespace: m.(*corralpb.Namespace)}}
		},
	},
	{
		kind:  Kind{Kind: "Node", Version: "v1", Resource: "nodes", Singular: "node", ShortNames: []string{"no"}},
		inner: func() proto.Message { return &corralpb.Node{} },
		wrap: func(m proto.Message) *corralpb.Object {
			return &corralpb.Object{Kind: &corralpb.Object_Node{Node: m.(*corralpb.Node)}}
		},
	},
	{
		kind:  Kind{Kind: "Pod", Version: "v1", Resource: "pods", Singular: "pod", ShortNames: []string{"po"}, Namespaced: true},
		inner: func() proto.Message { return &corralpb.Pod{} },
		wrap: func(m proto.Message) *corralpb.Object {
			return &corralpb.Object{Kind: &corralpb.Object_Pod{Pod: m.(*corralpb.Pod)}}
		},
	},
	{
		kind:  Kind{Kind: "ConfigMap", Version: "v1", Resource: "configmaps", Singular: "configmap", ShortNames: []string{"cm"}, Namespaced: true},
		inner: func() proto.Message { return &corralpb.ConfigMap{} },
		wrap: func(m proto.Message) *corralpb.Object {
			return &corralpb.Object{Kind: &corralpb.Object_ConfigMap{ConfigMap: m.(*corralpb.ConfigMap)}}
		},
	},
	{
		kind:  Kind{Kind: "Event", Version: "v1", Resource: "events", Singular: "event", ShortNames: []string{"ev"}, Namespaced: true},
		inner: func() proto.Message { return &corralpb.Event{} },
		wrap: func(m proto.Message) *corralpb.Object {
			return &corralpb.Object{Kind: &corralpb.Object_Event{Event: m.(*corralpb.Event)}}
		},
	},
	{
		kind:  Kind{Kind: "DaemonSet", Group: "apps", Version: "v1", Resource: "daemonsets", Singular: "daemonset", ShortNames: []string{"ds"}, Namespaced: true},
		inner: func() proto.Message { return &corralpb.DaemonSet{} },
		wrap: func(m proto.Message) *corralpb.Object {
			return &corralpb.Object{Kind: &corralpb.Object_DaemonSet{DaemonSet: m.(*corralpb.DaemonSet)}}
		},
	},
	{
		kind:  Kind{Kind: "ControllerRevision", Group: "apps", Version: "v1", Resource: "controllerrevisions", Singular: "controllerrevision", Namespaced: true},
		inner: func() proto.Message { return &corralpb.ControllerRevision{} },
		wrap: func(m proto.Message) *corralpb.Object {
			return &corralpb.Object{Kind: &corralpb.Object_ControllerRevision{ControllerRevision: m.(*corralpb.ControllerRevision)}}
		},
	},
	{
		kind:  Kind{Kind: "PriorityClass", Group: "scheduling.k8s.io", Version: "v1", Resource: "priorityclasses", Singular: "priorityclass", ShortNames: []string{"pc"}},
		inner: func() proto.Message { return &corralpb.PriorityClass{} },
		wrap: func(m proto.Message) *corralpb.Object {
			return &corralpb.Object{Kind: &corralpb.Object_PriorityClass{PriorityClass: m.(*corralpb.PriorityClass)}}
		},
	},
}

// Kinds returns every kind of the model in a stable order. The slice is a
// copy; callers may keep or modify it.
func Kinds() []Kind {
	out := make([]Kind, len(kindTable))
	for i, e := range kindTable {
		out[i] = e.kind
		out[i].ShortNames = append([]string(nil), e.kind.ShortNames...)
	}
	return out
}

// KindByName returns the kind whose Kind is exactly kind ("DaemonSet").
func KindByName(kind string) (Kind, bool) {
	e, ok := entryByKind(kind)
	if !ok {
		return Kind{}, false
	}
	return e.kind, true
}

func entryByKind(kind string) (kindEntry, bool) {
	for _, e := range kindTable {
		if e.kind.Kind == kind {
			return e, true
		}
	}
	return kindEntry{}, false
}

// versionRE matches Kubernetes API version strings: v1, v1beta1, v2alpha3.
var versionRE = regexp.MustCompile(`^v[0-9]+((alpha|beta)[0-9]+)?$`)

// LookupKind finds a kind by any name kubectl accepts for it, ignoring case:
// the kind ("DaemonSet"), the plural and singular resource names
// ("daemonsets", "daemonset"), short names ("ds"), each optionally qualified
// by group ("daemonsets.apps"), by version and group ("daemonsets.v1.apps")
// or by group and version ("daemonsets.apps/v1").
func LookupKind(name string) (Kind, bool) {
	name = strings.ToLower(strings.TrimSpace(name))
	if name == "" {
		return Kind{}, false
	}
	base, qualifier, qualified := strings.Cut(name, ".")
	group, version := "", ""
	if qualified {
		group, version = splitQualifier(qualifier)
	}
	for _, e := range kindTable {
		k := e.kind
		if !k.answersTo(base) {
			continue
		}
		if !qualified {
			return k, true
		}
		groupOK := group == k.Group || (group == "core" && k.Group == "")
		if groupOK && (version == "" || version == k.Version) {
			return k, true
		}
	}
	return Kind{}, false
}

// splitQualifier splits what follows the first dot of a resource name into a
// group and an optional version: "apps", "v1.apps", "apps/v1", "v1" (core).
func splitQualifier(q string) (group, version string) {
	if g, v, ok := strings.Cut(q, "/"); ok {
		return g, v
	}
	if versionRE.MatchString(q) {
		return "", q
	}
	if v, g, ok := strings.Cut(q, "."); ok && versionRE.MatchString(v) {
		return g, v
	}
	return q, ""
}

// answersTo reports whether the lower-case name is one of the kind's names.
func (k Kind) answersTo(name string) bool {
	if name == strings.ToLower(k.Kind) || name == k.Resource || name == k.Singular {
		return true
	}
	for _, s := range k.ShortNames {
		if name == s {
			return true
		}
	}
	return false
}

// entryOf returns the kind table entry of the object's oneof branch.
func entryOf(o *corralpb.Object) (kindEntry, proto.Message, bool) {
	var m proto.Message
	switch v := o.GetKind().(type) {
	case *corralpb.Object_Namespace:
		m = v.Namespace
	case *corralpb.Object_Node:
		m = v.Node
	case *corralpb.Object_Pod:
		m = v.Pod
	case *corralpb.Object_ConfigMap:
		m = v.ConfigMap
	case *corralpb.Object_Event:
		m = v.Event
	case *corralpb.Object_DaemonSet:
		m = v.DaemonSet
	case *corralpb.Object_ControllerRevision:
		m = v.ControllerRevision
	case *corralpb.Object_PriorityClass:
		m = v.PriorityClass
	default:
		return kindEntry{}, nil, false
	}
	name := string(m.ProtoReflect().Descriptor().Name())
	e, ok := entryByKind(name)
	return e, m, ok
}

// KindOf returns the object's Kind ("DaemonSet"), or "" for an empty object.
func KindOf(o *corralpb.Object) string {
	e, _, ok := entryOf(o)
	if !ok {
		return ""
	}
	return e.kind.Kind
}

// kindInfo returns the Kind of the object and whether it has one.
func kindInfo(o *corralpb.Object) (Kind, bool) {
	e, _, ok := entryOf(o)
	return e.kind, ok
}

// Inner returns the kind's message inside the object (*corralpb.DaemonSet,
// *corralpb.Pod, ...), or nil for an empty object.
func Inner(o *corralpb.Object) proto.Message {
	_, m, ok := entryOf(o)
	if !ok {
		return nil
	}
	return m
}

// Wrap puts a kind's message into an Object. It panics when m is not one of
// the model's object kinds, which is a programming error.
func Wrap(m proto.Message) *corralpb.Object {
	if m != nil {
		name := string(m.ProtoReflect().Descriptor().Name())
		if e, ok := entryByKind(name); ok && m.ProtoReflect().Descriptor() == e.inner().ProtoReflect().Descriptor() {
			return e.wrap(m)
		}
	}
	panic(fmt.Sprintf("api.Wrap: %T is not an object kind", m))
}

// NewObject returns an empty object of the named kind ("DaemonSet") with its
// metadata allocated.
func NewObject(kind string) (*corralpb.Object, error) {
	e, ok := entryByKind(kind)
	if !ok {
		return nil, fmt.Errorf("new object: %w", &NoKindMatchError{Kind: kind})
	}
	o := e.wrap(e.inner())
	Meta(o)
	return o, nil
}

// Meta returns the object's metadata, allocating it when missing. It returns
// nil only for an empty object (no kind set).
func Meta(o *corralpb.Object) *corralpb.ObjectMeta {
	_, m, ok := entryOf(o)
	if !ok || !m.ProtoReflect().IsValid() {
		return nil
	}
	return metaOf(m.ProtoReflect())
}

// metaOf returns the metadata field of an object message, allocating it.
func metaOf(m protoreflect.Message) *corralpb.ObjectMeta {
	fd := m.Descriptor().Fields().ByName("metadata")
	if fd == nil {
		return nil
	}
	return m.Mutable(fd).Message().Interface().(*corralpb.ObjectMeta)
}

// Key returns the object's key: kind, namespace (empty for cluster-scoped
// kinds) and name. It returns nil for an empty object.
func Key(o *corralpb.Object) *corralpb.ObjectKey {
	k, ok := kindInfo(o)
	if !ok {
		return nil
	}
	md := peekMeta(o)
	key := &corralpb.ObjectKey{Kind: k.Kind, Name: md.GetName()}
	if k.Namespaced {
		key.Namespace = md.GetNamespace()
	}
	return key
}

// Ref returns the object's name as kubectl's `-o name` prints it:
// "daemonset.apps/nginx", "pod/nginx-abcde". It returns "" for an empty
// object.
func Ref(o *corralpb.Object) string {
	k, ok := kindInfo(o)
	if !ok {
		return ""
	}
	prefix := k.Singular
	if k.Group != "" {
		prefix += "." + k.Group
	}
	return prefix + "/" + peekMeta(o).GetName()
}

// peekMeta returns the object's metadata without allocating it: nil when
// missing. Read-only callers use it so shared objects are never written.
func peekMeta(o *corralpb.Object) *corralpb.ObjectMeta {
	_, m, ok := entryOf(o)
	if !ok {
		return nil
	}
	r := m.ProtoReflect()
	fd := r.Descriptor().Fields().ByName("metadata")
	if fd == nil || !r.Has(fd) {
		return nil
	}
	return r.Get(fd).Message().Interface().(*corralpb.ObjectMeta)
}
