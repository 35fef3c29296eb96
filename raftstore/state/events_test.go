package state

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

// testDeadline bounds every wait; tests never sleep.
const testDeadline = 10 * time.Second

// nextN reads exactly n events from sub.
func nextN(t *testing.T, sub *Subscription, n int) []Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
	defer cancel()
	var out []Event
	for len(out) < n {
		evs, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("Next after %d of %d events: %v", len(out), n, err)
		}
		out = append(out, evs...)
	}
	if len(out) != n {
		t.Fatalf("got %d events, want %d", len(out), n)
	}
	return out
}

// describe renders events as "TYPE index ns/name rv".
func describe(evs []Event) []string {
	var out []string
	for _, e := range evs {
		m := metaOf(e.Object)
		out = append(out, fmt.Sprintf("%s %d %s/%s %s", e.Type, e.Index, m.GetNamespace(), m.GetName(), m.GetResourceVersion()))
	}
	return out
}

func TestEventsInOrder(t *testing.T) {
	s := newStoreWithNamespaces(t, "default")
	sub, err := s.Subscribe(1)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	applyOK(t, s, 2, createOp(podObj("default", "a", "")), createOp(podObj("default", "b", "")))
	s.Apply(3, entry(
		batch(putOp(podObj("default", "a", "n1"))),
		batch(createOp(podObj("default", "b", ""))), // fails: no event
		batch(deleteOp("Pod", "default", "b")),
	))
	got := describe(nextN(t, sub, 4))
	want := []string{
		"ADDED 2 default/a 2", "ADDED 2 default/b 2",
		"MODIFIED 3 default/a 3", "DELETED 3 default/b 2",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("events\n%q\nwant\n%q", got, want)
	}

	late, err := s.Subscribe(2)
	if err != nil {
		t.Fatal(err)
	}
	if got := describe(nextN(t, late, 2)); !slices.Equal(got, want[2:]) {
		t.Fatalf("Subscribe(2) got %q, want %q", got, want[2:])
	}
}

func TestNextBlocksUntilApply(t *testing.T) {
	s := newStoreWithNamespaces(t, "default")
	sub, err := s.Subscribe(s.LatestIndex())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
	defer cancel()
	done := make(chan []Event, 1)
	go func() {
		evs, err := sub.Next(ctx)
		if err != nil {
			t.Errorf("Next: %v", err)
		}
		done <- evs
	}()
	applyOK(t, s, 2, createOp(cmObj("default", "c")))
	select {
	case evs := <-done:
		if got := describe(evs); !slices.Equal(got, []string{"ADDED 2 default/c 2"}) {
			t.Fatalf("got %q", got)
		}
	case <-ctx.Done():
		t.Fatal("Next did not return after Apply")
	}
}

func TestNextContextAndClose(t *testing.T) {
	s := New()
	sub, err := s.Subscribe(0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := sub.Next(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next with cancelled context: %v", err)
	}
	sub.Close()
	sub.Close()
	if _, err := sub.Next(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after Close: %v", err)
	}
}

func TestAbandonClosesSubscriptions(t *testing.T) {
	s := newStoreWithNamespaces(t, "default")
	sub, err := s.Subscribe(1)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := sub.Next(ctx)
		done <- err
	}()
	s.Abandon()
	s.Abandon()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("blocked Next returned %v, want ErrClosed", err)
		}
	case <-ctx.Done():
		t.Fatal("Next did not return after Abandon")
	}
	select {
	case <-s.AbandonCh():
	default:
		t.Fatal("AbandonCh not closed")
	}
	if _, err := s.Subscribe(1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Subscribe after Abandon: %v", err)
	}
	applyOK(t, s, 2, createOp(cmObj("default", "c")))
	if _, err := sub.Next(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Next with pending events after Abandon: %v", err)
	}
}

func TestEventRingTooOld(t *testing.T) {
	s := New(WithEventBuffer(4))
	applyOK(t, s, 1, createOp(nsObj("default")))
	slow, err := s.Subscribe(0)
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(2); i <= 5; i++ {
		applyOK(t, s, i, createOp(cmObj("default", fmt.Sprint("c", i))))
	}
	// The ring holds indexes 2..5: index 1's event has left it.
	if _, err := slow.Next(context.Background()); !errors.Is(err, ErrTooOld) {
		t.Fatalf("slow subscriber: %v, want ErrTooOld", err)
	}
	if _, err := s.Subscribe(0); !errors.Is(err, ErrTooOld) {
		t.Fatalf("Subscribe(0): %v, want ErrTooOld", err)
	}
	sub, err := s.Subscribe(1)
	if err != nil {
		t.Fatalf("Subscribe(1): %v", err)
	}
	if got := nextN(t, sub, 4); got[0].Index != 2 || got[3].Index != 5 {
		t.Fatalf("got %q", describe(got))
	}
	// Apply never waits for sub, which now falls behind by a whole ring.
	applyOK(t, s, 6, createOp(cmObj("default", "x")), createOp(cmObj("default", "y")),
		createOp(cmObj("default", "z")), createOp(cmObj("default", "w")), createOp(cmObj("default", "v")))
	if _, err := sub.Next(context.Background()); !errors.Is(err, ErrTooOld) {
		t.Fatalf("subscriber behind by a ring: %v, want ErrTooOld", err)
	}
	// Index 6 lost one of its five events: only after 6 is complete.
	if _, err := s.Subscribe(5); !errors.Is(err, ErrTooOld) {
		t.Fatalf("Subscribe(5): %v, want ErrTooOld", err)
	}
	if _, err := s.Subscribe(6); err != nil {
		t.Fatalf("Subscribe(6): %v", err)
	}
}

func TestRestoredStoreEvents(t *testing.T) {
	s := newStoreWithNamespaces(t, "default")
	applyOK(t, s, 2, createOp(cmObj("default", "c")))
	r, err := Restore(bytes.NewReader(persist(t, s)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Subscribe(1); !errors.Is(err, ErrTooOld) {
		t.Fatalf("Subscribe before the snapshot: %v, want ErrTooOld", err)
	}
	sub, err := r.Subscribe(2)
	if err != nil {
		t.Fatal(err)
	}
	r.Apply(3, entry(batch(deleteOp("ConfigMap", "default", "c"))))
	if got := describe(nextN(t, sub, 1)); !slices.Equal(got, []string{"DELETED 3 default/c 2"}) {
		t.Fatalf("got %q", got)
	}
}

func TestEventObjectsAreStored(t *testing.T) {
	s := newStoreWithNamespaces(t, "default")
	sub, _ := s.Subscribe(1)
	r := applyOK(t, s, 2, createOp(podObj("default", "p", "")))
	if ev := nextN(t, sub, 1)[0]; ev.Object != r.GetObjects()[0] || ev.Object.GetPod() == nil {
		t.Fatalf("event object is not the stored object")
	}
}
