package server

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/corral-dev/corral/api"
	"github.com/corral-dev/corral/events"
	corralpb "github.com/corral-dev/corral/proto"
	"github.com/corral-dev/corral/raftstore"
	"github.com/corral-dev/corral/raftstore/state"
)

// Limits of event recording.
const (
	// maxEventsPerCall bounds one RecordEvents call (a Buffer sends at most
	// events.MaxBatch).
	maxEventsPerCall = events.MaxPending
	// eventAttempts bounds the compare-and-set retries of one event.
	eventAttempts = 5
	// eventWriters bounds the events of one call written at once.
	eventWriters = 32
)

// RecordEvents stores events recorded in this process (the leader's
// controllers send their events.Buffer here): each is correlated with the
// stored events about its object and counted or created, as for agents.
// The error is a gRPC status error, or an *events.PartialError naming the
// events not recorded when others were.
func (s *Server) RecordEvents(ctx context.Context, evs []*corralpb.Event) error {
	failed, err := recordEvents(ctx, s.rs, evs)
	if len(failed) > 0 {
		return &events.PartialError{Failed: failed, Err: err}
	}
	return err
}

// RecordEvents stores events an agent recorded about its own Node or the
// pods bound to it (Kubernetes' node authorizer rule); an event about any
// other object fails the whole call with PermissionDenied. When some are
// recorded and others are not, the response lists the others.
func (n *nodeService) RecordEvents(ctx context.Context, req *corralpb.RecordEventsRequest) (*corralpb.RecordEventsResponse, error) {
	if err := checkNode(ctx, req.GetNodeName()); err != nil {
		return nil, err
	}
	node := req.GetNodeName()
	admitted, from, err := admitEvents(req.GetEvents(), node, time.Now())
	if err != nil {
		return nil, err
	}
	st, err := n.rs.ConsistentRead(ctx)
	if err != nil {
		return nil, toStatus(fmt.Errorf("record events: read state: %w", err))
	}
	for _, ev := range admitted {
		if err := authorizeNodeEvent(st, node, ev); err != nil {
			return nil, err
		}
	}
	failed, err := recordAdmitted(ctx, n.rs, st, admitted, from)
	if err != nil && len(failed) == 0 {
		return nil, err
	}
	resp := &corralpb.RecordEventsResponse{}
	for _, i := range failed {
		resp.Failed = append(resp.Failed, int32(i))
	}
	if err != nil {
		resp.Error = err.Error()
	}
	return resp, nil
}

// authorizeNodeEvent lets a node record events about itself and about the
// pods bound to it. A pod that no longer exists (or was recreated with
// another uid) cannot be checked and is let through: agents report the
// stopping of pods deleted a moment ago.
func authorizeNodeEvent(st *state.Store, node string, ev *corralpb.Event) error {
	ref := ev.GetInvolvedObject()
	switch ref.GetKind() {
	case "Node":
		if ref.GetName() == node {
			return nil
		}
	case "Pod":
		pod, err := st.Get(nil, "Pod", ref.GetNamespace(), ref.GetName())
		if err != nil {
			return toStatus(err)
		}
		if pod == nil || (ref.GetUid() != "" && ref.GetUid() != pod.GetPod().GetMetadata().GetUid()) {
			return nil
		}
		if bound := pod.GetPod().GetSpec().GetNodeName(); bound != node {
			return status.Errorf(codes.PermissionDenied, "node %q may not record events about pod %s/%s bound to %q",
				node, ref.GetNamespace(), ref.GetName(), bound)
		}
		return nil
	}
	return status.Errorf(codes.PermissionDenied, "node %q may not record events about %s %q",
		node, ref.GetKind(), ref.GetName())
}

// recordEvents stores events: identical ones of the call are merged, then
// each is correlated with the stored events about its object
// (events.Aggregate) and written with compare-and-set, one batch per event
// so that one failure does not hold back the others (the group committer
// packs them into few Raft entries). Events in a namespace that does not
// exist are dropped. Nothing is written when any event is invalid.
//
// When some events are recorded and others not, it returns the indexes in
// evs of the others with the error; when none is, the error alone.
func recordEvents(ctx context.Context, rs *raftstore.Server, evs []*corralpb.Event) ([]int, error) {
	admitted, from, err := admitEvents(evs, "", time.Now())
	if err != nil {
		return nil, err
	}
	st, err := rs.ConsistentRead(ctx)
	if err != nil {
		return nil, toStatus(fmt.Errorf("record events: read state: %w", err))
	}
	return recordAdmitted(ctx, rs, st, admitted, from)
}

// recordAdmitted writes admitted events (see writeEvents). When some are
// recorded and others not, it returns the indexes in the request of the
// others (from, as admitEvents returns it, maps admitted events to the
// request's) with the error; when none is, the error alone.
func recordAdmitted(ctx context.Context, rs *raftstore.Server, st *state.Store, admitted []*corralpb.Event, from [][]int) ([]int, error) {
	failed, err := writeEvents(ctx, rs, st, admitted)
	if err != nil && len(failed) == len(admitted) {
		return nil, err
	}
	return requestIndexes(failed, from), err
}

// requestIndexes maps indexes of admitted events to the indexes of the
// request's events merged into them (from, as admitEvents returns it).
func requestIndexes(failed []int, from [][]int) []int {
	var out []int
	for _, i := range failed {
		out = append(out, from[i]...)
	}
	slices.Sort(out)
	return out
}

// writeEvents writes admitted events concurrently (at most eventWriters at
// once), starting from st, a consistent read. It returns the indexes of
// the events not recorded, in order, and the first error.
func writeEvents(ctx context.Context, rs *raftstore.Server, st *state.Store, admitted []*corralpb.Event) ([]int, error) {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		failed   []int
		firstErr error
		slots    = make(chan struct{}, eventWriters)
	)
	for i, ev := range admitted {
		wg.Add(1)
		slots <- struct{}{}
		go func() {
			defer func() { <-slots; wg.Done() }()
			if err := recordEvent(ctx, rs, st, ev); err != nil {
				mu.Lock()
				failed = append(failed, i)
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	slices.Sort(failed)
	return failed, firstErr
}

// admitEvents checks every event, defaults an empty type to Normal and an
// empty source host to host, and merges identical events (events.Key),
// adding up their counts. Order is kept; evs is not changed. from lists,
// for each event returned, the indexes of the events of evs merged into it.
func admitEvents(evs []*corralpb.Event, host string, now time.Time) (out []*corralpb.Event, from [][]int, err error) {
	if len(evs) > maxEventsPerCall {
		return nil, nil, invalidf("record events: %d events in one call, at most %d", len(evs), maxEventsPerCall)
	}
	byKey := map[string]int{}
	for i, in := range evs {
		ev := proto.Clone(in).(*corralpb.Event)
		if ev.Type == "" {
			ev.Type = events.TypeNormal
		}
		if ev.Source == nil {
			ev.Source = &corralpb.EventSource{}
		}
		if ev.Source.Host == "" {
			ev.Source.Host = host
		}
		ev.Count = max(ev.Count, 1)
		if err := checkEvent(ev, now); err != nil {
			return nil, nil, invalidf("events[%d]: %v", i, err)
		}
		key := events.Key(ev)
		if j, ok := byKey[key]; ok {
			out[j].Count += ev.Count
			from[j] = append(from[j], i)
			continue
		}
		byKey[key] = len(out)
		out = append(out, ev)
		from = append(from, []int{i})
	}
	return out, from, nil
}

// checkEvent validates an incoming event and the Event it would create.
func checkEvent(ev *corralpb.Event, now time.Time) error {
	ref := ev.GetInvolvedObject()
	switch {
	case ref.GetKind() == "":
		return fmt.Errorf("involvedObject.kind: Required value")
	case ref.GetName() == "":
		return fmt.Errorf("involvedObject.name: Required value")
	case ev.GetReason() == "":
		return fmt.Errorf("reason: Required value")
	}
	if k, ok := api.KindByName(ref.GetKind()); ok && k.Namespaced && ref.GetNamespace() == "" {
		return fmt.Errorf("involvedObject.namespace: Required value: %s is namespaced", k.Kind)
	}
	probe, _ := events.Aggregate(nil, ev, now)
	return api.Validate(api.Wrap(probe))
}

// recordEvent correlates one event with the stored ones and writes the
// result with compare-and-set, re-reading and retrying a bounded number of
// times when another writer got there first.
func recordEvent(ctx context.Context, rs *raftstore.Server, st *state.Store, ev *corralpb.Event) error {
	ref := ev.GetInvolvedObject()
	ns := events.Namespace(ref)
	for attempt := 0; attempt < eventAttempts; attempt++ {
		if attempt > 0 {
			var err error
			if st, err = rs.ConsistentRead(ctx); err != nil {
				return toStatus(fmt.Errorf("record event: read state: %w", err))
			}
		}
		stored, err := st.EventsLike(nil, ns, ref.GetName(), ev.GetReason(), events.CorrelationMessage(ev.GetMessage()))
		if err != nil {
			return toStatus(err)
		}
		existing := make([]*corralpb.Event, len(stored))
		for i, o := range stored {
			existing[i] = o.GetEvent()
		}
		now := time.Now()
		put, isNew := events.Aggregate(existing, ev, now)
		obj := api.Wrap(put)
		op := &corralpb.Op{Type: corralpb.Op_PUT, Object: obj}
		if isNew {
			prepareCreate(obj, now)
			op.Precondition = corralpb.Op_MUST_NOT_EXIST
		} else {
			op.Precondition, op.ResourceVersion = corralpb.Op_RESOURCE_VERSION, put.GetMetadata().GetResourceVersion()
			op.Uid = put.GetMetadata().GetUid()
		}
		res, err := rs.Write(ctx, &corralpb.Batch{Ops: []*corralpb.Op{op}, OmitObjects: true})
		if err != nil {
			return toStatus(fmt.Errorf("record event %s %s/%s: %w", ev.GetReason(), ns, ref.GetName(), err))
		}
		switch res.GetCode() {
		case corralpb.ErrorCode_OK:
			return nil
		case corralpb.ErrorCode_NOT_FOUND:
			if isNew {
				// The namespace is gone, and the object with it.
				return nil
			}
			// The event expired meanwhile: create it afresh.
		case corralpb.ErrorCode_CONFLICT, corralpb.ErrorCode_ALREADY_EXISTS:
		default:
			return resultError(res)
		}
	}
	return status.Errorf(codes.Aborted, "record event %s %s/%s: gave up after %d attempts: the events keep changing",
		ev.GetReason(), ns, ref.GetName(), eventAttempts)
}
