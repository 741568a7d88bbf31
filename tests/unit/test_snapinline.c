/*
 * Unit tests for pictures inside webhook bodies, per sink: an incident whose
 * event references two stored pictures is queued for three sinks; the sink
 * without inline_snapshots_max_bytes gets URL + hash only, the one with a
 * large limit gets both pictures base64 (decoded: the stored bytes) at
 * their first reference only, the one with a small limit only the small
 * picture.  Apart from data_base64 every body is the same; bodies without
 * references, and text that is not JSON, are left alone.
 */
#include <jansson.h>
#include <openssl/evp.h>
#include "cloudevent.h"
#include "incident.h"
#include "outbox.h"
#include "snapshot.h"
#include "store.h"
#include "store_test.h"

static struct fg_conf_sink sinks[] = {
	{ .name = "plain", .min_severity = FG_SEV_INFO },
	{ .name = "inline", .min_severity = FG_SEV_INFO, .inline_snapshots_max_bytes = 65536 },
	{ .name = "small", .min_severity = FG_SEV_INFO, .inline_snapshots_max_bytes = 50 },
};

static char *body_of(fg_store *st, const char *sink)
{
	char sql[128];
	snprintf(sql, sizeof(sql), "SELECT body FROM outbox WHERE sink = '%s'", sink);
	sqlite3_stmt *s;
	char *out = NULL;
	if (sqlite3_prepare_v2(fg_store_db(st), sql, -1, &s, NULL) != SQLITE_OK)
		return NULL;
	if (sqlite3_step(s) == SQLITE_ROW)
		out = strdup((const char *)sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
	return out;
}

/* The reference lists of a body: incident, event attrs, plate. */
static json_t *list(json_t *root, int which)
{
	json_t *data = json_object_get(root, "data");
	if (which == 0)
		return json_object_get(json_object_get(data, "incident"), "snapshots");
	json_t *attrs = json_object_get(json_object_get(data, "event"), "attrs");
	return json_object_get(attrs, which == 1 ? "snapshots" : "plate_snapshots");
}

/* The decoded data_base64 of a reference equals want (len bytes). */
static bool inlined(json_t *ref, const unsigned char *want, size_t len)
{
	const char *b64 = json_string_value(json_object_get(ref, "data_base64"));
	if (!b64)
		return false;
	unsigned char out[4096];
	size_t bl = strlen(b64);
	if (bl > 4 * (sizeof(out) / 3))
		return false;
	int n = EVP_DecodeBlock(out, (const unsigned char *)b64, (int)bl);
	/* EVP_DecodeBlock counts the padding as zero bytes */
	while (n > 0 && bl && b64[--bl] == '=')
		n--;
	return n == (int)len && memcmp(out, want, len) == 0;
}

static void strip(json_t *v)
{
	if (json_is_object(v)) {
		json_object_del(v, "data_base64");
		const char *k;
		json_t *c;
		json_object_foreach(v, k, c)
			strip(c);
	} else if (json_is_array(v)) {
		size_t i;
		json_t *c;
		json_array_foreach(v, i, c)
			strip(c);
	}
}

int main(void)
{
	test_dir_make();
	char db[256];
	struct fg_conf conf = {
		.gateway_id = "gw1", .sinks = sinks, .n_sinks = 3,
		.snap_enabled = 1, .snap_dir = test_dir, .snap_max_bytes = 1 << 20,
		.snap_max_age_ms = 86400000, .snap_max_image = 1 << 16,
	};
	fg_store *st = NULL;
	fg_outbox *ob = NULL;
	fg_incidents *incs = NULL;
	fg_snapshots *snap = NULL;
	CHECK(fg_store_open(test_path(db, sizeof(db), "t.db"), FG_DURABILITY_NORMAL, &st) == 0);
	CHECK(fg_outbox_new(st, &conf, &ob) == 0);
	CHECK(fg_incidents_new(st, ob, &incs) == 0);
	CHECK(fg_snapshots_new(&conf, &snap) == 0);
	if (failures)
		return test_result("snapinline");
	fg_outbox_set_snapshots(ob, snap);

	unsigned char small[22] = { 0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 'J', 'F', 'I', 'F', 0, 1, 1,
	                            0, 0, 1, 0, 1, 0, 0, 0xff, 0xd9 };
	unsigned char big[700];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (unsigned char)(i * 13 + 5);
	big[0] = 0xff, big[1] = 0xd8, big[2] = 0xff, big[698] = 0xff, big[699] = 0xd9;
	struct fg_snapshot a, b;
	CHECK(fg_snapshots_put(snap, small, sizeof(small), 1000, &a) == 0);
	CHECK(fg_snapshots_put(snap, big, sizeof(big), 1000, &b) == 0);

	char attrs[1024];
	snprintf(attrs, sizeof(attrs),
	         "{\"zone\":\"lane\",\"snapshots\":[{\"sha256\":\"%s\",\"url\":\"/v1/snapshots/%s\","
	         "\"bytes\":%zu},{\"sha256\":\"%s\",\"url\":\"/v1/snapshots/%s\",\"bytes\":%zu}],"
	         "\"plate_snapshots\":[{\"sha256\":\"%s\",\"url\":\"/v1/snapshots/%s\","
	         "\"bytes\":%zu}]}", a.sha256, a.sha256, a.bytes, b.sha256, b.sha256, b.bytes,
	         a.sha256, a.sha256, a.bytes);
	struct fg_ev ev = test_ev("cam/lane", FG_KIND_FIRE_LANE_BLOCKED, FG_SEV_MAJOR, 2000);
	ev.attrs_json = attrs;
	int64_t id = 0;
	CHECK(fg_incidents_apply(incs, &ev, &id) == FG_APPLY_OPENED);

	char *plain = body_of(st, "plain"), *inl = body_of(st, "inline"), *sm = body_of(st, "small");
	CHECK(plain && inl && sm);
	json_t *jp = plain ? json_loads(plain, 0, NULL) : NULL;
	json_t *ji = inl ? json_loads(inl, 0, NULL) : NULL;
	json_t *js = sm ? json_loads(sm, 0, NULL) : NULL;
	CHECK(jp && ji && js);
	if (jp && ji && js) {
		/* the incident carries its pictures; the plain sink has no bytes */
		CHECK(json_array_size(list(jp, 0)) == 2 && json_array_size(list(jp, 1)) == 2);
		CHECK(!strstr(plain, "data_base64"));
		/* large limit: both pictures, at their first reference only */
		CHECK(inlined(json_array_get(list(ji, 0), 0), small, sizeof(small)));
		CHECK(inlined(json_array_get(list(ji, 0), 1), big, sizeof(big)));
		CHECK(!json_object_get(json_array_get(list(ji, 1), 0), "data_base64"));
		CHECK(!json_object_get(json_array_get(list(ji, 1), 1), "data_base64"));
		CHECK(!json_object_get(json_array_get(list(ji, 2), 0), "data_base64"));
		/* small limit: the 700-byte picture stays URL + hash */
		CHECK(inlined(json_array_get(list(js, 0), 0), small, sizeof(small)));
		CHECK(!json_object_get(json_array_get(list(js, 0), 1), "data_base64"));
		/* otherwise the same body, serialised the same way */
		strip(ji);
		strip(js);
		CHECK(json_equal(jp, ji) && json_equal(jp, js));
		char *again = json_dumps(ji, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(15));
		CHECK(again && strcmp(again, plain) == 0);
		free(again);
	}
	json_decref(jp);
	json_decref(ji);
	json_decref(js);

	/* nothing to inline, or not JSON: the body stays as it is */
	CHECK(fg_snapshots_inline(snap, "{\"data\":{\"incident\":{}}}", 65536) == NULL);
	CHECK(fg_snapshots_inline(snap, "not json", 65536) == NULL);
	CHECK(plain && fg_snapshots_inline(snap, plain, 10) == NULL);
	free(plain);
	free(inl);
	free(sm);

	fg_snapshots_free(snap);
	fg_incidents_free(incs);
	fg_outbox_free(ob);
	fg_store_close(st);
	return test_result("snapinline");
}
