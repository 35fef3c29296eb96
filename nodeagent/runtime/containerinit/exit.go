package containerinit

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Reasons an [Exit] gives, as Kubernetes names them.
const (
	ReasonCompleted  = "Completed"  // exit code 0
	ReasonError      = "Error"      // non-zero exit code, or killed by a signal
	ReasonStartError = "StartError" // the command could not be executed
)

// Exit is how a container's command ended: the contents of exit.json.
type Exit struct {
	// ExitCode is the command's exit code, 128+Signal when a signal killed
	// it, 127 (not found) or 126 (not executable) when exec failed, and 128
	// when the init itself could not start.
	ExitCode int `json:"exitCode"`
	// Signal is the signal that killed the command, or 0.
	Signal int `json:"signal"`
	// StartedAt is when the init started the command.
	StartedAt time.Time `json:"startedAt"`
	// FinishedAt is when the command ended.
	FinishedAt time.Time `json:"finishedAt"`
	// Reason is ReasonCompleted, ReasonError or ReasonStartError.
	Reason string `json:"reason"`
	// Message explains a StartError, e.g.
	// `exec: "foo": executable file not found in $PATH`; empty otherwise.
	Message string `json:"message"`
}

// ReadExit reads the exit.json the init wrote in dir. The error satisfies
// errors.Is(err, os.ErrNotExist) while the command runs, or when it never ran.
func ReadExit(dir string) (*Exit, error) {
	path := filepath.Join(dir, ExitFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read container exit status: %w", err)
	}
	var e Exit
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("read container exit status %s: %w", path, err)
	}
	return &e, nil
}
