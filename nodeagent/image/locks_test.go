package image

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestFlightGroupOutlivesOneCaller(t *testing.T) {
	var g flightGroup
	release := make(chan struct{})
	started := make(chan struct{})
	fn := func(ctx context.Context) (pullResult, error) {
		close(started)
		select {
		case <-release:
			return pullResult{size: 42}, nil
		case <-ctx.Done():
			return pullResult{}, ctx.Err()
		}
	}
	first, cancelFirst := context.WithCancel(t.Context())
	firstErr := make(chan error, 1)
	go func() {
		_, _, err := g.do(first, "k", fn)
		firstErr <- err
	}()
	<-started
	second := make(chan pullResult, 1)
	go func() {
		res, shared, err := g.do(t.Context(), "k", func(context.Context) (pullResult, error) {
			t.Error("a second call ran while one was in flight")
			return pullResult{}, nil
		})
		if err != nil || !shared {
			t.Errorf("second caller: shared %v, %v", shared, err)
		}
		second <- res
	}()
	waitFor(t, func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.calls["k"] != nil && g.calls["k"].waiters == 2
	})
	cancelFirst()
	if err := <-firstErr; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled caller: %v", err)
	}
	close(release)
	if res := <-second; res.size != 42 {
		t.Errorf("second caller got %+v, want the shared result", res)
	}
}

func TestFlightGroupCancelledByLastCaller(t *testing.T) {
	var g flightGroup
	stopped := make(chan error, 1)
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		g.do(ctx, "k", func(ctx context.Context) (pullResult, error) {
			<-ctx.Done()
			stopped <- ctx.Err()
			return pullResult{}, ctx.Err()
		})
	}()
	waitFor(t, func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.calls["k"] != nil
	})
	cancel()
	select {
	case err := <-stopped:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("work stopped with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("work went on after every caller left")
	}
	// A new caller starts a fresh call.
	res, shared, err := g.do(t.Context(), "k", func(context.Context) (pullResult, error) {
		return pullResult{size: 7}, nil
	})
	if err != nil || shared || res.size != 7 {
		t.Errorf("fresh call = %+v, shared %v, %v", res, shared, err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(time.Millisecond)
	}
}
