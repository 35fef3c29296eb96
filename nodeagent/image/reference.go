package image

import (
	"fmt"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Pull policies, spelled as in a container's imagePullPolicy.
const (
	// PullAlways resolves the reference at the registry on every pull; layers already
	// held are not fetched again.
	PullAlways = "Always"
	// PullIfNotPresent uses the local image when the reference is known and only then
	// goes to the network.
	PullIfNotPresent = "IfNotPresent"
	// PullNever uses only local images; an absent image is ErrImageNeverPull.
	PullNever = "Never"
)

// dockerHub is the registry name go-containerregistry gives Docker Hub; "docker.io" is
// the name users and registries.yaml use for it.
const (
	dockerHub      = "index.docker.io"
	dockerHubAlias = "docker.io"
)

// ParseReference parses an image reference as Docker and Kubernetes do: Docker Hub is the
// default registry, "library/" is implied for its single-name repositories, an untagged
// reference means ":latest", and "@sha256:..." pins a digest (a tag beside a digest is
// ignored). The result's Name is the canonical form the store keys images by, such as
// "index.docker.io/library/nginx:1.25".
func ParseReference(ref string) (name.Reference, error) {
	if ref == "" || strings.TrimSpace(ref) != ref {
		return nil, fmt.Errorf("parse image reference %q: %w", ref, ErrInvalidImageName)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("parse image reference %q: %w: %v", ref, ErrInvalidImageName, err)
	}
	if slices.Contains(strings.Split(r.Context().RepositoryStr(), "/"), "") {
		return nil, fmt.Errorf("parse image reference %q: %w: empty path component", ref, ErrInvalidImageName)
	}
	return r, nil
}

// ResolvePolicy returns the effective pull policy: an empty policy defaults as in
// Kubernetes (Always for ":latest" or an untagged reference, IfNotPresent otherwise,
// including digests); other values must be Always, IfNotPresent or Never.
func ResolvePolicy(policy string, ref name.Reference) (string, error) {
	switch policy {
	case PullAlways, PullIfNotPresent, PullNever:
		return policy, nil
	case "":
		if t, ok := ref.(name.Tag); ok && t.TagStr() == "latest" {
			return PullAlways, nil
		}
		return PullIfNotPresent, nil
	}
	return "", fmt.Errorf("%w %q: want %s, %s or %s", ErrInvalidPolicy, policy,
		PullAlways, PullIfNotPresent, PullNever)
}

// registryKeys returns the names registries.yaml may use for a registry, most specific
// first: Docker Hub answers to both "index.docker.io" and "docker.io".
func registryKeys(registry string) []string {
	if registry == dockerHub || registry == dockerHubAlias {
		return []string{dockerHubAlias, dockerHub}
	}
	return []string{registry}
}
