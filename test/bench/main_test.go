package bench

import (
	"os"
	"testing"

	"github.com/corral-dev/corral/nodeagent/runtime"
	_ "github.com/corral-dev/corral/nodeagent/runtime/containerinit"
)

// TestMain doubles as libcontainer's container bootstrap: the runtime
// re-executes this test binary as "init" inside new containers.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "init" {
		runtime.Init()
	}
	os.Exit(m.Run())
}
