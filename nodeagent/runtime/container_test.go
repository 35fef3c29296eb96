package runtime

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestContainerRunsAndExits(t *testing.T) {
	e := newTestEnv(t)
	sb := e.sandbox(SandboxConfig{})
	id := e.run(sb, "app", []string{"exit-after", "200ms", "3"}, nil)
	st := e.waitState(e.rt, id, StateExited, 10*time.Second)
	if st.ExitCode != 3 || st.Reason != ReasonError {
		t.Errorf("status = %+v, want exit code 3, reason Error", st)
	}
	if st.StartedAt.IsZero() || st.FinishedAt.Before(st.StartedAt) {
		t.Errorf("started %v finished %v", st.StartedAt, st.FinishedAt)
	}
	if err := e.rt.RemoveContainer(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if _, err := e.rt.ContainerStatus(context.Background(), id); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("status after remove: %v", err)
	}
}
