package server

import (
	"context"
	"maps"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
	"github.com/corral-dev/corral/raftstore/state"
)

// Assignments streams what a node must run: first the full set (its pods
// and the ConfigMaps they use, complete=true), then every change. A stream
// that falls behind the state store's event ring ends with OutOfRange; the
// agent reconnects and gets a full set again.
func (n *nodeService) Assignments(req *corralpb.AssignmentsRequest, stream corralpb.NodeAPI_AssignmentsServer) error {
	ctx := stream.Context()
	if err := checkNode(ctx, req.GetNodeName()); err != nil {
		return err
	}
	node := req.GetNodeName()
	hs := n.hub.register(node, req.GetRoutes()) // before the full set: see assignHub
	defer n.hub.unregister(hs)
	st, err := n.rs.ConsistentRead(ctx)
	if err != nil {
		return toStatus(err)
	}
	view := st.Snapshot()
	if !n.hub.covers(hs, view.LatestIndex()) {
		return status.Error(codes.Unavailable, "assignments: this server is still starting to follow changes; reconnect")
	}
	a := &assigner{node: node, pods: map[string]*corralpb.Pod{}, refs: map[string]int{}}
	first := &corralpb.AssignmentsMessage{Complete: true}
	pods, err := view.PodsByNode(nil, node)
	if err != nil {
		return toStatus(err)
	}
	for _, p := range pods {
		first.Items = append(first.Items, a.podItems(view, p)...)
	}
	if req.GetRoutes() {
		a.routes = map[string]string{}
		nodes, err := view.List(nil, "Node", "")
		if err != nil {
			return toStatus(err)
		}
		for _, o := range nodes {
			first.Items = append(first.Items, a.routeItems(o.GetNode(), false)...)
		}
	}
	first.ResourceVersion = itoa(view.LatestIndex())
	if err := stream.Send(first); err != nil {
		return err
	}
	return a.follow(ctx, st, hs, view.LatestIndex(), stream)
}

// assigner tracks what one node's stream has sent: its pods (by uid),
// how many of them use each ConfigMap, and, when the agent asked for
// routes, each node's route ("podCIDR via nodeIP"; nil when not asked).
type assigner struct {
	node   string
	pods   map[string]*corralpb.Pod // the version last sent, by uid
	refs   map[string]int
	routes map[string]string
}

// follow sends the node's changes after index from the hub's stream.
func (a *assigner) follow(ctx context.Context, st *state.Store, hs *hubStream, after uint64, stream corralpb.NodeAPI_AssignmentsServer) error {
	for {
		events, err := hs.next(ctx)
		if err != nil {
			return err
		}
		var pm *grpc.PreparedMsg
		err = hs.encoding(ctx, func() error {
			msg := &corralpb.AssignmentsMessage{}
			for _, ev := range events {
				if ev.Index <= after {
					continue // in the full set already
				}
				msg.Items = append(msg.Items, a.event(st, ev)...)
				msg.ResourceVersion = itoa(ev.Index)
			}
			if len(msg.Items) == 0 {
				return nil
			}
			pm = &grpc.PreparedMsg{}
			return pm.Encode(stream, msg)
		})
		if err != nil {
			return err
		}
		if pm == nil {
			continue
		}
		if err := stream.SendMsg(pm); err != nil {
			return err
		}
	}
}

// event turns one state change into the node's assignment changes.
func (a *assigner) event(st *state.Store, ev state.Event) []*corralpb.Assignment {
	switch o := ev.Object.Kind.(type) {
	case *corralpb.Object_Pod:
		// Every stream sees every event: decide cheaply, with no
		// allocation, for the pods of other nodes.
		uid := o.Pod.GetMetadata().GetUid()
		sent, had := a.pods[uid]
		mine := o.Pod.GetSpec().GetNodeName() == a.node && ev.Type != state.EventDeleted
		switch {
		case mine && had && sameAssignment(sent, o.Pod):
			// Its status changed: the agent wrote it and needs no echo.
			return nil
		case mine:
			return a.podItems(st, ev.Object)
		case had:
			delete(a.pods, uid)
			a.release(o.Pod)
			return []*corralpb.Assignment{{Item: &corralpb.Assignment_Removed{Removed: &corralpb.ObjectKey{
				Kind: "Pod", Namespace: o.Pod.GetMetadata().GetNamespace(), Name: o.Pod.GetMetadata().GetName()}}}}
		}
	case *corralpb.Object_ConfigMap:
		if len(a.refs) == 0 {
			return nil
		}
		m := o.ConfigMap.GetMetadata()
		if a.refs[m.GetNamespace()+"/"+m.GetName()] == 0 {
			return nil
		}
		if ev.Type == state.EventDeleted {
			return []*corralpb.Assignment{{Item: &corralpb.Assignment_Removed{Removed: &corralpb.ObjectKey{
				Kind: "ConfigMap", Namespace: o.ConfigMap.GetMetadata().GetNamespace(), Name: o.ConfigMap.GetMetadata().GetName()}}}}
		}
		return []*corralpb.Assignment{{Item: &corralpb.Assignment_ConfigMap{ConfigMap: o.ConfigMap}}}
	case *corralpb.Object_Node:
		if a.routes != nil {
			return a.routeItems(o.Node, ev.Type == state.EventDeleted)
		}
	}
	return nil
}

// routeItems returns the node's route when it is new or changed, or its
// removal when the node is gone or has no route any more. Nodes change
// on every condition transition; their routes almost never do.
func (a *assigner) routeItems(node *corralpb.Node, deleted bool) []*corralpb.Assignment {
	name := node.GetMetadata().GetName()
	key := routeKey(node, deleted)
	if key == "" {
		if _, had := a.routes[name]; !had {
			return nil
		}
		delete(a.routes, name)
		return []*corralpb.Assignment{{Item: &corralpb.Assignment_Removed{Removed: &corralpb.ObjectKey{Kind: "Node", Name: name}}}}
	}
	if a.routes[name] == key {
		return nil
	}
	a.routes[name] = key
	r := &corralpb.NodeRoute{NodeName: name, PodCidr: node.GetSpec().GetPodCidr(), NodeIp: internalIP(node)}
	return []*corralpb.Assignment{{Item: &corralpb.Assignment_Route{Route: r}}}
}

// routeKey is the node's route as "podCIDR via nodeIP", or "" when it has
// none: deleted, or without a pod CIDR or an InternalIP yet.
func routeKey(node *corralpb.Node, deleted bool) string {
	cidr, ip := node.GetSpec().GetPodCidr(), internalIP(node)
	if deleted || cidr == "" || ip == "" {
		return ""
	}
	return cidr + " via " + ip
}

// internalIP is the node's first non-empty InternalIP address, or "".
func internalIP(node *corralpb.Node) string {
	for _, ad := range node.GetStatus().GetAddresses() {
		if ad.GetType() == "InternalIP" && ad.GetAddress() != "" {
			return ad.GetAddress()
		}
	}
	return ""
}

// podItems records a pod as assigned and returns it with every ConfigMap it
// starts to use.
func (a *assigner) podItems(st *state.Store, obj *corralpb.Object) []*corralpb.Assignment {
	pod := obj.GetPod()
	uid := pod.GetMetadata().GetUid()
	out := []*corralpb.Assignment{{Item: &corralpb.Assignment_Pod{Pod: pod}}}
	_, had := a.pods[uid]
	a.pods[uid] = pod
	if had {
		return out // a pod's volumes and env sources are immutable
	}
	for _, name := range api.PodConfigMaps(pod) {
		ck := pod.GetMetadata().GetNamespace() + "/" + name
		a.refs[ck]++
		if a.refs[ck] > 1 {
			continue
		}
		cm, err := st.Get(nil, "ConfigMap", pod.GetMetadata().GetNamespace(), name)
		if err == nil && cm != nil {
			out = append(out, &corralpb.Assignment{Item: &corralpb.Assignment_ConfigMap{ConfigMap: cm.GetConfigMap()}})
		}
	}
	return out
}

// sameAssignment reports whether b differs from a only where the agent
// does not look: its status and resourceVersion.
func sameAssignment(a, b *corralpb.Pod) bool {
	am, bm := a.GetMetadata(), b.GetMetadata()
	return proto.Equal(a.GetSpec(), b.GetSpec()) &&
		maps.Equal(am.GetLabels(), bm.GetLabels()) && maps.Equal(am.GetAnnotations(), bm.GetAnnotations()) &&
		proto.Equal(am.GetDeletionTimestamp(), bm.GetDeletionTimestamp()) &&
		am.GetDeletionGracePeriodSeconds() == bm.GetDeletionGracePeriodSeconds() && am.GetGeneration() == bm.GetGeneration()
}

func (a *assigner) release(pod *corralpb.Pod) {
	for _, name := range api.PodConfigMaps(pod) {
		ck := pod.GetMetadata().GetNamespace() + "/" + name
		if a.refs[ck]--; a.refs[ck] <= 0 {
			delete(a.refs, ck)
		}
	}
}
