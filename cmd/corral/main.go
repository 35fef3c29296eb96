// Command corral is the one binary of corral: `corral server` runs a server,
// `corral agent` a node agent, and every other verb is the kubectl-like CLI.
// It is also the container runtime's own helper: libcontainer re-executes it
// as `corral init` inside new containers, and every container's PID 1 is
// `corral container-init` (handled in C before the Go runtime starts).
package main

import (
	"os"

	"github.com/corral-dev/corral/cli"
	"github.com/corral-dev/corral/nodeagent/runtime"
	_ "github.com/corral-dev/corral/nodeagent/runtime/containerinit"
	"github.com/corral-dev/corral/standin"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "init" {
		runtime.Init() // never returns: it becomes the container's process
	}
	if os.Getenv(standin.EnvVar) == "1" {
		// The lab's stand-in images run this binary as their workload.
		os.Exit(standin.Main(os.Args, standin.LabListen))
	}
	root := cli.NewRootCommand(os.Stdin, os.Stdout, os.Stderr, newServerCmd(), newAgentCmd(), newLabCmd())
	// `snapshot restore` works on a data dir, offline: it belongs beside the
	// CLI's `snapshot save`.
	for _, c := range root.Commands() {
		if c.Name() == "snapshot" {
			c.AddCommand(newSnapshotRestoreCmd())
		}
	}
	os.Exit(cli.ExitCode(root.Execute()))
}
