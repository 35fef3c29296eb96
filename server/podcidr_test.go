package server_test

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	corralpb "github.com/corral-dev/corral/proto"
	"github.com/corral-dev/corral/server"
	"github.com/corral-dev/corral/test/framework"
)

func withInternalIP(n *corralpb.Node, ip string) *corralpb.Node {
	n.Status.Addresses = []*corralpb.NodeAddress{{Type: "InternalIP", Address: ip}, {Type: "Hostname", Address: n.GetMetadata().GetName()}}
	return n
}

// Nodes registering at once through different servers get distinct /24s
// of the cluster CIDR, keep them across re-registrations, and the CIDR of a
// deleted node is handed out again once the cluster CIDR is full.
func TestRegisterAllocatesDistinctPodCIDRs(t *testing.T) {
	c := framework.NewInProcess(t, 3, func(cfg *server.Config) { cfg.ClusterCIDR = "10.77.0.0/20" })
	const nodes = 16 // exactly the /24s of a /20
	var wg sync.WaitGroup
	errs := make([]error, nodes)
	cidrs := make([]string, nodes)
	clients := make([]corralpb.NodeAPIClient, nodes)
	for i := range nodes {
		clients[i] = nodeClient(t, c, i%3, fmt.Sprintf("n%d", i))
	}
	for i := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := clients[i].Register(ctx(t), &corralpb.RegisterRequest{Node: agentNode(fmt.Sprintf("n%d", i), nil)})
			errs[i] = err
			if err == nil {
				cidrs[i] = resp.GetNode().GetSpec().GetPodCidr()
				if resp.GetClusterCidr() != "10.77.0.0/20" {
					errs[i] = fmt.Errorf("cluster CIDR in the response: %q", resp.GetClusterCidr())
				}
			}
		}()
	}
	wg.Wait()
	cluster := netip.MustParsePrefix("10.77.0.0/20")
	seen := map[string]string{}
	for i := range nodes {
		if errs[i] != nil {
			t.Fatalf("register n%d: %v", i, errs[i])
		}
		p, err := netip.ParsePrefix(cidrs[i])
		if err != nil || p.Bits() != 24 || !cluster.Contains(p.Addr()) || p.Masked() != p {
			t.Fatalf("n%d got pod CIDR %q, want a /24 of %s", i, cidrs[i], cluster)
		}
		if other, dup := seen[cidrs[i]]; dup {
			t.Fatalf("n%d and %s were both given %s", i, other, cidrs[i])
		}
		seen[cidrs[i]] = fmt.Sprintf("n%d", i)
		if got := getNode(t, c, fmt.Sprintf("n%d", i)).GetSpec(); got.GetPodCidr() != cidrs[i] || len(got.GetPodCidrs()) != 1 || got.GetPodCidrs()[0] != cidrs[i] {
			t.Fatalf("stored n%d spec: %v, want podCIDR %s", i, got, cidrs[i])
		}
	}
	// Re-registering (an agent restart) keeps the CIDR.
	resp, err := clients[3].Register(ctx(t), &corralpb.RegisterRequest{Node: agentNode("n3", nil)})
	if err != nil || resp.GetNode().GetSpec().GetPodCidr() != cidrs[3] {
		t.Fatalf("re-register n3: %v, %v; want pod CIDR %s", resp.GetNode().GetSpec(), err, cidrs[3])
	}
	// Full: a new node is refused, naming the field.
	late := nodeClient(t, c, 0, "late")
	_, err = late.Register(ctx(t), &corralpb.RegisterRequest{Node: agentNode("late", nil)})
	wantCode(t, err, codes.ResourceExhausted, "register node late: spec.podCIDR", "10.77.0.0/20")
	// Deleting a node releases its CIDR.
	if _, err := c.Client(t, 0).Delete(ctx(t), &corralpb.DeleteRequest{Kind: "Node", Name: "n5"}); err != nil {
		t.Fatal(err)
	}
	resp, err = late.Register(ctx(t), &corralpb.RegisterRequest{Node: agentNode("late", nil)})
	if err != nil || resp.GetNode().GetSpec().GetPodCidr() != cidrs[5] {
		t.Fatalf("register after n5 was deleted: %v, %v; want n5's %s", resp.GetNode().GetSpec(), err, cidrs[5])
	}
	// Once set, a node's CIDR cannot change; a manifest without one keeps it.
	n := getNode(t, c, "n1")
	n.Spec.PodCidr, n.Spec.PodCidrs = cidrs[2], []string{cidrs[2]}
	_, err = c.Client(t, 0).Update(ctx(t), &corralpb.UpdateRequest{Object: &corralpb.Object{Kind: &corralpb.Object_Node{Node: n}}})
	wantCode(t, err, codes.InvalidArgument, `spec.podCIDR: Forbidden: node updates may not change podCIDR except from "" to valid`)
	if _, err := c.Client(t, 0).Apply(ctx(t), &corralpb.ApplyRequest{Objects: decode(t, "apiVersion: v1\nkind: Node\nmetadata: {name: n1, labels: {disktype: ssd}}\n")}); err != nil {
		t.Fatal(err)
	}
	if got := getNode(t, c, "n1"); got.GetSpec().GetPodCidr() != cidrs[1] || got.GetMetadata().GetLabels()["disktype"] != "ssd" {
		t.Fatalf("after applying a manifest without podCIDR: %v", got.GetSpec())
	}
}

// With routes asked for, the assignments stream carries every node's pod
// CIDR and address, then their changes, and the removal of deleted nodes.
func TestAssignmentsStreamRoutes(t *testing.T) {
	c := framework.NewInProcess(t, 1)
	nc := nodeClient(t, c, 0, "w1")
	w1, err := nc.Register(ctx(t), &corralpb.RegisterRequest{Node: withInternalIP(agentNode("w1", nil), "192.0.2.1")})
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	stream, err := nc.Assignments(sctx, &corralpb.AssignmentsRequest{NodeName: "w1", Routes: true})
	if err != nil {
		t.Fatal(err)
	}
	first, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if r := first.GetItems(); !first.GetComplete() || len(r) != 1 || r[0].GetRoute().GetNodeName() != "w1" ||
		r[0].GetRoute().GetPodCidr() != w1.GetNode().GetSpec().GetPodCidr() || r[0].GetRoute().GetNodeIp() != "192.0.2.1" {
		t.Fatalf("full set: %v", first)
	}
	w2c := nodeClient(t, c, 0, "w2")
	w2, err := w2c.Register(ctx(t), &corralpb.RegisterRequest{Node: withInternalIP(agentNode("w2", nil), "192.0.2.2")})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if r := msg.GetItems(); len(r) != 1 || r[0].GetRoute().GetNodeName() != "w2" || r[0].GetRoute().GetPodCidr() != w2.GetNode().GetSpec().GetPodCidr() {
		t.Fatalf("new node's route: %v", msg)
	}
	// A change that leaves the route alone sends nothing: the next message
	// is w2's removal.
	if _, err := w2c.Register(ctx(t), &corralpb.RegisterRequest{Node: withInternalIP(agentNode("w2", map[string]string{"zone": "b"}), "192.0.2.2")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client(t, 0).Delete(ctx(t), &corralpb.DeleteRequest{Kind: "Node", Name: "w2"}); err != nil {
		t.Fatal(err)
	}
	msg, err = stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if r := msg.GetItems(); len(r) != 1 || r[0].GetRemoved().GetKind() != "Node" || r[0].GetRemoved().GetName() != "w2" {
		t.Fatalf("deleted node: %v", msg)
	}
}
