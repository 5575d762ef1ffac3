/*
 * config_read.c - the INI line reader handed to inih.
 *
 * The input is read whole and handed to ini_parse_stream() one line at a
 * time by config_read_line_cb(), which counts lines (Debian's inih is built
 * without INI_HANDLER_LINENO), strips comments (';' or '#' at the start of
 * a line or after whitespace, whatever inih was built with), drops
 * indentation (so inih never sees a continuation line) and recognises the
 * [section] headers itself: section names are not truncated, and empty or
 * duplicate sections are caught at their header line.  inih's own section
 * argument is ignored.  The first error wins and stops the parse.
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

/* The name of the current section, for messages. */
const char *
config_section_name(struct config_loader *ld, char *buf, size_t len)
{
	char q[80];

	switch (ld->section) {
	case SEC_GATEWAY:
		return "[gateway]";
	case SEC_LIMITS:
		return "[limits]";
	case SEC_ADMIN:
		return "[admin]";
	case SEC_ROUTE:
		snprintf(buf, len, "[route %s]",
			 config_clean(ld->c->routes[ld->route].path, q,
				      sizeof(q), false));
		return buf;
	case SEC_TLS:
		return "[tls]";
	case SEC_TLS_NAMED:
		snprintf(buf, len, "[tls %s]",
			 config_clean(ld->c->tls.sni[ld->sni].name, q,
				      sizeof(q), false));
		return buf;
	case SEC_NONE:
		break;
	}
	return "no section";
}

/* A route path: starts with '/', printable ASCII, no '?', '#' or blanks. */
static const char *
config_path_error(const char *p)
{
	if (p[0] != '/')
		return "path must start with '/'";
	for (; *p != '\0'; p++) {
		unsigned char ch = (unsigned char)*p;
		if (ch <= 0x20 || ch >= 0x7f)
			return "path must be printable ASCII without blanks "
			       "(percent-encode other bytes)";
		if (ch == '?' || ch == '#')
			return "path must not contain '?' or '#' (the query "
			       "is not part of the route)";
		if (ch == '*' && !(p[-1] == '/' && p[1] == '\0'))
			return "'*' may only end a prefix route, as in "
			       "[route /vnc/*]";
	}
	return NULL;
}

/* Open a new route section named PATH at the current line. */
static void
config_begin_route(struct config_loader *ld, const char *path)
{
	struct config *c = ld->c;
	struct config_route *r;
	const char *why;
	char q[80], sec[128];

	snprintf(sec, sizeof(sec), "[route %s]",
		 config_clean(path, q, sizeof(q), false));
	if (path[0] == '\0') {
		config_error(ld, ld->line, "[route]",
			     "a route needs a path, like [route /echo]");
		return;
	}
	if ((why = config_path_error(path)) != NULL) {
		config_error(ld, ld->line, sec, "%s", why);
		return;
	}
	for (size_t i = 0; i < c->n_routes; i++) {
		if (strcmp(c->routes[i].path, path) == 0) {
			config_error(ld, ld->line, sec,
				     "duplicate route (first at line %d)",
				     c->routes[i].line);
			return;
		}
	}
	if (c->n_routes == ld->routes_cap) {
		size_t cap = ld->routes_cap ? ld->routes_cap * 2 : 4;
		r = realloc(c->routes, cap * sizeof(*r));
		if (r == NULL) {
			config_error(ld, ld->line, sec, "out of memory");
			return;
		}
		c->routes = r;
		ld->routes_cap = cap;
	}
	r = &c->routes[c->n_routes];
	memset(r, 0, sizeof(*r));
	r->kind = UPSTREAM_ECHO; /* overwritten: config_check requires upstream */
	r->line = ld->line;
	r->path = strdup(path);
	if (r->path == NULL) {
		config_error(ld, ld->line, sec, "out of memory");
		return;
	}
	r->prefix_len = strlen(path);
	if (r->prefix_len >= 2 && path[r->prefix_len - 1] == '*') {
		r->prefix = true;
		r->prefix_len--;
	}
	ld->route = c->n_routes++;
	ld->section = SEC_ROUTE;
	config_defaults(ld, true);
	for (size_t i = 0; i < K_COUNT_; i++)
		if (config_keys[i].section == SEC_ROUTE)
			ld->seen[i] = 0;
}

/* Open a [tls NAME] section (an SNI certificate) at the current line. */
static void
config_begin_tls_named(struct config_loader *ld, const char *name)
{
	struct config_tls *t = &ld->c->tls;
	struct config_tls_cert *cert;
	char q[80], sec[128];

	snprintf(sec, sizeof(sec), "[tls %s]",
		 config_clean(name, q, sizeof(q), false));
	for (const char *p = name; *p != '\0'; p++) {
		if (!config_is_alnum((unsigned char)*p) && *p != '-' &&
		    *p != '_' && *p != '.') {
			config_error(ld, ld->line, sec,
				     "a [tls NAME] name holds letters, digits, "
				     "'-', '_' and '.' only");
			return;
		}
	}
	for (size_t i = 0; i < t->n_sni; i++) {
		if (strcmp(t->sni[i].name, name) == 0) {
			config_error(ld, ld->line, sec,
				     "duplicate section (first at line %d)",
				     t->sni[i].line);
			return;
		}
	}
	if (t->n_sni == ld->sni_cap) {
		size_t cap = ld->sni_cap ? ld->sni_cap * 2 : 4;
		cert = realloc(t->sni, cap * sizeof(*cert));
		if (cert == NULL) {
			config_error(ld, ld->line, sec, "out of memory");
			return;
		}
		t->sni = cert;
		ld->sni_cap = cap;
	}
	cert = &t->sni[t->n_sni];
	memset(cert, 0, sizeof(*cert));
	cert->line = ld->line;
	cert->name = strdup(name);
	if (cert->name == NULL) {
		config_error(ld, ld->line, sec, "out of memory");
		return;
	}
	ld->sni = t->n_sni++;
	ld->section = SEC_TLS_NAMED;
	for (size_t i = 0; i < K_COUNT_; i++)
		if (config_keys[i].section == SEC_TLS_NAMED)
			ld->seen[i] = 0;
}

/* A "[...]" header line; S (LEN bytes) is the trimmed line. */
static void
config_begin_section(struct config_loader *ld, const char *s, size_t len)
{
	char name[256], q[80];
	const char *rb = memchr(s, ']', len);
	size_t a = 1, b;
	int *first;

	if (rb == NULL) {
		config_error(ld, ld->line, NULL,
			     "section header without closing ']'");
		return;
	}
	if ((size_t)(rb - s) + 1 != len) {
		config_error(ld, ld->line, NULL, "unexpected text after ']'");
		return;
	}
	b = (size_t)(rb - s);
	while (a < b && (s[a] == ' ' || s[a] == '\t'))
		a++;
	while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t'))
		b--;
	memcpy(name, s + a, b - a); /* b - a < line length < sizeof(name) */
	name[b - a] = '\0';

	if (strcmp(name, "gateway") == 0) {
		ld->section = SEC_GATEWAY;
		first = &ld->gateway_line;
	} else if (strcmp(name, "limits") == 0) {
		ld->section = SEC_LIMITS;
		first = &ld->limits_line;
	} else if (strcmp(name, "admin") == 0) {
		ld->section = SEC_ADMIN;
		first = &ld->admin_line;
	} else if (strcmp(name, "tls") == 0) {
		ld->section = SEC_TLS;
		first = &ld->c->tls.line;
	} else if (strncmp(name, "tls", 3) == 0 &&
		   (name[3] == ' ' || name[3] == '\t')) {
		const char *tname = name + 3;
		while (*tname == ' ' || *tname == '\t')
			tname++;
		config_begin_tls_named(ld, tname);
		return;
	} else if (strcmp(name, "route") == 0 ||
		   (strncmp(name, "route", 5) == 0 &&
		    (name[5] == ' ' || name[5] == '\t'))) {
		const char *path = name + 5;
		while (*path == ' ' || *path == '\t')
			path++;
		config_begin_route(ld, path);
		return;
	} else {
		char sec[128];
		snprintf(sec, sizeof(sec), "[%s]",
			 config_clean(name, q, sizeof(q), false));
		config_error(ld, ld->line, sec,
			     "unknown section (expected [gateway], [limits], "
			     "[admin], [tls], [tls NAME] or [route PATH])");
		return;
	}
	if (*first != 0) {
		char sec[128];
		config_error(ld, ld->line,
			     config_section_name(ld, sec, sizeof(sec)),
			     "duplicate section (first at line %d)", *first);
		return;
	}
	*first = ld->line;
}

/* True for the blanks we trim around lines. */
static bool
config_is_blank(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r';
}

/*
 * inih reader: hand over the next line, cleaned: no comment, no
 * indentation, no trailing blanks, ending in '\n'.  Section headers are
 * handled here.  NULL ends the parse (end of input or an error).
 */
char *
config_read_line_cb(char *str, int num, void *stream)
{
	struct config_loader *ld = stream;
	const char *s, *e, *nl;
	size_t n;

	if (ld->failed || ld->p >= ld->end)
		return NULL;
	s = ld->p;
	nl = memchr(s, '\n', (size_t)(ld->end - s));
	e = nl ? nl : ld->end;
	ld->p = nl ? nl + 1 : ld->end;
	ld->line++;
	if (ld->line == 1 && e - s >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
		s += 3; /* UTF-8 byte order mark */
	if (memchr(s, '\0', (size_t)(e - s)) != NULL) {
		config_error(ld, ld->line, NULL, "NUL byte in line");
		return NULL;
	}
	/* a comment starts at ';' or '#' first on the line or after a blank */
	for (const char *p = s; p < e; p++) {
		if ((*p == ';' || *p == '#') &&
		    (p == s || config_is_blank(p[-1]))) {
			e = p;
			break;
		}
	}
	while (s < e && config_is_blank(*s))
		s++;
	while (e > s && config_is_blank(e[-1]))
		e--;
	n = (size_t)(e - s);
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
			config_error(ld, ld->line, NULL,
				     "control character 0x%02x in line", ch);
			return NULL;
		}
	}
	/* room for '\n' and NUL; also keeps inih from growing its buffer */
	if (num < 3 || n > (size_t)num - 2 || n > 250) {
		config_error(ld, ld->line, NULL,
			     "line too long (at most %d characters besides "
			     "comments)",
			     num - 2 < 250 ? num - 2 : 250);
		return NULL;
	}
	if (n > 0 && s[0] == '[') {
		config_begin_section(ld, s, n);
		if (ld->failed)
			return NULL;
	} else if (n > 0) {
		const char *sep = s;
		while (sep < e && *sep != '=' && *sep != ':')
			sep++;
		if (sep == e) {
			config_error(ld, ld->line, NULL,
				     "expected 'key = value', '[section]' or "
				     "a comment");
			return NULL;
		}
		if (sep == s) {
			config_error(ld, ld->line, NULL,
				     "missing key name before '%c'", *sep);
			return NULL;
		}
	}
	memcpy(str, s, n);
	str[n] = '\n';
	str[n + 1] = '\0';
	return str;
}
