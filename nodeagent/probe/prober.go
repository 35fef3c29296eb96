package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	corralpb "github.com/corral-dev/corral/proto"
)

// ErrUnsupported is wrapped by errors about probes corral cannot run.
var ErrUnsupported = errors.New("unsupported probe")

// Prober runs one probe once. It returns the result and kubelet's output:
// the failure's explanation ("HTTP probe failed with statuscode: 500"), or
// what the check printed. Unknown means the probe could not be run.
type Prober interface {
	Probe(ctx context.Context) (Result, string)
}

// Execer runs a command in the probed container; the agent implements it
// with the runtime's Exec. output is the command's combined output.
type Execer interface {
	Exec(ctx context.Context, cmd []string) (exitCode int, output []byte, err error)
}

// Dialer opens connections for HTTP and TCP probes. *net.Dialer and
// *NetNSDialer are Dialers.
type Dialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// Env says how to reach a container.
type Env struct {
	// PodIP is the default host of HTTP and TCP probes; "" means 127.0.0.1
	// (in the pod's network namespace when Dialer is a NetNSDialer).
	PodIP string
	// Dialer dials HTTP and TCP probes; nil means the host's network.
	Dialer Dialer
	// Exec runs exec probes.
	Exec Execer
}

// New returns the prober for p, a probe of container c.
func New(p *corralpb.Probe, c *corralpb.Container, env Env) (Prober, error) {
	host := env.PodIP
	if host == "" {
		host = "127.0.0.1"
	}
	switch {
	case p.GetExec() != nil:
		if env.Exec == nil {
			return nil, fmt.Errorf("exec probe of %q: no Execer", c.GetName())
		}
		return &Exec{Command: p.GetExec().GetCommand(), Execer: env.Exec}, nil
	case p.GetHttpGet() != nil:
		u, err := probeURL(p.GetHttpGet(), c, host)
		if err != nil {
			return nil, fmt.Errorf("httpGet probe of %q: %w", c.GetName(), err)
		}
		return NewHTTPGet(u, probeHeaders(p.GetHttpGet()), env.Dialer), nil
	case p.GetTcpSocket() != nil:
		port, err := ResolvePort(p.GetTcpSocket().GetPort(), c)
		if err != nil {
			return nil, fmt.Errorf("tcpSocket probe of %q: %w", c.GetName(), err)
		}
		if h := p.GetTcpSocket().GetHost(); h != "" {
			host = h
		}
		return &TCPSocket{Address: net.JoinHostPort(host, strconv.Itoa(port)), Dialer: env.Dialer}, nil
	case p.GetGrpc() != nil:
		return nil, fmt.Errorf("%w: grpc probes are not supported (container %q)", ErrUnsupported, c.GetName())
	default:
		return nil, fmt.Errorf("%w: probe of %q has no handler", ErrUnsupported, c.GetName())
	}
}

// probeURL builds an httpGet probe's URL as kubelet does: the path may carry
// a query; the scheme defaults to HTTP.
func probeURL(a *corralpb.HTTPGetAction, c *corralpb.Container, host string) (*url.URL, error) {
	port, err := ResolvePort(a.GetPort(), c)
	if err != nil {
		return nil, err
	}
	scheme := strings.ToLower(a.GetScheme())
	switch scheme {
	case "":
		scheme = "http"
	case "http", "https":
	default:
		return nil, fmt.Errorf("%w: scheme %q", ErrUnsupported, a.GetScheme())
	}
	if a.GetHost() != "" {
		host = a.GetHost()
	}
	u, err := url.Parse(a.GetPath())
	if err != nil {
		u = &url.URL{Path: a.GetPath()}
	}
	u.Scheme = scheme
	u.Host = net.JoinHostPort(host, strconv.Itoa(port))
	return u, nil
}

func probeHeaders(a *corralpb.HTTPGetAction) http.Header {
	h := http.Header{}
	for _, hh := range a.GetHttpHeaders() {
		h.Add(hh.GetName(), hh.GetValue())
	}
	return h
}

// broken is the prober of a probe that cannot be built: every run is
// Unknown with the reason, which the agent reports as "probe errored".
type broken struct{ err error }

func (b broken) Probe(context.Context) (Result, string) { return Unknown, b.err.Error() }
