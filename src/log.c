/*
 * log.c - leveled logging to stderr and the access log.
 *
 * The threshold is set at start-up and again by a reload, while workers
 * read it: it is read and written with relaxed atomics.  Each line is formatted into a local buffer and
 * written with one write(2) so lines from several threads never interleave.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

static int log_threshold = LOG_INFO; /* atomic: a reload may change it */

static const char *const log_names[] = {
#define LOG_NAME_(name, text) text,
	LOG_LEVELS(LOG_NAME_)
#undef LOG_NAME_
};

#define LOG_N_LEVELS (sizeof(log_names) / sizeof(log_names[0]))

/* Parse a level name. */
int
log_level_parse(const char *s, enum log_level *out)
{
	for (size_t i = 0; i < LOG_N_LEVELS; i++) {
		if (strcmp(s, log_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

/* The name of a level. */
const char *
log_level_name(enum log_level level)
{
	if ((size_t)level >= LOG_N_LEVELS)
		return "?";
	return log_names[level];
}

/* libevent's messages, mapped onto our levels. */
static void
log_libevent_cb(int severity, const char *msg)
{
	enum log_level level;

	switch (severity) {
	case EVENT_LOG_DEBUG:
		level = LOG_DEBUG;
		break;
	case EVENT_LOG_MSG:
		level = LOG_INFO;
		break;
	case EVENT_LOG_WARN:
		level = LOG_WARN;
		break;
	default:
		level = LOG_ERROR;
		break;
	}
	log_msg(level, "libevent: %s", msg);
}

/* Set the threshold and hook libevent's logging. */
void
log_init(enum log_level level)
{
	__atomic_store_n(&log_threshold, (int)level, __ATOMIC_RELAXED);
	event_set_log_callback(log_libevent_cb);
}

/* True if LEVEL passes the threshold. */
bool
log_enabled(enum log_level level)
{
	return (int)level <= __atomic_load_n(&log_threshold, __ATOMIC_RELAXED);
}

/* Format one line with a timestamp and write it in one call. */
static void log_write(const char *tag, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

static void
log_write(const char *tag, const char *fmt, va_list ap)
{
	char line[2048];
	struct timespec ts;
	struct tm tm;
	size_t n;
	int r;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(line + n, sizeof(line) - n, ".%03ldZ %s ",
		     ts.tv_nsec / 1000000L, tag);
	if (r > 0)
		n += (size_t)r;
	if (n < sizeof(line)) {
		r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
		if (r > 0)
			n += (size_t)r;
	}
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2; /* truncated: keep the newline */
	line[n++] = '\n';

	const char *p = line;
	while (n > 0) {
		ssize_t w = write(STDERR_FILENO, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		p += w;
		n -= (size_t)w;
	}
}

/* Print one message at LEVEL. */
void
log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	log_write(log_level_name(level), fmt, ap);
	va_end(ap);
}

/* Print one access-log line. */
void
log_access(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_write("access", fmt, ap);
	va_end(ap);
}
