package server

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/corral-dev/corral/api"
	corralpb "github.com/corral-dev/corral/proto"
	"github.com/corral-dev/corral/raftstore"
)

// errRetry marks a batch that lost a race with another writer and is worth
// planning again from fresh state.
var errRetry = errors.New("state changed while planning; retry")

// maxAttempts bounds re-planning after lost races.
const maxAttempts = 16

// resultError maps a failed BatchResult to a gRPC status error.
func resultError(r *corralpb.BatchResult) error {
	switch r.GetCode() {
	case corralpb.ErrorCode_OK:
		return nil
	case corralpb.ErrorCode_NOT_FOUND:
		return status.Error(codes.NotFound, r.GetMessage())
	case corralpb.ErrorCode_ALREADY_EXISTS:
		return status.Error(codes.AlreadyExists, r.GetMessage())
	case corralpb.ErrorCode_CONFLICT, corralpb.ErrorCode_STALE:
		return status.Error(codes.Aborted, r.GetMessage())
	case corralpb.ErrorCode_INVALID:
		return status.Error(codes.InvalidArgument, r.GetMessage())
	default:
		return status.Errorf(codes.Internal, "unknown result code %v: %s", r.GetCode(), r.GetMessage())
	}
}

// toStatus maps errors from validation and the raft layer to gRPC status
// errors at the API edge.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var inv *api.InvalidError
	switch {
	case errors.As(err, &inv):
		return status.Error(codes.InvalidArgument, inv.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, raftstore.ErrNoLeader), errors.Is(err, raftstore.ErrShutdown):
		return status.Error(codes.Unavailable, err.Error())
	default:
		return status.Error(codes.Unavailable, err.Error())
	}
}

func notFound(k api.Kind, name string) error {
	return status.Errorf(codes.NotFound, "%s %q not found", k.GroupResource(), name)
}

func invalidf(format string, args ...any) error {
	return status.Error(codes.InvalidArgument, fmt.Sprintf(format, args...))
}

// conflict is a client's stale resourceVersion, worded as Kubernetes words it.
func conflict(k api.Kind, name string) error {
	return status.Errorf(codes.Aborted, "Operation cannot be fulfilled on %s %q: the object has been modified; please apply your changes to the latest version and try again", k.GroupResource(), name)
}
