package image

import (
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Reasons a pull failed, spelled as the kubelet reports them in a container's waiting
// state; the agent shows them as the container status reason.
const (
	// ReasonErrImagePull is any failure to fetch an image from a registry.
	ReasonErrImagePull = "ErrImagePull"
	// ReasonErrImageNeverPull is an absent image with imagePullPolicy Never.
	ReasonErrImageNeverPull = "ErrImageNeverPull"
	// ReasonInvalidImageName is a reference that does not parse.
	ReasonInvalidImageName = "InvalidImageName"
)

// Sentinel errors of the package; test with errors.Is.
var (
	// ErrImagePull matches every *PullError whose reason is ReasonErrImagePull.
	ErrImagePull = errors.New("image pull failed")
	// ErrImageNeverPull matches a pull refused because the policy is Never and the
	// image is not present.
	ErrImageNeverPull = errors.New("image not present with pull policy of Never")
	// ErrInvalidImageName matches a reference that does not parse.
	ErrInvalidImageName = errors.New("invalid image name")
	// ErrNotFound matches a registry answer that the repository, tag, digest or a blob
	// does not exist, or that no image of the index fits this node's platform.
	ErrNotFound = errors.New("image not found")
	// ErrUnauthorized matches a registry answer of 401 or 403 (bad or missing
	// credentials; Docker Hub also answers so for repositories that do not exist).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrNotPresent is returned by lookups of an image the store does not hold.
	ErrNotPresent = errors.New("image not present")
	// ErrInUse is returned by Remove for an image a container filesystem uses.
	ErrInUse = errors.New("image in use")
	// ErrPathEscape is returned when a layer holds an entry or hard link that would land
	// outside the layer's root.
	ErrPathEscape = errors.New("path escapes the layer root")
	// ErrGCInsufficient is returned by GC when removing every eligible image still does
	// not free the bytes needed to get below the low threshold.
	ErrGCInsufficient = errors.New("not enough unused images to free the required space")
	// ErrInvalidPolicy is an imagePullPolicy other than Always, IfNotPresent or Never.
	ErrInvalidPolicy = errors.New("invalid image pull policy")
)

// PullError is the error of a failed Pull. Its Reason is the kubelet-style reason the
// agent reports; errors.Is matches ErrImagePull, ErrImageNeverPull or
// ErrInvalidImageName by reason, ErrNotFound or ErrUnauthorized by the registry's answer,
// and whatever the underlying error matches.
type PullError struct {
	// Image is the reference as the caller gave it.
	Image string
	// Reason is ReasonErrImagePull, ReasonErrImageNeverPull or ReasonInvalidImageName.
	Reason string
	// Kind is ErrNotFound, ErrUnauthorized or nil when the failure is of another kind
	// (network, TLS, a corrupt layer, a full disk).
	Kind error
	// Err carries the details, including the registry's own message.
	Err error
}

// Error implements error with the image and the registry's message.
func (e *PullError) Error() string {
	return fmt.Sprintf("pull image %q: %v", e.Image, e.Err)
}

// Unwrap exposes the reason's sentinel, the kind and the cause to errors.Is and As.
func (e *PullError) Unwrap() []error {
	errs := []error{e.Err}
	switch e.Reason {
	case ReasonErrImagePull:
		errs = append(errs, ErrImagePull)
	case ReasonErrImageNeverPull:
		errs = append(errs, ErrImageNeverPull)
	case ReasonInvalidImageName:
		errs = append(errs, ErrInvalidImageName)
	}
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	return errs
}

// classify maps a registry error to ErrNotFound, ErrUnauthorized or nil.
func classify(err error) error {
	if errors.Is(err, ErrNotFound) {
		return ErrNotFound
	}
	var terr *transport.Error
	if !errors.As(err, &terr) {
		return nil
	}
	for _, d := range terr.Errors {
		switch d.Code {
		case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode,
			transport.BlobUnknownErrorCode:
			return ErrNotFound
		case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
			return ErrUnauthorized
		}
	}
	switch terr.StatusCode {
	case 404:
		return ErrNotFound
	case 401, 403:
		return ErrUnauthorized
	}
	return nil
}

// attemptErrors collects the failure of each endpoint a pull tried, in order.
type attemptErrors struct {
	endpoints []string
	errs      []error
}

func (a *attemptErrors) add(endpoint string, err error) {
	a.endpoints = append(a.endpoints, endpoint)
	a.errs = append(a.errs, err)
}

// kind picks the most telling classification: the first endpoint that answered
// "not found" or "unauthorized" wins over network failures of the others, so that an
// image missing from the lab's mirror is reported as missing even when the upstream
// registry is unreachable.
func (a *attemptErrors) kind() error {
	for _, err := range a.errs {
		if k := classify(err); k != nil {
			return k
		}
	}
	return nil
}

// err returns one error naming every endpoint and its failure.
func (a *attemptErrors) err() error {
	if len(a.errs) == 1 {
		return a.errs[0]
	}
	parts := make([]string, len(a.errs))
	for i, err := range a.errs {
		parts[i] = fmt.Sprintf("%s: %v", a.endpoints[i], err)
	}
	return &joinedError{msg: strings.Join(parts, "; "), errs: a.errs}
}

type joinedError struct {
	msg  string
	errs []error
}

func (j *joinedError) Error() string   { return j.msg }
func (j *joinedError) Unwrap() []error { return j.errs }
