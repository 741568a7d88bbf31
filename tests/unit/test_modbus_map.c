/* Unit tests for register maps, planning, decoding, payloads and captured
 * frames (modbus_map.c), and the Modbus config sections (conf.c). */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "conf.h"
#include "modbus_map.h"

static int failures;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #c); failures++; } } while (0)

#define REG(n, t, a, ty, o, s, u) { n, t, a, ty, o, s, u }
#define MAP(regs, gap, count) \
	{ sizeof(struct fg_modbus_map), sizeof(struct fg_modbus_reg), regs, \
	  sizeof(regs) / sizeof((regs)[0]), gap, count }

static double dec(fg_modbus_type t, fg_modbus_order o, double scale, uint16_t w0, uint16_t w1)
{
	struct fg_modbus_reg r = REG("x", FG_MODBUS_INPUT_REGISTERS, 0, t, o, scale, NULL);
	uint16_t w[2] = { w0, w1 };
	return fg_modbus_decode(&r, w);
}

static void test_decode(void)
{
	/* The SDM120 corpus: ABCD float32, seven significant digits. */
	CHECK(dec(FG_MODBUS_F32, FG_MODBUS_ABCD, 1, 0x4111, 0x47AE) == 9.08);
	CHECK(dec(FG_MODBUS_F32, FG_MODBUS_ABCD, 1, 0x4365, 0xCCCD) == 229.8);
	CHECK(dec(FG_MODBUS_F32, FG_MODBUS_ABCD, 1, 0x43CE, 0x272B) == 412.306);
	/* The same value in the other three orders. */
	CHECK(dec(FG_MODBUS_F32, FG_MODBUS_CDAB, 1, 0x47AE, 0x4111) == 9.08);
	CHECK(dec(FG_MODBUS_F32, FG_MODBUS_BADC, 1, 0x1141, 0xAE47) == 9.08);
	CHECK(dec(FG_MODBUS_F32, FG_MODBUS_DCBA, 1, 0xAE47, 0x1141) == 9.08);
	/* SHT20: int16 x0.1, two's complement, and the x100 variant. */
	CHECK(dec(FG_MODBUS_I16, FG_MODBUS_ABCD, 0.1, 0x0131, 0) == 30.5);
	CHECK(dec(FG_MODBUS_U16, FG_MODBUS_ABCD, 0.1, 0x0222, 0) == 54.6);
	CHECK(dec(FG_MODBUS_I16, FG_MODBUS_ABCD, 0.1, 0xFF9C, 0) == -10.0);
	CHECK(dec(FG_MODBUS_I16, FG_MODBUS_ABCD, 0.01, 0x0BEA, 0) == 30.5);
	CHECK(dec(FG_MODBUS_U16, FG_MODBUS_ABCD, 0.1, 0xFF9C, 0) == 6543.6);
	/* 16-bit byte swap with BADC / DCBA only. */
	CHECK(dec(FG_MODBUS_U16, FG_MODBUS_BADC, 1, 0x3101, 0) == 0x0131);
	CHECK(dec(FG_MODBUS_U16, FG_MODBUS_CDAB, 1, 0x3101, 0) == 0x3101);
	/* 32-bit integers. */
	CHECK(dec(FG_MODBUS_U32, FG_MODBUS_ABCD, 1, 0x0001, 0x0002) == 65538);
	CHECK(dec(FG_MODBUS_U32, FG_MODBUS_CDAB, 1, 0x0002, 0x0001) == 65538);
	CHECK(dec(FG_MODBUS_I32, FG_MODBUS_ABCD, 1, 0xFFFF, 0xFFFE) == -2);
	CHECK(dec(FG_MODBUS_U32, FG_MODBUS_ABCD, 0.001, 0x0001, 0x86A0) == 100.0);
	CHECK(dec(FG_MODBUS_U16, FG_MODBUS_ABCD, 2.5, 4, 0) == 10.0);
}

static void test_check(void)
{
	char err[200];
	struct fg_modbus_reg ok[] = {
		REG("a", FG_MODBUS_INPUT_REGISTERS, 0, FG_MODBUS_F32, FG_MODBUS_ABCD, 1, "V"),
		REG("b", FG_MODBUS_COILS, 0, FG_MODBUS_BOOL, FG_MODBUS_ABCD, 1, NULL),
	};
	struct fg_modbus_map m = MAP(ok, 0, 0);
	CHECK(fg_modbus_map_check(&m, err, sizeof(err)) == 0);

	struct fg_modbus_reg dup[] = { ok[0], ok[0] };
	struct fg_modbus_map md = MAP(dup, 0, 0);
	CHECK(fg_modbus_map_check(&md, err, sizeof(err)) == -EINVAL && strstr(err, "twice"));

	struct fg_modbus_reg boolreg[] = {
		REG("a", FG_MODBUS_HOLDING_REGISTERS, 0, FG_MODBUS_BOOL, FG_MODBUS_ABCD, 1, NULL) };
	struct fg_modbus_map mb = MAP(boolreg, 0, 0);
	CHECK(fg_modbus_map_check(&mb, err, sizeof(err)) == -EINVAL && strstr(err, "booleans"));

	struct fg_modbus_reg past[] = {
		REG("a", FG_MODBUS_INPUT_REGISTERS, 65535, FG_MODBUS_F32, FG_MODBUS_ABCD, 1, NULL) };
	struct fg_modbus_map mp = MAP(past, 0, 0);
	CHECK(fg_modbus_map_check(&mp, err, sizeof(err)) == -EINVAL && strstr(err, "65535"));

	struct fg_modbus_reg badname[] = {
		REG("Volt", FG_MODBUS_INPUT_REGISTERS, 0, FG_MODBUS_U16, FG_MODBUS_ABCD, 1, NULL) };
	struct fg_modbus_map mn = MAP(badname, 0, 0);
	CHECK(fg_modbus_map_check(&mn, err, sizeof(err)) == -EINVAL);

	struct fg_modbus_map small = m;
	small.struct_size = 8;
	CHECK(fg_modbus_map_check(&small, err, sizeof(err)) == -EINVAL);
	CHECK(fg_modbus_map_check(NULL, err, sizeof(err)) == -EINVAL);
}

static void test_plan(void)
{
	/* The SDM120: holes between every entry, max_gap 0 -> one request each. */
	struct fg_modbus_reg sdm[] = {
		REG("v", FG_MODBUS_INPUT_REGISTERS, 0, FG_MODBUS_F32, FG_MODBUS_ABCD, 1, NULL),
		REG("i", FG_MODBUS_INPUT_REGISTERS, 6, FG_MODBUS_F32, FG_MODBUS_ABCD, 1, NULL),
		REG("p", FG_MODBUS_INPUT_REGISTERS, 12, FG_MODBUS_F32, FG_MODBUS_ABCD, 1, NULL),
	};
	struct fg_modbus_map m = MAP(sdm, 0, 0);
	struct fg_modbus_plan *p = NULL;
	CHECK(fg_modbus_plan_new(&m, &p) == 0 && p->n_blocks == 3 && p->n_words == 6);
	fg_modbus_plan_free(p);
	/* A gap of 4 allowed: one request 0..13. */
	m.max_gap = 4;
	CHECK(fg_modbus_plan_new(&m, &p) == 0 && p->n_blocks == 1 && p->blocks[0].count == 14);
	fg_modbus_plan_free(p);
	/* ... unless a request may carry only 8 registers. */
	m.max_count = 8;
	CHECK(fg_modbus_plan_new(&m, &p) == 0 && p->n_blocks == 2 && p->blocks[0].count == 8 &&
	      p->blocks[1].address == 12);
	fg_modbus_plan_free(p);

	/* Adjacent entries of one table share a request, whatever their order in
	 * the map; tables never mix; bits and words have their own buffers. */
	struct fg_modbus_reg mix[] = {
		REG("hum", FG_MODBUS_INPUT_REGISTERS, 2, FG_MODBUS_U16, FG_MODBUS_ABCD, 1, NULL),
		REG("relay_2", FG_MODBUS_COILS, 1, FG_MODBUS_BOOL, FG_MODBUS_ABCD, 1, NULL),
		REG("temp", FG_MODBUS_INPUT_REGISTERS, 1, FG_MODBUS_I16, FG_MODBUS_ABCD, 1, NULL),
		REG("relay_1", FG_MODBUS_COILS, 0, FG_MODBUS_BOOL, FG_MODBUS_ABCD, 1, NULL),
		REG("set", FG_MODBUS_HOLDING_REGISTERS, 1, FG_MODBUS_U16, FG_MODBUS_ABCD, 1, NULL),
	};
	struct fg_modbus_map mm = MAP(mix, 0, 0);
	CHECK(fg_modbus_plan_new(&mm, &p) == 0);
	CHECK(p->n_blocks == 3 && p->n_bits == 2 && p->n_words == 3);
	CHECK(p->blocks[0].table == FG_MODBUS_COILS && p->blocks[0].count == 2);
	CHECK(p->blocks[2].table == FG_MODBUS_INPUT_REGISTERS && p->blocks[2].address == 1 &&
	      p->blocks[2].count == 2);
	fg_modbus_plan_free(p);
}

static void test_entries(void)
{
	char err[200];
	struct fg_modbus_entry_text e;
	CHECK(fg_modbus_entry_parse("temperature:30002:i16:*0.1:degC", &e, err, sizeof(err)) == 0);
	CHECK(e.reg.table == FG_MODBUS_INPUT_REGISTERS && e.reg.address == 1 &&
	      e.reg.type == FG_MODBUS_I16 && e.reg.scale == 0.1 && strcmp(e.reg.unit, "degC") == 0);
	CHECK(fg_modbus_entry_parse("current:i6:f32:CDAB:A", &e, err, sizeof(err)) == 0);
	CHECK(e.reg.address == 6 && e.reg.order == FG_MODBUS_CDAB && e.reg.type == FG_MODBUS_F32);
	CHECK(fg_modbus_entry_parse("set:h0x10", &e, err, sizeof(err)) == 0);
	CHECK(e.reg.table == FG_MODBUS_HOLDING_REGISTERS && e.reg.address == 16 &&
	      e.reg.type == FG_MODBUS_U16 && !e.reg.unit);
	CHECK(fg_modbus_entry_parse("smoke:d0", &e, err, sizeof(err)) == 0 &&
	      e.reg.type == FG_MODBUS_BOOL);
	CHECK(fg_modbus_entry_parse("relay_1:00001", &e, err, sizeof(err)) == 0 &&
	      e.reg.table == FG_MODBUS_COILS && e.reg.address == 0);
	CHECK(fg_modbus_entry_parse("big:465536", &e, err, sizeof(err)) == 0 &&
	      e.reg.table == FG_MODBUS_HOLDING_REGISTERS && e.reg.address == 65535);
	/* Refusals name the problem. */
	CHECK(fg_modbus_entry_parse("x:20001", &e, err, sizeof(err)) == -EINVAL && strstr(err, "address"));
	CHECK(fg_modbus_entry_parse("x:30000", &e, err, sizeof(err)) == -EINVAL);
	CHECK(fg_modbus_entry_parse("x:i70000", &e, err, sizeof(err)) == -EINVAL);
	CHECK(fg_modbus_entry_parse("x", &e, err, sizeof(err)) == -EINVAL);
	CHECK(fg_modbus_entry_parse("x:i1:f64", &e, err, sizeof(err)) == 0);   /* "f64" is a unit */
	CHECK(fg_modbus_entry_parse("x:i1:u16:*0", &e, err, sizeof(err)) == -EINVAL);
	CHECK(fg_modbus_entry_parse("x:d1:u16", &e, err, sizeof(err)) == -EINVAL && strstr(err, "booleans"));
	CHECK(fg_modbus_entry_parse("x:i65535:f32", &e, err, sizeof(err)) == -EINVAL);
	CHECK(fg_modbus_entry_parse("x:i1:u16:V:A", &e, err, sizeof(err)) == -EINVAL);

	char name[40];
	double d;
	fg_modbus_order o;
	CHECK(fg_modbus_scale_parse("0.01", name, sizeof(name), &d, err, sizeof(err)) == 0 &&
	      !name[0] && d == 0.01);
	CHECK(fg_modbus_scale_parse("temperature:10", name, sizeof(name), &d, err, sizeof(err)) == 0 &&
	      strcmp(name, "temperature") == 0 && d == 10);
	CHECK(fg_modbus_scale_parse("t:x", name, sizeof(name), &d, err, sizeof(err)) == -EINVAL);
	CHECK(fg_modbus_order_parse("CDAB", name, sizeof(name), &o, err, sizeof(err)) == 0 &&
	      o == FG_MODBUS_CDAB && !name[0]);
	CHECK(fg_modbus_order_parse("e:DCBA", name, sizeof(name), &o, err, sizeof(err)) == 0 &&
	      o == FG_MODBUS_DCBA);
	CHECK(fg_modbus_order_parse("e:ABDC", name, sizeof(name), &o, err, sizeof(err)) == -EINVAL);
}

static void test_compose(void)
{
	char err[200];
	struct fg_modbus_reg base[] = {
		REG("temperature", FG_MODBUS_INPUT_REGISTERS, 1, FG_MODBUS_I16, FG_MODBUS_ABCD, 0.1, "degC"),
		REG("energy", FG_MODBUS_INPUT_REGISTERS, 72, FG_MODBUS_F32, FG_MODBUS_ABCD, 1, "kWh"),
	};
	struct fg_modbus_map bm = MAP(base, 0, 0);
	char *regs[] = { "leak:i100:u16:mA", "energy:i80:u32:Wh" };
	char *scale[] = { "0.01", "leak:0.5" };
	char *order[] = { "energy:CDAB" };
	struct fg_modbus_map *m = NULL;
	CHECK(fg_modbus_map_compose(&bm, regs, 2, scale, 2, order, 1, &m, err, sizeof(err)) == 0);
	if (m) {
		CHECK(m->n_regs == 3);
		const struct fg_modbus_reg *t = fg_modbus_map_reg(m, 0), *e = fg_modbus_map_reg(m, 1),
			*l = fg_modbus_map_reg(m, 2);
		CHECK(strcmp(t->name, "temperature") == 0 && t->scale == 0.01);
		/* The config's entry replaced the plugin's, in place. */
		CHECK(strcmp(e->name, "energy") == 0 && e->address == 80 && e->type == FG_MODBUS_U32 &&
		      e->order == FG_MODBUS_CDAB && strcmp(e->unit, "Wh") == 0);
		CHECK(strcmp(l->name, "leak") == 0 && l->scale == 0.5);
	}
	fg_modbus_map_free(m);

	char *bad_scale[] = { "tmp:0.01" };
	CHECK(fg_modbus_map_compose(&bm, NULL, 0, bad_scale, 1, NULL, 0, &m, err, sizeof(err)) ==
	      -EINVAL && strstr(err, "no entry 'tmp'"));
	struct fg_modbus_map empty = { sizeof(empty), sizeof(struct fg_modbus_reg), NULL, 0, 0, 0 };
	CHECK(fg_modbus_map_compose(&empty, NULL, 0, NULL, 0, NULL, 0, &m, err, sizeof(err)) ==
	      -EINVAL && strstr(err, "empty"));
	char *one[] = { "smoke:d0" };
	CHECK(fg_modbus_map_compose(&empty, one, 1, NULL, 0, NULL, 0, &m, err, sizeof(err)) == 0);
	fg_modbus_map_free(m);
}

static void test_reach(void)
{
	struct fg_modbus_reach r = FG_MODBUS_REACH_INIT;
	CHECK(!fg_modbus_reach_update(&r, false, 3) && r.online && r.failures == 1);
	CHECK(!fg_modbus_reach_update(&r, false, 3) && r.online);
	CHECK(fg_modbus_reach_update(&r, false, 3) && !r.online && r.failures == 3);
	CHECK(!fg_modbus_reach_update(&r, false, 3) && !r.online);
	CHECK(fg_modbus_reach_update(&r, true, 3) && r.online && r.failures == 0);
}

static void test_frames(void)
{
	char err[200];
	struct fg_modbus_pdu p;
	/* The SHT20 documented frame, and with a broken CRC. */
	uint8_t ok[] = { 0x01, 0x04, 0x04, 0x01, 0x31, 0x02, 0x22, 0x2A, 0xCE };
	CHECK(fg_modbus_adu_parse(ok, sizeof(ok), true, &p, err, sizeof(err)) == 0);
	CHECK(p.unit == 1 && p.function == 4 && !p.exception && p.len == 4 && p.data[1] == 0x31);
	ok[8] ^= 1;
	CHECK(fg_modbus_adu_parse(ok, sizeof(ok), true, &p, err, sizeof(err)) == -EBADMSG);
	/* The SDM120 exception. */
	uint8_t exc[] = { 0x07, 0x84, 0x02, 0x22, 0xC0 };
	CHECK(fg_modbus_adu_parse(exc, sizeof(exc), true, &p, err, sizeof(err)) == 0);
	CHECK(p.exception && p.code == 2 && p.function == 4 && p.unit == 7);
	/* A request CRC from the corpus: 07 04 00 00 00 02 -> 71 AD. */
	uint8_t req[] = { 0x07, 0x04, 0x00, 0x00, 0x00, 0x02 };
	CHECK(fg_modbus_crc16(req, sizeof(req)) == 0xAD71);
	/* TCP: the MBAP length must match. */
	uint8_t tcp[] = { 0, 1, 0, 0, 0, 7, 7, 4, 4, 0x41, 0x11, 0x47, 0xAE };
	CHECK(fg_modbus_adu_parse(tcp, sizeof(tcp), false, &p, err, sizeof(err)) == 0 &&
	      p.unit == 7 && p.len == 4);
	tcp[5] = 8;
	CHECK(fg_modbus_adu_parse(tcp, sizeof(tcp), false, &p, err, sizeof(err)) == -EINVAL);
	/* Byte count that lies. */
	uint8_t lie[] = { 0x01, 0x04, 0x06, 0x01, 0x31, 0x02, 0x22, 0, 0 };
	uint16_t crc = fg_modbus_crc16(lie, 7);
	lie[7] = (uint8_t)crc;
	lie[8] = (uint8_t)(crc >> 8);
	CHECK(fg_modbus_adu_parse(lie, sizeof(lie), true, &p, err, sizeof(err)) == -EINVAL);
}

/* A capture through the plan to the payload, as `firegridctl decode` does. */
static void test_capture_payload(void)
{
	struct fg_modbus_reg regs[] = {
		REG("temperature", FG_MODBUS_INPUT_REGISTERS, 1, FG_MODBUS_I16, FG_MODBUS_ABCD, 0.1, "degC"),
		REG("humidity", FG_MODBUS_INPUT_REGISTERS, 2, FG_MODBUS_U16, FG_MODBUS_ABCD, 0.1, "%RH"),
	};
	struct fg_modbus_map m = MAP(regs, 0, 0);
	struct fg_modbus_plan *plan = NULL;
	CHECK(fg_modbus_plan_new(&m, &plan) == 0);
	json_t *doc = json_loads(
		"{\"transport\":{\"kind\":\"Modbus RTU\"},\"device\":{\"unit_id\":1},"
		"\"exchanges\":[{\"function\":4,\"start_address\":1,\"quantity\":2,"
		"\"response_adu_hex\":\"01 04 04 02 AD 00 F1 AA 59\"}]}", 0, NULL);
	struct fg_modbus_poll poll;
	char err[200];
	int unit = -1;
	CHECK(fg_modbus_poll_from_capture(doc, plan, &poll, &unit, err, sizeof(err)) == 0);
	CHECK(unit == 1 && poll.status == FG_MODBUS_OK);
	struct fg_modbus_reach reach = FG_MODBUS_REACH_INIT;
	struct fg_modbus_origin o = { "b3-temp", "shed", 1, "ceiling" };
	json_t *commanded = json_pack("{s:b}", "relay_3", 0);
	size_t len = 0;
	char *payload = fg_modbus_payload(&m, &poll, &o, &reach, commanded, &len);
	json_t *pl = payload ? json_loads(payload, 0, NULL) : NULL;
	CHECK(pl && strlen(payload) == len);
	CHECK(json_real_value(json_object_get(json_object_get(pl, "values"), "temperature")) == 68.5);
	CHECK(json_real_value(json_object_get(json_object_get(pl, "values"), "humidity")) == 24.1);
	CHECK(strcmp(json_string_value(json_object_get(pl, "status")), "ok") == 0);
	CHECK(strcmp(json_string_value(json_object_get(json_object_get(pl, "units"), "humidity")),
	             "%RH") == 0);
	CHECK(json_is_true(json_object_get(pl, "online")));
	CHECK(json_is_false(json_object_get(json_object_get(pl, "commanded"), "relay_3")));
	CHECK(strcmp(json_string_value(json_object_get(pl, "role")), "ceiling") == 0);
	json_decref(pl);
	free(payload);
	fg_modbus_poll_clear(&poll);
	char topic[64];
	CHECK(strcmp(fg_modbus_topic(&o, topic, sizeof(topic)), "modbus/shed/1/b3-temp") == 0);

	/* An exception on the block: status exception, no values from it. */
	json_decref(doc);
	doc = json_loads("{\"exchanges\":[{\"function\":4,\"start_address\":1,\"quantity\":2,"
	                 "\"response_adu_hex\":\"01 84 02 C2 C1\"}]}", 0, NULL);
	CHECK(fg_modbus_poll_from_capture(doc, plan, &poll, &unit, err, sizeof(err)) == 0);
	CHECK(poll.status == FG_MODBUS_EXCEPTION);
	payload = fg_modbus_payload(&m, &poll, &o, &reach, NULL, &len);
	pl = payload ? json_loads(payload, 0, NULL) : NULL;
	CHECK(pl && json_object_size(json_object_get(pl, "values")) == 0);
	CHECK(json_integer_value(json_object_get(json_object_get(pl, "exception"), "code")) == 2);
	CHECK(!json_object_get(pl, "commanded"));
	json_decref(pl);
	free(payload);
	fg_modbus_poll_clear(&poll);

	/* A wrong byte count and a response from another unit are refused. */
	json_decref(doc);
	doc = json_loads("{\"device\":{\"unit_id\":2},\"exchanges\":[{\"function\":4,"
	                 "\"start_address\":1,\"quantity\":2,"
	                 "\"response_adu_hex\":\"01 04 04 02 AD 00 F1 AA 59\"}]}", 0, NULL);
	CHECK(fg_modbus_poll_from_capture(doc, plan, &poll, &unit, err, sizeof(err)) == -EINVAL &&
	      strstr(err, "unit"));
	json_decref(doc);
	doc = json_loads("{\"exchanges\":[{\"function\":4,\"start_address\":1,\"quantity\":3,"
	                 "\"response_adu_hex\":\"01 04 04 02 AD 00 F1 AA 59\"}]}", 0, NULL);
	CHECK(fg_modbus_poll_from_capture(doc, plan, &poll, &unit, err, sizeof(err)) == -EINVAL);
	/* No response: the poll is unanswered. */
	json_decref(doc);
	doc = json_loads("{\"exchanges\":[{\"function\":4,\"start_address\":1,\"quantity\":2,"
	                 "\"response_adu_hex\":null}]}", 0, NULL);
	CHECK(fg_modbus_poll_from_capture(doc, plan, &poll, &unit, err, sizeof(err)) == 0 &&
	      poll.status == FG_MODBUS_NO_RESPONSE);
	fg_modbus_reach_update(&reach, false, 1);
	payload = fg_modbus_payload(&m, &poll, &o, &reach, NULL, &len);
	pl = payload ? json_loads(payload, 0, NULL) : NULL;
	CHECK(pl && !json_object_get(pl, "values") && json_is_false(json_object_get(pl, "online")));
	json_decref(pl);
	free(payload);
	fg_modbus_poll_clear(&poll);
	json_decref(doc);
	json_decref(commanded);
	fg_modbus_plan_free(plan);
}

#define HEAD "[daemon]\ngateway_id = gw\n[sink s]\nurl = http://127.0.0.1/\n" \
	"secret = whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n"

static char *conf_errors(const char *text)
{
	struct fg_conf *c = NULL;
	char *errs = NULL;
	int r = fg_conf_load_string("t.conf", text, &c, &errs);
	fg_conf_free(c);
	if (r == 0) {
		free(errs);
		return NULL;
	}
	return errs ? errs : strdup("?");
}

static void test_conf(void)
{
	struct fg_conf *c = NULL;
	char *errs = NULL;
	CHECK(fg_conf_load_string("t.conf", HEAD
		"[modbus-bus shed]\ntype = rtu\ndevice = /dev/ttyUSB0\nparity = even\n"
		"[modbus-device b3-temp]\nbus = shed\nunit = 1\nplugin = sht20\nscale = 0.01\n"
		"overtemp = 55\nregisters = extra:30010:u16,\n  other:i11\n"
		"[interlock cut]\ndevice = b3-temp\ncoils = 0 1\nfrom = b3-temp\n", &c, &errs) == 0);
	if (c) {
		CHECK(c->n_modbus_buses == 1 && c->modbus_buses[0].type == FG_MODBUS_BUS_RTU &&
		      c->modbus_buses[0].parity == 'E' && c->modbus_buses[0].baud == 9600);
		const struct fg_conf_modbus_device *d = &c->modbus_devices[0];
		CHECK(d->unit == 1 && d->interval_ms == 5000 && d->offline_after == 3 &&
		      d->n_scale == 1 && d->n_registers == 2 && d->n_opts == 1 &&
		      strcmp(d->opts[0].key, "overtemp") == 0);
		CHECK(c->n_interlocks == 1 && c->interlocks[0].n_coils == 2 &&
		      c->interlocks[0].n_on == 3 && c->interlocks[0].cut_value == 0);
	}
	fg_conf_free(c);
	free(errs);

	char *e = conf_errors(HEAD "[modbus-bus a]\ntype = tcp\n");
	CHECK(e && strstr(e, "[modbus-bus a] host: required for type = tcp"));
	free(e);
	e = conf_errors(HEAD "[modbus-bus a]\ntype = rtu\ndevice = /dev/x\n"
	                "[modbus-device d]\nbus = a\nunit = 0\nplugin = sht20\n");
	CHECK(e && strstr(e, "[modbus-device d] unit: RTU unit ids are 1..247"));
	free(e);
	e = conf_errors(HEAD "[modbus-device d]\nbus = nope\nunit = 1\nplugin = sht20\n");
	CHECK(e && strstr(e, "[modbus-device d] bus: no [modbus-bus nope]"));
	free(e);
	e = conf_errors(HEAD "[modbus-bus a]\ntype = tcp\nhost = 127.0.0.1\n"
	                "[modbus-device d]\nbus = a\nunit = 1\nplugin = sht20\n"
	                "registers = t:30001:f64x\n");
	CHECK(e == NULL);      /* "f64x" is a unit: the entry parses */
	free(e);
	e = conf_errors(HEAD "[modbus-bus a]\ntype = tcp\nhost = 127.0.0.1\n"
	                "[modbus-device d]\nbus = a\nunit = 1\nplugin = sht20\n"
	                "registers = t:20001\nword_order = XYZW\n");
	CHECK(e && strstr(e, "t.conf:13: [modbus-device d] registers:") &&
	      strstr(e, "t.conf:14: [modbus-device d] word_order:"));
	free(e);
	e = conf_errors(HEAD "[interlock x]\ndevice = d\ncoils = 0 70000\nfrom = d\non = fire\n");
	CHECK(e && strstr(e, "coils: '70000'") && strstr(e, "on: 'fire'") &&
	      strstr(e, "device: no [modbus-device d]") && strstr(e, "from: no [modbus-device d]"));
	free(e);
	/* trigger_devices: any source, exact names; a rule needs a trigger */
	static const char shed[] = "[modbus-bus a]\ntype = tcp\nhost = 127.0.0.1\n"
		"[modbus-device r]\nbus = a\nunit = 1\nplugin = relay-board\n";
	char text[1024];
	snprintf(text, sizeof(text), "%s%s[interlock x]\ndevice = r\ncoils = 0\n", HEAD, shed);
	e = conf_errors(text);
	CHECK(e && strstr(e, "t.conf:13: [interlock x] trigger_devices: a rule needs "
	                     "`from` or `trigger_devices`"));
	free(e);
	snprintf(text, sizeof(text), "%s%s[interlock x]\ndevice = r\ncoils = 0\n"
	         "trigger_devices = zigbee2mqtt/shed/+\n", HEAD, shed);
	e = conf_errors(text);
	CHECK(e && strstr(e, "trigger_devices: 'zigbee2mqtt/shed/+': wildcards are not accepted"));
	free(e);
	snprintf(text, sizeof(text), "%s%s[interlock x]\ndevice = r\ncoils = 0\n"
	         "trigger_devices = zigbee2mqtt/shed-smoke,\n  0xa4c138b1e5f3a8d0\n", HEAD, shed);
	c = NULL;
	errs = NULL;
	CHECK(fg_conf_load_string("t.conf", text, &c, &errs) == 0);
	CHECK(c && c->n_interlocks == 1 && c->interlocks[0].n_from == 0 &&
	      c->interlocks[0].n_trigger_devices == 2 &&
	      strcmp(c->interlocks[0].trigger_devices[1], "0xa4c138b1e5f3a8d0") == 0);
	fg_conf_free(c);
	free(errs);
	e = conf_errors(HEAD "[source d]\nplugin = generic-json\ntopics = a/#\n"
	                "[modbus-bus a]\ntype = tcp\nhost = 127.0.0.1\n"
	                "[modbus-device d]\nbus = a\nunit = 1\nplugin = sht20\n");
	CHECK(e && strstr(e, "name is already used by the [source]"));
	free(e);
}

int main(void)
{
	test_decode();
	test_check();
	test_plan();
	test_entries();
	test_compose();
	test_reach();
	test_frames();
	test_capture_payload();
	test_conf();
	if (failures) {
		fprintf(stderr, "%d check(s) failed\n", failures);
		return 1;
	}
	return 0;
}
