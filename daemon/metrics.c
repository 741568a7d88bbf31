/*
 * Counters and gauges in a small open-addressing table keyed by the full
 * series name.  A gateway has a few hundred series at most (per source,
 * per kind, per sink), so a linear-probe table that doubles is plenty.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "metrics.h"

struct series {
	char *key;
	int64_t value;
};

static struct series *table;
static size_t cap, used;

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;   /* FNV-1a */
	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ull;
	return h;
}

static int grow(void)
{
	size_t ncap = cap ? cap * 2 : 64;
	struct series *nt = calloc(ncap, sizeof(*nt));
	if (!nt)
		return -1;
	for (size_t i = 0; i < cap; i++) {
		if (!table[i].key)
			continue;
		size_t j = hash(table[i].key) & (ncap - 1);
		while (nt[j].key)
			j = (j + 1) & (ncap - 1);
		nt[j] = table[i];
	}
	free(table);
	table = nt;
	cap = ncap;
	return 0;
}

static struct series *lookup(const char *name, const char *label, const char *value, int create)
{
	char key[256];
	if (label && value)
		snprintf(key, sizeof(key), "%s{%s=\"%s\"}", name, label, value);
	else
		snprintf(key, sizeof(key), "%s", name);
	if (cap) {
		size_t i = hash(key) & (cap - 1);
		while (table[i].key) {
			if (strcmp(table[i].key, key) == 0)
				return &table[i];
			i = (i + 1) & (cap - 1);
		}
	}
	if (!create)
		return NULL;
	if ((used + 1) * 4 >= cap * 3 && grow() < 0)
		return NULL;
	size_t i = hash(key) & (cap - 1);
	while (table[i].key)
		i = (i + 1) & (cap - 1);
	table[i].key = strdup(key);
	if (!table[i].key)
		return NULL;
	table[i].value = 0;
	used++;
	return &table[i];
}

void fg_metrics_add(const char *name, const char *label, const char *value, int64_t n)
{
	struct series *s = lookup(name, label, value, 1);
	if (s)
		s->value += n;
}

void fg_metrics_set(const char *name, const char *label, const char *value, int64_t v)
{
	struct series *s = lookup(name, label, value, 1);
	if (s)
		s->value = v;
}

int64_t fg_metrics_get(const char *name, const char *label, const char *value)
{
	struct series *s = lookup(name, label, value, 0);
	return s ? s->value : 0;
}

void fg_metrics_each(void (*cb)(void *data, const char *key, int64_t value), void *data)
{
	for (size_t i = 0; i < cap; i++)
		if (table[i].key)
			cb(data, table[i].key, table[i].value);
}

void fg_metrics_reset(void)
{
	for (size_t i = 0; i < cap; i++)
		free(table[i].key);
	free(table);
	table = NULL;
	cap = used = 0;
}
