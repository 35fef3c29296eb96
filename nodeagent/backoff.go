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

// next returns the current delay (±10 %) and doubles it, up to max.
func (b *backoff) next() time.Duration {
	d := b.cur + time.Duration(rand.Int64N(int64(b.cur)/5+1)) - b.cur/10
	b.cur = min(b.cur*2, b.max)
	return d
}

// wait sleeps for the next delay; false when ctx ended first.
func (b *backoff) wait(ctx context.Context) bool { return sleepCtx(ctx, b.next()) }

// sleepCtx sleeps for d; false when ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
