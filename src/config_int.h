/*
 * config_int.h - shared by the files that split the config module
 * (config*.c) and by nothing else: the loader state and the functions
 * they call in each other.
 */
#ifndef WSGATE_CONFIG_INT_H
#define WSGATE_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/un.h>

#include "config.h"
#include "config_table.h"

#define CONFIG_MAX_FILE (1024 * 1024) /* bigger files are refused */
#define CONFIG_SUN_PATH_MAX sizeof(((struct sockaddr_un *)0)->sun_path)

/* Parse state shared by the line reader and the key callback. */
struct config_loader {
	struct config *c;
	const char *name;          /* file name for messages */
	const char *p, *end;       /* input not yet read */
	int line;                  /* line last handed to inih */
	char *err;
	size_t errlen;
	bool failed;
	enum config_section section;
	size_t route;              /* index of the current route */
	size_t sni;                /* index of the current [tls NAME] */
	size_t dir_len;            /* relative file names: NAME's directory */
	int gateway_line, limits_line, admin_line;
	int seen[K_COUNT_];        /* line each key was set at, 0 = unset */
	size_t routes_cap, listens_cap, sni_cap;
};

/* config.c */
/* Apply the table's defaults to the file (ROUTE false) or the new route. */
void config_defaults(struct config_loader *ld, bool route);
/* Copy S into OUT for a message: printable ASCII, at most ~60 bytes. */
const char *
config_clean(const char *s, char *out, size_t outlen, bool quoted);
/* S quoted for a message. */
const char *
config_quote(const char *s, char *out, size_t outlen);
/* Record the first error as "NAME:LINE: KEY: message" (0/NULL: omitted). */
void config_error(struct config_loader *ld, int line, const char *key,
		  const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* config_value.c */
/* "on", "yes", "true", "1" / "off", "no", "false", "0"; 0 or -1. */
int config_parse_bool(const char *s, bool *out);
/* Store V into the WIDTH-byte unsigned field at P. */
void config_store(void *p, size_t width, uint64_t v);
/* ASCII letter or digit, whatever the locale. */
bool config_is_alnum(unsigned char ch);
/* RFC 9110 5.6.2: tchar. */
bool config_is_tchar(unsigned char ch);
/* "20/s", "100/m", "1000/h", "20" (per second), "0" (off). */
int config_set_rate(struct config_loader *ld, const struct config_key *k,
		    const char *v);
/* An absolute path to a file readable now, copied into *OUT. */
int config_set_abs_file(struct config_loader *ld, const char *key, const char *v,
			char **out);
/* A DNS name: dot-separated labels of [A-Za-z0-9-], no '-' at either end. */
bool config_is_hostname(const char *h);
/* Parse an unsigned number of TYPE for key K and check its range. */
int config_number(struct config_loader *ld, const struct config_key *k,
		  const char *v, uint64_t *out);
/* Parse a close code for key K (RFC 6455 7.4). */
int config_close_code(struct config_loader *ld, const struct config_key *k,
		      const char *v, uint64_t *out);
/* Store file name V of key K into the struct config_value at DST; relative
   names are taken from the config file's directory. */
int config_set_file(struct config_loader *ld, const struct config_key *k,
		    const char *v, struct config_value *dst);
/* One of K's keywords -> its value in *OUT; else an error listing them. */
int config_keyword(struct config_loader *ld, const struct config_key *k,
		   const char *v, uint64_t *out);
/* Copy text V of key K into the string at DST. */
int config_set_string(struct config_loader *ld, const struct config_key *k,
		      const char *v, char **dst);

/* config_list.c */
/* Append one listen address (already trimmed), maybe with flags, from
   LINE: "127.0.0.1:8443 tls". */
int config_add_listen(struct config_loader *ld, const char *text, int line);
/* Split V at commas, trimming blanks around each item, and call FN on each. */
int config_split_list(struct config_loader *ld, const char *key, const char *v,
		      int (*fn)(struct config_loader *, const char *, int));
/* Append one SHA-256 client-certificate fingerprint to the current route. */
int config_add_fingerprint(struct config_loader *ld, const char *tok, int line);
/* Append one accepted subprotocol token to the current route. */
int config_add_subprotocol(struct config_loader *ld, const char *tok, int line);
/* Append one trusted proxy network. */
int config_add_trusted(struct config_loader *ld, const char *item, int line);
/* Append one allowed origin ("*" allows any). */
int config_add_origin(struct config_loader *ld, const char *item, int line);
/* Add one carrier to the current route's auth_from. */
int config_add_auth_from(struct config_loader *ld, const char *item, int line);
/* Append one target_allow rule to the current route. */
int config_add_target_rule(struct config_loader *ld, const char *item, int line);
/* Append one server_names entry to the current [tls NAME]. */
int config_add_server_name(struct config_loader *ld, const char *name, int line);

/* config_upstream.c */
/* Parse the route's upstream: echo, unix:/path, host:port, [v6]:port,
   tls://host:port, tls://[v6]:port. */
int config_set_upstream(struct config_loader *ld, const char *v);

/* config_keys.c */
/* Apply value V of key ID to the current section (or the whole file). */
int config_set(struct config_loader *ld, enum config_key_id id,
	       const char *v);
/* inih callback: one key = value (SECTION is ignored: config_read.c). */
int config_key_cb(void *user, const char *section, const char *name,
		  const char *value);

/* config_read.c */
/* The name of the current section, for messages. */
const char *
config_section_name(struct config_loader *ld, char *buf, size_t len);
/*
 * inih reader: hand over the next line, cleaned: no comment, no
 * indentation, no trailing blanks, ending in '\n'.  Section headers are
 * handled here.  NULL ends the parse (end of input or an error).
 */
char *
config_read_line_cb(char *str, int num, void *stream);

/* config_check.c */
/* Checks that need the whole file: required keys, cross-key limits. */
void config_check(struct config_loader *ld);

#endif

