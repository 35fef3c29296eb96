package probe

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Exec is an exec probe: success is exit code 0. The output (at most
// 10 KiB) is the probe's message. A command that outlives the probe's
// timeout is a failure; one that cannot be run is Unknown.
type Exec struct {
	// Command is run without a shell, as Kubernetes' exec action.
	Command []string
	// Execer runs it in the container.
	Execer Execer
}

// Probe runs the command once.
func (p *Exec) Probe(ctx context.Context) (Result, string) {
	code, out, err := p.Execer.Exec(ctx, p.Command)
	if len(out) > maxBody {
		out = out[:maxBody]
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return Failure, fmt.Sprintf("command %q timed out", strings.Join(p.Command, " "))
	}
	if err != nil {
		return Unknown, fmt.Sprintf("exec %q: %v", strings.Join(p.Command, " "), err)
	}
	if code != 0 {
		return Failure, string(out)
	}
	return Success, string(out)
}
