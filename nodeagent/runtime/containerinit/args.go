package containerinit

import "strconv"

// InitPath is where the runtime bind-mounts the init binary in every
// container.
const InitPath = "/.corral/init"

// Names of the files the init writes in its directory (fd 3).
const (
	// LogFile is the current log; rotated logs are LogFile + ".1" (newest)
	// up to LogFile + ".N-1" (oldest).
	LogFile = "container.log"
	// ExitFile holds the [Exit] once the command has ended.
	ExitFile = "exit.json"
)

// Defaults the init applies when [LogOptions] leaves a limit zero.
const (
	// DefaultMaxSize is the size at which container.log is rotated: 10 MiB.
	DefaultMaxSize = 10 << 20
	// DefaultMaxFiles is how many log files are kept, container.log included.
	DefaultMaxFiles = 5
)

// LogOptions says how the init captures and rotates the command's output.
type LogOptions struct {
	// MaxSize is the size in bytes container.log may reach before it is
	// rotated; 0 means DefaultMaxSize.
	MaxSize int64
	// MaxFiles is how many log files to keep, container.log included;
	// 0 means DefaultMaxFiles.
	MaxFiles int
	// NoCapture lets the command inherit the init's stdin, stdout and
	// stderr (a tty); nothing is logged.
	NoCapture bool
}

// Args returns the init's argv for running cmd: InitPath, "container-init",
// the options, "--" and cmd. CMD is looked up in the container's PATH as
// execvp does.
func Args(cmd []string, opts LogOptions) []string {
	args := []string{InitPath, "container-init"}
	if opts.MaxSize > 0 {
		args = append(args, "--log-max-size", strconv.FormatInt(opts.MaxSize, 10))
	}
	if opts.MaxFiles > 0 {
		args = append(args, "--log-max-files", strconv.Itoa(opts.MaxFiles))
	}
	if opts.NoCapture {
		args = append(args, "--no-log-capture")
	}
	args = append(args, "--")
	return append(args, cmd...)
}
