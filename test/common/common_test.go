package common

import (
	"testing"

	"github.com/corral-dev/corral/test/framework"
)

// Each body runs on three in-process servers and on three real server
// processes.
var bodies = []struct {
	name string
	run  func(*testing.T, framework.Cluster)
}{
	{"SeedSurvivesLeaderLoss", SeedSurvivesLeaderLoss},
	{"ConcurrentUpdatesOneWins", ConcurrentUpdatesOneWins},
	{"BadInputChangesNothing", BadInputChangesNothing},
	{"WatchStreamsChanges", WatchStreamsChanges},
}

func TestInProcess(t *testing.T) {
	for _, b := range bodies {
		t.Run(b.name, func(t *testing.T) { b.run(t, framework.NewInProcess(t, 3)) })
	}
}

func TestProcesses(t *testing.T) {
	for _, b := range bodies {
		t.Run(b.name, func(t *testing.T) { b.run(t, framework.NewProcesses(t, 3)) })
	}
}
