package server

import (
	"crypto/rand"
	"fmt"
	"slices"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

// newUID returns a random RFC 4122 version 4 UUID.
func newUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// randomSuffix returns n characters from Kubernetes' generateName alphabet
// (no vowels, no confusable digits).
func randomSuffix(n int) string {
	const alphabet = "bcdfghjklmnpqrstvwxz2456789"
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func timestamp(now time.Time) *timestamppb.Timestamp {
	return timestamppb.New(now.UTC().Truncate(time.Second))
}

// field returns the descriptor of the named top-level field of an object's
// inner message, or nil.
func field(m proto.Message, name protoreflect.Name) protoreflect.FieldDescriptor {
	return m.ProtoReflect().Descriptor().Fields().ByName(name)
}

// statusOwnedBy reports whether the kind's status belongs to the system
// (controllers and agents) rather than to whoever writes the object: users'
// writes never change it, as with Kubernetes' status subresource.
func statusOwnedBy(kind string) bool {
	switch kind {
	case "DaemonSet", "Pod", "Node", "Namespace":
		return true
	}
	return false
}

// prepareCreate stamps a new object with the fields the server owns.
func prepareCreate(o *corralpb.Object, now time.Time) {
	m := api.Meta(o)
	if m.Name == "" && m.GenerateName != "" {
		m.Name = m.GenerateName + randomSuffix(5)
	}
	m.Uid = newUID()
	m.CreationTimestamp = timestamp(now)
	m.ResourceVersion = ""
	m.DeletionTimestamp = nil
	inner := api.Inner(o)
	if field(inner, "spec") != nil {
		m.Generation = 1
	}
	if kind := api.KindOf(o); kind == "DaemonSet" || kind == "Pod" {
		if f := field(inner, "status"); f != nil {
			inner.ProtoReflect().Clear(f)
		}
	}
}

// mergeApply returns the stored object with the manifest's user-owned parts
// laid over it: labels and annotations (and owner references and finalizers
// when the manifest names them), and every top-level field but apiVersion,
// kind, metadata and status. Server-owned metadata and status are kept.
func mergeApply(existing, manifest *corralpb.Object) *corralpb.Object {
	out := proto.Clone(existing).(*corralpb.Object)
	om, mm := api.Meta(out), api.Meta(manifest)
	om.Labels, om.Annotations = mm.Labels, mm.Annotations
	if len(mm.OwnerReferences) > 0 {
		om.OwnerReferences = mm.OwnerReferences
	}
	if len(mm.Finalizers) > 0 {
		om.Finalizers = mm.Finalizers
	}
	dst, src := api.Inner(out).ProtoReflect(), api.Inner(manifest).ProtoReflect()
	fields := dst.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		f := fields.Get(i)
		switch f.Name() {
		case "api_version", "kind", "metadata", "status":
			continue
		}
		if src.Has(f) {
			dst.Set(f, src.Get(f))
		} else {
			dst.Clear(f)
		}
	}
	keepPodCIDR(existing, out)
	bumpGeneration(existing, out)
	return out
}

// keepPodCIDR keeps a node's allocated pod CIDR when a client's object
// leaves it out (a manifest written before the node registered): the
// servers allocate it, as Kubernetes' node IPAM does, and it cannot change.
func keepPodCIDR(existing, out *corralpb.Object) {
	en, on := existing.GetNode(), out.GetNode()
	if en.GetSpec().GetPodCidr() == "" || on == nil || on.GetSpec().GetPodCidr() != "" {
		return
	}
	if on.Spec == nil {
		on.Spec = &corralpb.NodeSpec{}
	}
	on.Spec.PodCidr, on.Spec.PodCidrs = en.GetSpec().GetPodCidr(), slices.Clone(en.GetSpec().GetPodCidrs())
}

// mergeUpdate returns incoming, a whole object written by a client, with the
// server-owned metadata (and, for kinds whose status the system owns, the
// status) taken from the stored object.
func mergeUpdate(existing, incoming *corralpb.Object) *corralpb.Object {
	out := proto.Clone(incoming).(*corralpb.Object)
	om, em := api.Meta(out), api.Meta(existing)
	om.Uid, om.CreationTimestamp, om.Generation = em.Uid, em.CreationTimestamp, em.Generation
	om.DeletionTimestamp, om.DeletionGracePeriodSeconds = em.DeletionTimestamp, em.DeletionGracePeriodSeconds
	om.ResourceVersion = em.ResourceVersion
	if statusOwnedBy(api.KindOf(existing)) {
		ei, oi := api.Inner(existing).ProtoReflect(), api.Inner(out).ProtoReflect()
		if f := field(api.Inner(out), "status"); f != nil {
			if ei.Has(f) {
				oi.Set(f, ei.Get(f))
			} else {
				oi.Clear(f)
			}
		}
	}
	keepPodCIDR(existing, out)
	bumpGeneration(existing, out)
	return out
}

// bumpGeneration increments metadata.generation when the spec changed.
func bumpGeneration(old, updated *corralpb.Object) {
	oi, ni := api.Inner(old), api.Inner(updated)
	f := field(ni, "spec")
	if f == nil {
		return
	}
	a, b := oi.ProtoReflect().Get(f).Message().Interface(), ni.ProtoReflect().Get(f).Message().Interface()
	if !proto.Equal(a, b) {
		api.Meta(updated).Generation = api.Meta(old).Generation + 1
	}
}

// setTypeMeta writes the kind's apiVersion and kind into the object, so that
// stored objects always carry them whatever the client sent.
func setTypeMeta(o *corralpb.Object, k api.Kind) {
	r := api.Inner(o).ProtoReflect()
	fs := r.Descriptor().Fields()
	if f := fs.ByName("api_version"); f != nil {
		r.Set(f, protoreflect.ValueOfString(k.APIVersion()))
	}
	if f := fs.ByName("kind"); f != nil {
		r.Set(f, protoreflect.ValueOfString(k.Kind))
	}
}

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }
