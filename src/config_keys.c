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
#define CONFIG_KEY_ROW_(id, sec, name, type, field, min, max, words, def,     \
			flags, doc)                                            \
	[id] = {sec, name, type, field, min, max, words, def, flags, doc},
	CONFIG_KEYS(CONFIG_KEY_ROW_)
#undef CONFIG_KEY_ROW_
};

/* Key I of the table, as config.h shows it. */
int
config_key_info(size_t i, struct config_key_info *out)
{
	static const char *const sections[] = {
		[SEC_NONE] = "", [SEC_GATEWAY] = "gateway",
		[SEC_LIMITS] = "limits", [SEC_ADMIN] = "admin",
		[SEC_ROUTE] = "route PATH", [SEC_TLS] = "tls",
		[SEC_TLS_NAMED] = "tls NAME",
	};
	const struct config_key *k;

	if (i >= K_COUNT_)
		return -1;
	k = &config_keys[i];
	out->section = sections[k->section];
	out->name = k->name;
	out->def = k->def;
	out->doc = k->doc;
	out->restart = (k->flags & KF_RESTART) != 0;
	out->tls_only = (k->flags & KF_TLS_ONLY) != 0;
	out->type = k->type;
	out->min = k->min;
	out->max = k->max;
	out->words = k->words;
	out->nocase = (k->flags & KF_NOCASE) != 0;
	out->offset = k->offset;
	out->width = k->width;
	return 0;
}

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
int
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
	case KT_LISTEN:
		return config_split_list(ld, k->name, v, config_add_listen);
	case KT_SUBPROTOCOLS:
		return config_split_list(ld, k->name, v,
					 config_add_subprotocol);
	case KT_UPSTREAM:
		return config_set_upstream(ld, v);
	case KT_WORKERS: /* auto is stored as 0 */
		if (strcmp(v, "auto") != 0 && config_number(ld, k, v, &n) < 0)
			return -1; /* "expected a whole number": or auto */
		break;
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
	case KT_KEYWORD:
		if (config_keyword(ld, k, v, &n) < 0)
			return -1;
		if (id == K_TLS_CLIENT_VERIFY)
			ld->c->tls.client_verify_line = ld->line;
		else if (id == K_ORIGIN_MISSING)
			r->origin_missing_set = true;
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
	}
	if (k->width == sizeof(size_t) && n > SIZE_MAX) {
		config_error(ld, ld->line, k->name, "%s is out of range",
			     config_quote(v, q, sizeof(q)));
		return -1;
	}
	config_store(field, k->width, n);
	return 0;
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
	if (config_keys[i].flags & KF_TLS_ONLY) {
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
