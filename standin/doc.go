// Package standin is corral's stand-in container workload: a small static
// program that tests and the lab ship as an image. It serves HTTP 200 on /,
// /health and /ready on every port it is given, prints what it sees (argv,
// environment, mounts, hostname, cgroup limits), and can be told to crash,
// hang, allocate memory or turn unhealthy or unready, so that tests can
// exercise restarts, probes and limits.
//
// It runs as test/workload (tests build it) and as the corral binary itself
// when $CORRAL_STANDIN=1: the lab's images carry the corral binary, so a
// machine without a Go toolchain still gets stand-ins.
//
// Ports: --listen=:8080,:80 or $WORKLOAD_LISTEN (default: the caller's;
// test/workload uses :8080, the corral binary LabListen).
// Behaviour, from the environment:
//
//	WORKLOAD_EXIT_AFTER=2s   exit after the duration...
//	WORKLOAD_EXIT_CODE=3     ...with this code (default 1)
//	WORKLOAD_ALLOC_MB=300    allocate and touch this much memory at start
//	WORKLOAD_IGNORE_TERM=1   ignore SIGTERM (to test the grace period)
//
// and from files, checked on every request (create them with `exec`):
//
//	/tmp/unhealthy → /health answers 500
//	/tmp/unready   → /ready answers 503
//
// Sub-commands for exec: `workload cat FILE...`, `workload env`,
// `workload sleep DURATION`, `workload touch FILE`, `workload rm FILE`,
// `workload exit CODE`, `workload get URL` (HTTP GET; fails unless 2xx).
package standin
