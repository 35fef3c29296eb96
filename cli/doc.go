// Package cli is corral's kubectl-like command line: the verbs a user types
// (apply, get, describe, delete, label, taint, cordon, edit, create, cluster,
// snapshot, token, user, version, ...) and the printers that render objects
// the way kubectl does, so that habits and scripts written for kubectl carry
// over.
//
// # Model
//
// Every verb lives in a file of its own (apply.go, get.go, ...) as a
// constructor newXCommand(g *globals) *cobra.Command plus an options struct
// whose run(ctx) method does the work; NewRootCommand wires them together. The
// shared state of one invocation is a *globals: the input and output streams,
// the connection flags (--config, --server, --certificate-authority,
// --client-certificate, --client-key, --request-timeout), the namespace, a
// clock, and the gRPC connection, which is dialed lazily on the first RPC and
// closed when the command returns.
//
// The CLI speaks only the Cluster gRPC service (package corralpb), and only
// over mutual TLS (package pki): it trusts a server whose certificate chains
// to the cluster CA of its config and names pki.ServerName with the server
// role, and it presents the user's client certificate, whose subject says
// who the user is and whether they are an admin or a viewer. The config file
// (Config) holds the servers, the CA and the user's certificate and key, as
// a kubeconfig does; the servers write one for an admin (admin.conf), and
// `corral user create` makes one for another user from a key generated on
// the user's machine. The CLI dials every configured server with a
// client-side pick-first policy, so a dead server is skipped. Unary calls
// are bounded by --request-timeout.
//
// Objects are read and written through package api: manifests are decoded
// with api.DecodeFiles, defaulted and validated locally before anything is
// sent, and -o json|yaml uses api's Kubernetes-shaped JSON.
//
// # Output
//
// Tables follow kubectl's printers column for column (table.go holds the
// generic machinery, printers.go the per-kind columns); describe output
// follows kubectl's describers (describe_*.go). Ages use kubectl's
// HumanDuration rules (age.go).
//
// # Errors
//
// Commands return errors; the runner prints each one once, to the error
// stream, in kubectl's words ("Error from server (NotFound): ...",
// "Error from server (Forbidden): ..." for a viewer's write, "Unable to
// connect to the server: TLS handshake failed: ..." for a server of another
// cluster, "error: ..."), and ExitCode turns any error into exit status 1 (`exec`
// exits with the remote command's code instead). A command that has
// already printed its errors (say, one of three deletes failed) returns
// errReported so nothing is printed twice.
package cli
