package state

import (
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

// opError is a batch failure: the code and the message kubectl prints.
type opError struct {
	code corralpb.ErrorCode
	msg  string
}

func (e *opError) Error() string { return e.msg }

func invalidf(format string, args ...any) *opError {
	return &opError{code: corralpb.ErrorCode_INVALID, msg: fmt.Sprintf(format, args...)}
}

func notFound(k *kindInfo, name string) *opError {
	return &opError{
		code: corralpb.ErrorCode_NOT_FOUND,
		msg:  fmt.Sprintf("%s %q not found", k.groupResource(), name),
	}
}

func alreadyExists(k *kindInfo, name string) *opError {
	return &opError{
		code: corralpb.ErrorCode_ALREADY_EXISTS,
		msg:  fmt.Sprintf("%s %q already exists", k.groupResource(), name),
	}
}

func conflict(k *kindInfo, name, why string) *opError {
	return &opError{
		code: corralpb.ErrorCode_CONFLICT,
		msg:  fmt.Sprintf("Operation cannot be fulfilled on %s %q: %s", k.groupResource(), name, why),
	}
}

const errModified = "the object has been modified; please apply your changes to the latest version and try again"

// apply applies one op and returns the stored object (PUT) or the removed
// one (DELETE).
func (w *writer) apply(op *corralpb.Op) (*corralpb.Object, error) {
	switch op.GetType() {
	case corralpb.Op_PUT:
		return w.put(op)
	case corralpb.Op_DELETE:
		return w.delete(op)
	case corralpb.Op_STATUS:
		return w.status(op)
	}
	return nil, invalidf("unknown op type %s", op.GetType())
}

// put stores a clone of op.object stamped with the entry's resourceVersion.
func (w *writer) put(op *corralpb.Op) (*corralpb.Object, error) {
	obj := op.GetObject()
	k := kindOf(obj)
	if k == nil {
		return nil, invalidf("put: object has no kind")
	}
	m := metaOf(obj)
	ns, name := m.GetNamespace(), m.GetName()
	if err := checkName(k, ns, name); err != nil {
		return nil, err
	}
	if key := op.GetKey(); key != nil && (key.GetKind() != k.name || key.GetNamespace() != ns || key.GetName() != name) {
		return nil, invalidf("put %s %q: key %s %q/%q does not name the object",
			k.groupResource(), name, key.GetKind(), key.GetNamespace(), key.GetName())
	}
	if k.namespaced {
		if err := w.checkNamespace(ns); err != nil {
			return nil, err
		}
	}
	existing, err := w.get(k, ns, name)
	if err != nil {
		return nil, err
	}
	if err := checkPrecondition(k, name, op, existing, true); err != nil {
		return nil, err
	}
	if k == kindNode {
		if err := w.checkPodCIDR(obj, existing); err != nil {
			return nil, err
		}
	}
	stored := obj
	if !w.owned {
		stored = proto.Clone(obj).(*corralpb.Object)
	}
	metaOf(stored).ResourceVersion = w.rv
	var prior any // a nil *Object in an interface is not nil
	if existing != nil {
		prior = existing
	}
	if err := w.insertRow(k.name, prior, stored); err != nil {
		return nil, fmt.Errorf("put %s %s/%s: %w", k.name, ns, name, err)
	}
	if err := w.relink(k, existing, stored); err != nil {
		return nil, err
	}
	if k == kindPod && existing != nil && lostReadiness(existing, stored) {
		w.readinessLost = true
	}
	w.touched.add(k)
	typ := EventModified
	if existing == nil {
		typ = EventAdded
	}
	w.events = append(w.events, Event{Type: typ, Index: w.index, Object: stored})
	return stored, nil
}

// podCIDRTaken is the field error of a pod CIDR another node holds; the
// servers' allocator looks for it to retry with a fresh view.
func podCIDRTaken(cidr, holder string) string {
	return fmt.Sprintf("spec.podCIDR: Invalid value: %q: %s %q", cidr, PodCIDRTaken, holder)
}

// PodCIDRTaken is in the message of a write refused because the node's
// spec.podCIDR is allocated to another node.
const PodCIDRTaken = "already allocated to node"

// checkPodCIDR refuses a node whose new spec.podCIDR another node holds:
// concurrent registrations allocate from the same view, and only the
// first to commit may keep a CIDR (the other retries with a fresh one).
func (w *writer) checkPodCIDR(obj, existing *corralpb.Object) error {
	cidr := obj.GetNode().GetSpec().GetPodCidr()
	if cidr == "" || cidr == existing.GetNode().GetSpec().GetPodCidr() {
		return nil
	}
	raw, err := w.txn.First(kindNode.name, indexPodCIDR, cidr)
	if err != nil {
		return fmt.Errorf("look up pod CIDR %s: %w", cidr, err)
	}
	if other := asObject(raw); other != nil && other.GetNode().GetMetadata().GetName() != metaOf(obj).GetName() {
		return invalidf("Node %q is invalid: %s", metaOf(obj).GetName(),
			podCIDRTaken(cidr, other.GetNode().GetMetadata().GetName()))
	}
	return nil
}

// status replaces the stored object's status with op.object's, keeping
// everything else. An unchanged status writes nothing and returns the
// stored object as it is.
func (w *writer) status(op *corralpb.Op) (*corralpb.Object, error) {
	obj := op.GetObject()
	k := kindOf(obj)
	if k == nil {
		return nil, invalidf("status: object has no kind")
	}
	m := metaOf(obj)
	ns, name := m.GetNamespace(), m.GetName()
	existing, err := w.get(k, ns, name)
	if err != nil {
		return nil, err
	}
	if existing == nil {
		return nil, notFound(k, name)
	}
	if err := checkPrecondition(k, name, op, existing, false); err != nil {
		return nil, err
	}
	src := innerOf(obj).ProtoReflect()
	f := src.Descriptor().Fields().ByName("status")
	if f == nil {
		return nil, invalidf("status: %s has no status", k.groupResource())
	}
	old := innerOf(existing).ProtoReflect()
	if proto.Equal(old.Get(f).Message().Interface(), src.Get(f).Message().Interface()) {
		return existing, nil
	}
	stored := withStatus(existing, f, src, w.owned)
	metaOf(stored).ResourceVersion = w.rv
	// A status changes no link: the node and the owners are elsewhere.
	if err := w.insertRow(k.name, existing, stored); err != nil {
		return nil, fmt.Errorf("status %s %s/%s: %w", k.name, ns, name, err)
	}
	w.statusTouched.add(k)
	if k == kindPod && lostReadiness(existing, stored) {
		w.readinessLost = true
	}
	w.events = append(w.events, Event{Type: EventModified, Index: w.index, Object: stored})
	return stored, nil
}

// withStatus returns the next version of existing: its own copy of the
// metadata (which the caller stamps) and src's status field f, sharing
// everything else with existing (api.Fill) — stored objects are never
// changed in place, and a pod's spec is most of it: a status report from
// an agent copies neither the spec nor the labels, three times over in a
// three-server cluster. With owned, src is the writer's to keep and its
// status is not copied either.
func withStatus(existing *corralpb.Object, f protoreflect.FieldDescriptor, src protoreflect.Message, owned bool) *corralpb.Object {
	er := existing.ProtoReflect()
	kind := er.WhichOneof(er.Descriptor().Oneofs().ByName("kind"))
	inner := er.Get(kind).Message().New()
	if md := inner.Descriptor().Fields().ByName("metadata"); md != nil {
		// Set in both, so Fill fills this copy rather than sharing
		// existing's metadata.
		inner.Set(md, protoreflect.ValueOfMessage((&corralpb.ObjectMeta{}).ProtoReflect()))
	}
	stored := &corralpb.Object{}
	stored.ProtoReflect().Set(kind, protoreflect.ValueOfMessage(inner))
	api.Fill(stored, existing)
	switch {
	case src.Has(f) && owned:
		inner.Set(f, src.Get(f))
	case src.Has(f):
		inner.Set(f, protoreflect.ValueOfMessage(proto.Clone(src.Get(f).Message().Interface()).ProtoReflect()))
	default:
		inner.Clear(f)
	}
	return stored
}

// lostReadiness reports whether a pod's next version (nil when deleted)
// takes readiness from it (ReadinessGuard): it was Ready, and next is not,
// or has been Ready since another time.
func lostReadiness(pod, next *corralpb.Object) bool {
	was, since := podReady(pod)
	if !was {
		return false
	}
	is, nextSince := podReady(next)
	return !is || !proto.Equal(since, nextSince)
}

// podReady returns whether a pod's Ready condition is True, and its last
// transition time.
func podReady(o *corralpb.Object) (bool, *timestamppb.Timestamp) {
	c := api.PodCondition(o.GetPod().GetStatus(), "Ready")
	return c.GetStatus() == "True", c.GetLastTransitionTime()
}

// delete removes the object named by op.key (or by op.object when key is
// unset). Deleting a namespace deletes everything in it.
func (w *writer) delete(op *corralpb.Op) (*corralpb.Object, error) {
	key := op.GetKey()
	if key == nil {
		if k, m := kindOf(op.GetObject()), metaOf(op.GetObject()); k != nil && m != nil {
			key = &corralpb.ObjectKey{Kind: k.name, Namespace: m.GetNamespace(), Name: m.GetName()}
		}
	}
	if key == nil {
		return nil, invalidf("delete: op has neither key nor object")
	}
	k, ok := lookupKind(key.GetKind())
	if !ok {
		return nil, invalidf("delete: unknown kind %q", key.GetKind())
	}
	ns, name := key.GetNamespace(), key.GetName()
	if err := checkName(k, ns, name); err != nil {
		return nil, err
	}
	existing, err := w.get(k, ns, name)
	if err != nil {
		return nil, err
	}
	if err := checkPrecondition(k, name, op, existing, false); err != nil {
		return nil, err
	}
	if k == kindNamespace {
		if err := w.deleteNamespaceContents(name); err != nil {
			return nil, err
		}
	}
	if err := w.remove(k, existing); err != nil {
		return nil, err
	}
	return existing, nil
}

// deleteNamespaceContents removes every object in namespace ns, kind by
// kind in the fixed kind order, each kind in name order.
func (w *writer) deleteNamespaceContents(ns string) error {
	for _, k := range kinds {
		if !k.namespaced {
			continue
		}
		it, err := w.txn.Get(k.name, indexNamespace, ns)
		if err != nil {
			return fmt.Errorf("list %s in namespace %s: %w", k.name, ns, err)
		}
		var doomed []*corralpb.Object
		for raw := it.Next(); raw != nil; raw = it.Next() {
			doomed = append(doomed, raw.(*corralpb.Object))
		}
		for _, o := range doomed {
			if err := w.remove(k, o); err != nil {
				return err
			}
		}
	}
	return nil
}

// remove deletes a stored object and records its DELETED event.
func (w *writer) remove(k *kindInfo, o *corralpb.Object) error {
	if err := w.deleteRow(k.name, o); err != nil {
		m := metaOf(o)
		return fmt.Errorf("delete %s %s/%s: %w", k.name, m.GetNamespace(), m.GetName(), err)
	}
	if err := w.relink(k, o, nil); err != nil {
		return err
	}
	if k == kindPod && lostReadiness(o, nil) {
		w.readinessLost = true
	}
	w.touched.add(k)
	w.events = append(w.events, Event{Type: EventDeleted, Index: w.index, Object: o})
	return nil
}

// get returns the stored object or nil.
func (w *writer) get(k *kindInfo, ns, name string) (*corralpb.Object, error) {
	raw, err := w.txn.First(k.name, indexID, ns, name)
	if err != nil {
		return nil, fmt.Errorf("get %s %s/%s: %w", k.name, ns, name, err)
	}
	if raw == nil {
		return nil, nil
	}
	return raw.(*corralpb.Object), nil
}

// checkNamespace fails with NOT_FOUND unless namespace ns exists.
func (w *writer) checkNamespace(ns string) error {
	existing, err := w.get(kindNamespace, "", ns)
	if err != nil {
		return err
	}
	if existing == nil {
		return notFound(kindNamespace, ns)
	}
	return nil
}

// checkName checks that an object's name is set and that it has a
// namespace exactly when its kind is namespaced.
func checkName(k *kindInfo, ns, name string) error {
	switch {
	case name == "":
		return invalidf("%s: resource name may not be empty", k.groupResource())
	case k.namespaced && ns == "":
		return invalidf("%s %q: namespace may not be empty", k.groupResource(), name)
	case !k.namespaced && ns != "":
		return invalidf("%s %q: cluster-scoped objects have no namespace (got %q)", k.groupResource(), name, ns)
	}
	return nil
}

// checkPrecondition checks op's precondition and uid against the stored
// object (nil when missing). A DELETE needs the object to exist whatever its
// precondition; MUST_NOT_EXIST makes no sense for one.
func checkPrecondition(k *kindInfo, name string, op *corralpb.Op, existing *corralpb.Object, put bool) error {
	switch op.GetPrecondition() {
	case corralpb.Op_NONE:
		if !put && existing == nil {
			return notFound(k, name)
		}
	case corralpb.Op_MUST_NOT_EXIST:
		if !put {
			return invalidf("delete %s %q: precondition MUST_NOT_EXIST is not valid for a delete", k.groupResource(), name)
		}
		if existing != nil {
			return alreadyExists(k, name)
		}
	case corralpb.Op_MUST_EXIST:
		if existing == nil {
			return notFound(k, name)
		}
	case corralpb.Op_RESOURCE_VERSION:
		if existing == nil {
			return notFound(k, name)
		}
		if metaOf(existing).GetResourceVersion() != op.GetResourceVersion() {
			return conflict(k, name, errModified)
		}
	default:
		return invalidf("%s %q: unknown precondition %s", k.groupResource(), name, op.GetPrecondition())
	}
	if uid := op.GetUid(); uid != "" {
		if existing == nil {
			return notFound(k, name)
		}
		if got := metaOf(existing).GetUid(); got != uid {
			return conflict(k, name, fmt.Sprintf("Precondition failed: UID in precondition: %s, UID in object meta: %s", uid, got))
		}
	}
	return nil
}
