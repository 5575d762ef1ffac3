/*
 * token_file.c - auth token files and websockify target files, re-read when
 * they change (see token_file.h).
 *
 * The file is read whole (at most TOKEN_FILE_MAX bytes) and parsed into a
 * fresh array; the old entries go only once the new ones are in place.
 */
#include "token_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "access.h"
#include "config.h"
#include "log.h"

#define TOKEN_FILE_MAX (8 * 1024 * 1024)
#define TOKEN_DIGEST 32 /* SHA-256 */

struct token_entry {
	uint8_t digest[TOKEN_DIGEST];
	char *host;     /* targets */
	uint16_t port;  /* targets */
};

struct token_file {
	char *path;
	enum token_file_kind kind;
	struct token_entry *v;
	size_t n;
	bool stat_ok;           /* the last stat found a file */
	bool failed;            /* the last read failed */
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
};

/* A new, unread token file. */
struct token_file *
token_file_new(const char *path, enum token_file_kind kind)
{
	struct token_file *tf = calloc(1, sizeof(*tf));

	if (tf == NULL)
		return NULL;
	tf->path = strdup(path);
	if (tf->path == NULL) {
		free(tf);
		return NULL;
	}
	tf->kind = kind;
	return tf;
}

/* Free the entries V[0..N). */
static void
token_entries_free(struct token_entry *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].host);
	free(v);
}

/* Free TF. */
void
token_file_free(struct token_file *tf)
{
	if (tf == NULL)
		return;
	token_entries_free(tf->v, tf->n);
	free(tf->path);
	free(tf);
}

/* SHA-256 of LEN bytes at P into OUT; 0 or -1. */
static int
token_digest(const void *p, size_t len, uint8_t out[TOKEN_DIGEST])
{
	unsigned int n = 0;

	if (EVP_Digest(p, len, out, &n, EVP_sha256(), NULL) != 1 ||
	    n != TOKEN_DIGEST)
		return -1;
	return 0;
}

/* True if the LEN bytes at S are printable ASCII without blanks. */
static bool
token_is_printable(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return false;
	return len > 0;
}

/* One auth line (trimmed, LEN bytes) into E; 0 or -1. */
static int
token_parse_auth(const char *s, size_t len, struct token_entry *e)
{
	if (!token_is_printable(s, len))
		return -1;
	if (len > 7 && memcmp(s, "sha256:", 7) == 0) {
		if (len != 7 + 2 * TOKEN_DIGEST)
			return -1;
		for (size_t i = 0; i < TOKEN_DIGEST; i++) {
			int hi = access_hex(s[7 + 2 * i]);
			int lo = access_hex(s[8 + 2 * i]);
			if (hi < 0 || lo < 0)
				return -1;
			e->digest[i] = (uint8_t)(hi * 16 + lo);
		}
		return 0;
	}
	return token_digest(s, len, e->digest);
}

/* A host of a target line: a name, IPv4 or [IPv6] (brackets dropped). */
static char *
token_host(const char *s, size_t len)
{
	char *h;

	if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
		s++;
		len -= 2;
		for (size_t i = 0; i < len; i++)
			if (access_hex(s[i]) < 0 && s[i] != ':' && s[i] != '.')
				return NULL;
	} else {
		for (size_t i = 0; i < len; i++) {
			char c = s[i];
			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			      (c >= '0' && c <= '9') || c == '-' || c == '.' ||
			      c == '_'))
				return NULL;
		}
	}
	if (len == 0 || len > 253)
		return NULL;
	h = malloc(len + 1);
	if (h != NULL) {
		memcpy(h, s, len);
		h[len] = '\0';
	}
	return h;
}

/* One websockify line "token: host:port" (trimmed) into E; 0 or -1. */
static int
token_parse_target(const char *s, size_t len, struct token_entry *e)
{
	const char *colon = memchr(s, ':', len), *hp, *pc;
	size_t tl, hl;
	unsigned long port = 0;

	if (colon == NULL)
		return -1;
	tl = (size_t)(colon - s);
	while (tl > 0 && (s[tl - 1] == ' ' || s[tl - 1] == '\t'))
		tl--;
	if (!token_is_printable(s, tl))
		return -1;
	hp = colon + 1;
	while (hp < s + len && (*hp == ' ' || *hp == '\t'))
		hp++;
	hl = (size_t)(s + len - hp);
	/* the port follows the last ':' */
	pc = NULL;
	for (size_t i = hl; i > 0; i--)
		if (hp[i - 1] == ':') {
			pc = hp + i - 1;
			break;
		}
	if (pc == NULL || pc == hp || (size_t)(s + len - pc - 1) == 0 ||
	    (size_t)(s + len - pc - 1) > 5)
		return -1;
	for (const char *p = pc + 1; p < s + len; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		port = port * 10 + (unsigned long)(*p - '0');
	}
	if (port < 1 || port > 65535)
		return -1;
	if (memchr(hp, ':', (size_t)(pc - hp)) != NULL && hp[0] != '[')
		return -1; /* IPv6 must be bracketed */
	e->host = token_host(hp, (size_t)(pc - hp));
	if (e->host == NULL)
		return -1;
	e->port = (uint16_t)port;
	return token_digest(s, tl, e->digest);
}

/* Parse TEXT into TF's entries; see token_file.h. */
size_t
token_file_parse(struct token_file *tf, const char *text, size_t len,
		 const char *name)
{
	struct token_entry *v = NULL;
	size_t n = 0, cap = 0, skipped = 0, line = 0;
	const char *p = text, *end = text + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl ? nl : end;
		const char *s = p;
		struct token_entry ent;
		int rc;

		p = nl ? nl + 1 : end;
		line++;
		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
			e--;
		if (s == e || *s == '#')
			continue;
		memset(&ent, 0, sizeof(ent));
		rc = tf->kind == TOKEN_FILE_AUTH
			     ? token_parse_auth(s, (size_t)(e - s), &ent)
			     : token_parse_target(s, (size_t)(e - s), &ent);
		if (rc < 0) {
			/* never the text: it may be a secret */
			log_warn("%s:%zu: unreadable %s line skipped", name, line,
				 tf->kind == TOKEN_FILE_AUTH ? "token"
							     : "target");
			free(ent.host);
			skipped++;
			continue;
		}
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			struct token_entry *nv = realloc(v, nc * sizeof(*nv));
			if (nv == NULL) {
				free(ent.host);
				log_error("%s: out of memory", name);
				skipped++;
				break;
			}
			v = nv;
			cap = nc;
		}
		v[n++] = ent;
	}
	token_entries_free(tf->v, tf->n);
	tf->v = v;
	tf->n = n;
	return skipped;
}

/* Number of entries. */
size_t
token_file_count(const struct token_file *tf)
{
	return tf->n;
}

/* Drop all entries. */
static void
token_file_clear(struct token_file *tf)
{
	token_entries_free(tf->v, tf->n);
	tf->v = NULL;
	tf->n = 0;
}

/* The text for errno E of a failed load. */
static const char *
token_file_strerror(int e)
{
	/* EINVAL comes only from the S_ISREG check in token_file_read. */
	return e == EINVAL ? "not a regular file" : strerror(e);
}

/* Read the whole file; 0 or -1 (errno set). */
static int
token_file_read(struct token_file *tf, const struct stat *st)
{
	char *buf;
	size_t got = 0;
	int fd;

	/* A directory reads as EISDIR, or as empty where st_size is 0; a
	   FIFO would block the loop: only regular files are token files. */
	if (!S_ISREG(st->st_mode)) {
		errno = S_ISDIR(st->st_mode) ? EISDIR : EINVAL;
		return -1;
	}
	fd = open(tf->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (st->st_size > TOKEN_FILE_MAX) {
		close(fd);
		errno = EFBIG;
		return -1;
	}
	buf = malloc((size_t)st->st_size + 1);
	if (buf == NULL) {
		close(fd);
		errno = ENOMEM;
		return -1;
	}
	while (got < (size_t)st->st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st->st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int err = errno;
			free(buf);
			close(fd);
			errno = err;
			return -1;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	token_file_parse(tf, buf, got, tf->path);
	free(buf);
	return 0;
}

/*
 * stat(2) TF and re-read it if it changed.  0 or -1 with errno set; *NEWS
 * is true when this is a change to report (a load, or a failure that is
 * not the same stat failure as last time).
 */
static int
token_file_update(struct token_file *tf, bool *news)
{
	struct stat st;
	int e;

	*news = false;
	if (stat(tf->path, &st) < 0) {
		e = errno;
		*news = tf->stat_ok || !tf->failed;
		tf->stat_ok = false;
		tf->failed = true;
		token_file_clear(tf);
		errno = e;
		return -1;
	}
	if (tf->stat_ok && st.st_dev == tf->dev && st.st_ino == tf->ino &&
	    st.st_size == tf->size &&
	    st.st_mtim.tv_sec == tf->mtime.tv_sec &&
	    st.st_mtim.tv_nsec == tf->mtime.tv_nsec)
		return tf->failed ? -1 : 0;
	*news = true;
	tf->stat_ok = true;
	tf->dev = st.st_dev;
	tf->ino = st.st_ino;
	tf->size = st.st_size;
	tf->mtime = st.st_mtim;
	if (token_file_read(tf, &st) < 0) {
		e = errno;
		tf->failed = true;
		token_file_clear(tf);
		errno = e;
		return -1;
	}
	tf->failed = false;
	return 0;
}

/* Log that TF was loaded. */
static void
token_file_log_loaded(const struct token_file *tf)
{
	log_info("%s: loaded %zu %s", tf->path, tf->n,
		 tf->kind == TOKEN_FILE_AUTH ? "token(s)" : "target(s)");
}

/* Re-read if changed; see token_file.h. */
int
token_file_refresh(struct token_file *tf)
{
	bool news;

	if (token_file_update(tf, &news) < 0) {
		if (news && !tf->stat_ok)
			log_warn("%s: %s: no tokens accepted until it is back",
				 tf->path, token_file_strerror(errno));
		else if (news)
			log_warn("%s: cannot read: %s: no tokens accepted "
				 "until it changes",
				 tf->path, token_file_strerror(errno));
		return -1;
	}
	if (news)
		token_file_log_loaded(tf);
	return 0;
}

/* Open and read one file a route names; NULL with ERR set. */
static struct token_file *
token_file_load(const struct config *cfg, const struct config_route *r,
		const char *key, const char *path, enum token_file_kind kind,
		char *err, size_t errlen)
{
	struct token_file *tf = token_file_new(path, kind);
	bool news;

	if (tf == NULL) {
		snprintf(err, errlen, "%s:%d: [route %s] %s: out of memory",
			 cfg->file, r->line, r->path, key);
		return NULL;
	}
	if (token_file_update(tf, &news) < 0) {
		snprintf(err, errlen, "%s:%d: [route %s] %s: cannot load %s: %s",
			 cfg->file, r->line, r->path, key, path,
			 token_file_strerror(errno));
		token_file_free(tf);
		return NULL;
	}
	token_file_log_loaded(tf);
	return tf;
}

/* Free N token files and the array; NULL is fine. */
void
token_file_free_routes(struct token_file **files, size_t n)
{
	for (size_t i = 0; files != NULL && i < n; i++)
		token_file_free(files[i]);
	free(files);
}

/* Load every route's token files; see token_file.h. */
int
token_file_load_routes(const struct config *cfg, struct token_file ***auth,
		       struct token_file ***targets, char *err, size_t errlen)
{
	struct token_file **a = calloc(cfg->n_routes + 1, sizeof(*a));
	struct token_file **t = calloc(cfg->n_routes + 1, sizeof(*t));
	char why[1024];
	bool failed = false;

	*auth = a;
	*targets = t;
	if (a == NULL || t == NULL) {
		snprintf(err, errlen, "%s: out of memory", cfg->file);
		return -1;
	}
	/* Every route, so that a reload keeps the routes whose files load;
	   the first failure goes to ERR, later ones to the log. */
	for (size_t i = 0; i < cfg->n_routes; i++) {
		const struct config_route *r = &cfg->routes[i];
		bool bad = false;

		if (r->auth_tokens != NULL &&
		    (a[i] = token_file_load(cfg, r, "auth_tokens",
					    r->auth_tokens, TOKEN_FILE_AUTH,
					    why, sizeof(why))) == NULL)
			bad = true;
		else if (r->kind == UPSTREAM_TOKENFILE &&
			 (t[i] = token_file_load(cfg, r, "upstream",
						 r->token_file,
						 TOKEN_FILE_TARGETS, why,
						 sizeof(why))) == NULL)
			bad = true;
		if (bad && !failed)
			snprintf(err, errlen, "%s", why);
		else if (bad)
			log_error("%s", why);
		failed = failed || bad;
	}
	return failed ? -1 : 0;
}

/* Index of the entry whose digest is TOKEN's, or -1; looks at every entry
   in constant time per entry. */
static long
token_file_find(const struct token_file *tf, const char *token, size_t len)
{
	uint8_t d[TOKEN_DIGEST];
	long found = -1;

	if (tf == NULL || len == 0 || token_digest(token, len, d) < 0)
		return -1;
	for (size_t i = 0; i < tf->n; i++) {
		/* no early exit: the time does not tell which entry matched */
		bool eq = CRYPTO_memcmp(d, tf->v[i].digest, TOKEN_DIGEST) == 0;
		if (eq && found < 0)
			found = (long)i;
	}
	OPENSSL_cleanse(d, sizeof(d));
	return found;
}

/* Auth: is TOKEN an entry? */
bool
token_file_check(const struct token_file *tf, const char *token, size_t len)
{
	return token_file_find(tf, token, len) >= 0;
}

/* Targets: where TOKEN goes. */
bool
token_file_lookup(const struct token_file *tf, const char *token, size_t len,
		  const char **host, uint16_t *port)
{
	long i = token_file_find(tf, token, len);

	if (i < 0)
		return false;
	*host = tf->v[i].host;
	*port = tf->v[i].port;
	return true;
}
