/* firegridctl: Modbus captures for decode, and the interlock command; see
 * ctl_modbus.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "ctl.h"
#include "ctl_modbus.h"
#include "modbus_map.h"
#include "options.h"
#include "util.h"

#define MAX_ITEMS 256

/* A list key's items, split like the config loader splits them. */
struct items {
	char *v[MAX_ITEMS];
	size_t n;
};

struct ctl_modbus {
	struct items registers, scale, word_order;
	int64_t offline_after;
	int64_t unit;
	char *role;
	struct fg_modbus_map *map;
	struct fg_modbus_plan *plan;
	struct fg_modbus_reach reach;
};

static void items_free(struct items *it)
{
	for (size_t i = 0; i < it->n; i++)
		free(it->v[i]);
	it->n = 0;
}

static int items_add(struct items *it, const char *value)
{
	char *copy = strdup(value), *save = NULL;
	if (!copy)
		return -ENOMEM;
	int r = 0;
	for (char *t = strtok_r(copy, " \t,", &save); t && r == 0; t = strtok_r(NULL, " \t,", &save)) {
		if (it->n == MAX_ITEMS)
			r = -E2BIG;
		else if (!(it->v[it->n] = strdup(t)))
			r = -ENOMEM;
		else
			it->n++;
	}
	free(copy);
	return r;
}

void ctl_modbus_free(struct ctl_modbus *m)
{
	if (!m)
		return;
	items_free(&m->registers);
	items_free(&m->scale);
	items_free(&m->word_order);
	free(m->role);
	fg_modbus_map_free(m->map);
	fg_modbus_plan_free(m->plan);
	free(m);
}

/* One [modbus-device] key given as --option; 1 = taken, 0 = not ours. */
static int take_key(struct ctl_modbus *m, const struct fg_conf_kv *kv)
{
	int r = 0;
	if (strcmp(kv->key, "registers") == 0)
		r = items_add(&m->registers, kv->value);
	else if (strcmp(kv->key, "scale") == 0)
		r = items_add(&m->scale, kv->value);
	else if (strcmp(kv->key, "word_order") == 0)
		r = items_add(&m->word_order, kv->value);
	else if (strcmp(kv->key, "offline_after") == 0)
		r = fg_parse_int(kv->value, &m->offline_after) < 0 || m->offline_after < 1 ? -EINVAL : 0;
	else if (strcmp(kv->key, "unit") == 0)
		r = fg_parse_int(kv->value, &m->unit) < 0 || m->unit < 0 || m->unit > 255 ? -EINVAL : 0;
	else if (strcmp(kv->key, "role") == 0)
		r = (free(m->role), m->role = strdup(kv->value)) ? 0 : -ENOMEM;
	else
		return 0;
	return r < 0 ? r : 1;
}

int ctl_modbus_take_options(const struct fg_plugin *plugin, struct fg_conf_kv *opts,
                            size_t *n_opts, struct ctl_modbus **ret)
{
	*ret = NULL;
	if (!fg_plugin_is_modbus(plugin))
		return 0;
	struct ctl_modbus *m = calloc(1, sizeof(*m));
	if (!m) {
		fprintf(stderr, "firegridctl decode: out of memory\n");
		return 2;
	}
	m->offline_after = FG_MODBUS_OFFLINE_AFTER_DEFAULT;
	m->unit = -1;
	m->reach = (struct fg_modbus_reach)FG_MODBUS_REACH_INIT;
	size_t kept = 0;
	for (size_t i = 0; i < *n_opts; i++) {
		int r = take_key(m, &opts[i]);
		if (r < 0) {
			fprintf(stderr, "firegridctl decode: --option %s=%s: %s\n", opts[i].key,
			        opts[i].value, r == -EINVAL ? "bad value" : fg_strerror(r));
			ctl_modbus_free(m);
			return 2;
		}
		if (r == 0)
			opts[kept++] = opts[i];
	}
	*n_opts = kept;
	*ret = m;
	return 0;
}

int ctl_modbus_start(struct ctl_modbus *m, fg_source_inst *si)
{
	char err[256];
	int r = fg_modbus_map_compose(fg_source_inst_modbus_map(si), m->registers.v,
	                              m->registers.n, m->scale.v, m->scale.n, m->word_order.v,
	                              m->word_order.n, &m->map, err, sizeof(err));
	if (r == 0)
		r = fg_modbus_plan_new(m->map, &m->plan);
	if (r < 0) {
		fprintf(stderr, "firegridctl decode: plugin '%s': %s\n",
		        fg_source_inst_plugin(si)->name, r == -ENOMEM ? "out of memory" : err);
		return 1;
	}
	return 0;
}

int ctl_modbus_payload(struct ctl_modbus *m, const char *device, const char *text, size_t len,
                       char **ret, size_t *ret_len, char *topic, size_t topiclen,
                       char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(doc)) {
		snprintf(err, errlen, "not a Modbus capture or poll payload: %s",
		         doc ? "not a JSON object" : jerr.text);
		json_decref(doc);
		return -EINVAL;
	}
	struct fg_modbus_origin origin = { .device = device, .bus = "capture",
	                                   .unit = (int)m->unit, .role = m->role };
	/* A ready payload goes through untouched. */
	if (json_object_get(doc, "status") && !json_object_get(doc, "exchanges")) {
		json_t *u = json_object_get(doc, "unit");
		origin.unit = json_is_integer(u) ? (int)json_integer_value(u) : origin.unit;
		fg_modbus_topic(&origin, topic, topiclen);
		json_decref(doc);
		*ret = strndup(text, len);
		*ret_len = len;
		return *ret ? 0 : -ENOMEM;
	}
	struct fg_modbus_poll poll;
	int unit = -1;
	int r = fg_modbus_poll_from_capture(doc, m->plan, &poll, &unit, err, errlen);
	json_decref(doc);
	if (r < 0)
		return r;
	if (origin.unit < 0)
		origin.unit = unit < 0 ? 0 : unit;
	fg_modbus_reach_update(&m->reach, poll.status != FG_MODBUS_NO_RESPONSE,
	                       (uint32_t)m->offline_after);
	*ret = fg_modbus_payload(m->map, &poll, &origin, &m->reach, NULL, ret_len);
	fg_modbus_poll_clear(&poll);
	fg_modbus_topic(&origin, topic, topiclen);
	return *ret ? 0 : -ENOMEM;
}
