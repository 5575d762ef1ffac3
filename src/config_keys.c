/*
 * config_keys.c - the key table (config_keys[], built from CONFIG_KEYS in
 * config_table.h) and applying one key = value through it.
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

const struct config_key config_keys[K_COUNT_] = {
#define CONFIG_KEY_ROW_(id, sec, name, type, field, min, max)                  \
	[id] = {sec, name, type, field, min, max},
	CONFIG_KEYS(CONFIG_KEY_ROW_)
#undef CONFIG_KEY_ROW_
};

/* The struct a key of section SEC stores into. */
static void *
config_key_base(struct config_loader *ld, enum config_section sec)
{
	switch (sec) {
	case SEC_ROUTE:
		return &ld->c->routes[ld->route];
	case SEC_TLS_NAMED:
		return &ld->c->tls.sni[ld->sni];
	default:
		return ld->c;
	}
}

/* Apply one key = value of the current section. */
static int
config_set(struct config_loader *ld, enum config_key_id id, const char *v)
{
	const struct config_key *k = &config_keys[id];
	struct config_route *r =
		k->section == SEC_ROUTE ? &ld->c->routes[ld->route] : NULL;
	void *base = config_key_base(ld, k->section);
	void *field = (char *)base + k->offset;
	uint64_t n = 0;
	char q[80];
	bool b;

	switch (k->type) {
	case KT_FILE:
		return config_set_file(ld, k, v, field);
	case KT_STRING:
		if (config_set_string(ld, k, v,
				      &((struct config_value *)field)->value) < 0)
			return -1;
		((struct config_value *)field)->line = ld->line;
		return 0;
	case KT_FINGERPRINTS:
		return config_split_list(ld, k->name, v, config_add_fingerprint);
	case KT_HOSTNAME:
		if (!config_is_hostname(v)) {
			config_error(ld, ld->line, k->name,
				     "bad host name %s (letters, digits, '-', "
				     "'_' and '.' only)",
				     config_quote(v, q, sizeof(q)));
			return -1;
		}
		return config_set_string(ld, k, v, field);
	case KT_SERVER_NAMES:
		return config_split_list(ld, k->name, v,
					 config_add_server_name);
	case KT_TLS_VERSION:
		if (strcmp(v, "1.2") == 0)
			ld->c->tls.min_version = CONFIG_TLS_1_2;
		else if (strcmp(v, "1.3") == 0)
			ld->c->tls.min_version = CONFIG_TLS_1_3;
		else {
			config_error(ld, ld->line, k->name,
				     "expected 1.2 or 1.3 (older versions are "
				     "not offered), got %s",
				     config_quote(v, q, sizeof(q)));
			return -1;
		}
		return 0;
	case KT_CLIENT_VERIFY:
		if (strcmp(v, "off") == 0)
			ld->c->tls.client_verify = CLIENT_VERIFY_OFF;
		else if (strcmp(v, "optional") == 0)
			ld->c->tls.client_verify = CLIENT_VERIFY_OPTIONAL;
		else if (strcmp(v, "required") == 0)
			ld->c->tls.client_verify = CLIENT_VERIFY_REQUIRED;
		else {
			config_error(ld, ld->line, k->name,
				     "expected off, optional or required, got "
				     "%s",
				     config_quote(v, q, sizeof(q)));
			return -1;
		}
		ld->c->tls.client_verify_line = ld->line;
		return 0;
	case KT_LISTEN:
		return config_split_list(ld, k->name, v, config_add_listen);
	case KT_SUBPROTOCOLS:
		return config_split_list(ld, k->name, v,
					 config_add_subprotocol);
	case KT_UPSTREAM:
		return config_set_upstream(ld, v);
	case KT_WORKERS:
		if (strcmp(v, "auto") == 0) {
			ld->c->workers = 0;
			return 0;
		}
		if (config_number(ld, k, v, &n) < 0)
			return -1; /* "expected a whole number": or auto */
		ld->c->workers = (unsigned)n;
		return 0;
	case KT_CPU_AFFINITY:
		if (strcmp(v, "auto") == 0 || strcmp(v, "off") == 0) {
			ld->c->pin_workers = strcmp(v, "auto") == 0;
			return 0;
		}
		config_error(ld, ld->line, k->name,
			     "expected auto or off, got %s",
			     config_quote(v, q, sizeof(q)));
		return -1;
	case KT_ADMIN_LISTEN:
		if (config_parse_listen(v, &ld->c->admin.addr,
					&ld->c->admin.addr_len) < 0) {
			config_error(ld, ld->line, k->name,
				     "expected one numeric address like "
				     "127.0.0.1:9090 or [::1]:9090, got %s",
				     config_quote(v, q, sizeof(q)));
			return -1;
		}
		ld->c->admin.text = strdup(v);
		if (ld->c->admin.text == NULL) {
			config_error(ld, ld->line, k->name, "out of memory");
			return -1;
		}
		ld->c->admin.line = ld->line;
		ld->c->has_admin = true;
		return 0;
	case KT_CIDR_LIST:
		return config_split_list(ld, k->name, v, config_add_trusted);
	case KT_ORIGINS:
		return config_split_list(ld, k->name, v, config_add_origin);
	case KT_AUTH_FROM:
		r->auth_from = 0;
		return config_split_list(ld, k->name, v, config_add_auth_from);
	case KT_TARGET_ALLOW:
		return config_split_list(ld, k->name, v,
					 config_add_target_rule);
	case KT_RATE:
		return config_set_rate(ld, k, v);
	case KT_ABS_FILE:
		return config_set_abs_file(ld, k->name, v, &r->auth_tokens);
	case KT_TOKEN_NAME:
		for (const char *p = v; *p != '\0'; p++) {
			if (!config_is_tchar((unsigned char)*p)) {
				config_error(ld, ld->line, k->name,
					     "%s is not a token (RFC 9110 "
					     "5.6.2)",
					     config_quote(v, q, sizeof(q)));
				return -1;
			}
		}
		{
			char **dst = id == K_AUTH_COOKIE
					     ? &r->auth_cookie
					     : &r->auth_protocol_prefix;
			free(*dst);
			if ((*dst = strdup(v)) == NULL) {
				config_error(ld, ld->line, k->name,
					     "out of memory");
				return -1;
			}
		}
		return 0;
	case KT_REAL_IP_HEADER:
		if (strcasecmp(v, "x-forwarded-for") == 0)
			ld->c->real_ip_header = REAL_IP_XFF;
		else if (strcasecmp(v, "forwarded") == 0)
			ld->c->real_ip_header = REAL_IP_FORWARDED;
		else {
			config_error(ld, ld->line, k->name,
				     "expected x-forwarded-for or forwarded, "
				     "got %s",
				     config_quote(v, q, sizeof(q)));
			return -1;
		}
		return 0;
	case KT_ORIGIN_MISSING:
		if (strcmp(v, "allow") != 0 && strcmp(v, "deny") != 0) {
			config_error(ld, ld->line, k->name,
				     "expected allow or deny, got %s",
				     config_quote(v, q, sizeof(q)));
			return -1;
		}
		if (r != NULL) {
			r->origin_missing_deny = strcmp(v, "deny") == 0;
			r->origin_missing_set = true;
		} else {
			ld->c->origin_missing_deny = strcmp(v, "deny") == 0;
		}
		return 0;
	case KT_AUTH_FAILURE:
		if (strcmp(v, "http") == 0)
			r->auth_failure_close = false;
		else if (strcmp(v, "close") == 0)
			r->auth_failure_close = true;
		else {
			config_error(ld, ld->line, k->name,
				     "expected http or close, got %s",
				     config_quote(v, q, sizeof(q)));
			return -1;
		}
		return 0;
	case KT_SEND_PROXY:
		if (strcmp(v, "off") == 0)
			r->send_proxy = SEND_PROXY_OFF;
		else if (strcmp(v, "v1") == 0)
			r->send_proxy = SEND_PROXY_V1;
		else if (strcmp(v, "v2") == 0)
			r->send_proxy = SEND_PROXY_V2;
		else {
			config_error(ld, ld->line, k->name,
				     "expected off, v1 or v2, got %s",
				     config_quote(v, q, sizeof(q)));
			return -1;
		}
		return 0;
	case KT_COUNT:
	case KT_SIZE:
	case KT_DURATION:
		if (config_number(ld, k, v, &n) < 0)
			return -1;
		break;
	case KT_CLOSE_CODE:
		if (config_close_code(ld, k, v, &n) < 0)
			return -1;
		break;
	case KT_BOOL:
		if (config_parse_bool(v, &b) < 0) {
			config_error(ld, ld->line, k->name,
				     "expected on/off, yes/no, true/false or "
				     "1/0, got %s",
				     config_quote(v, q, sizeof(q)));
			return -1;
		}
		n = b;
		break;
	case KT_LOG_LEVEL:
		if (log_level_parse(v, &ld->c->log_level) < 0) {
			config_error(ld, ld->line, k->name,
				     "expected error, warn, info or debug, "
				     "got %s",
				     config_quote(v, q, sizeof(q)));
			return -1;
		}
		return 0;
	case KT_FRAME_TYPE:
		if (strcmp(v, "binary") == 0)
			r->frame_type = FRAME_BINARY;
		else if (strcmp(v, "text") == 0)
			r->frame_type = FRAME_TEXT;
		else {
			config_error(ld, ld->line, k->name,
				     "expected binary or text, got %s",
				     config_quote(v, q, sizeof(q)));
			return -1;
		}
		return 0;
	case KT_ON_RESET:
		if (strcmp(v, "close") == 0)
			r->abort_on_reset = false;
		else if (strcmp(v, "abort") == 0)
			r->abort_on_reset = true;
		else {
			config_error(ld, ld->line, k->name,
				     "expected close or abort, got %s",
				     config_quote(v, q, sizeof(q)));
			return -1;
		}
		return 0;
	}
	if (k->width == sizeof(size_t) && n > SIZE_MAX) {
		config_error(ld, ld->line, k->name, "%s is out of range",
			     config_quote(v, q, sizeof(q)));
		return -1;
	}
	config_store(field, k->width, n);
	return 0;
}

/* True for route keys that only apply to tls:// upstreams. */
static bool
config_key_is_tls_only(size_t id)
{
	switch (id) {
	case K_CODE_TLS:
	case K_UPSTREAM_CA:
	case K_UPSTREAM_VERIFY:
	case K_UPSTREAM_SNI:
	case K_UPSTREAM_CERTIFICATE:
	case K_UPSTREAM_KEY:
		return true;
	default:
		return false;
	}
}

/* inih callback: one key = value (SECTION is ignored, see the top). */
int
config_key_cb(void *user, const char *section, const char *name,
	      const char *value)
{
	struct config_loader *ld = user;
	char sec[128];
	size_t i;

	(void)section;
	if (ld->failed)
		return 0;
	if (name == NULL) /* a new section, if inih was built to say so */
		return 1;
	if (value == NULL) {
		config_error(ld, ld->line, name, "expected 'key = value'");
		return 0;
	}
	if (ld->section == SEC_NONE) {
		config_error(ld, ld->line, name,
			     "key outside of any section (put it under "
			     "[gateway], [limits], [admin], [tls], [tls NAME] "
			     "or [route PATH])");
		return 0;
	}
	for (i = 0; i < K_COUNT_; i++)
		if (config_keys[i].section == ld->section &&
		    strcmp(config_keys[i].name, name) == 0)
			break;
	if (i == K_COUNT_) {
		config_error(ld, ld->line, name, "unknown key in %s",
			     config_section_name(ld, sec, sizeof(sec)));
		return 0;
	}
	if (ld->seen[i] != 0 && config_keys[i].type != KT_LISTEN) {
		config_error(ld, ld->line, name,
			     "duplicate key (first set at line %d)",
			     ld->seen[i]);
		return 0;
	}
	ld->seen[i] = ld->line;
	if (ld->section == SEC_ROUTE && config_key_is_tls_only(i)) {
		struct config_route *r = &ld->c->routes[ld->route];
		if (r->tls_key == NULL) {
			r->tls_key = config_keys[i].name;
			r->tls_key_line = ld->line;
		}
	}
	if (i == K_AUTH_FROM || i == K_AUTH_COOKIE ||
	    i == K_AUTH_PROTOCOL_PREFIX) {
		ld->c->routes[ld->route].auth_key_line = ld->line;
		ld->c->routes[ld->route].auth_key_name = config_keys[i].name;
	}
	return config_set(ld, (enum config_key_id)i, value) == 0;
}
