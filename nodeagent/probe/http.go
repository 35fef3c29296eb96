package probe

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"

	"github.com/corral-dev/corral/version"
)

// Kubelet's limits.
const (
	maxRedirects = 10
	maxBody      = 10 << 10 // bytes of a response body or exec output kept
)

// UserAgent is sent by HTTP probes unless the probe sets its own, like
// kubelet's "kube-probe/1.x".
var UserAgent = "corral-probe/" + version.Version

// HTTPGet is an httpGet probe: success is a status in 200-399. Redirects
// are followed only to the same host (a redirect elsewhere ends the
// probe with the 3xx, a success, as kubelet does); certificates are not
// checked; at most 10 KiB of the body is read; every run uses a new
// connection.
type HTTPGet struct {
	url    *url.URL
	header http.Header
	client *http.Client
}

// NewHTTPGet returns an HTTP probe of u with extra headers (a "Host"
// header sets the request's host), dialing with d (nil: the host's
// network).
func NewHTTPGet(u *url.URL, header http.Header, d Dialer) *HTTPGet {
	if d == nil {
		d = &net.Dialer{}
	}
	tr := &http.Transport{
		Proxy:             nil,
		DialContext:       d.DialContext,
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, // probes do not verify certificates, as kubelet's
		DisableKeepAlives: true,
	}
	return &HTTPGet{
		url:    u,
		header: header.Clone(),
		client: &http.Client{Transport: tr, CheckRedirect: sameHostRedirects},
	}
}

// URL returns the probed URL.
func (p *HTTPGet) URL() string { return p.url.String() }

func sameHostRedirects(req *http.Request, via []*http.Request) error {
	if req.URL.Hostname() != via[0].URL.Hostname() {
		return http.ErrUseLastResponse
	}
	if len(via) >= maxRedirects {
		return fmt.Errorf("stopped after %d redirects", maxRedirects)
	}
	return nil
}

// Probe runs one GET.
func (p *HTTPGet) Probe(ctx context.Context) (Result, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url.String(), nil)
	if err != nil {
		return Failure, err.Error()
	}
	req.Header = p.header.Clone()
	if req.Header == nil {
		req.Header = http.Header{}
	}
	if _, ok := req.Header["User-Agent"]; !ok {
		req.Header.Set("User-Agent", UserAgent)
	}
	if _, ok := req.Header["Accept"]; !ok {
		req.Header.Set("Accept", "*/*")
	}
	if h := req.Header.Get("Host"); h != "" {
		req.Host = h
	}
	res, err := p.client.Do(req)
	if err != nil {
		return Failure, err.Error()
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxBody))
	if err != nil {
		return Failure, err.Error()
	}
	switch {
	case res.StatusCode >= http.StatusOK && res.StatusCode < http.StatusMultipleChoices:
		return Success, string(body)
	case res.StatusCode >= http.StatusMultipleChoices && res.StatusCode < http.StatusBadRequest:
		return Success, fmt.Sprintf("Probe terminated redirects, Response body: %s", body)
	default:
		return Failure, fmt.Sprintf("HTTP probe failed with statuscode: %d", res.StatusCode)
	}
}
