package scheduler

import (
	"context"
	"log/slog"
	"time"

	"github.com/corral-dev/corral/events"
	corralpb "github.com/corral-dev/corral/proto"
)

// Event expiry defaults.
const (
	// DefaultEventTTL is how long an event lives after it was last seen
	// (the API server's --event-ttl in Kubernetes).
	DefaultEventTTL = time.Hour
	// DefaultEventTTLPeriod is how often the leader looks for expired
	// events.
	DefaultEventTTLPeriod = time.Minute
	// eventDeleteBatch bounds the deletes of one Raft entry.
	eventDeleteBatch = 500
)

// ExpiredEvents returns the events last seen more than ttl before now (see
// events.LastSeen), in the order given. Events with no timestamp at all are
// kept: nothing says how old they are.
func ExpiredEvents(evs []*corralpb.Event, now time.Time, ttl time.Duration) []*corralpb.Event {
	var out []*corralpb.Event
	for _, e := range evs {
		if t, ok := events.LastSeen(e); ok && now.Sub(t) > ttl {
			out = append(out, e)
		}
	}
	return out
}

// EventTTL is the leader-only loop that deletes expired events.
type EventTTL struct {
	cluster Cluster
	log     *slog.Logger
	ttl     time.Duration
	period  time.Duration
}

// NewEventTTL returns the loop deleting events ttl after they were last
// seen, looking every period (zero values take DefaultEventTTL and
// DefaultEventTTLPeriod); Run drives it.
func NewEventTTL(c Cluster, ttl, period time.Duration, log *slog.Logger) *EventTTL {
	if ttl <= 0 {
		ttl = DefaultEventTTL
	}
	if period <= 0 {
		period = DefaultEventTTLPeriod
	}
	return &EventTTL{cluster: c, log: log, ttl: ttl, period: period}
}

// Run follows leadership until ctx ends, deleting expired events every
// period while leading.
func (l *EventTTL) Run(ctx context.Context) {
	leader := l.cluster.SubscribeLeadership()
	t := time.NewTicker(l.period)
	defer t.Stop()
	leading := false
	for {
		select {
		case <-ctx.Done():
			return
		case v, ok := <-leader:
			if !ok {
				return
			}
			leading = v
		case <-t.C:
			if leading {
				l.Sweep(ctx, time.Now())
			}
		}
	}
}

// Sweep deletes the events expired at now, eventDeleteBatch per Raft
// entry. Each delete names the event's uid and resourceVersion, so an
// event seen again (or recreated) since it was read survives; a batch
// refused for that reason is planned again from fresh state once, and
// anything left waits for the next sweep. It returns how many events it
// deleted.
func (l *EventTTL) Sweep(ctx context.Context, now time.Time) int {
	deleted := 0
	for retried := false; ; retried = true {
		expired, err := l.expired(now)
		if err != nil {
			l.log.Error("list events", "err", err)
			return deleted
		}
		refused := false
		for start := 0; start < len(expired); start += eventDeleteBatch {
			chunk := expired[start:min(start+eventDeleteBatch, len(expired))]
			res, err := l.cluster.Write(ctx, deleteEventsBatch(chunk))
			if err != nil {
				l.log.Warn("expired events not deleted", "events", len(chunk), "err", err)
				return deleted
			}
			if res.GetCode() != corralpb.ErrorCode_OK {
				l.log.Debug("expired events batch refused", "events", len(chunk), "code", res.GetCode(), "message", res.GetMessage())
				refused = true
				continue
			}
			deleted += len(chunk)
		}
		if !refused || retried {
			break
		}
	}
	if deleted > 0 {
		l.log.Info("expired events deleted", "events", deleted, "ttl", l.ttl)
	}
	return deleted
}

// expired lists the stored events expired at now.
func (l *EventTTL) expired(now time.Time) ([]*corralpb.Event, error) {
	objs, err := l.cluster.State().List(nil, "Event", "")
	if err != nil {
		return nil, err
	}
	evs := make([]*corralpb.Event, len(objs))
	for i, o := range objs {
		evs[i] = o.GetEvent()
	}
	return ExpiredEvents(evs, now, l.ttl), nil
}

// deleteEventsBatch deletes the events, each only while its uid and
// resourceVersion are those read.
func deleteEventsBatch(evs []*corralpb.Event) *corralpb.Batch {
	b := &corralpb.Batch{Ops: make([]*corralpb.Op, len(evs)), OmitObjects: true}
	for i, e := range evs {
		m := e.GetMetadata()
		b.Ops[i] = &corralpb.Op{
			Type:         corralpb.Op_DELETE,
			Key:          &corralpb.ObjectKey{Kind: "Event", Namespace: m.GetNamespace(), Name: m.GetName()},
			Uid:          m.GetUid(),
			Precondition: corralpb.Op_RESOURCE_VERSION, ResourceVersion: m.GetResourceVersion(),
		}
	}
	return b
}
