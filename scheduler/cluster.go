package scheduler

import (
	"context"

	corralpb "github.com/corral-dev/corral/proto"
	"github.com/corral-dev/corral/raftstore/state"
)

// Cluster is what the leader-only loops need of the Raft layer
// (raftstore.Server implements it): the local state, writes, and
// leadership changes.
type Cluster interface {
	State() *state.Store
	Write(ctx context.Context, b *corralpb.Batch) (*corralpb.BatchResult, error)
	SubscribeLeadership() <-chan bool
}
