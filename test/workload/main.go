// Command workload is corral's stand-in container workload for tests: a
// small static program that serves HTTP health endpoints and prints what it
// sees. The program lives in package standin (see there for its switches);
// the corral binary runs the same code when $CORRAL_STANDIN=1.
package main

import (
	"os"

	"github.com/corral-dev/corral/standin"
)

func main() {
	os.Exit(standin.Main(os.Args, standin.TestListen))
}
