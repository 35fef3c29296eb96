package server

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
	"github.com/corral-dev/corral/raftstore/state"
)

// checked is a request object that passed defaulting and validation.
type checked struct {
	obj  *corralpb.Object
	kind api.Kind
}

// admit defaults and validates objects from a client. Nothing is written
// when any of them is invalid.
func admit(objs []*corralpb.Object) ([]checked, error) {
	out := make([]checked, 0, len(objs))
	seen := map[string]bool{}
	for i, o := range objs {
		name := api.KindOf(o)
		k, ok := api.KindByName(name)
		if !ok {
			return nil, invalidf("object %d: unknown kind %q", i, name)
		}
		o = proto.Clone(o).(*corralpb.Object)
		api.SetDefaults(o)
		setTypeMeta(o, k)
		if err := api.Validate(o); err != nil {
			return nil, toStatus(err)
		}
		m := api.Meta(o)
		key := k.Kind + "/" + m.Namespace + "/" + m.Name
		if m.Name != "" && seen[key] {
			return nil, invalidf("%s %q appears twice in one request", k.GroupResource(), m.Name)
		}
		seen[key] = true
		out = append(out, checked{obj: o, kind: k})
	}
	return out, nil
}

// commit writes a batch and maps its outcome: errRetry for a lost race
// (the planner read state that changed before the batch committed).
func (s *clusterService) commit(ctx context.Context, b *corralpb.Batch) (*corralpb.BatchResult, error) {
	res, err := s.rs.Write(ctx, b)
	if err != nil {
		return nil, toStatus(err)
	}
	if res.GetCode() == corralpb.ErrorCode_CONFLICT || res.GetCode() == corralpb.ErrorCode_STALE {
		return res, errRetry
	}
	if err := resultError(res); err != nil {
		return nil, err
	}
	return res, nil
}

// retry runs plan-and-commit until it does not lose a race.
func retry(ctx context.Context, fn func() error) error {
	for attempt := 0; attempt < maxAttempts; attempt++ {
		err := fn()
		if !errors.Is(err, errRetry) {
			return err
		}
		if ctx.Err() != nil {
			return toStatus(ctx.Err())
		}
	}
	return toStatus(fmt.Errorf("gave up after %d attempts: the objects keep changing", maxAttempts))
}

// applyPlan is one attempt at an apply: the ops to commit and, per request
// object, the action and the index of its op (-1 when unchanged).
type applyPlan struct {
	batch   *corralpb.Batch
	actions []string
	opIndex []int
	current []*corralpb.Object
}

func planApply(st *state.Store, objs []checked, now time.Time) (*applyPlan, error) {
	p := &applyPlan{batch: &corralpb.Batch{}, actions: make([]string, len(objs)),
		opIndex: make([]int, len(objs)), current: make([]*corralpb.Object, len(objs))}
	// Namespaces first, so that a file creating a namespace and objects in
	// it applies in one go.
	order := make([]int, len(objs))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		return objs[order[a]].kind.Kind == "Namespace" && objs[order[b]].kind.Kind != "Namespace"
	})
	for _, i := range order {
		c := objs[i]
		m := api.Meta(c.obj)
		if m.Name == "" {
			return nil, invalidf("%s: metadata.name: Required value: name is required for apply", c.kind.GroupResource())
		}
		existing, err := st.Get(nil, c.kind.Kind, m.Namespace, m.Name)
		if err != nil {
			return nil, toStatus(err)
		}
		p.opIndex[i] = -1
		if existing == nil {
			o := proto.Clone(c.obj).(*corralpb.Object)
			prepareCreate(o, now)
			p.actions[i] = "created"
			p.opIndex[i] = len(p.batch.Ops)
			p.batch.Ops = append(p.batch.Ops, &corralpb.Op{Type: corralpb.Op_PUT, Object: o,
				Precondition: corralpb.Op_MUST_NOT_EXIST})
			continue
		}
		if rv := m.ResourceVersion; rv != "" && rv != api.Meta(existing).ResourceVersion {
			return nil, conflict(c.kind, m.Name)
		}
		merged := mergeApply(existing, c.obj)
		if proto.Equal(merged, existing) {
			p.actions[i] = "unchanged"
			p.current[i] = existing
			continue
		}
		if err := api.ValidateUpdate(merged, existing); err != nil {
			return nil, toStatus(err)
		}
		p.actions[i] = "configured"
		p.opIndex[i] = len(p.batch.Ops)
		p.batch.Ops = append(p.batch.Ops, &corralpb.Op{Type: corralpb.Op_PUT, Object: merged,
			Precondition: corralpb.Op_RESOURCE_VERSION, ResourceVersion: api.Meta(existing).ResourceVersion})
	}
	return p, nil
}

// Apply creates or updates every object of the request, atomically.
func (s *clusterService) Apply(ctx context.Context, req *corralpb.ApplyRequest) (*corralpb.ApplyResponse, error) {
	objs, err := admit(req.GetObjects())
	if err != nil {
		return nil, err
	}
	var resp *corralpb.ApplyResponse
	err = retry(ctx, func() error {
		st, err := s.rs.ConsistentRead(ctx)
		if err != nil {
			return toStatus(err)
		}
		p, err := planApply(st, objs, time.Now())
		if err != nil {
			return err
		}
		var res *corralpb.BatchResult
		if len(p.batch.Ops) > 0 && !req.GetDryRun() {
			if res, err = s.commit(ctx, p.batch); err != nil {
				return s.explainMissingNamespace(err)
			}
		}
		resp = &corralpb.ApplyResponse{}
		for i := range objs {
			o := p.current[i]
			if j := p.opIndex[i]; j >= 0 {
				o = p.batch.Ops[j].Object
				if res != nil {
					o = res.GetObjects()[j]
				}
			}
			resp.Results = append(resp.Results, &corralpb.ApplyResult{Object: o, Action: p.actions[i]})
		}
		return nil
	})
	return resp, err
}
