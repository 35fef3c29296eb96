package nodeagent

import (
	"context"
	"math/rand/v2"
	"time"
)

// backoff waits exponentially longer between retries, with jitter.
type backoff struct {
	base, max, cur time.Duration
}

func newBackoff(base, max time.Duration) *backoff { return &backoff{base: base, max: max, cur: base} }

func (b *backoff) reset() { b.cur = b.base }

// wait sleeps for the current delay (±20 %) and doubles it; false when ctx
// ended first.
func (b *backoff) wait(ctx context.Context) bool {
	d := b.cur + time.Duration(rand.Int64N(int64(b.cur)/5+1)) - b.cur/10
	b.cur = min(b.cur*2, b.max)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
