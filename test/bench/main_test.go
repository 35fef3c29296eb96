package bench

import (
	"os"
	"testing"

	"github.com/corral-dev/corral/nodeagent/runtime"
	_ "github.com/corral-dev/corral/nodeagent/runtime/containerinit"
)

// TestMain doubles as libcontainer's container bootstrap: the runtime
// re-executes this test binary as "init" inside new containers. With
// CORRAL_BENCH_SIM_FLEET set it is the fleet benchmark's process of
// simulated agents instead.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "init" {
		runtime.Init()
	}
	if spec := os.Getenv(fleetChildEnv); spec != "" {
		os.Exit(runFleetChild(spec))
	}
	os.Exit(m.Run())
}
