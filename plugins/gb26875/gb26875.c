/*
 * gb26875: GB/T 26875.3-2011 user information transmission devices (UITD,
 * 用户信息传输装置), one whole frame per message (docs/plugins.md has the
 * mapping).  The TCP side (framing across reads, confirm frames, silence
 * supervision) is the daemon's gb26875 listener; this plugin is the pure
 * decoder it, `firegridctl decode` and the fuzzer share.
 *
 * Frame: '@@' | serial u16 | version (major, minor) | time label (6) |
 * source address (6) | destination address (6) | ADU length u16 (<= 1024) |
 * command | ADU | checksum | '##'.  Integers are little-endian; the checksum
 * is the low byte of the sum of everything between '@@' and itself.  Time
 * labels are local time, seconds first, 2-digit year from 2000.
 *
 * Messages (topics from the listener, `gb26875/<listener>/...`):
 *   .../<uitd>           a frame from the UITD whose source address is <uitd>
 *   .../<uitd>/silent    the listener heard nothing from <uitd> for too long
 *                        (payload: the seconds of silence): offline
 * Only command 2 (send data) and 5 (response) carry information objects.
 *
 * Device ids: the UITD "<12 hex digits of its address>"; a fire system
 * "<uitd>/<system type>-<system address>"; a component
 * "<uitd>/<system type>-<system address>/<component type>-<8 hex address>".
 *
 * Retransmissions (the UITD repeats a frame it saw no confirm for) carry the
 * same serial and content: the last few (serial, content) hashes per UITD
 * are kept in host state, committed with the frame's events, so a repeat is
 * never news even across a restart.  Everything else is transitions kept in
 * host state too.
 */
#include <errno.h>
#include <iconv.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>
#include "firegrid/plugin.h"
#include "../common/plugin_util.h"

#define HEAD_LEN 27              /* '@@' through the command byte */
#define FRAME_OVERHEAD 30        /* head + checksum + '##' */
#define MAX_ADU 1024
#define DESC_LEN 31
#define TIME_LEN 6
#define RECENT 16                /* (serial, content) hashes kept per UITD */

struct gb_config {
	int checksum;
	int64_t utc_offset_min;
	double overtemp_c;
	double temp_hysteresis_c;
};

#define O(f) offsetof(struct gb_config, f)
static const struct fg_option gb_options[] = {
	{ "checksum", FG_OPT_BOOL, "true", O(checksum),
	  "verify the frame's sum checksum (off only for devices that compute it otherwise; "
	  "the [gb26875] listener has its own key)", 0, 0 },
	{ "utc_offset", FG_OPT_INT, "480", O(utc_offset_min),
	  "minutes east of UTC of the devices' local time labels; 480 = +08:00", -720, 840 },
	{ "overtemp_c", FG_OPT_DOUBLE, "70", O(overtemp_c),
	  "overtemp when an analog temperature (type 3) exceeds this, in degC (0 = off)",
	  -100, 1000 },
	{ "temp_hysteresis_c", FG_OPT_DOUBLE, "5", O(temp_hysteresis_c),
	  "an analog overtemp clears once the temperature is this far below overtemp_c", 0, 100 },
	FG_OPTION_END
};
#undef O

struct gb {
	const struct fg_host *host;
	const struct gb_config *cfg;
	iconv_t gb18030;             /* (iconv_t)-1 when glibc lacks it */
};

static int gb_init(const struct fg_host *host, const void *config, void **ret_state)
{
	struct gb *g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->host = host;
	g->cfg = config;
	g->gb18030 = iconv_open("UTF-8", "GB18030");
	*ret_state = g;
	return 0;
}

static void gb_fini(void *state)
{
	struct gb *g = state;
	if (!g)
		return;
	if (g->gb18030 != (iconv_t)-1)
		iconv_close(g->gb18030);
	free(g);
}

static unsigned u16(const uint8_t *p)
{
	return (unsigned)p[0] | (unsigned)p[1] << 8;
}

static uint32_t u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* A 6-byte little-endian address as 12 hex digits, most significant first. */
static void address(const uint8_t *p, char buf[13])
{
	snprintf(buf, 13, "%02x%02x%02x%02x%02x%02x", p[5], p[4], p[3], p[2], p[1], p[0]);
}

/* A time label (s, min, h, day, month, 2-digit year; local time) to epoch
 * ms, or 0 when it is not a valid time: a wrong clock never hides an alarm. */
static int64_t time_label(const struct gb *g, const uint8_t *t)
{
	if (t[0] > 59 || t[1] > 59 || t[2] > 23 || t[3] < 1 || t[3] > 31 || t[4] < 1 ||
	    t[4] > 12 || t[5] > 99)
		return 0;
	struct tm tm = {
		.tm_sec = t[0], .tm_min = t[1], .tm_hour = t[2], .tm_mday = t[3],
		.tm_mon = t[4] - 1, .tm_year = 100 + t[5],
	};
	time_t s = timegm(&tm);
	if (s == (time_t)-1 || tm.tm_mday != t[3])
		return 0;           /* 31 February and the like */
	int64_t ms = ((int64_t)s - g->cfg->utc_offset_min * 60) * 1000;
	return ms > 0 ? ms : 0;
}

/* A NUL-padded GB18030 description as UTF-8 into attrs ("description"), or
 * its hex when it does not convert. */
static void description(struct gb *g, json_t *attrs, const uint8_t *p)
{
	size_t n = DESC_LEN;
	while (n && (p[n - 1] == 0 || p[n - 1] == ' '))
		n--;
	if (!n)
		return;
	char in[DESC_LEN], out[DESC_LEN * 4 + 1];
	memcpy(in, p, n);
	char *ip = in, *op = out;
	size_t il = n, ol = sizeof(out) - 1;
	if (g->gb18030 != (iconv_t)-1) {
		iconv(g->gb18030, NULL, NULL, NULL, NULL);
		if (iconv(g->gb18030, &ip, &il, &op, &ol) != (size_t)-1 && il == 0) {
			*op = '\0';
			json_t *s = json_stringn(out, (size_t)(op - out));
			if (s) {
				json_object_set_new(attrs, "description", s);
				return;
			}
		}
	}
	char hex[DESC_LEN * 2 + 1];
	for (size_t i = 0; i < n; i++)
		snprintf(hex + 2 * i, 3, "%02x", p[i]);
	json_object_set_new(attrs, "description_hex", json_string(hex));
}

/* One decoded frame, as the object decoders need it. */
struct frame {
	const uint8_t *b;
	size_t adu_len;
	unsigned serial;
	unsigned command;
	char uitd[13];
	int64_t head_time_ms;
};

static json_t *base_attrs(const struct frame *f)
{
	return json_pack("{s:s,s:i}", "uitd", f->uitd, "serial", (json_int_t)f->serial);
}

/* What a component's fire bit means, by its type (GB/T 26875.3 table 5). */
static fg_kind fire_kind(unsigned type)
{
	if (type >= 30 && type <= 37)
		return FG_KIND_HEAT;               /* heat detectors */
	if (type == 17)
		return FG_KIND_RESIDUAL_CURRENT;   /* residual-current electrical fire detector */
	if (type == 18)
		return FG_KIND_OVERTEMP;           /* temperature electrical fire detector */
	return FG_KIND_SMOKE;                  /* smoke 40-44, call points, general 0... */
}

static void component_device(const struct frame *f, const uint8_t *o, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%u-%u/%u-%08x", f->uitd, o[0], o[1], o[2], u32(o + 3));
}

static json_t *component_attrs(const struct frame *f, const uint8_t *o)
{
	json_t *a = base_attrs(f);
	char addr[9];
	snprintf(addr, sizeof(addr), "%08x", u32(o + 3));
	json_object_set_new(a, "system_type", json_integer(o[0]));
	json_object_set_new(a, "system_address", json_integer(o[1]));
	json_object_set_new(a, "component_type", json_integer(o[2]));
	json_object_set_new(a, "component_address", json_string(addr));
	return a;
}

static int64_t object_time(struct gb *g, const struct frame *f, const uint8_t *t)
{
	int64_t ms = time_label(g, t);
	return ms ? ms : f->head_time_ms;
}

/* Type 2: building fire facility component status (40 bytes + time).
 * bit0 normal run / test, bit1 fire, bit2 fault, bit3 shielded, bit4
 * supervisory, bit5 started, bit6 feedback, bit7 delay, bit8 power fault.
 * bit0 = 0 is NOT read as a test: a real controller sends 0x0002 for a fire. */
static void component_status(struct gb *g, fg_decode_ctx *ctx, const struct frame *f,
                             const uint8_t *o)
{
	char device[64];
	component_device(f, o, device, sizeof(device));
	unsigned status = u16(o + 7);
	json_t *a = component_attrs(f, o);
	json_object_set_new(a, "status", json_integer(status));
	description(g, a, o + 9);
	const char *analog = g->host->state_get(ctx, device, "analog");
	if (analog) {
		json_error_t jerr;
		json_t *last = json_loads(analog, 0, &jerr);
		if (json_is_object(last))
			json_object_set(a, "analog", last);
		json_decref(last);
	}
	if (status & 0x0008)
		json_object_set_new(a, "shielded", json_true());
	if (status & 0x0010)
		json_object_set_new(a, "supervisory", json_true());
	char *attrs = pu_attrs_text(a);
	int64_t t = object_time(g, f, o + 40);
	pu_transition(g->host, ctx, device, "fire", status & 0x0002, fire_kind(o[2]), t, attrs);
	pu_transition(g->host, ctx, device, "fault", status & 0x0104, FG_KIND_FAULT, t, attrs);
	free(attrs);
}

/* Type 1: a fire system's state.  bit1 fire, bit2 fault, bit8/9 main/backup
 * power fault, bit10 bus fault. */
static void system_status(struct gb *g, fg_decode_ctx *ctx, const struct frame *f,
                          const uint8_t *o)
{
	char device[32];
	snprintf(device, sizeof(device), "%s/%u-%u", f->uitd, o[0], o[1]);
	unsigned status = u16(o + 2);
	json_t *a = base_attrs(f);
	json_object_set_new(a, "system_type", json_integer(o[0]));
	json_object_set_new(a, "system_address", json_integer(o[1]));
	json_object_set_new(a, "status", json_integer(status));
	char *attrs = pu_attrs_text(a);
	int64_t t = object_time(g, f, o + 4);
	pu_transition(g->host, ctx, device, "fire", status & 0x0002, FG_KIND_SMOKE, t, attrs);
	pu_transition(g->host, ctx, device, "fault", status & 0x0704, FG_KIND_FAULT, t, attrs);
	free(attrs);
}

/* Type 3: a component's analog value (type, int16).  Temperatures (type 3,
 * 0.1 degC) above overtemp_c are an overtemp; every reading is remembered
 * and shown with the component's next status event. */
static void component_analog(struct gb *g, fg_decode_ctx *ctx, const struct frame *f,
                             const uint8_t *o)
{
	static const struct { double scale; const char *unit; } kinds[] = {
		[1] = { 1, NULL }, [2] = { 0.01, "m" }, [3] = { 0.1, "degC" }, [4] = { 0.1, "MPa" },
		[5] = { 0.1, "kPa" }, [6] = { 0.1, "%LEL" }, [7] = { 1, "s" }, [8] = { 0.1, "V" },
		[9] = { 0.1, "A" }, [10] = { 0.1, "L/s" }, [11] = { 0.1, "m3/min" }, [12] = { 1, "m/s" },
	};
	char device[64];
	component_device(f, o, device, sizeof(device));
	unsigned type = o[7];
	int raw = (int16_t)u16(o + 8);
	double scale = type < PU_ARRAY_LEN(kinds) && kinds[type].scale ? kinds[type].scale : 1;
	double value = round(raw * scale * 100) / 100;
	const char *unit = type < PU_ARRAY_LEN(kinds) ? kinds[type].unit : NULL;
	json_t *last = json_pack("{s:i,s:f}", "type", (json_int_t)type, "value", value);
	if (last && unit)
		json_object_set_new(last, "unit", json_string(unit));
	char *text = pu_attrs_text(last);
	if (text)
		g->host->state_set(ctx, device, "analog", text);
	free(text);
	double max = g->cfg->overtemp_c;
	if (type != 3 || max == 0)
		return;
	const char *prev = g->host->state_get(ctx, device, "overtemp");
	bool was = prev && strcmp(prev, "1") == 0;
	bool hot = value > max || (was && value > max - g->cfg->temp_hysteresis_c);
	/* A temperature detector whose fire bit still says overtemp is not
	 * cleared by a cooler reading. */
	const char *fire = g->host->state_get(ctx, device, "fire");
	if (!hot && was && o[2] == 18 && fire && strcmp(fire, "1") == 0)
		return;
	enum pu_edge e = pu_edge(g->host, ctx, device, "overtemp", hot);
	if (e == PU_EDGE_NONE)
		return;
	json_t *a = component_attrs(f, o);
	json_object_set_new(a, "overtemp_c", pu_json_number(max));
	char *attrs = pu_attrs_text(a);
	pu_emit_edge(g->host, ctx, device, e, FG_KIND_OVERTEMP, "degC", value,
	             object_time(g, f, o + 10), attrs);
	free(attrs);
}

/* Types 4 and 24: operation records.  Only a self-test (bit4) or a test
 * (bit6) is reported, as a test of the system or the UITD itself. */
static void operation(struct gb *g, fg_decode_ctx *ctx, const struct frame *f,
                      const char *device, unsigned flags, const uint8_t *t)
{
	if (!(flags & 0x50))
		return;
	json_t *a = base_attrs(f);
	json_object_set_new(a, "operation", json_integer(flags));
	char *attrs = pu_attrs_text(a);
	pu_emit(g->host, ctx, device, FG_KIND_TEST, FG_KIND_NONE, object_time(g, f, t), attrs);
	free(attrs);
}

/* Type 21: the UITD's own running state.  bit1 fire, bit2 fault, bit3/4
 * main/backup power fault, bit5 link to the centre, bit6 link to the fire
 * system.  Its first report (and any frame after an offline) is online. */
static void uitd_state(struct gb *g, fg_decode_ctx *ctx, const struct frame *f, const uint8_t *o)
{
	static const char *const faults[] = { [2] = "fault", [3] = "main_power", [4] = "backup_power",
	                                      [5] = "centre_link", [6] = "monitoring_line" };
	unsigned st = o[0];
	json_t *a = base_attrs(f);
	json_object_set_new(a, "state", json_integer(st));
	json_t *list = json_array();
	for (unsigned bit = 2; bit <= 6; bit++)
		if (st & 1u << bit)
			json_array_append_new(list, json_string(faults[bit]));
	json_object_set_new(a, "faults", list);
	char *attrs = pu_attrs_text(a);
	int64_t t = object_time(g, f, o + 1);
	if (!g->host->state_get(ctx, f->uitd, "avail")) {
		pu_emit(g->host, ctx, f->uitd, FG_KIND_ONLINE, FG_KIND_NONE, t, attrs);
		g->host->state_set(ctx, f->uitd, "avail", "online");
	}
	pu_transition(g->host, ctx, f->uitd, "fire", st & 0x02, FG_KIND_SMOKE, t, attrs);
	pu_transition(g->host, ctx, f->uitd, "fault", st & 0x7c, FG_KIND_FAULT, t, attrs);
	free(attrs);
}

/* Fixed object sizes per information object type; 0 = variable (6, 26:
 * a length byte ahead of the data) or unknown. */
static size_t object_size(unsigned type)
{
	switch (type) {
	case 1: return 10;
	case 2: return 46;
	case 3: return 16;
	case 4: return 10;
	case 5: return 4;
	case 7: return 38;
	case 8: return 8;
	case 21: return 7;
	case 24: return 8;
	case 25: return 2;
	case 28: return 6;
	default: return 0;
	}
}

static int decode_adu(struct gb *g, fg_decode_ctx *ctx, const struct frame *f)
{
	const uint8_t *adu = f->b + HEAD_LEN;
	if (f->adu_len == 0)
		return 0;           /* an empty data frame: a keep-alive */
	if (f->adu_len < 2) {
		g->host->fail(ctx, "ADU of %zu byte(s): no type flag and object count", f->adu_len);
		return -EPROTO;
	}
	unsigned type = adu[0], count = adu[1];
	size_t size = object_size(type), len = f->adu_len - 2;
	const uint8_t *o = adu + 2;
	if (type == 6 || type == 26) {
		/* Configuration text: (system type, address,) length, bytes. */
		size_t pre = type == 6 ? 2 : 0, at = 0;
		for (unsigned i = 0; i < count; i++) {
			if (at + pre + 1 > len || at + pre + 1 + o[at + pre] > len) {
				g->host->fail(ctx, "type %u object #%u runs past the ADU", type, i);
				return -EPROTO;
			}
			at += pre + 1 + o[at + pre];
		}
		return 0;           /* configuration: nothing to report */
	}
	if (!size) {
		g->host->fail(ctx, "information object type %u is not one this plugin decodes", type);
		return -EPROTO;
	}
	if (len != (size_t)count * size) {
		g->host->fail(ctx, "type %u: %u object(s) of %zu bytes do not fill the %zu-byte ADU",
		              type, count, size, f->adu_len);
		return -EPROTO;
	}
	for (unsigned i = 0; i < count; i++, o += size) {
		char sys[32];
		switch (type) {
		case 1: system_status(g, ctx, f, o); break;
		case 2: component_status(g, ctx, f, o); break;
		case 3: component_analog(g, ctx, f, o); break;
		case 4:
			snprintf(sys, sizeof(sys), "%s/%u-%u", f->uitd, o[0], o[1]);
			operation(g, ctx, f, sys, o[2], o + 4);
			break;
		case 21: uitd_state(g, ctx, f, o); break;
		case 24: operation(g, ctx, f, f->uitd, o[0], o + 2); break;
		default: break;     /* versions, configurations, clocks */
		}
	}
	return 0;
}

/* FNV-1a over the serial, command and ADU: a retransmission repeats them
 * (its header time may be regenerated). */
static uint32_t content_hash(const struct frame *f)
{
	uint32_t h = 2166136261u;
	const uint8_t *parts[] = { f->b + 2, f->b + 26, f->b + HEAD_LEN };
	size_t lens[] = { 2, 1, f->adu_len };
	for (size_t p = 0; p < 3; p++)
		for (size_t i = 0; i < lens[p]; i++)
			h = (h ^ parts[p][i]) * 16777619u;
	return h;
}

/* Whether this frame was seen before; remembers it otherwise. */
static bool retransmission(struct gb *g, fg_decode_ctx *ctx, const struct frame *f)
{
	char key[12], list[RECENT * 9 + 1] = "";
	snprintf(key, sizeof(key), "%08x", content_hash(f));
	const char *prev = g->host->state_get(ctx, f->uitd, "recent");
	if (prev && strlen(prev) < sizeof(list)) {
		for (const char *p = prev; *p; p += strcspn(p, ",") + (p[strcspn(p, ",")] == ','))
			if (strncmp(p, key, 8) == 0 && (p[8] == ',' || p[8] == '\0'))
				return true;
		/* Keep the newest RECENT - 1 and add this one in front. */
		snprintf(list, sizeof(list), "%s", prev);
		char *cut = list;
		for (int i = 0; i < RECENT - 1 && cut; i++) {
			cut = strchr(cut, ',');
			cut = cut ? cut + 1 : NULL;
		}
		if (cut)
			cut[-1] = '\0';
	}
	char next[sizeof(list) + 10];
	snprintf(next, sizeof(next), "%s%s%s", key, list[0] ? "," : "", list);
	g->host->state_set(ctx, f->uitd, "recent", next);
	return false;
}

/* The listener's silence notice: .../<uitd>/silent. */
static int decode_silent(struct gb *g, const struct fg_msg *msg, fg_decode_ctx *ctx)
{
	const char *end = msg->topic + strlen(msg->topic) - strlen("/silent");
	const char *start = end;
	while (start > msg->topic && start[-1] != '/')
		start--;
	char uitd[13];
	if (end - start != 12 || strspn(start, "0123456789abcdef") < 12) {
		g->host->fail(ctx, "silence notice without a 12-digit UITD address in the topic");
		return -EPROTO;
	}
	memcpy(uitd, start, 12);
	uitd[12] = '\0';
	char text[24];
	long secs = -1;
	if (pu_payload_text(msg, text, sizeof(text)) == 0 && text[0])
		secs = strtol(text, NULL, 10);
	const char *prev = g->host->state_get(ctx, uitd, "avail");
	if (prev && strcmp(prev, "offline") == 0)
		return 0;
	char attrs[64];
	snprintf(attrs, sizeof(attrs), "{\"silent_s\":%ld}", secs < 0 ? 0 : secs);
	pu_emit(g->host, ctx, uitd, FG_KIND_OFFLINE, FG_KIND_NONE, 0, attrs);
	g->host->state_set(ctx, uitd, "avail", "offline");
	return 0;
}

static int gb_decode(void *state, const struct fg_msg *msg, fg_decode_ctx *ctx)
{
	struct gb *g = state;
	const struct fg_host *h = g->host;
	size_t tl = strlen(msg->topic);
	if (tl >= 7 && strcmp(msg->topic + tl - 7, "/silent") == 0)
		return decode_silent(g, msg, ctx);

	const uint8_t *b = msg->payload;
	size_t n = msg->len;
	if (n < FRAME_OVERHEAD || b[0] != '@' || b[1] != '@') {
		h->fail(ctx, "not a GB/T 26875.3 frame: %zu bytes, expected '@@' and at least %d",
		        n, FRAME_OVERHEAD);
		return -EINVAL;
	}
	struct frame f = { .b = b, .adu_len = u16(b + 24), .serial = u16(b + 2), .command = b[26] };
	if (f.adu_len > MAX_ADU || n != FRAME_OVERHEAD + f.adu_len) {
		h->fail(ctx, "frame of %zu bytes with an ADU length of %zu (expected %zu bytes, "
		        "ADU at most %d)", n, f.adu_len, FRAME_OVERHEAD + f.adu_len, MAX_ADU);
		return -EINVAL;
	}
	if (b[n - 2] != '#' || b[n - 1] != '#') {
		h->fail(ctx, "frame does not end with '##'");
		return -EINVAL;
	}
	unsigned sum = 0;
	for (size_t i = 2; i < n - 3; i++)
		sum += b[i];
	if (g->cfg->checksum && (sum & 0xff) != b[n - 3]) {
		h->fail(ctx, "checksum 0x%02x, the bytes sum to 0x%02x", b[n - 3], sum & 0xff);
		return -EBADMSG;
	}
	address(b + 12, f.uitd);
	f.head_time_ms = time_label(g, b + 6);

	/* Any frame proves the UITD alive again. */
	const char *avail = h->state_get(ctx, f.uitd, "avail");
	if (avail && strcmp(avail, "offline") == 0) {
		char attrs[48];
		snprintf(attrs, sizeof(attrs), "{\"serial\":%u}", f.serial);
		pu_emit(h, ctx, f.uitd, FG_KIND_ONLINE, FG_KIND_NONE, f.head_time_ms, attrs);
		h->state_set(ctx, f.uitd, "avail", "online");
	}
	if (f.command != 2 && f.command != 5)
		return 0;           /* control, confirm, request, deny: no information */
	if (retransmission(g, ctx, &f))
		return 0;
	return decode_adu(g, ctx, &f);
}

FG_PLUGIN_DEFINE(gb26875,
	.name = "gb26875",
	.version = "1.0",
	.description = "GB/T 26875.3-2011 user information transmission devices (one frame per message)",
	.options = gb_options,
	.config_size = sizeof(struct gb_config),
	.init = gb_init,
	.fini = gb_fini,
	.decode = gb_decode);
