// SPDX-License-Identifier: Apache-2.0
/*
 * init.h: what the two halves of corral's container init share. init.c
 * runs the processes (start-up, signals, reaping); output.c writes what the
 * init leaves in its directory (container.log, exit.json). See init.c.
 * Shared names start with ci_: they are global symbols of every binary
 * that links this package.
 */
#ifndef CORRAL_CONTAINERINIT_H
#define CORRAL_CONTAINERINIT_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>		/* renameat only; no stdio streams */
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DIR_FD 3			/* the attempt directory, given by the runtime */
#define LOG_NAME "container.log"
#define EXIT_NAME "exit.json"
#define EXIT_TMP "exit.json.tmp"
#define MAX_LINE 16384			/* longer lines are split into "P" entries */
#define DRAIN_MS 2000			/* pump this long after the child exited */
#define INIT_FAILED 128			/* exit code when the init itself fails */
#define DEFAULT_MAX_SIZE (10LL << 20)
#define DEFAULT_MAX_FILES 5
#define TIME_LEN 30			/* 2006-01-02T15:04:05.000000000Z */

struct options {
	long long max_size;	/* rotate container.log before it exceeds this */
	int max_files;		/* container.log plus rotated files */
	int no_capture;		/* the child inherits stdio */
	char **cmd;		/* CMD ARGS..., NULL-terminated */
};

/* One captured output stream: a pipe and the unfinished line read from it. */
struct stream {
	const char *name;	/* "stdout" or "stderr" */
	int fd;			/* read end; -1 once at EOF (or not captured) */
	size_t len;		/* bytes in buf, none of them '\n' */
	char buf[MAX_LINE + 1];
};

/* What the child reports through the exec pipe when it cannot start. */
struct start_error {
	int stage;
	int err;
};

/* Everything the init knows. */
struct init {
	struct options opt;
	struct stream out, err;
	int log_fd;		/* container.log; -1 when not capturing */
	long long log_size;	/* bytes in container.log */
	int log_failed;		/* a write failed; warned once */
	pid_t child;
	int reaped;		/* the main child has been waited for */
	int status;		/* its wait status */
	int start_failed;	/* the child could not exec */
	struct start_error start_err;
	struct timespec started, finished;
};

extern struct init ci_state;	/* the one init; static storage (32 KiB of buffers) */

/* A bounded text buffer; appends that do not fit are cut. */
struct text {
	char *p;
	size_t len, cap;
};

void ci_put(struct text *t, const char *s, size_t n);
void ci_puts(struct text *t, const char *s);
void ci_putint(struct text *t, long long v);
const char *ci_errstr(int err);
void ci_warn(const char *what, int err);
void ci_now(clockid_t clock, struct timespec *ts);
void ci_write_exit(int code, int sig, const char *reason, const char *msg);
void ci_fail(const char *what, int err) __attribute__((noreturn));
int ci_open_log(void);
void ci_log_entry(const struct stream *s, char tag, const char *p, size_t n);
void ci_pump(struct stream *s);

#endif
