package runtime

import (
	"fmt"

	mobyseccomp "github.com/moby/profiles/seccomp"
	libseccomp "github.com/opencontainers/runc/libcontainer/seccomp"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// seccompFor returns the seccomp filter of container c whose spec s is
// otherwise complete: Docker's default profile and Localhost profiles allow
// some system calls only to containers holding a capability (CAP_SYS_ADMIN
// for mount, unshare, ...), which they read from s. nil means unconfined.
func seccompFor(c *ContainerConfig, s *specs.Spec) (*specs.LinuxSeccomp, error) {
	p := c.Seccomp
	if p == nil || c.Privileged {
		return nil, nil
	}
	var (
		sc  *specs.LinuxSeccomp
		err error
	)
	switch p.Type {
	case "", SeccompUnconfined:
		return nil, nil
	case SeccompRuntimeDefault:
		sc, err = mobyseccomp.GetDefaultProfile(s)
	case SeccompLocalhost:
		sc, err = mobyseccomp.LoadProfile(string(p.Localhost), s)
		if err != nil {
			return nil, fmt.Errorf("spec: seccomp profile %s: %w: %w", p.Name, err, ErrInvalid)
		}
	default:
		return nil, fmt.Errorf("spec: container %q: unknown seccomp profile type %q: %w", c.Name, p.Type, ErrInvalid)
	}
	if err != nil {
		return nil, fmt.Errorf("spec: seccomp profile %s: %w", p.Type, err)
	}
	if !libseccomp.Enabled {
		return nil, fmt.Errorf("spec: container %q asks for seccomp profile %s, but this corral was built without seccomp (build tag seccomp): %w",
			c.Name, p.Type, ErrInvalid)
	}
	return sc, nil
}
