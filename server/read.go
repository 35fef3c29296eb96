package server

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
	"github.com/corral-dev/corral/raftstore/state"
)

// Get returns one object.
func (s *clusterService) Get(ctx context.Context, req *corralpb.GetRequest) (*corralpb.ObjectResponse, error) {
	k, ns, err := scope(req.GetKind(), req.GetNamespace(), false)
	if err != nil {
		return nil, err
	}
	st, err := s.rs.ConsistentRead(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	o, err := st.Get(nil, k.Kind, ns, req.GetName())
	if err != nil {
		return nil, toStatus(err)
	}
	if o == nil {
		return nil, notFound(k, req.GetName())
	}
	return &corralpb.ObjectResponse{Object: o}, nil
}

// List returns the objects of a kind in a namespace (or all namespaces)
// that match the label and field selectors.
func (s *clusterService) List(ctx context.Context, req *corralpb.ListRequest) (*corralpb.ListResponse, error) {
	k, ns, err := scope(req.GetKind(), req.GetNamespace(), true)
	if err != nil {
		return nil, err
	}
	f, err := newFilter(k, req.GetLabelSelector(), req.GetFieldSelector())
	if err != nil {
		return nil, err
	}
	st, err := s.rs.ConsistentRead(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	idx := st.LatestIndex()
	objs, err := st.List(nil, k.Kind, ns)
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &corralpb.ListResponse{ResourceVersion: strconv.FormatUint(idx, 10)}
	for _, o := range objs {
		if f.matches(o) {
			resp.Items = append(resp.Items, o)
		}
	}
	return resp, nil
}

// scope resolves a kind and the namespace a request addresses: "default"
// for a namespaced kind when none is given (unless listing, where empty
// means every namespace), and "" for cluster-scoped kinds.
func scope(kind, ns string, list bool) (api.Kind, string, error) {
	k, ok := api.KindByName(kind)
	if !ok {
		return api.Kind{}, "", invalidf("the server doesn't have a resource type %q", kind)
	}
	if !k.Namespaced {
		return k, "", nil
	}
	if ns == "" && !list {
		ns = "default"
	}
	return k, ns, nil
}

// filter is a parsed label and field selector.
type filter struct {
	kind   api.Kind
	labels labels.Selector
	fields fields.Selector
}

func newFilter(k api.Kind, labelSel, fieldSel string) (*filter, error) {
	f := &filter{kind: k, labels: labels.Everything(), fields: fields.Everything()}
	if labelSel != "" {
		sel, err := api.ParseSelector(labelSel)
		if err != nil {
			return nil, invalidf("unable to parse requirement: %v", err)
		}
		f.labels = sel
	}
	if fieldSel != "" {
		sel, err := fields.ParseSelector(fieldSel)
		if err != nil {
			return nil, invalidf("invalid field selector %q: %v", fieldSel, err)
		}
		for _, r := range sel.Requirements() {
			if _, ok := fieldSet(k, nil)[r.Field]; !ok {
				return nil, invalidf("field label not supported: %s", r.Field)
			}
		}
		f.fields = sel
	}
	return f, nil
}

func (f *filter) matches(o *corralpb.Object) bool {
	if !f.labels.Empty() && !f.labels.Matches(labels.Set(api.Meta(o).Labels)) {
		return false
	}
	return f.fields.Empty() || f.fields.Matches(fieldSet(f.kind, o))
}

// fieldSet lists the fields a kind can be selected by, as Kubernetes
// supports them, with o's values (empty values when o is nil).
func fieldSet(k api.Kind, o *corralpb.Object) fields.Set {
	var m *corralpb.ObjectMeta
	if o != nil {
		m = api.Meta(o)
	}
	set := fields.Set{"metadata.name": m.GetName()}
	if k.Namespaced {
		set["metadata.namespace"] = m.GetNamespace()
	}
	switch k.Kind {
	case "Pod":
		p := o.GetPod()
		set["spec.nodeName"] = p.GetSpec().GetNodeName()
		set["spec.restartPolicy"] = p.GetSpec().GetRestartPolicy()
		set["status.phase"] = p.GetStatus().GetPhase()
		set["status.podIP"] = p.GetStatus().GetPodIp()
	case "Node":
		set["spec.unschedulable"] = strconv.FormatBool(o.GetNode().GetSpec().GetUnschedulable())
	case "Event":
		e := o.GetEvent()
		io := e.GetInvolvedObject()
		set["involvedObject.kind"] = io.GetKind()
		set["involvedObject.namespace"] = io.GetNamespace()
		set["involvedObject.name"] = io.GetName()
		set["involvedObject.uid"] = io.GetUid()
		set["involvedObject.apiVersion"] = io.GetApiVersion()
		set["involvedObject.fieldPath"] = io.GetFieldPath()
		set["reason"] = e.GetReason()
		set["type"] = e.GetType()
		set["source"] = e.GetSource().GetComponent()
	case "Namespace":
		set["status.phase"] = o.GetNamespace().GetStatus().GetPhase()
	}
	return set
}

// Watch streams changes to the objects a request selects: with no
// resourceVersion, every current object as ADDED first, then every change.
// An object that stops matching the selectors is sent as DELETED, one that
// starts matching as ADDED.
func (s *clusterService) Watch(req *corralpb.WatchRequest, stream corralpb.Cluster_WatchServer) error {
	ctx := stream.Context()
	k, ns, err := scope(req.GetKind(), req.GetNamespace(), true)
	if err != nil {
		return err
	}
	f, err := newFilter(k, req.GetLabelSelector(), req.GetFieldSelector())
	if err != nil {
		return err
	}
	st, err := s.rs.ConsistentRead(ctx)
	if err != nil {
		return toStatus(err)
	}
	matched := map[string]bool{}
	var after uint64
	if rv := req.GetResourceVersion(); rv != "" {
		if after, err = strconv.ParseUint(rv, 10, 64); err != nil {
			return invalidf("resourceVersion %q: not a number", rv)
		}
		// The objects unchanged since rv are as the watcher knows them
		// (from its list); the others are judged as their events come.
		objs, err := st.List(nil, k.Kind, ns)
		if err != nil {
			return toStatus(err)
		}
		for _, o := range objs {
			if v, err := strconv.ParseUint(api.Meta(o).ResourceVersion, 10, 64); err == nil && v <= after {
				matched[key(o)] = f.matches(o)
			}
		}
	} else {
		view := st.Snapshot()
		after = view.LatestIndex()
		objs, err := view.List(nil, k.Kind, ns)
		if err != nil {
			return toStatus(err)
		}
		for _, o := range objs {
			matched[key(o)] = f.matches(o)
			if matched[key(o)] {
				if err := stream.Send(&corralpb.WatchEvent{Type: "ADDED", Object: o}); err != nil {
					return err
				}
			}
		}
	}
	return s.streamEvents(ctx, st, after, k, ns, f, matched, stream)
}

func (s *clusterService) streamEvents(ctx context.Context, st *state.Store, after uint64, k api.Kind, ns string,
	f *filter, matched map[string]bool, stream corralpb.Cluster_WatchServer) error {
	sub, err := st.Subscribe(after)
	if errors.Is(err, state.ErrTooOld) {
		return status.Errorf(codes.OutOfRange, "too old resource version: %d", after)
	}
	if err != nil {
		return toStatus(err)
	}
	defer sub.Close()
	for {
		events, err := sub.Next(ctx)
		if err != nil {
			if errors.Is(err, state.ErrClosed) {
				return status.Error(codes.Unavailable, "state was replaced by a snapshot; watch again")
			}
			if errors.Is(err, state.ErrTooOld) {
				return status.Errorf(codes.OutOfRange, "too old resource version: watch fell behind")
			}
			return toStatus(err)
		}
		for _, ev := range events {
			if api.KindOf(ev.Object) != k.Kind || (ns != "" && api.Meta(ev.Object).Namespace != ns) {
				continue
			}
			out, ok := s.translate(ev, f, matched)
			if !ok {
				continue
			}
			if err := stream.Send(out); err != nil {
				return fmt.Errorf("send watch event: %w", err)
			}
		}
	}
}

// translate turns a store event into the event this watcher sees, given
// what it knows of each object: matched[k] is true while the object
// matches the selectors, false once it is known not to, and absent when
// the watch began at a resourceVersion before the watcher saw the object.
// An unknown object is judged by its own versions: a DELETED one matched
// if its last version did, a changed one that matches now is MODIFIED if
// the store says it existed before, else ADDED.
func (s *clusterService) translate(ev state.Event, f *filter, matched map[string]bool) (*corralpb.WatchEvent, bool) {
	kk := key(ev.Object)
	was, known := matched[kk]
	if ev.Type == "DELETED" {
		delete(matched, kk)
		if !was && (known || !f.matches(ev.Object)) {
			return nil, false
		}
		// As Kubernetes does, the deleted object carries the deletion's
		// resourceVersion, so that a watcher can tell which changes were
		// committed together and resume after this one.
		o := proto.Clone(ev.Object).(*corralpb.Object)
		api.Meta(o).ResourceVersion = itoa(ev.Index)
		return &corralpb.WatchEvent{Type: "DELETED", Object: o}, true
	}
	now := f.matches(ev.Object)
	matched[kk] = now
	switch {
	case now && (was || (!known && ev.Type == "MODIFIED")):
		return &corralpb.WatchEvent{Type: "MODIFIED", Object: ev.Object}, true
	case now:
		return &corralpb.WatchEvent{Type: "ADDED", Object: ev.Object}, true
	case was:
		return &corralpb.WatchEvent{Type: "DELETED", Object: ev.Object}, true
	}
	return nil, false
}

func key(o *corralpb.Object) string {
	m := api.Meta(o)
	return m.Namespace + "/" + m.Name
}
