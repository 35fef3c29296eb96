package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
)

// watchRetryFor is how long a watch keeps trying to resume after its
// server went away before it gives up.
const watchRetryFor = 30 * time.Second

// errStopWatch, returned by a watch handler, ends the watch without error.
var errStopWatch = errors.New("stop watching")

// handlerError carries a handler's error out of one Watch call, so that it
// is not mistaken for the stream's.
type handlerError struct{ err error }

func (e *handlerError) Error() string { return e.err.Error() }

// resumableWatch follows the Watch RPC from req's resourceVersion and calls
// handle for every event, until handle returns an error (errStopWatch: none),
// the server ends the stream or ctx ends (both nil). When the server it
// follows goes away (killed, restarted, its state replaced by a snapshot)
// it watches again from the last version it saw, on whichever server
// answers: resource versions are Raft indexes, the same on every server, so
// no change is missed or seen twice. It gives up when no server has taken
// the watch back for watchRetryFor.
func resumableWatch(ctx context.Context, c corralpb.ClusterClient, req *corralpb.WatchRequest, handle func(*corralpb.WatchEvent) error) error {
	req = proto.Clone(req).(*corralpb.WatchRequest)
	var lost time.Time // when the watch was lost; zero while it streams
	backoff := 100 * time.Millisecond
	for {
		progressed, err := watchOnce(ctx, c, req, handle)
		var herr *handlerError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &herr):
			if errors.Is(herr.err, errStopWatch) {
				return nil
			}
			return herr.err
		case !isCode(err, codes.Unavailable):
			return err
		case progressed || lost.IsZero():
			lost, backoff = time.Now(), 100*time.Millisecond
		case time.Since(lost) > watchRetryFor:
			return fmt.Errorf("no server took the watch back for %s: %w", watchRetryFor, err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// watchOnce runs one Watch call, moving req's resourceVersion past every
// event it hands on; progressed reports whether any came.
func watchOnce(ctx context.Context, c corralpb.ClusterClient, req *corralpb.WatchRequest, handle func(*corralpb.WatchEvent) error) (progressed bool, err error) {
	st, err := c.Watch(ctx, req)
	if err != nil {
		return false, err
	}
	for {
		ev, err := st.Recv()
		switch {
		case errors.Is(err, io.EOF):
			return progressed, nil
		case err != nil && (ctx.Err() != nil || isCode(err, codes.Canceled)):
			return progressed, nil
		case err != nil:
			return progressed, err
		}
		obj := ev.GetObject()
		if obj == nil {
			continue
		}
		progressed = true
		if v := api.Meta(obj).GetResourceVersion(); v != "" {
			req.ResourceVersion = v
		}
		if err := handle(ev); err != nil {
			return progressed, &handlerError{err}
		}
	}
}
