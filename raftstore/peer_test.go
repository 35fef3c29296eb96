package raftstore

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestReadyClientGivesUpWhenTheLeaderChanges: a write forwarded to a
// leader that died waits for a connection to it, but only until another
// leader is known, not for its whole timeout (which made failovers take a
// second longer than the election).
func TestReadyClientGivesUpWhenTheLeaderChanges(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	_ = ln.Close() // nothing listens there any more: connections are refused
	pc := newPeerClients(&tls.Config{ServerName: "server", MinVersion: tls.VersionTLS13})
	t.Cleanup(pc.close)
	abort := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := pc.readyClient(context.Background(), dead, time.Hour, abort)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("gave up before the leader changed: %v", err)
	case <-time.After(100 * time.Millisecond): // it keeps trying meanwhile
	}
	close(abort)
	select {
	case err := <-done:
		if !errors.Is(err, errPeerUnreachable) {
			t.Fatalf("err = %v, want errPeerUnreachable (nothing was sent)", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still waiting for the dead leader after the leader changed")
	}
}

// TestStoppingServerErrorsAreTold: the error a stopping server refuses a
// call with (as the server's interceptors build it) means the call did
// nothing, and a forwarded write may go to the next leader; it is told
// apart from the other Unavailable errors, after which a forwarded write's
// fate is unknown.
func TestStoppingServerErrorsAreTold(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{status.Error(codes.Unavailable, StoppingMsg+": call another"), true},
		{status.Error(codes.Unavailable, "the write may or may not have been applied: timeout"), false},
		{status.Error(codes.FailedPrecondition, StoppingMsg), false},
		{errors.New(StoppingMsg), false},
		{nil, false},
	} {
		if got := isStopping(tc.err); got != tc.want {
			t.Errorf("isStopping(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
