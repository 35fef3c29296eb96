// Command corral is the one binary of corral: `corral server` runs a server,
// and every other verb is the kubectl-like CLI.
package main

import (
	"os"

	"github.com/corral-dev/corral/cli"
)

func main() {
	root := cli.NewRootCommand(os.Stdin, os.Stdout, os.Stderr, newServerCmd())
	// `snapshot restore` works on a data dir, offline: it belongs beside the
	// CLI's `snapshot save`.
	for _, c := range root.Commands() {
		if c.Name() == "snapshot" {
			c.AddCommand(newSnapshotRestoreCmd())
		}
	}
	os.Exit(cli.ExitCode(root.Execute()))
}
