// SPDX-License-Identifier: Apache-2.0
/*
 * corral's container init: PID 1 of every container (see doc.go). This
 * file runs the processes; output.c writes the log and exit.json.
 *
 * A constructor runs before the Go runtime starts. Unless argv[1] is
 * "container-init" it returns at once and the program goes on as usual;
 * otherwise it becomes the init and never returns:
 *
 *   /.corral/init container-init [--log-max-size BYTES] [--log-max-files N]
 *                                [--no-log-capture] -- CMD [ARGS...]
 *
 * fd 3 is a directory (the container attempt's host directory). The init
 * writes container.log (CRI lines, rotated by size) and, at the end,
 * exit.json there with *at() calls; the child never sees fd 3.
 *
 * States of the init:
 *
 *   START ──fork──▶ RUNNING ──main child reaped──▶ DRAINING ──▶ DONE
 *     │               │  signal → forward to the child       │        │
 *     │               │  SIGCHLD → reap every zombie         │        │
 *     │               │  pipe data → CRI lines in the log    │        │
 *     │                                       both pipes at EOF, or   │
 *     │                                       2 s after the child died│
 *     └─ bad args, fd 3 unusable, setup failure ──▶ exit.json (StartError, 128)
 *                                                                      ▼
 *                     flush partial lines, write exit.json, exit with the
 *                     child's code (128+signal when it was killed)
 *
 * The code uses no malloc, no stdio and no threads: everything lives in
 * static buffers, so the init costs a few hundred KiB of RSS. All signals
 * but the synchronous ones stay blocked and arrive through a signalfd, so
 * no system call is ever interrupted; EINTR is still retried everywhere.
 */
#include "init.h"

enum { STAGE_EXEC, STAGE_SETPGID, STAGE_DUP2, STAGE_CLOSE, STAGE_SIGNALS };
static const char *const stage_names[] = {
	"exec", "setpgid", "dup2", "close fds", "reset signals",
};

struct init ci_state;

/* ---- signals and children ---- */

/*
 * blocked_signals fills set with every signal the init takes through its
 * signalfd: all but the synchronous ones, which must still kill an init
 * that faults. SIGKILL and SIGSTOP cannot be blocked and are left out.
 */
static void blocked_signals(sigset_t *set)
{
	static const int sync_signals[] = {
		SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGABRT,
	};
	size_t i;

	sigfillset(set);
	for (i = 0; i < sizeof sync_signals / sizeof sync_signals[0]; i++)
		sigdelset(set, sync_signals[i]);
}

/* reap waits for every exited child without blocking, noting the main one. */
static void reap(void)
{
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);

		if (pid == 0)
			return;
		if (pid < 0) {
			if (errno == EINTR)
				continue;
			if (errno != ECHILD)
				ci_warn("waitpid", errno);
			return;
		}
		if (pid == ci_state.child && !ci_state.reaped) {
			ci_state.status = status;
			ci_state.reaped = 1;
			ci_now(CLOCK_REALTIME, &ci_state.finished);
		}
	}
}

/*
 * take_signals drains the signalfd. SIGCHLD reaps; every other signal goes
 * to the main child (only to it, as tini does) while it lives. Signals the
 * init raised against itself (SIGPIPE from a write to a closed stderr) are
 * dropped.
 */
static void take_signals(int sigfd)
{
	struct signalfd_siginfo si[8];
	pid_t self = getpid();
	int chld = 0;
	size_t i;

	for (;;) {
		ssize_t n = read(sigfd, si, sizeof si);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				ci_warn("read signalfd", errno);
			break;
		}
		for (i = 0; i < (size_t)n / sizeof si[0]; i++) {
			int sig = si[i].ssi_signo;

			if (sig == SIGCHLD)
				chld = 1;
			else if ((pid_t)si[i].ssi_pid == self || ci_state.reaped)
				continue;
			else if (kill(ci_state.child, sig) != 0 && errno != ESRCH)
				ci_warn("forward signal", errno);
		}
	}
	if (chld)
		reap();
}

/* close_fds closes the descriptors lo..hi. */
static int close_fds(unsigned int lo, unsigned int hi)
{
	struct rlimit rl;
	unsigned int fd;

	if (lo > hi)
		return 0;
#ifdef SYS_close_range
	if (syscall(SYS_close_range, lo, hi, 0) == 0)
		return 0;
	if (errno != ENOSYS)
		return -1;
#endif
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return -1;
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (1u << 20))
		rl.rlim_cur = 1u << 20;
	for (fd = lo; fd <= hi && fd < rl.rlim_cur; fd++)
		close(fd);	/* EBADF for most: fine */
	return 0;
}

/*
 * exec_command executes argv[0], looked up in PATH unless it has a slash,
 * as execvp does but, like runc, without execvp's fallback of running a
 * file that is not a program with /bin/sh: that is "exec format error". It
 * returns only on failure, with errno set as execvp would: EACCES when a
 * match was not executable and nothing better was found, else ENOENT.
 */
static void exec_command(char **argv)
{
	static char path[4096];
	const char *name = argv[0], *dirs = getenv("PATH"), *dir, *end;
	size_t nlen = strlen(name), dlen;
	int err = ENOENT;

	if (nlen == 0) {
		errno = ENOENT;
		return;
	}
	if (strchr(name, '/') != NULL) {
		execve(name, argv, environ);
		return;
	}
	if (dirs == NULL)
		dirs = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	for (dir = dirs;; dir = end + 1) {
		end = strchrnul(dir, ':');
		dlen = end - dir;
		if (dlen + nlen + 2 <= sizeof path) {
			memcpy(path, dir, dlen);	/* an empty element is "." */
			path[dlen] = '/';
			memcpy(path + dlen + 1, name, nlen + 1);
			execve(dlen == 0 ? name : path, argv, environ);
			if (errno == EACCES)
				err = EACCES;
			else if (errno != ENOENT && errno != ENOTDIR && errno != ESTALE)
				return;	/* found, but it cannot run */
		}
		if (*end == '\0')
			break;
	}
	errno = err;
}

/* child_fail tells the parent why the child could not start, and exits. */
static void child_fail(int fd, int stage, int err)
{
	struct start_error e = { stage, err };

	(void)!write(fd, &e, sizeof e);	/* smaller than PIPE_BUF: atomic */
	_exit(stage != STAGE_EXEC ? INIT_FAILED : err == ENOENT ? 127 : 126);
}

/* The kernel's struct sigaction, for signals the C library will not touch. */
struct kernel_sigaction {
	void (*handler)(int);
	unsigned long flags;
	void (*restorer)(void);
	unsigned long mask;
};

static void reset_reserved_signal(int sig)
{
	struct kernel_sigaction k;

	memset(&k, 0, sizeof k);
	k.handler = SIG_DFL;
	(void)syscall(SYS_rt_sigaction, sig, &k, NULL, sizeof k.mask);
}

/*
 * child_exec runs in the forked child: a process group of its own (in the
 * terminal's foreground when stdin is a tty, so ^C reaches it once and not
 * via the init too), the capture pipes as stdout and stderr, no descriptor
 * above 2, default signal handling, then CMD. errfd is close-on-exec: the
 * parent reads EOF when exec succeeds, or a start_error.
 */
static void child_exec(int out_w, int err_w, int errfd)
{
	struct sigaction dfl;
	sigset_t none;
	int sig;

	if (setpgid(0, 0) != 0)
		child_fail(errfd, STAGE_SETPGID, errno);
	if (isatty(0))
		(void)tcsetpgrp(0, getpid());	/* best effort: may not be our ctty */
	if (!ci_state.opt.no_capture && (dup2(out_w, 1) < 0 || dup2(err_w, 2) < 0))
		child_fail(errfd, STAGE_DUP2, errno);
	if (close_fds(3, errfd - 1) != 0 || close_fds(errfd + 1, ~0u) != 0)
		child_fail(errfd, STAGE_CLOSE, errno);

	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	for (sig = 1; sig < NSIG; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		if (sigaction(sig, &dfl, NULL) == 0)
			continue;
		if (errno != EINVAL)
			child_fail(errfd, STAGE_SIGNALS, errno);
		/*
		 * EINVAL: a signal the C library reserves for itself (32 and 33
		 * with glibc). An ignored disposition of those is still inherited
		 * across exec, so reset it with the system call itself.
		 */
		reset_reserved_signal(sig);
	}
	sigemptyset(&none);
	if (sigprocmask(SIG_SETMASK, &none, NULL) != 0)
		child_fail(errfd, STAGE_SIGNALS, errno);

	exec_command(ci_state.opt.cmd);
	child_fail(errfd, STAGE_EXEC, errno);
}

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
		ci_fail("set pipe non-blocking", errno);
}

/* start forks the child and waits until it has exec'd CMD or failed to. */
static void start(void)
{
	int outp[2] = { -1, -1 }, errp[2] = { -1, -1 }, execp[2];
	struct start_error e;
	ssize_t n;

	if (!ci_state.opt.no_capture && (pipe2(outp, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0))
		ci_fail("pipe", errno);
	if (pipe2(execp, O_CLOEXEC) != 0)
		ci_fail("pipe", errno);
	ci_now(CLOCK_REALTIME, &ci_state.started);
	ci_state.child = fork();
	if (ci_state.child < 0)
		ci_fail("fork", errno);
	if (ci_state.child == 0)
		child_exec(outp[1], errp[1], execp[1]);	/* never returns */

	close(execp[1]);
	if (!ci_state.opt.no_capture) {
		close(outp[1]);
		close(errp[1]);
		set_nonblock(outp[0]);
		set_nonblock(errp[0]);
	}
	ci_state.out.fd = outp[0];
	ci_state.err.fd = errp[0];
	do
		n = read(execp[0], &e, sizeof e);
	while (n < 0 && errno == EINTR);
	if (n == sizeof e) {
		ci_state.start_failed = 1;
		ci_state.start_err = e;
	} else if (n != 0) {
		ci_warn("read exec status", n < 0 ? errno : EINVAL);
	}
	close(execp[0]);
}

static long long msec(const struct timespec *ts)
{
	return (long long)ts->tv_sec * 1000 + ts->tv_nsec / 1000000;
}

/*
 * supervise is the RUNNING and DRAINING states: it forwards signals, reaps
 * and pumps the pipes until the child was reaped and the pipes are at EOF
 * or DRAIN_MS have passed since. It returns -1 if poll fails for good.
 */
static int supervise(int sigfd)
{
	long long deadline = -1;	/* CLOCK_MONOTONIC ms, once reaped */
	struct timespec ts;

	for (;;) {
		struct pollfd pfd[3] = {
			{ .fd = sigfd, .events = POLLIN },
			{ .fd = ci_state.out.fd, .events = POLLIN },	/* ignored when -1 */
			{ .fd = ci_state.err.fd, .events = POLLIN },
		};
		int timeout = -1;

		if (ci_state.reaped) {
			ci_now(CLOCK_MONOTONIC, &ts);
			if (deadline < 0)
				deadline = msec(&ts) + DRAIN_MS;
			if ((ci_state.out.fd < 0 && ci_state.err.fd < 0) || msec(&ts) >= deadline)
				return 0;
			timeout = deadline - msec(&ts);
		}
		if (poll(pfd, 3, timeout) < 0) {
			if (errno == EINTR || errno == ENOMEM || errno == EAGAIN)
				continue;
			return -1;
		}
		if (pfd[0].revents != 0)
			take_signals(sigfd);
		if (pfd[1].revents != 0)
			ci_pump(&ci_state.out);
		if (pfd[2].revents != 0)
			ci_pump(&ci_state.err);
	}
}

/* start_message describes why the child could not start. */
static void start_message(struct text *t)
{
	const char *cmd = ci_state.opt.cmd[0];

	if (ci_state.start_err.stage != STAGE_EXEC) {
		ci_puts(t, "container-init: start: ");
		if (ci_state.start_err.stage > 0 && ci_state.start_err.stage <= STAGE_SIGNALS)
			ci_puts(t, stage_names[ci_state.start_err.stage]);
		ci_puts(t, ": ");
		ci_puts(t, ci_errstr(ci_state.start_err.err));
		return;
	}
	ci_puts(t, "exec: \"");
	ci_put(t, cmd, strnlen(cmd, 256));
	ci_puts(t, "\": ");
	if (ci_state.start_err.err == ENOENT && strchr(cmd, '/') == NULL)
		ci_puts(t, "executable file not found in $PATH");
	else
		ci_puts(t, ci_errstr(ci_state.start_err.err));
}

/* finish is the DONE state: flush, write exit.json, exit like the child. */
static void finish(void)
{
	char msg[512];
	struct text t = { msg, 0, sizeof msg - 1 };
	struct stream *s[2] = { &ci_state.out, &ci_state.err };
	const char *reason;
	int i, code, sig = 0;

	for (i = 0; i < 2; i++) {
		if (s[i]->len > 0)
			ci_log_entry(s[i], 'F', s[i]->buf, s[i]->len);
		if (s[i]->fd >= 0)
			close(s[i]->fd);
	}
	reap();			/* zombies that are already there */
	if (WIFSIGNALED(ci_state.status)) {
		sig = WTERMSIG(ci_state.status);
		code = 128 + sig;
	} else {
		code = WEXITSTATUS(ci_state.status);
	}
	if (ci_state.start_failed) {
		reason = "StartError";
		start_message(&t);
	} else {
		reason = code == 0 ? "Completed" : "Error";
	}
	msg[t.len] = '\0';
	ci_write_exit(code, sig, reason, msg);
	_exit(code);
}

/* ---- entry ---- */

static int parse_number(const char *s, long long max, long long *v)
{
	long long n = 0;

	if (s == NULL || *s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9' || n > (max - (*s - '0')) / 10)
			return -1;
		n = n * 10 + (*s - '0');
	}
	if (n < 1)
		return -1;
	*v = n;
	return 0;
}

static void parse_args(int argc, char **argv)
{
	long long v;
	int i;

	ci_state.opt.max_size = DEFAULT_MAX_SIZE;
	ci_state.opt.max_files = DEFAULT_MAX_FILES;
	for (i = 2; i < argc; i++) {
		const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--") == 0 && i + 1 < argc) {
			ci_state.opt.cmd = argv + i + 1;
			return;
		} else if (strcmp(a, "--no-log-capture") == 0) {
			ci_state.opt.no_capture = 1;
		} else if (strcmp(a, "--log-max-size") == 0 && parse_number(val, 1LL << 60, &v) == 0) {
			ci_state.opt.max_size = v;
			i++;
		} else if (strcmp(a, "--log-max-files") == 0 && parse_number(val, 1000, &v) == 0) {
			ci_state.opt.max_files = v;
			i++;
		} else {
			break;
		}
	}
	ci_fail("usage: container-init [--log-max-size BYTES] [--log-max-files N] "
		"[--no-log-capture] -- CMD [ARGS...]", 0);
}

/* std_fds makes sure 0, 1 and 2 are open, so no pipe lands on them. */
static void std_fds(void)
{
	int fd;

	for (fd = 0; fd < 3; fd++) {
		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		if (open("/dev/null", O_RDWR) != fd)	/* lowest free: fd */
			_exit(INIT_FAILED);
	}
}

/* Linker-defined bounds of the program's code (weak: absent → skip). */
extern char __executable_start[] __attribute__((weak));
extern char etext[] __attribute__((weak));

/*
 * drop_startup_pages unmaps the code pages that start-up touched (the C
 * library's initialisation, argument parsing, fork) from this process: the
 * kernel maps up to 64 KiB around every page fault, so they account for
 * most of the init's RSS while it waits. The code is never written to, so
 * MADV_DONTNEED only drops page table entries; pages the loop still needs
 * fault back in from the page cache. Best effort: errors are ignored.
 */
static void drop_startup_pages(void)
{
	long page = sysconf(_SC_PAGESIZE);
	uintptr_t lo, hi;

	if (__executable_start == NULL || etext == NULL || page <= 0)
		return;
	lo = (uintptr_t)__executable_start & ~(uintptr_t)(page - 1);
	hi = ((uintptr_t)etext + page - 1) & ~(uintptr_t)(page - 1);
	if (hi > lo)
		(void)madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

static void run(int argc, char **argv)
{
	struct stat sb;
	sigset_t set;
	int sigfd;

	std_fds();
	/*
	 * Non-dumpable before anything else: no process of the container may
	 * open /proc/1/fd/3, a directory outside its root. The child becomes
	 * dumpable again when it execs.
	 */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		ci_fail("prctl(PR_SET_DUMPABLE)", errno);
	parse_args(argc, argv);
	if (fstat(DIR_FD, &sb) != 0)
		ci_fail("fd 3", errno);
	if (!S_ISDIR(sb.st_mode))
		ci_fail("fd 3", ENOTDIR);

	blocked_signals(&set);
	if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
		ci_fail("sigprocmask", errno);
	sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sigfd < 0)
		ci_fail("signalfd", errno);
	if (getpid() != 1 && prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0)
		ci_fail("prctl(PR_SET_CHILD_SUBREAPER)", errno);

	ci_state.out = (struct stream){ .name = "stdout", .fd = -1 };
	ci_state.err = (struct stream){ .name = "stderr", .fd = -1 };
	ci_state.log_fd = -1;
	if (!ci_state.opt.no_capture && (ci_state.log_fd = ci_open_log()) < 0)
		ci_fail("open " LOG_NAME, errno);

	start();
	drop_startup_pages();
	if (supervise(sigfd) != 0) {
		/* Cannot watch the child any more: stop it rather than orphan it. */
		ci_warn("poll", errno);
		kill(ci_state.child, SIGKILL);
		while (!ci_state.reaped && waitpid(ci_state.child, &ci_state.status, 0) < 0 && errno == EINTR)
			;
		ci_state.reaped = 1;
		ci_now(CLOCK_REALTIME, &ci_state.finished);
	}
	finish();
}

#if defined(__GLIBC__) && !defined(CONTAINERINIT_PROC_CMDLINE)
/* glibc passes argc, argv and envp to constructors, static or dynamic. */
__attribute__((constructor)) static void containerinit(int argc, char **argv, char **envp)
{
	(void)envp;
	if (argc >= 2 && argv != NULL && argv[1] != NULL && strcmp(argv[1], "container-init") == 0)
		run(argc, argv);
}
#else
/* Other C libraries pass constructors nothing: read /proc/self/cmdline. */
static char cmdline[256 << 10];
static char *cmdline_argv[8192];

__attribute__((constructor)) static void containerinit(void)
{
	static const char tag[] = "container-init";
	size_t len = 0;
	int fd, argc = 0;
	char *p;

	fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	while (len < sizeof cmdline) {
		ssize_t n = read(fd, cmdline + len, sizeof cmdline - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += n;
	}
	close(fd);
	p = memchr(cmdline, '\0', len);		/* end of argv[0] */
	if (p == NULL || (size_t)(p + 1 - cmdline) + sizeof tag > len ||
	    memcmp(p + 1, tag, sizeof tag) != 0)
		return;
	if (len == sizeof cmdline || cmdline[len - 1] != '\0')
		ci_fail("command line too long", E2BIG);
	for (p = cmdline; p < cmdline + len; p += strlen(p) + 1) {
		if (argc == sizeof cmdline_argv / sizeof cmdline_argv[0] - 1)
			ci_fail("command line too long", E2BIG);
		cmdline_argv[argc++] = p;
	}
	cmdline_argv[argc] = NULL;
	run(argc, cmdline_argv);
}
#endif
