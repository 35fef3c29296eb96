package server

import (
	"context"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

// explainMissingNamespace adds to kubectl's `namespaces "x" not found` how to
// create the namespace.
func (s *clusterService) explainMissingNamespace(err error) error {
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.NotFound || !strings.HasPrefix(st.Message(), `namespaces "`) {
		return err
	}
	ns := strings.TrimSuffix(strings.TrimPrefix(st.Message(), `namespaces "`), `" not found`)
	return status.Errorf(codes.NotFound, "%s (create it first: corral create namespace %s)", st.Message(), ns)
}

// Create stores a new object; it fails with AlreadyExists when one of that
// name exists.
func (s *clusterService) Create(ctx context.Context, req *corralpb.CreateRequest) (*corralpb.ObjectResponse, error) {
	objs, err := admit([]*corralpb.Object{req.GetObject()})
	if err != nil {
		return nil, err
	}
	o := objs[0].obj
	prepareCreate(o, time.Now())
	if api.Meta(o).Name == "" {
		return nil, invalidf("%s: metadata.name: Required value: name or generateName is required", objs[0].kind.GroupResource())
	}
	if req.GetDryRun() {
		return &corralpb.ObjectResponse{Object: o}, nil
	}
	res, err := s.commit(ctx, &corralpb.Batch{Ops: []*corralpb.Op{{
		Type: corralpb.Op_PUT, Object: o, Precondition: corralpb.Op_MUST_NOT_EXIST}}})
	if err != nil {
		return nil, s.explainMissingNamespace(err)
	}
	return &corralpb.ObjectResponse{Object: res.GetObjects()[0]}, nil
}

// Update replaces a stored object. With metadata.resourceVersion set, the
// write succeeds only if that version is still current.
func (s *clusterService) Update(ctx context.Context, req *corralpb.UpdateRequest) (*corralpb.ObjectResponse, error) {
	objs, err := admit([]*corralpb.Object{req.GetObject()})
	if err != nil {
		return nil, err
	}
	in, k := objs[0].obj, objs[0].kind
	m := api.Meta(in)
	var out *corralpb.Object
	err = retry(ctx, func() error {
		st, err := s.rs.ConsistentRead(ctx)
		if err != nil {
			return toStatus(err)
		}
		existing, err := st.Get(nil, k.Kind, m.Namespace, m.Name)
		if err != nil {
			return toStatus(err)
		}
		if existing == nil {
			return notFound(k, m.Name)
		}
		em := api.Meta(existing)
		if m.ResourceVersion != "" && m.ResourceVersion != em.ResourceVersion {
			return conflict(k, m.Name)
		}
		if m.Uid != "" && m.Uid != em.Uid {
			return status.Errorf(codes.Aborted, "Precondition failed: UID in precondition: %s, UID in object meta: %s", m.Uid, em.Uid)
		}
		merged := mergeUpdate(existing, in)
		if err := api.ValidateUpdate(merged, existing); err != nil {
			return toStatus(err)
		}
		if proto.Equal(merged, existing) || req.GetDryRun() {
			out = merged
			return nil
		}
		op := &corralpb.Op{Type: corralpb.Op_PUT, Object: merged,
			Precondition: corralpb.Op_RESOURCE_VERSION, ResourceVersion: em.ResourceVersion}
		res, err := s.commit(ctx, &corralpb.Batch{Ops: []*corralpb.Op{op}})
		if err != nil {
			if m.ResourceVersion != "" && err == errRetry {
				return conflict(k, m.Name)
			}
			return err
		}
		out = res.GetObjects()[0]
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &corralpb.ObjectResponse{Object: out}, nil
}

// protectedNamespaces may not be deleted, as in Kubernetes.
var protectedNamespaces = map[string]bool{"default": true, "kube-system": true, "kube-public": true}

// Delete removes an object. propagationPolicy decides its dependents' fate:
// Background (default) deletes the owner now and leaves the dependents to
// the garbage collector; Orphan removes the owner reference from every
// dependent in the same batch; Foreground marks the owner deleting
// (deletionTimestamp and the foregroundDeletion finalizer) until the
// controller has deleted its dependents.
func (s *clusterService) Delete(ctx context.Context, req *corralpb.DeleteRequest) (*corralpb.DeleteResponse, error) {
	k, ok := api.KindByName(req.GetKind())
	if !ok {
		return nil, invalidf("unknown kind %q", req.GetKind())
	}
	ns := req.GetNamespace()
	if k.Namespaced && ns == "" {
		ns = "default"
	}
	if !k.Namespaced {
		ns = ""
	}
	if k.Kind == "Namespace" && protectedNamespaces[req.GetName()] {
		return nil, status.Errorf(codes.PermissionDenied, "namespaces %q is forbidden: this namespace may not be deleted", req.GetName())
	}
	policy := req.GetPropagationPolicy()
	switch policy {
	case "":
		policy = "Background"
	case "Background", "Foreground", "Orphan":
	default:
		return nil, invalidf("propagationPolicy: Unsupported value: %q: supported values: \"Background\", \"Foreground\", \"Orphan\"", policy)
	}
	var out *corralpb.Object
	err := retry(ctx, func() error {
		st, err := s.rs.ConsistentRead(ctx)
		if err != nil {
			return toStatus(err)
		}
		existing, err := st.Get(nil, k.Kind, ns, req.GetName())
		if err != nil {
			return toStatus(err)
		}
		if existing == nil {
			return notFound(k, req.GetName())
		}
		em := api.Meta(existing)
		if rv := req.GetResourceVersion(); rv != "" && rv != em.ResourceVersion {
			return conflict(k, req.GetName())
		}
		if uid := req.GetUid(); uid != "" && uid != em.Uid {
			return status.Errorf(codes.Aborted, "Precondition failed: UID in precondition: %s, UID in object meta: %s", uid, em.Uid)
		}
		dependents, err := st.ByOwner(nil, em.Uid)
		if err != nil {
			return toStatus(err)
		}
		b := deleteBatch(existing, k, dependents, policy, time.Now())
		if req.GetDryRun() {
			out = existing
			return nil
		}
		res, err := s.commit(ctx, b)
		if err != nil {
			return err
		}
		out = res.GetObjects()[len(res.GetObjects())-1]
		return nil
	})
	if err != nil {
		return nil, err
	}
	if k.Kind == "Node" && !req.GetDryRun() {
		s.freeNodeName(ctx, req.GetName())
	}
	return &corralpb.DeleteResponse{Object: out}, nil
}

// deleteBatch plans a delete under a propagation policy. The owner's op is
// always the last one.
func deleteBatch(owner *corralpb.Object, k api.Kind, dependents []*corralpb.Object, policy string, now time.Time) *corralpb.Batch {
	om := api.Meta(owner)
	b := &corralpb.Batch{}
	ownerDelete := &corralpb.Op{Type: corralpb.Op_DELETE, Uid: om.Uid,
		Key:          &corralpb.ObjectKey{Kind: k.Kind, Namespace: om.Namespace, Name: om.Name},
		Precondition: corralpb.Op_RESOURCE_VERSION, ResourceVersion: om.ResourceVersion}
	switch {
	case policy == "Orphan":
		for _, d := range dependents {
			o := proto.Clone(d).(*corralpb.Object)
			dm := api.Meta(o)
			refs := dm.OwnerReferences[:0]
			for _, r := range dm.OwnerReferences {
				if r.GetUid() != om.Uid {
					refs = append(refs, r)
				}
			}
			dm.OwnerReferences = refs
			b.Ops = append(b.Ops, &corralpb.Op{Type: corralpb.Op_PUT, Object: o,
				Precondition: corralpb.Op_RESOURCE_VERSION, ResourceVersion: api.Meta(d).ResourceVersion})
		}
		b.Ops = append(b.Ops, ownerDelete)
	case policy == "Foreground" && len(dependents) > 0:
		o := proto.Clone(owner).(*corralpb.Object)
		m := api.Meta(o)
		if m.DeletionTimestamp == nil {
			m.DeletionTimestamp = timestamp(now)
			zero := int64(0)
			m.DeletionGracePeriodSeconds = &zero
		}
		if !slices.Contains(m.Finalizers, "foregroundDeletion") {
			m.Finalizers = append(m.Finalizers, "foregroundDeletion")
		}
		b.Ops = append(b.Ops, &corralpb.Op{Type: corralpb.Op_PUT, Object: o,
			Precondition: corralpb.Op_RESOURCE_VERSION, ResourceVersion: om.ResourceVersion})
	default:
		b.Ops = append(b.Ops, ownerDelete)
	}
	return b
}
