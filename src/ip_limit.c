/*
 * ip_limit.c - per-address connection counts and token buckets in a
 * chained hash table with an LRU list of idle entries (see ip_limit.h).
 *
 * Bucket arithmetic is exact in integers: a bucket holds up to
 * burst * rate_per_ms units, a connection costs rate_per_ms units, and
 * rate_count units come back every millisecond.
 */
#include "ip_limit.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "netaddr.h"

struct ip_entry {
	struct ip_entry *next;             /* hash chain */
	struct ip_entry *idle_prev, *idle_next; /* LRU of idle entries */
	uint8_t key[17];                   /* family byte + address */
	unsigned count;                    /* open connections */
	uint64_t tokens;                   /* bucket units */
	uint64_t last_ms;                  /* when tokens was computed */
};

struct ip_limit {
	pthread_mutex_t mu;
	struct ip_limit_config cfg;
	uint64_t seed;
	uint64_t capacity;                 /* burst * rate_per_ms */
	struct ip_entry **buckets;
	size_t n_buckets;                  /* a power of two */
	size_t n_entries;
	struct ip_entry *idle_head, *idle_tail; /* oldest first */
};

static const char *const ip_limit_texts[] = {
#define IP_LIMIT_TEXT_(name, text) text,
	IP_LIMIT_VERDICTS(IP_LIMIT_TEXT_)
#undef IP_LIMIT_TEXT_
};

/* The text of V. */
const char *
ip_limit_verdict_text(enum ip_limit_verdict v)
{
	return ip_limit_texts[v];
}

/* A new table. */
struct ip_limit *
ip_limit_new(const struct ip_limit_config *cfg, uint64_t seed)
{
	struct ip_limit *l = calloc(1, sizeof(*l));
	size_t nb = 64;

	if (l == NULL)
		return NULL;
	l->cfg = *cfg;
	if (l->cfg.max_entries == 0)
		l->cfg.max_entries = 1;
	if (l->cfg.rate_count > 0 && l->cfg.burst == 0)
		l->cfg.burst = 1;
	l->capacity = (uint64_t)l->cfg.burst * l->cfg.rate_per_ms;
	l->seed = seed;
	while (nb < l->cfg.max_entries && nb < ((size_t)1 << 24))
		nb <<= 1;
	l->buckets = calloc(nb, sizeof(*l->buckets));
	if (l->buckets == NULL || pthread_mutex_init(&l->mu, NULL) != 0) {
		free(l->buckets);
		free(l);
		return NULL;
	}
	l->n_buckets = nb;
	return l;
}

/* Free L. */
void
ip_limit_free(struct ip_limit *l)
{
	if (l == NULL)
		return;
	for (size_t i = 0; i < l->n_buckets; i++) {
		struct ip_entry *e = l->buckets[i], *next;
		for (; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(l->buckets);
	pthread_mutex_destroy(&l->mu);
	free(l);
}

/* The key of SA (IPv6 per /64); false if SA is not limited. */
static bool
ip_limit_key(const struct sockaddr *sa, uint8_t key[17])
{
	struct sockaddr_storage ss;

	memset(key, 0, 17);
	memset(&ss, 0, sizeof(ss));
	if (sa->sa_family == AF_INET)
		memcpy(&ss, sa, sizeof(struct sockaddr_in));
	else if (sa->sa_family == AF_INET6)
		memcpy(&ss, sa, sizeof(struct sockaddr_in6));
	else
		return false;
	netaddr_unmap(&ss);
	if (ss.ss_family == AF_INET) {
		key[0] = 4;
		memcpy(key + 1, &((struct sockaddr_in *)&ss)->sin_addr, 4);
	} else {
		key[0] = 6;
		memcpy(key + 1, &((struct sockaddr_in6 *)&ss)->sin6_addr, 8);
	}
	return true;
}

/* Keyed hash of KEY (FNV-1a over the seed, then a 64-bit finaliser). */
static size_t
ip_limit_hash(const struct ip_limit *l, const uint8_t key[17])
{
	uint64_t h = 0xcbf29ce484222325ull ^ l->seed;

	for (int i = 0; i < 17; i++) {
		h ^= key[i];
		h *= 0x100000001b3ull;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return (size_t)h & (l->n_buckets - 1);
}

/* Take E off the idle list. */
static void
ip_limit_idle_unlink(struct ip_limit *l, struct ip_entry *e)
{
	if (e->idle_prev != NULL)
		e->idle_prev->idle_next = e->idle_next;
	else if (l->idle_head == e)
		l->idle_head = e->idle_next;
	else
		return; /* not on the list */
	if (e->idle_next != NULL)
		e->idle_next->idle_prev = e->idle_prev;
	else
		l->idle_tail = e->idle_prev;
	e->idle_prev = e->idle_next = NULL;
}

/* Remove E from the table and free it. */
static void
ip_limit_drop(struct ip_limit *l, struct ip_entry *e)
{
	struct ip_entry **pp = &l->buckets[ip_limit_hash(l, e->key)];

	ip_limit_idle_unlink(l, e);
	while (*pp != NULL && *pp != e)
		pp = &(*pp)->next;
	if (*pp == e)
		*pp = e->next;
	l->n_entries--;
	free(e);
}

/* Bring E's bucket up to NOW_MS. */
static void
ip_limit_refill(struct ip_limit *l, struct ip_entry *e, uint64_t now_ms)
{
	if (l->cfg.rate_count == 0)
		return;
	if (now_ms > e->last_ms) {
		uint64_t dt = now_ms - e->last_ms;
		uint64_t room = l->capacity - e->tokens;
		/* dt * rate_count, without overflow */
		if (dt >= room / l->cfg.rate_count + 1)
			e->tokens = l->capacity;
		else
			e->tokens += dt * l->cfg.rate_count;
		if (e->tokens > l->capacity)
			e->tokens = l->capacity;
	}
	e->last_ms = now_ms;
}

/* Drop idle entries from the oldest whose buckets are full again. */
static void
ip_limit_expire(struct ip_limit *l, uint64_t now_ms)
{
	for (int i = 0; i < 4 && l->idle_head != NULL; i++) {
		struct ip_entry *e = l->idle_head;
		ip_limit_refill(l, e, now_ms);
		if (e->tokens < l->capacity)
			return;
		ip_limit_drop(l, e);
	}
}

/* Admit or refuse a new connection from SA. */
enum ip_limit_verdict
ip_limit_acquire(struct ip_limit *l, const struct sockaddr *sa,
		 uint64_t now_ms)
{
	uint8_t key[17];
	struct ip_entry *e;
	enum ip_limit_verdict v = IP_LIMIT_OK;
	size_t h;

	if (l == NULL || !ip_limit_key(sa, key))
		return IP_LIMIT_OK;
	pthread_mutex_lock(&l->mu);
	ip_limit_expire(l, now_ms);
	h = ip_limit_hash(l, key);
	for (e = l->buckets[h]; e != NULL; e = e->next)
		if (memcmp(e->key, key, sizeof(key)) == 0)
			break;
	if (e == NULL) {
		if (l->n_entries >= l->cfg.max_entries) {
			if (l->idle_head == NULL) {
				v = IP_LIMIT_FULL;
				goto out;
			}
			ip_limit_drop(l, l->idle_head);
		}
		e = calloc(1, sizeof(*e));
		if (e == NULL) {
			v = IP_LIMIT_FULL;
			goto out;
		}
		memcpy(e->key, key, sizeof(key));
		e->tokens = l->capacity;
		e->last_ms = now_ms;
		e->next = l->buckets[h];
		l->buckets[h] = e;
		l->n_entries++;
	}
	ip_limit_refill(l, e, now_ms);
	if (l->cfg.max_per_ip > 0 && e->count >= l->cfg.max_per_ip) {
		v = IP_LIMIT_CONCURRENT;
	} else if (l->cfg.rate_count > 0 && e->tokens < l->cfg.rate_per_ms) {
		v = IP_LIMIT_RATE;
	} else {
		if (l->cfg.rate_count > 0)
			e->tokens -= l->cfg.rate_per_ms;
		if (e->count++ == 0)
			ip_limit_idle_unlink(l, e);
	}
	if (e->count == 0) {
		/* refused and idle: only the bucket is worth keeping */
		if (l->cfg.rate_count == 0)
			ip_limit_drop(l, e);
		else if (e->idle_prev == NULL && l->idle_head != e) {
			/* newest idle goes last */
			e->idle_prev = l->idle_tail;
			if (l->idle_tail != NULL)
				l->idle_tail->idle_next = e;
			else
				l->idle_head = e;
			l->idle_tail = e;
		}
	}
out:
	pthread_mutex_unlock(&l->mu);
	return v;
}

/* A counted connection from SA ended. */
void
ip_limit_release(struct ip_limit *l, const struct sockaddr *sa,
		 uint64_t now_ms)
{
	uint8_t key[17];
	struct ip_entry *e;

	if (l == NULL || !ip_limit_key(sa, key))
		return;
	pthread_mutex_lock(&l->mu);
	for (e = l->buckets[ip_limit_hash(l, key)]; e != NULL; e = e->next)
		if (memcmp(e->key, key, sizeof(key)) == 0)
			break;
	if (e != NULL && e->count > 0 && --e->count == 0) {
		if (l->cfg.rate_count == 0) {
			ip_limit_drop(l, e);
		} else {
			ip_limit_refill(l, e, now_ms);
			e->idle_prev = l->idle_tail;
			e->idle_next = NULL;
			if (l->idle_tail != NULL)
				l->idle_tail->idle_next = e;
			else
				l->idle_head = e;
			l->idle_tail = e;
		}
	}
	pthread_mutex_unlock(&l->mu);
}

/* Entries now. */
size_t
ip_limit_entries(struct ip_limit *l)
{
	size_t n;

	pthread_mutex_lock(&l->mu);
	n = l->n_entries;
	pthread_mutex_unlock(&l->mu);
	return n;
}
