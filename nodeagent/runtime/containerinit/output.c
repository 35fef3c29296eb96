// SPDX-License-Identifier: Apache-2.0
/*
 * output.c: what corral's container init writes (see init.c): CRI lines in
 * container.log, rotated by size, and exit.json at the end. Everything is
 * written with *at() calls relative to fd 3, from static buffers.
 */
#include "init.h"

/* ---- small helpers: text building, errors, time ---- */

void ci_put(struct text *t, const char *s, size_t n)
{
	if (n > t->cap - t->len)
		n = t->cap - t->len;
	memcpy(t->p + t->len, s, n);
	t->len += n;
}

void ci_puts(struct text *t, const char *s)
{
	ci_put(t, s, strlen(s));
}

void ci_putint(struct text *t, long long v)
{
	char d[24];
	int i = sizeof d;
	unsigned long long u = v < 0 ? -(unsigned long long)v : (unsigned long long)v;

	do
		d[--i] = '0' + u % 10;
	while ((u /= 10) != 0);
	if (v < 0)
		d[--i] = '-';
	ci_put(t, d + i, sizeof d - i);
}

/* putjson appends s (at most max bytes of it) as a JSON string body. */
static void putjson(struct text *t, const char *s, size_t max)
{
	static const char hex[] = "0123456789abcdef";

	for (; *s != '\0' && max > 0; s++, max--) {
		unsigned char c = *s;
		if (c == '"' || c == '\\') {
			char e[2] = { '\\', c };
			ci_put(t, e, 2);
		} else if (c < 0x20) {
			char e[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
			ci_put(t, e, 6);
		} else {
			ci_put(t, (const char *)&c, 1);
		}
	}
}

/* errstr describes err as Go's syscall package does (lower case). */
const char *ci_errstr(int err)
{
	switch (err) {
	case ENOENT: return "no such file or directory";
	case EACCES: return "permission denied";
	case EPERM: return "operation not permitted";
	case ENOEXEC: return "exec format error";
	case ENOTDIR: return "not a directory";
	case EISDIR: return "is a directory";
	case ELOOP: return "too many levels of symbolic links";
	case ENAMETOOLONG: return "file name too long";
	case E2BIG: return "argument list too long";
	case ENOMEM: return "cannot allocate memory";
	case ETXTBSY: return "text file busy";
	case EMFILE: return "too many open files";
	case ENOSPC: return "no space left on device";
	case EROFS: return "read-only file system";
	case EBADF: return "bad file descriptor";
	case EINVAL: return "invalid argument";
	default: return "unknown error";
	}
}

static ssize_t write_all(int fd, const char *p, size_t n)
{
	size_t done = 0;

	while (done < n) {
		ssize_t w = write(fd, p + done, n - done);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		done += w;
	}
	return done;
}

/* warn prints "container-init: what: error" on the init's own stderr. */
void ci_warn(const char *what, int err)
{
	char buf[512];
	struct text t = { buf, 0, sizeof buf - 1 };

	ci_puts(&t, "container-init: ");
	ci_puts(&t, what);
	if (err != 0) {
		ci_puts(&t, ": ");
		ci_puts(&t, ci_errstr(err));
	}
	buf[t.len++] = '\n';
	(void)write_all(2, buf, t.len);	/* nowhere left to report a failure */
}

void ci_now(clockid_t clock, struct timespec *ts)
{
	if (clock_gettime(clock, ts) != 0)
		ts->tv_sec = ts->tv_nsec = 0;	/* cannot fail with valid args */
}

static void put_digits(char *p, unsigned long v, int n)
{
	while (n-- > 0) {
		p[n] = '0' + v % 10;
		v /= 10;
	}
}

/*
 * fmt_time writes ts as RFC 3339 UTC with nanoseconds (TIME_LEN bytes, not
 * NUL-terminated). gmtime_r would load /etc/localtime on first use, so the
 * calendar date is computed from the day number (proleptic Gregorian).
 */
static void fmt_time(char *p, const struct timespec *ts)
{
	int64_t days = ts->tv_sec / 86400, secs = ts->tv_sec % 86400;
	int64_t z, era, doe, yoe, doy, mp, y, m, d;

	if (secs < 0) {
		secs += 86400;
		days--;
	}
	z = days + 719468;		/* days since 0000-03-01 */
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;		/* day of the 400-year era */
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);	/* from March 1st */
	mp = (5 * doy + 2) / 153;
	d = doy - (153 * mp + 2) / 5 + 1;
	m = mp < 10 ? mp + 3 : mp - 9;
	y = yoe + era * 400 + (m <= 2);

	memcpy(p, "0000-00-00T00:00:00.000000000Z", TIME_LEN);
	put_digits(p, y, 4);
	put_digits(p + 5, m, 2);
	put_digits(p + 8, d, 2);
	put_digits(p + 11, secs / 3600, 2);
	put_digits(p + 14, secs / 60 % 60, 2);
	put_digits(p + 17, secs % 60, 2);
	put_digits(p + 20, ts->tv_nsec, 9);
}

/* ---- exit.json ---- */

/*
 * ci_write_exit writes exit.json atomically: a temporary file, fsync, rename,
 * fsync of the directory. Failures are reported on stderr only: the exit
 * code still tells the runtime what happened.
 */
void ci_write_exit(int code, int sig, const char *reason, const char *msg)
{
	char buf[4096], ts[TIME_LEN];
	struct text t = { buf, 0, sizeof buf };
	int fd;

	ci_puts(&t, "{\"exitCode\":");
	ci_putint(&t, code);
	ci_puts(&t, ",\"signal\":");
	ci_putint(&t, sig);
	ci_puts(&t, ",\"startedAt\":\"");
	fmt_time(ts, &ci_state.started);
	ci_put(&t, ts, TIME_LEN);
	ci_puts(&t, "\",\"finishedAt\":\"");
	fmt_time(ts, &ci_state.finished);
	ci_put(&t, ts, TIME_LEN);
	ci_puts(&t, "\",\"reason\":\"");
	ci_puts(&t, reason);
	ci_puts(&t, "\",\"message\":\"");
	putjson(&t, msg, 512);	/* escaped, at most 3 KiB: it fits */
	ci_puts(&t, "\"}\n");

	do
		fd = openat(DIR_FD, EXIT_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0640);
	while (fd < 0 && errno == EINTR);
	if (fd < 0) {
		ci_warn("create " EXIT_TMP, errno);
		return;
	}
	if (write_all(fd, buf, t.len) < 0 || fsync(fd) != 0) {
		ci_warn("write " EXIT_TMP, errno);
		close(fd);
		return;
	}
	if (close(fd) != 0 && errno != EINTR) {
		ci_warn("close " EXIT_TMP, errno);
		return;
	}
	if (renameat(DIR_FD, EXIT_TMP, DIR_FD, EXIT_NAME) != 0) {
		ci_warn("rename " EXIT_TMP, errno);
		return;
	}
	if (fsync(DIR_FD) != 0)
		ci_warn("fsync directory", errno);
}

/*
 * ci_fail ends an init that could not start the command: it reports what
 * failed on stderr and in exit.json (StartError) and exits INIT_FAILED.
 */
void ci_fail(const char *what, int err)
{
	char buf[512];
	struct text t = { buf, 0, sizeof buf - 1 };

	ci_puts(&t, "container-init: ");
	ci_puts(&t, what);
	if (err != 0) {
		ci_puts(&t, ": ");
		ci_puts(&t, ci_errstr(err));
	}
	buf[t.len] = '\0';
	ci_warn(what, err);
	ci_now(CLOCK_REALTIME, &ci_state.started);
	ci_state.finished = ci_state.started;
	ci_write_exit(INIT_FAILED, 0, "StartError", buf);
	_exit(INIT_FAILED);
}

/* ---- container.log ---- */

/* log_name writes "container.log" or "container.log.N" into buf. */
static const char *log_name(char *buf, size_t cap, int n)
{
	struct text t = { buf, 0, cap - 1 };

	ci_puts(&t, LOG_NAME);
	if (n > 0) {
		ci_puts(&t, ".");
		ci_putint(&t, n);
	}
	buf[t.len] = '\0';
	return buf;
}

/* ci_open_log opens container.log for appending and notes its size. */
int ci_open_log(void)
{
	struct stat sb;
	int fd;

	do
		fd = openat(DIR_FD, LOG_NAME, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return -1;
	if (fstat(fd, &sb) != 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	ci_state.log_size = sb.st_size;
	return fd;
}

/*
 * rotate shifts container.log.N-2 → .N-1, ..., container.log → .1 (with
 * --log-max-files 1 it drops container.log) and opens a new container.log.
 * If that fails the init keeps appending to the old file and tries again
 * after another max_size bytes.
 */
static void rotate(void)
{
	char from[64], to[64];
	int i, fd;

	ci_state.log_size = 0;	/* on failure, retry after max_size more bytes */
	for (i = ci_state.opt.max_files - 2; i >= 1; i--) {
		if (renameat(DIR_FD, log_name(from, sizeof from, i), DIR_FD,
			     log_name(to, sizeof to, i + 1)) != 0 && errno != ENOENT)
			ci_warn("rotate log", errno);
	}
	if (ci_state.opt.max_files > 1) {
		if (renameat(DIR_FD, LOG_NAME, DIR_FD, log_name(to, sizeof to, 1)) != 0) {
			ci_warn("rotate log", errno);
			return;
		}
	} else if (unlinkat(DIR_FD, LOG_NAME, 0) != 0) {
		ci_warn("rotate log", errno);
		return;
	}
	fd = ci_open_log();
	if (fd < 0) {
		ci_warn("reopen " LOG_NAME, errno);
		return;
	}
	close(ci_state.log_fd);
	ci_state.log_fd = fd;	/* ci_open_log set log_size */
}

/*
 * ci_log_entry appends one CRI line "<time> <stream> <F|P> <text>\n", rotating
 * first when the line would take container.log past the size limit. A
 * write error drops the line: the pipes must keep flowing.
 */
void ci_log_entry(const struct stream *s, char tag, const char *p, size_t n)
{
	char hdr[TIME_LEN + 16];
	struct timespec ts;
	struct iovec iov[3];
	size_t hlen = TIME_LEN, total, done = 0;
	int i = 0;

	ci_now(CLOCK_REALTIME, &ts);
	fmt_time(hdr, &ts);
	hdr[hlen++] = ' ';
	memcpy(hdr + hlen, s->name, 6);
	hlen += 6;
	hdr[hlen++] = ' ';
	hdr[hlen++] = tag;
	hdr[hlen++] = ' ';
	total = hlen + n + 1;
	if (ci_state.log_size > 0 && ci_state.log_size + (long long)total > ci_state.opt.max_size)
		rotate();

	iov[0] = (struct iovec){ hdr, hlen };
	iov[1] = (struct iovec){ (void *)p, n };
	iov[2] = (struct iovec){ "\n", 1 };
	while (done < total) {
		ssize_t w = writev(ci_state.log_fd, iov + i, 3 - i);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (!ci_state.log_failed)
				ci_warn("write " LOG_NAME, errno);
			ci_state.log_failed = 1;
			break;
		}
		done += w;
		for (; i < 3 && (size_t)w >= iov[i].iov_len; i++)	/* short write */
			w -= iov[i].iov_len;
		if (i < 3) {
			iov[i].iov_base = (char *)iov[i].iov_base + w;
			iov[i].iov_len -= w;
		}
	}
	ci_state.log_size += done;
}

/*
 * ci_pump reads what a pipe has and logs each complete line as "F". A line
 * that fills the buffer (MAX_LINE+1 bytes, no newline) is logged as a
 * MAX_LINE "P" chunk. At EOF the unfinished line, if any, is logged as "F".
 */
void ci_pump(struct stream *s)
{
	char *start = s->buf, *end, *nl, *from = s->buf + s->len;
	ssize_t n;

	do
		n = read(s->fd, s->buf + s->len, sizeof s->buf - s->len);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return;
	if (n <= 0) {		/* EOF, or an error no read can recover from */
		if (n < 0)
			ci_warn("read pipe", errno);
		if (s->len > 0)
			ci_log_entry(s, 'F', s->buf, s->len);
		s->len = 0;
		close(s->fd);
		s->fd = -1;
		return;
	}
	end = s->buf + s->len + n;
	while ((nl = memchr(from, '\n', end - from)) != NULL) {
		ci_log_entry(s, 'F', start, nl - start);
		start = from = nl + 1;
	}
	if (end - start == (ptrdiff_t)sizeof s->buf) {
		ci_log_entry(s, 'P', start, MAX_LINE);
		start += MAX_LINE;
	}
	s->len = end - start;
	memmove(s->buf, start, s->len);
}
