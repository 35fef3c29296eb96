// Command corralinit stands in for the corral binary in the runtime's tests: like it,
// it carries the container init (package containerinit, a C constructor that takes
// over when argv[1] is "container-init") and libcontainer's bootstrap (runtime.Init
// when argv[1] is "init"). The tests build it static and bind-mount it into every
// container at /.corral/init.
package main

import (
	"fmt"
	"os"

	"github.com/corral-dev/corral/nodeagent/runtime"
	_ "github.com/corral-dev/corral/nodeagent/runtime/containerinit"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "init" {
		runtime.Init()
	}
	fmt.Fprintln(os.Stderr, "corralinit: run as \"init\" or \"container-init\"")
	os.Exit(2)
}
