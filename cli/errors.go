package cli

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/corral-dev/corral/api"
)

// errReported is returned by a command that has already printed its errors
// (for example one of several deletes failed); it only sets the exit code.
var errReported = errors.New("errors were reported")

// kubectlError is an error whose text is kubectl's own message, kept
// verbatim (capitals and final period included) so users recognize it.
type kubectlError string

func (e kubectlError) Error() string { return string(e) }

// kubectlErrorf formats a kubectlError.
func kubectlErrorf(format string, a ...any) error { return kubectlError(fmt.Sprintf(format, a...)) }

// reportedError wraps an error that has been printed to the error stream.
type reportedError struct{ err error }

func (r *reportedError) Error() string { return r.err.Error() }
func (r *reportedError) Unwrap() error { return r.err }

// report prints err in kubectl's words, once, and returns it marked as
// printed.
func (g *globals) report(err error) error {
	var r *reportedError
	if errors.As(err, &r) || errors.Is(err, errReported) {
		return err
	}
	if msg := formatError(err); msg != "" {
		fmt.Fprintln(g.errOut, msg)
	}
	return &reportedError{err: err}
}

// printErr prints err in kubectl's words without stopping the command; the
// caller remembers that it failed and returns errReported at the end.
func (g *globals) printErr(err error) {
	_ = g.report(err) // report's result only marks the error as printed
}

// grpcStatus finds a gRPC status in err's chain without adopting the
// wrapping text, so the server's own message is what the user sees.
func grpcStatus(err error) (*status.Status, bool) {
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) {
		if s := se.GRPCStatus(); s != nil {
			return s, true
		}
	}
	return nil, false
}

// formatError renders err the way kubectl prints errors.
func formatError(err error) string {
	if err == nil {
		return ""
	}
	var inv *api.InvalidError
	if errors.As(err, &inv) {
		return invalidMessage(inv)
	}
	if s, ok := grpcStatus(err); ok {
		return formatStatus(s)
	}
	msg := err.Error()
	if strings.HasPrefix(msg, "error: ") {
		return msg
	}
	return "error: " + msg
}

// invalidMessage is kubectl's rendering of a validation failure:
// `The DaemonSet "x" is invalid: spec.selector: Required value`.
func invalidMessage(e *api.InvalidError) string {
	detail := ""
	if agg := e.Errs.ToAggregate(); agg != nil {
		detail = ": " + agg.Error()
	}
	return fmt.Sprintf("The %s %q is invalid%s", e.Kind.Kind, e.Name, detail)
}

// formatStatus maps a gRPC status to kubectl's "Error from server (Reason)"
// family.
func formatStatus(s *status.Status) string {
	msg := s.Message()
	switch s.Code() {
	case codes.OK:
		return ""
	case codes.NotFound:
		return "Error from server (NotFound): " + msg
	case codes.AlreadyExists:
		return "Error from server (AlreadyExists): " + msg
	case codes.Aborted:
		return "Error from server (Conflict): " + msg
	case codes.InvalidArgument:
		if strings.HasPrefix(msg, "The ") {
			return msg
		}
		return "Error from server (Invalid): " + msg
	case codes.PermissionDenied:
		return "Error from server (Forbidden): " + msg
	case codes.Unauthenticated:
		return "error: You must be logged in to the server (Unauthorized): " + msg
	case codes.Unavailable:
		return "Unable to connect to the server: " + dialMessage(msg)
	case codes.DeadlineExceeded:
		if strings.Contains(msg, "connection error") || strings.Contains(msg, "while dialing") {
			return "Unable to connect to the server: " + dialMessage(msg)
		}
		return "Error from server (Timeout): " + msg
	case codes.FailedPrecondition:
		return "Error from server (BadRequest): " + msg
	case codes.ResourceExhausted:
		return "Error from server (TooManyRequests): " + msg
	case codes.Unimplemented:
		return "Error from server (MethodNotAllowed): " + msg
	case codes.Internal, codes.Unknown, codes.DataLoss:
		return "Error from server (InternalError): " + msg
	case codes.Canceled:
		return "error: " + msg
	default:
		return "Error from server: " + msg
	}
}

// dialMessage trims gRPC's transport wrapping from a connection error, so
// "connection error: desc = \"transport: Error while dialing: dial tcp
// 127.0.0.1:1: connect: connection refused\"" reads as the dial error itself
// and a failed TLS handshake as "TLS handshake failed: " and its cause.
func dialMessage(msg string) string {
	const desc = "desc = "
	if i := strings.Index(msg, desc+`"`); i >= 0 {
		if s, err := strconv.Unquote(msg[i+len(desc):]); err == nil {
			msg = s
		}
	}
	msg = strings.TrimPrefix(msg, "transport: ")
	if cause, ok := strings.CutPrefix(msg, "authentication handshake failed: "); ok {
		return "TLS handshake failed: " + cause
	}
	const marker = "Error while dialing: "
	if i := strings.LastIndex(msg, marker); i >= 0 {
		return strings.TrimRight(msg[i+len(marker):], "\"")
	}
	return msg
}
