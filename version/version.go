// Package version holds corral's version, set at link time by the Makefile.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is the release or git description, set with -ldflags -X.
var Version = "dev"

// GitCommit returns the VCS revision the binary was built from, if known.
func GitCommit() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}

// Platform is GOOS/GOARCH.
func Platform() string { return fmt.Sprintf("%s/%s", runtime.GOOS, runtime.GOARCH) }
