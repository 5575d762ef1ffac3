/*
 * log.h - leveled logging to stderr (Docker-friendly) and the access log.
 *
 * One line per message: "2026-11-25T01:02:03.456Z LEVEL message".  The
 * level is set once at start-up; libevent's own messages are routed here.
 */
#ifndef WSGATE_LOG_H
#define WSGATE_LOG_H

#include <stdbool.h>

#define LOG_LEVELS(X)                                                          \
	X(LOG_ERROR, "error")                                                  \
	X(LOG_WARN, "warn")                                                    \
	X(LOG_INFO, "info")                                                    \
	X(LOG_DEBUG, "debug")

enum log_level {
#define LOG_ENUM_(name, text) name,
	LOG_LEVELS(LOG_ENUM_)
#undef LOG_ENUM_
};

/* Parse "error", "warn", "info" or "debug"; 0 or -1. */
int log_level_parse(const char *s, enum log_level *out);
/* The name of LEVEL. */
const char *log_level_name(enum log_level level);

/* Set the threshold and route libevent's messages through log_msg. */
void log_init(enum log_level level);

/* True if messages at LEVEL are printed. */
bool log_enabled(enum log_level level);

/* Print one line at LEVEL (printf format; a newline is added). */
void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Print one access-log line (always at info, prefixed "access"). */
void log_access(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                         \
	do {                                                                   \
		if (log_enabled(LOG_DEBUG))                                    \
			log_msg(LOG_DEBUG, __VA_ARGS__);                       \
	} while (0)

#endif
