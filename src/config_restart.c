/*
 * config_restart.c - what a reload reads but cannot apply: the settings
 * bound when the process starts (KF_RESTART rows of config_table.h),
 * compared between the running config and a reloaded one, in the groups
 * gateway.c warns about.  tests/unit/test_config.c walks the table to prove
 * that every KF_RESTART key, and no other, is compared here.
 */
#include "config.h"

#include <string.h>

/* True if A and B listen on the same addresses. */
static bool
config_same_listens(const struct config *a, const struct config *b)
{
	if (a->n_listens != b->n_listens)
		return false;
	for (size_t i = 0; i < a->n_listens; i++)
		if (a->listens[i].addr_len != b->listens[i].addr_len ||
		    memcmp(&a->listens[i].addr, &b->listens[i].addr,
			   a->listens[i].addr_len) != 0)
			return false;
	return true;
}

/* True if A and B set the same per-IP limits (the table is sized by
   max_connections, so it counts too while they are on). */
static bool
config_same_ip_limits(const struct config *a, const struct config *b)
{
	bool a_on = a->limits.max_connections_per_ip != 0 ||
		    a->limits.new_connections_rate != 0;
	bool b_on = b->limits.max_connections_per_ip != 0 ||
		    b->limits.new_connections_rate != 0;

	if (!a_on && !b_on)
		return true;
	return a->limits.max_connections_per_ip ==
		       b->limits.max_connections_per_ip &&
	       a->limits.new_connections_rate == b->limits.new_connections_rate &&
	       a->limits.new_connections_per_ms ==
		       b->limits.new_connections_per_ms &&
	       a->limits.new_connections_burst ==
		       b->limits.new_connections_burst &&
	       a->max_connections == b->max_connections;
}

/* True if A and B have the same [admin] listen (or neither has one). */
static bool
config_same_admin(const struct config *a, const struct config *b)
{
	if (a->has_admin != b->has_admin)
		return false;
	return !a->has_admin ||
	       (a->admin.addr_len == b->admin.addr_len &&
		memcmp(&a->admin.addr, &b->admin.addr, a->admin.addr_len) == 0);
}

/* True if A and B name the same resolv_conf (or neither names one). */
static bool
config_same_resolv_conf(const struct config *a, const struct config *b)
{
	if ((a->resolv_conf.value == NULL) != (b->resolv_conf.value == NULL))
		return false;
	return a->resolv_conf.value == NULL ||
	       strcmp(a->resolv_conf.value, b->resolv_conf.value) == 0;
}

/* The restart-only groups that differ; see config.h. */
unsigned
config_restart_changes(const struct config *old, const struct config *new,
		       unsigned running_workers, unsigned new_workers)
{
	unsigned changed = 0;

	if (!config_same_listens(old, new))
		changed |= CONFIG_RESTART_LISTEN;
	if (!config_same_ip_limits(old, new))
		changed |= CONFIG_RESTART_IP_LIMITS;
	if (new_workers != running_workers ||
	    new->pin_workers != old->pin_workers)
		changed |= CONFIG_RESTART_WORKERS;
	if (!config_same_admin(old, new))
		changed |= CONFIG_RESTART_ADMIN;
	if (!config_same_resolv_conf(old, new))
		changed |= CONFIG_RESTART_RESOLV;
	return changed;
}
