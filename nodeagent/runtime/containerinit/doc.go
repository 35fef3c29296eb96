// Package containerinit is corral's container init: the PID 1 of every
// container, and the Go code that reads what it leaves behind.
//
// # Why
//
// Only the process that spawned a container learns its exit code, and the
// node agent may restart while its containers run. So each container runs
// the user's command under a tiny init that outlives the agent: it forwards
// signals to the command, reaps zombies, writes the command's stdout and
// stderr as timestamped CRI log lines (rotated by size) and, when the
// command ends, writes its exit status to a file. The agent reads those
// files, whether or not it was there when the container ran.
//
// # The init
//
// The init is C (init.c runs the processes, output.c writes the files), run
// by a constructor before the Go runtime starts, so it costs well under
// 1 MiB of memory and no threads. Any binary that imports this package
// carries it; when such a binary is started as
//
//	/.corral/init container-init [--log-max-size BYTES] [--log-max-files N] [--no-log-capture] -- CMD [ARGS...]
//
// (see [Args]) it becomes the init and never reaches main. Built static
// (CGO_ENABLED=1, -tags 'netgo osusergo', -ldflags '-linkmode external
// -extldflags "-static"'), the corral binary runs as the init in any image,
// even one FROM scratch. Its file descriptor 3 must be a directory, the
// container attempt's host directory, writable by the container's user,
// where the init writes (and which the command never sees):
//
//   - container.log, and container.log.1 .. container.log.N-1 once rotated:
//     one CRI line per output line, "2026-11-28T12:00:00.123456789Z stdout F text".
//     Lines longer than 16 KiB are split into "P" (partial) entries ended by
//     an "F" entry. With --no-log-capture the command inherits the init's
//     stdio instead (tty containers) and no log is written.
//   - exit.json, written atomically once the command has ended and its
//     output is logged ([Exit], [ReadExit]).
//
// The init exits with the command's exit code, or 128+signal when a signal
// killed it. A command that cannot be executed ends with reason StartError
// and exit code 127 (not found) or 126 (not executable); an init that
// cannot start at all (bad arguments, fd 3 not a directory) writes
// StartError with exit code 128 when it can.
//
// Signals sent to the init go to the command only (as tini does), which
// runs in a process group of its own. The init is non-dumpable, so the
// container's processes cannot reach fd 3 through /proc/1/fd.
//
// # Reading
//
// [ReadExit] reads exit.json; [ReadLogs] writes a container's logs the way
// "kubectl logs" shows them (--tail, --since, --timestamps, --limit-bytes,
// --follow across rotations); [ParseLogLine] parses one CRI line.
package containerinit
