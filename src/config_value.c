/*
 * config_value.c - parsers of single config values: sizes, durations,
 * counts, close codes, booleans, rates, file names, strings, host names
 * and tokens, with the range checks and messages of the key table.
 */
#include "config_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "ws_frame.h"

/* Digits, then an optional unit from UNITS: 0, -1 syntax, -2 overflow. */
static int
config_parse_scaled(const char *s, const char *const *units,
		    const uint64_t *scale, uint64_t bare, uint64_t *out)
{
	uint64_t v = 0, mult = bare;
	const char *p = s;

	if (!isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -2;
		v = v * 10 + d;
	}
	if (*p != '\0') {
		size_t i;
		for (i = 0; units[i] != NULL; i++)
			if (strcasecmp(p, units[i]) == 0)
				break;
		if (units[i] == NULL)
			return -1;
		mult = scale[i];
	}
	if (mult != 0 && v > UINT64_MAX / mult)
		return -2;
	*out = v * mult;
	return 0;
}

/* Size with a 1024-based unit: 0, -1 syntax, -2 overflow. */
static int
config_size(const char *s, uint64_t *out)
{
	static const char *const units[] = {"k", "m", "g", NULL};
	static const uint64_t scale[] = {KIB, MIB, GIB};

	return config_parse_scaled(s, units, scale, 1, out);
}

/* Duration in milliseconds: 0, -1 syntax, -2 overflow. */
static int
config_duration(const char *s, uint64_t *out_ms)
{
	static const char *const units[] = {"ms", "s", "m", "h", NULL};
	static const uint64_t scale[] = {1, 1000, 60 * 1000, 3600 * 1000};

	return config_parse_scaled(s, units, scale, 1000, out_ms);
}

/* "64k", "1m", "1g", "123" -> bytes. */
int
config_parse_size(const char *s, uint64_t *out)
{
	return config_size(s, out) == 0 ? 0 : -1;
}

/* "500ms", "30s", "5m", "1h", "0", bare seconds -> milliseconds. */
int
config_parse_duration(const char *s, uint64_t *out_ms)
{
	return config_duration(s, out_ms) == 0 ? 0 : -1;
}

/* "on", "yes", "true", "1" / "off", "no", "false", "0"; 0 or -1. */
int
config_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"on", "yes", "true", "1"};
	static const char *const no[] = {"off", "no", "false", "0"};

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

/* Numeric listen address -> sockaddr (netaddr's); 0 or -1. */
int
config_parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	return netaddr_parse_listen(s, ss, len);
}

/* Human form of a size for messages ("64k", "1000"). */
static const char *
config_fmt_size(uint64_t v, char *buf, size_t len)
{
	if (v != 0 && v % GIB == 0)
		snprintf(buf, len, "%" PRIu64 "g", v / GIB);
	else if (v != 0 && v % MIB == 0)
		snprintf(buf, len, "%" PRIu64 "m", v / MIB);
	else if (v != 0 && v % KIB == 0)
		snprintf(buf, len, "%" PRIu64 "k", v / KIB);
	else
		snprintf(buf, len, "%" PRIu64, v);
	return buf;
}

/* Human form of a duration for messages ("30s", "500ms"). */
static const char *
config_fmt_duration(uint64_t ms, char *buf, size_t len)
{
	if (ms == 0)
		snprintf(buf, len, "0");
	else if (ms % 3600000 == 0)
		snprintf(buf, len, "%" PRIu64 "h", ms / 3600000);
	else if (ms % 60000 == 0)
		snprintf(buf, len, "%" PRIu64 "m", ms / 60000);
	else if (ms % 1000 == 0)
		snprintf(buf, len, "%" PRIu64 "s", ms / 1000);
	else
		snprintf(buf, len, "%" PRIu64 "ms", ms);
	return buf;
}

/* Store V into the WIDTH-byte unsigned field at P. */
void
config_store(void *p, size_t width, uint64_t v)
{
	if (width == sizeof(uint64_t)) {
		uint64_t x = v;
		memcpy(p, &x, sizeof(x));
	} else if (width == sizeof(uint32_t)) {
		uint32_t x = (uint32_t)v;
		memcpy(p, &x, sizeof(x));
	} else if (width == sizeof(uint16_t)) {
		uint16_t x = (uint16_t)v;
		memcpy(p, &x, sizeof(x));
	} else if (width == sizeof(bool)) {
		bool x = v != 0;
		memcpy(p, &x, sizeof(x));
	}
}

/* ASCII letter or digit, whatever the locale. */
bool
config_is_alnum(unsigned char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
	       (ch >= 'A' && ch <= 'Z');
}

/* RFC 9110 5.6.2: tchar. */
bool
config_is_tchar(unsigned char ch)
{
	return config_is_alnum(ch) ||
	       (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/* "20/s", "100/m", "1000/h", "20" (per second), "0" (off). */
int
config_set_rate(struct config_loader *ld, const struct config_key *k,
		const char *v)
{
	struct config_limits *lim = &ld->c->limits;
	char num[24], q[80];
	const char *slash = strchr(v, '/');
	size_t nl = slash ? (size_t)(slash - v) : strlen(v);
	uint64_t n = 0, per = 1000;

	if (nl >= sizeof(num))
		goto bad;
	memcpy(num, v, nl);
	num[nl] = '\0';
	if (config_parse_scaled(num, (const char *const[]){NULL}, NULL, 1,
				&n) < 0)
		goto bad;
	if (slash != NULL) {
		if (strcmp(slash + 1, "s") == 0)
			per = 1000;
		else if (strcmp(slash + 1, "m") == 0)
			per = 60 * 1000;
		else if (strcmp(slash + 1, "h") == 0)
			per = 3600 * 1000;
		else
			goto bad;
	}
	if (n > k->max) {
		config_error(ld, ld->line, k->name,
			     "must be at most %" PRIu64 " per period, got %s",
			     k->max, config_quote(v, q, sizeof(q)));
		return -1;
	}
	lim->new_connections_rate = (unsigned)n;
	lim->new_connections_per_ms = per;
	return 0;
bad:
	config_error(ld, ld->line, k->name,
		     "expected a rate like 20/s, 100/m or 1000/h (0 = off), "
		     "got %s",
		     config_quote(v, q, sizeof(q)));
	return -1;
}

/* An absolute path to a file readable now, copied into *OUT. */
int
config_set_abs_file(struct config_loader *ld, const char *key, const char *v,
		char **out)
{
	char q[80];

	if (v[0] != '/') {
		config_error(ld, ld->line, key, "path must be absolute, got %s",
			     config_quote(v, q, sizeof(q)));
		return -1;
	}
	if (access(v, R_OK) < 0) {
		config_error(ld, ld->line, key, "cannot read %s: %s",
			     config_quote(v, q, sizeof(q)), strerror(errno));
		return -1;
	}
	free(*out);
	*out = strdup(v);
	if (*out == NULL) {
		config_error(ld, ld->line, key, "out of memory");
		return -1;
	}
	return 0;
}

/* A DNS name: dot-separated labels of [A-Za-z0-9-], no '-' at either end. */
bool
config_is_hostname(const char *h)
{
	size_t n = strlen(h), label = 0;

	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i <= n; i++) {
		unsigned char ch = (unsigned char)h[i];
		if (ch == '.' || ch == '\0') {
			if (label == 0 || label > 63 || h[i - 1] == '-')
				return false;
			label = 0;
		} else if (config_is_alnum(ch) || ch == '-' || ch == '_') {
			/* '_' is not in RFC 1123 host names, but container
			   service names (Docker, Compose) often carry it. */
			if (label == 0 && ch == '-')
				return false;
			label++;
		} else {
			return false;
		}
	}
	return true;
}

/* Parse an unsigned number of TYPE for key K and check its range. */
int
config_number(struct config_loader *ld, const struct config_key *k,
	      const char *v, uint64_t *out)
{
	char q[80], lim[32];
	int rc;

	switch (k->type) {
	case KT_SIZE:
		rc = config_size(v, out);
		if (rc == -1)
			config_error(ld, ld->line, k->name,
				     "expected a size like 64k or 1m, got %s",
				     config_quote(v, q, sizeof(q)));
		break;
	case KT_DURATION:
		rc = config_duration(v, out);
		if (rc == -1)
			config_error(ld, ld->line, k->name,
				     "expected a duration like 500ms, 30s, 5m "
				     "or 1h, got %s",
				     config_quote(v, q, sizeof(q)));
		break;
	default: /* KT_COUNT, KT_CLOSE_CODE */
		rc = config_parse_scaled(v, (const char *const[]){NULL}, NULL,
					 1, out);
		if (rc == -1)
			config_error(ld, ld->line, k->name,
				     "expected a whole number, got %s",
				     config_quote(v, q, sizeof(q)));
		break;
	}
	if (rc == -2)
		config_error(ld, ld->line, k->name, "%s is out of range",
			     config_quote(v, q, sizeof(q)));
	if (rc < 0 || k->type == KT_CLOSE_CODE)
		return rc < 0 ? -1 : 0;
	if (*out < k->min) {
		if (k->type == KT_DURATION && k->min == 1)
			config_error(ld, ld->line, k->name,
				     "must be greater than 0");
		else if (k->type == KT_SIZE)
			config_error(ld, ld->line, k->name,
				     "must be at least %s, got %s",
				     config_fmt_size(k->min, lim, sizeof(lim)),
				     config_quote(v, q, sizeof(q)));
		else
			config_error(ld, ld->line, k->name,
				     "must be at least %" PRIu64 ", got %s",
				     k->min, config_quote(v, q, sizeof(q)));
		return -1;
	}
	if (*out > k->max) {
		if (k->type == KT_DURATION)
			config_fmt_duration(k->max, lim, sizeof(lim));
		else if (k->type == KT_SIZE)
			config_fmt_size(k->max, lim, sizeof(lim));
		else
			snprintf(lim, sizeof(lim), "%" PRIu64, k->max);
		config_error(ld, ld->line, k->name,
			     "must be at most %s, got %s", lim,
			     config_quote(v, q, sizeof(q)));
		return -1;
	}
	return 0;
}

/* Parse a close code for key K (RFC 6455 7.4). */
int
config_close_code(struct config_loader *ld, const struct config_key *k,
		  const char *v, uint64_t *out)
{
	if (config_number(ld, k, v, out) < 0)
		return -1;
	if (*out == WS_CLOSE_NO_STATUS || *out == WS_CLOSE_ABNORMAL ||
	    *out == WS_CLOSE_TLS_HANDSHAKE) {
		/* RFC 6455 7.4.1: reserved, never sent in a close frame */
		config_error(ld, ld->line, k->name,
			     "%" PRIu64 " is reserved and never sent on the "
			     "wire (RFC 6455 7.4.1); use e.g. 1011, 1013 or "
			     "1014",
			     *out);
		return -1;
	}
	if (*out > 65535 || !ws_close_code_is_valid((unsigned)*out)) {
		config_error(ld, ld->line, k->name,
			     "%" PRIu64 " is not a close code that may be sent "
			     "(1000-1003, 1007-1014, 3000-4999)",
			     *out);
		return -1;
	}
	return 0;
}

/* Store file name V of key K into the struct config_value at DST; relative
   names are taken from the config file's directory. */
int
config_set_file(struct config_loader *ld, const struct config_key *k,
		const char *v, struct config_value *dst)
{
	size_t n = strlen(v);

	if (n == 0) {
		config_error(ld, ld->line, k->name, "empty file name");
		return -1;
	}
	if (v[0] == '/' || ld->dir_len == 0) {
		dst->value = strdup(v);
	} else {
		dst->value = malloc(ld->dir_len + n + 1);
		if (dst->value != NULL) {
			memcpy(dst->value, ld->name, ld->dir_len);
			memcpy(dst->value + ld->dir_len, v, n + 1);
		}
	}
	if (dst->value == NULL) {
		config_error(ld, ld->line, k->name, "out of memory");
		return -1;
	}
	dst->line = ld->line;
	return 0;
}

/* One of K's keywords -> its value; the one message for every keyword key:
   "expected a, b or c[ note], got V". */
int
config_keyword(struct config_loader *ld, const struct config_key *k,
	       const char *v, uint64_t *out)
{
	char list[256], q[80];
	const char *note = NULL;
	size_t n = 0, i = 0, o = 0;

	for (const struct config_word *w = k->words; w->word != NULL; w++) {
		if (w->value == CONFIG_WORD_NOTE) {
			note = w->word;
			continue;
		}
		if ((k->flags & KF_NOCASE) ? strcasecmp(v, w->word) == 0
					   : strcmp(v, w->word) == 0) {
			*out = w->value;
			return 0;
		}
		n++;
	}
	list[0] = '\0';
	for (const struct config_word *w = k->words; w->word != NULL; w++) {
		int m;
		if (w->value == CONFIG_WORD_NOTE)
			continue;
		m = snprintf(list + o, sizeof(list) - o, "%s%s",
			     i == 0 ? "" : i + 1 == n ? " or " : ", ", w->word);
		i++;
		if (m < 0 || (size_t)m >= sizeof(list) - o)
			break;
		o += (size_t)m;
	}
	config_error(ld, ld->line, k->name, "expected %s%s%s, got %s", list,
		     note != NULL ? " " : "", note != NULL ? note : "",
		     config_quote(v, q, sizeof(q)));
	return -1;
}

/* Copy text V of key K into the string at DST. */
int
config_set_string(struct config_loader *ld, const struct config_key *k,
		  const char *v, char **dst)
{
	if (v[0] == '\0') {
		config_error(ld, ld->line, k->name, "empty value");
		return -1;
	}
	*dst = strdup(v);
	if (*dst == NULL) {
		config_error(ld, ld->line, k->name, "out of memory");
		return -1;
	}
	return 0;
}
