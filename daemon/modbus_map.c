/* Register maps, request planning, decoding and payloads; see modbus_map.h. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "modbus_map.h"

/* The smallest structs this host accepts from a plugin (ABI v1 layouts). */
#define MAP_V1_SIZE (offsetof(struct fg_modbus_map, max_count) + sizeof(uint16_t))
#define REG_V1_SIZE (offsetof(struct fg_modbus_reg, unit) + sizeof(const char *))
#define UNIT_MAX 16

__attribute__((format(printf, 3, 4)))
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

const struct fg_modbus_reg *fg_modbus_map_reg(const struct fg_modbus_map *map, size_t i)
{
	return (const struct fg_modbus_reg *)(const void *)((const char *)map->regs +
	                                                      i * map->reg_size);
}

unsigned fg_modbus_type_width(fg_modbus_type type)
{
	return type == FG_MODBUS_U32 || type == FG_MODBUS_I32 || type == FG_MODBUS_F32 ? 2 : 1;
}

static bool is_bit_table(fg_modbus_table t)
{
	return t == FG_MODBUS_COILS || t == FG_MODBUS_DISCRETE_INPUTS;
}

int fg_modbus_read_function(fg_modbus_table table)
{
	switch (table) {
	case FG_MODBUS_COILS: return 1;
	case FG_MODBUS_DISCRETE_INPUTS: return 2;
	case FG_MODBUS_HOLDING_REGISTERS: return 3;
	case FG_MODBUS_INPUT_REGISTERS: return 4;
	}
	return 0;
}

const char *fg_modbus_table_name(fg_modbus_table table)
{
	switch (table) {
	case FG_MODBUS_COILS: return "coil";
	case FG_MODBUS_DISCRETE_INPUTS: return "discrete input";
	case FG_MODBUS_HOLDING_REGISTERS: return "holding register";
	case FG_MODBUS_INPUT_REGISTERS: return "input register";
	}
	return "?";
}

const char *fg_modbus_exception_name(int code)
{
	static const char *const names[] = {
		[1] = "illegal function",
		[2] = "illegal data address",
		[3] = "illegal data value",
		[4] = "server device failure",
		[5] = "acknowledge",
		[6] = "server device busy",
		[7] = "negative acknowledge",
		[8] = "memory parity error",
		[10] = "gateway path unavailable",
		[11] = "gateway target device failed to respond",
	};
	if (code > 0 && (size_t)code < sizeof(names) / sizeof(names[0]) && names[code])
		return names[code];
	return "unknown exception";
}

static bool valid_name(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++)
		if (!(islower((unsigned char)s[n]) || isdigit((unsigned char)s[n]) || s[n] == '_'))
			return false;
	return n >= 1 && n <= FG_MODBUS_NAME_MAX;
}

int fg_modbus_map_check(const struct fg_modbus_map *map, char *err, size_t errlen)
{
	if (!map)
		return fail(err, errlen, "the plugin returned no register map");
	if (map->struct_size < MAP_V1_SIZE || map->reg_size < REG_V1_SIZE)
		return fail(err, errlen, "register map structs are smaller than ABI v1's "
		            "(map %u < %zu or entry %u < %zu bytes)", map->struct_size,
		            (size_t)MAP_V1_SIZE, map->reg_size, (size_t)REG_V1_SIZE);
	if (!map->regs || map->n_regs == 0 || map->n_regs > FG_MODBUS_MAX_ENTRIES)
		return fail(err, errlen, "register map has %zu entries, expected 1..%d",
		            map->n_regs, FG_MODBUS_MAX_ENTRIES);
	for (size_t i = 0; i < map->n_regs; i++) {
		const struct fg_modbus_reg *r = fg_modbus_map_reg(map, i);
		if (!r->name || !valid_name(r->name))
			return fail(err, errlen, "entry #%zu: name '%s' is not [a-z0-9_]{1,32}", i + 1,
			            r->name ? r->name : "");
		for (size_t j = 0; j < i; j++)
			if (strcmp(fg_modbus_map_reg(map, j)->name, r->name) == 0)
				return fail(err, errlen, "entry '%s' is declared twice", r->name);
		if (!fg_modbus_read_function(r->table))
			return fail(err, errlen, "entry '%s': unknown table %d", r->name, (int)r->table);
		if ((unsigned)r->type > FG_MODBUS_F32)
			return fail(err, errlen, "entry '%s': unknown type %d", r->name, (int)r->type);
		if (is_bit_table(r->table) != (r->type == FG_MODBUS_BOOL))
			return fail(err, errlen, "entry '%s': %ss %s", r->name,
			            fg_modbus_table_name(r->table),
			            is_bit_table(r->table) ? "are booleans" : "cannot be booleans");
		if ((unsigned)r->order > FG_MODBUS_DCBA)
			return fail(err, errlen, "entry '%s': unknown word order %d", r->name,
			            (int)r->order);
		if ((unsigned)r->address + fg_modbus_type_width(r->type) > 65536u)
			return fail(err, errlen, "entry '%s': address %u runs past 65535", r->name,
			            (unsigned)r->address);
		if (!isfinite(r->scale))
			return fail(err, errlen, "entry '%s': scale is not a finite number", r->name);
		if (r->unit && (!r->unit[0] || strlen(r->unit) > UNIT_MAX))
			return fail(err, errlen, "entry '%s': unit must be 1..%d bytes", r->name, UNIT_MAX);
	}
	return 0;
}

/* ---- planning ----------------------------------------------------------- */

struct span {
	fg_modbus_table table;
	uint32_t first, end;       /* [first, end) */
};

static int cmp_span(const void *a, const void *b)
{
	const struct span *x = a, *y = b;
	if (x->table != y->table)
		return x->table < y->table ? -1 : 1;
	if (x->first != y->first)
		return x->first < y->first ? -1 : 1;
	return x->end < y->end ? -1 : x->end > y->end;
}

int fg_modbus_plan_new(const struct fg_modbus_map *map, struct fg_modbus_plan **ret)
{
	size_t n = map->n_regs;
	struct span *sp = calloc(n, sizeof(*sp));
	struct fg_modbus_plan *p = calloc(1, sizeof(*p));
	struct fg_modbus_block *b = calloc(n, sizeof(*b));   /* never more blocks than entries */
	if (!sp || !p || !b) {
		free(sp);
		free(p);
		free(b);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		const struct fg_modbus_reg *r = fg_modbus_map_reg(map, i);
		sp[i] = (struct span){ r->table, r->address, r->address + fg_modbus_type_width(r->type) };
	}
	qsort(sp, n, sizeof(*sp), cmp_span);

	size_t nb = 0;
	for (size_t i = 0; i < n; i++) {
		bool bits = is_bit_table(sp[i].table);
		uint32_t limit = bits ? FG_MODBUS_MAX_READ_BITS : FG_MODBUS_MAX_READ_REGS;
		if (map->max_count && map->max_count < limit)
			limit = map->max_count;
		struct fg_modbus_block *cur = nb ? &b[nb - 1] : NULL;
		if (cur && cur->table == sp[i].table) {
			uint32_t cur_end = (uint32_t)cur->address + cur->count;
			uint32_t new_end = sp[i].end > cur_end ? sp[i].end : cur_end;
			if (sp[i].first <= cur_end + map->max_gap && new_end - cur->address <= limit) {
				cur->count = (uint16_t)(new_end - cur->address);
				continue;
			}
		}
		b[nb++] = (struct fg_modbus_block){
			.table = sp[i].table,
			.address = (uint16_t)sp[i].first,
			.count = (uint16_t)(sp[i].end - sp[i].first),
		};
	}
	for (size_t i = 0; i < nb; i++) {
		if (is_bit_table(b[i].table)) {
			b[i].offset = (uint32_t)p->n_bits;
			p->n_bits += b[i].count;
		} else {
			b[i].offset = (uint32_t)p->n_words;
			p->n_words += b[i].count;
		}
	}
	free(sp);
	p->blocks = b;
	p->n_blocks = nb;
	*ret = p;
	return 0;
}

void fg_modbus_plan_free(struct fg_modbus_plan *plan)
{
	if (!plan)
		return;
	free(plan->blocks);
	free(plan);
}

int fg_modbus_poll_init(struct fg_modbus_poll *poll, const struct fg_modbus_block *blocks,
                        size_t n_blocks, size_t n_words, size_t n_bits)
{
	memset(poll, 0, sizeof(*poll));
	poll->blocks = blocks;
	poll->n_blocks = n_blocks;
	poll->state = calloc(n_blocks ? n_blocks : 1, 1);
	poll->code = calloc(n_blocks ? n_blocks : 1, 1);
	poll->words = calloc(n_words ? n_words : 1, sizeof(uint16_t));
	poll->bits = calloc(n_bits ? n_bits : 1, 1);
	if (!poll->state || !poll->code || !poll->words || !poll->bits) {
		fg_modbus_poll_clear(poll);
		return -ENOMEM;
	}
	return 0;
}

void fg_modbus_poll_clear(struct fg_modbus_poll *poll)
{
	if (!poll)
		return;
	free(poll->state);
	free(poll->code);
	free(poll->words);
	free(poll->bits);
	memset(poll, 0, sizeof(*poll));
}

/* ---- decoding ----------------------------------------------------------- */

static uint16_t swap16(uint16_t w)
{
	return (uint16_t)((w << 8) | (w >> 8));
}

/* The big-endian 32-bit value A B C D from two registers in `order`. */
static uint32_t join32(const uint16_t *w, fg_modbus_order order)
{
	switch (order) {
	case FG_MODBUS_CDAB: return (uint32_t)w[1] << 16 | w[0];
	case FG_MODBUS_BADC: return (uint32_t)swap16(w[0]) << 16 | swap16(w[1]);
	case FG_MODBUS_DCBA: return (uint32_t)swap16(w[1]) << 16 | swap16(w[0]);
	case FG_MODBUS_ABCD:
	default: return (uint32_t)w[0] << 16 | w[1];
	}
}

/* raw x scale, dividing by 10^k when scale is 1/10^k so that decimal
 * readings come out as the double nearest their decimal value. */
static double apply_scale(double raw, double scale)
{
	if (scale == 0 || scale == 1)
		return raw;
	if (scale < 1 && scale > 0) {
		double inv = 1.0 / scale, k = round(inv);
		if (k > 0 && fabs(inv - k) < 1e-9 * k)
			return raw / k;
	}
	return raw * scale;
}

double fg_modbus_decode(const struct fg_modbus_reg *reg, const uint16_t *w)
{
	uint16_t w16 = reg->order == FG_MODBUS_BADC || reg->order == FG_MODBUS_DCBA
		? swap16(w[0]) : w[0];
	double raw;
	switch (reg->type) {
	case FG_MODBUS_U16:
		raw = w16;
		break;
	case FG_MODBUS_I16:
		raw = (int16_t)w16;
		break;
	case FG_MODBUS_U32:
		raw = join32(w, reg->order);
		break;
	case FG_MODBUS_I32:
		raw = (int32_t)join32(w, reg->order);
		break;
	case FG_MODBUS_F32: {
		uint32_t u = join32(w, reg->order);
		float f;
		memcpy(&f, &u, sizeof(f));
		char buf[32];
		snprintf(buf, sizeof(buf), "%.7g", (double)f);
		raw = strtod(buf, NULL);
		break;
	}
	default:
		raw = w[0] != 0;
		break;
	}
	return apply_scale(raw, reg->scale);
}

bool fg_modbus_reach_update(struct fg_modbus_reach *reach, bool answered,
                            uint32_t offline_after)
{
	bool was = reach->online;
	if (answered) {
		reach->failures = 0;
		reach->online = true;
	} else {
		if (reach->failures < UINT32_MAX)
			reach->failures++;
		if (reach->failures >= (offline_after ? offline_after : 1))
			reach->online = false;
	}
	return was != reach->online;
}

/* ---- payload ------------------------------------------------------------ */

/* A read block that holds every register/bit of reg, or NULL. */
static const struct fg_modbus_block *covering(const struct fg_modbus_poll *poll,
                                              const struct fg_modbus_reg *reg)
{
	uint32_t first = reg->address, end = first + fg_modbus_type_width(reg->type);
	for (size_t i = 0; i < poll->n_blocks; i++) {
		const struct fg_modbus_block *b = &poll->blocks[i];
		if (poll->state[i] == FG_MODBUS_BLOCK_OK && b->table == reg->table &&
		    b->address <= first && (uint32_t)b->address + b->count >= end)
			return b;
	}
	return NULL;
}

static json_t *values_json(const struct fg_modbus_map *map, const struct fg_modbus_poll *poll)
{
	json_t *v = json_object();
	for (size_t i = 0; v && i < map->n_regs; i++) {
		const struct fg_modbus_reg *r = fg_modbus_map_reg(map, i);
		const struct fg_modbus_block *b = covering(poll, r);
		if (!b)
			continue;
		uint32_t at = b->offset + (r->address - b->address);
		json_t *x = r->type == FG_MODBUS_BOOL ? json_boolean(poll->bits[at] != 0)
			: json_real(fg_modbus_decode(r, &poll->words[at]));
		if (json_object_set_new(v, r->name, x) < 0) {
			json_decref(v);
			return NULL;
		}
	}
	return v;
}

static json_t *units_json(const struct fg_modbus_map *map)
{
	json_t *u = json_object();
	for (size_t i = 0; u && i < map->n_regs; i++) {
		const struct fg_modbus_reg *r = fg_modbus_map_reg(map, i);
		if (r->unit && json_object_set_new(u, r->name, json_string(r->unit)) < 0) {
			json_decref(u);
			return NULL;
		}
	}
	return u;
}

static json_t *exception_json(const struct fg_modbus_poll *poll)
{
	for (size_t i = 0; i < poll->n_blocks; i++) {
		if (poll->state[i] != FG_MODBUS_BLOCK_EXCEPTION)
			continue;
		const struct fg_modbus_block *b = &poll->blocks[i];
		return json_pack("{s:i, s:i, s:i, s:i, s:s}",
		                 "function", fg_modbus_read_function(b->table),
		                 "address", (int)b->address, "count", (int)b->count,
		                 "code", (int)poll->code[i],
		                 "name", fg_modbus_exception_name(poll->code[i]));
	}
	return json_null();
}

char *fg_modbus_payload(const struct fg_modbus_map *map, const struct fg_modbus_poll *poll,
                        const struct fg_modbus_origin *origin,
                        const struct fg_modbus_reach *reach, const json_t *commanded,
                        size_t *ret_len)
{
	static const char *const status_names[] = { "ok", "exception", "no_response" };
	json_t *o = json_pack("{s:s, s:s, s:i, s:s, s:b, s:i}",
	                      "device", origin->device, "bus", origin->bus, "unit", origin->unit,
	                      "status", status_names[poll->status], "online", reach->online,
	                      "failures", (json_int_t)reach->failures);
	if (!o)
		return NULL;
	bool bad = false;
	if (origin->role && origin->role[0])
		bad |= json_object_set_new(o, "role", json_string(origin->role)) < 0;
	if (poll->status != FG_MODBUS_NO_RESPONSE) {
		bad |= json_object_set_new(o, "values", values_json(map, poll)) < 0;
		bad |= json_object_set_new(o, "units", units_json(map)) < 0;
	}
	if (poll->status == FG_MODBUS_EXCEPTION)
		bad |= json_object_set_new(o, "exception", exception_json(poll)) < 0;
	if (poll->status == FG_MODBUS_NO_RESPONSE)
		bad |= json_object_set_new(o, "error",
		                           json_string(poll->error[0] ? poll->error : "no response")) < 0;
	if (commanded && json_object_size(commanded))
		bad |= json_object_set(o, "commanded", (json_t *)commanded) < 0;
	char *s = bad ? NULL : json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (s && ret_len)
		*ret_len = strlen(s);
	return s;
}

const char *fg_modbus_topic(const struct fg_modbus_origin *origin, char *buf, size_t len)
{
	snprintf(buf, len, "modbus/%s/%d/%s", origin->bus, origin->unit, origin->device);
	return buf;
}

/* ---- captured exchanges ------------------------------------------------- */

uint16_t fg_modbus_crc16(const uint8_t *p, size_t n)
{
	uint16_t crc = 0xFFFF;
	for (size_t i = 0; i < n; i++) {
		crc ^= p[i];
		for (int b = 0; b < 8; b++)
			crc = (crc & 1) ? (uint16_t)((crc >> 1) ^ 0xA001) : (uint16_t)(crc >> 1);
	}
	return crc;
}

int fg_modbus_adu_parse(const uint8_t *adu, size_t len, bool rtu, struct fg_modbus_pdu *ret,
                        char *err, size_t errlen)
{
	const uint8_t *pdu;
	size_t pdu_len;
	uint8_t unit;
	if (rtu) {
		if (len < 5)
			return fail(err, errlen, "RTU frame of %zu bytes is too short", len);
		uint16_t crc = fg_modbus_crc16(adu, len - 2);
		uint16_t got = (uint16_t)(adu[len - 2] | adu[len - 1] << 8);
		if (crc != got) {
			fail(err, errlen, "RTU frame CRC is %04X, expected %04X", got, crc);
			return -EBADMSG;
		}
		unit = adu[0];
		pdu = adu + 1;
		pdu_len = len - 3;
	} else {
		if (len < 9)
			return fail(err, errlen, "TCP frame of %zu bytes is too short", len);
		size_t mbap_len = (size_t)adu[4] << 8 | adu[5];
		if (adu[2] || adu[3])
			return fail(err, errlen, "MBAP protocol id is not 0");
		if (mbap_len != len - 6)
			return fail(err, errlen, "MBAP length %zu does not match the %zu bytes after it",
			            mbap_len, len - 6);
		unit = adu[6];
		pdu = adu + 7;
		pdu_len = len - 7;
	}
	struct fg_modbus_pdu p = { .unit = unit, .function = pdu[0] & 0x7F };
	if (pdu[0] & 0x80) {
		if (pdu_len != 2)
			return fail(err, errlen, "exception response has %zu bytes, expected 2", pdu_len);
		p.exception = true;
		p.code = pdu[1];
	} else {
		if (pdu_len < 2 || (size_t)pdu[1] != pdu_len - 2)
			return fail(err, errlen, "byte count %u does not match the %zu data bytes",
			            pdu_len >= 2 ? pdu[1] : 0, pdu_len >= 2 ? pdu_len - 2 : 0);
		p.data = pdu + 2;
		p.len = pdu_len - 2;
	}
	*ret = p;
	return 0;
}

/* "07 04 00 00" / "07040000" -> bytes; -EINVAL on anything else. */
static int parse_hex(const char *s, uint8_t *out, size_t cap, size_t *ret_len)
{
	size_t n = 0;
	while (*s) {
		if (isspace((unsigned char)*s)) {
			s++;
			continue;
		}
		if (!isxdigit((unsigned char)s[0]) || !isxdigit((unsigned char)s[1]) || n == cap)
			return -EINVAL;
		char byte[3] = { s[0], s[1], 0 };
		out[n++] = (uint8_t)strtoul(byte, NULL, 16);
		s += 2;
	}
	*ret_len = n;
	return 0;
}

static fg_modbus_table table_of_function(int fc)
{
	switch (fc) {
	case 1: return FG_MODBUS_COILS;
	case 2: return FG_MODBUS_DISCRETE_INPUTS;
	case 3: return FG_MODBUS_HOLDING_REGISTERS;
	case 4: return FG_MODBUS_INPUT_REGISTERS;
	default: return (fg_modbus_table)0;
	}
}

/* One answered exchange: copy what it read into every block it covers. */
static void capture_fill(struct fg_modbus_poll *poll, fg_modbus_table table, uint32_t start,
                         uint32_t qty, const struct fg_modbus_pdu *p)
{
	bool bits = is_bit_table(table);
	for (size_t i = 0; i < poll->n_blocks; i++) {
		const struct fg_modbus_block *b = &poll->blocks[i];
		if (b->table != table || b->address < start || b->address + b->count > start + qty)
			continue;
		if (p->exception) {
			poll->state[i] = FG_MODBUS_BLOCK_EXCEPTION;
			poll->code[i] = p->code;
			continue;
		}
		for (uint32_t k = 0; k < b->count; k++) {
			uint32_t at = b->address - start + k;
			if (bits)
				poll->bits[b->offset + k] = (p->data[at / 8] >> (at % 8)) & 1;
			else
				poll->words[b->offset + k] =
					(uint16_t)(p->data[2 * at] << 8 | p->data[2 * at + 1]);
		}
		poll->state[i] = FG_MODBUS_BLOCK_OK;
	}
}

static int capture_exchange(const json_t *ex, size_t idx, bool rtu, struct fg_modbus_poll *poll,
                            int *unit, unsigned *silent, char *err,
                            size_t errlen)
{
	json_int_t fc = json_integer_value(json_object_get(ex, "function"));
	json_int_t start = json_integer_value(json_object_get(ex, "start_address"));
	json_int_t qty = json_integer_value(json_object_get(ex, "quantity"));
	fg_modbus_table table = table_of_function((int)fc);
	bool bits = is_bit_table(table);
	if (!table || start < 0 || qty < 1 || start + qty > 65536 ||
	    qty > (bits ? FG_MODBUS_MAX_READ_BITS : FG_MODBUS_MAX_READ_REGS))
		return fail(err, errlen, "exchange #%zu: want a read function 1..4, start_address "
		            "and quantity within the protocol limits", idx + 1);
	const json_t *hex = json_object_get(ex, "response_adu_hex");
	if (json_is_null(hex) || !hex) {
		(*silent)++;
		return 0;
	}
	if (!json_is_string(hex))
		return fail(err, errlen, "exchange #%zu: response_adu_hex is not a string", idx + 1);
	uint8_t adu[300];
	size_t len;
	if (parse_hex(json_string_value(hex), adu, sizeof(adu), &len) < 0)
		return fail(err, errlen, "exchange #%zu: response_adu_hex is not hex bytes", idx + 1);
	struct fg_modbus_pdu p;
	char why[128];
	int r = fg_modbus_adu_parse(adu, len, rtu, &p, why, sizeof(why));
	if (r < 0)
		return fail(err, errlen, "exchange #%zu: %s", idx + 1, why);
	if (p.function != fc)
		return fail(err, errlen, "exchange #%zu: response is for function %u, request was %d",
		            idx + 1, p.function, (int)fc);
	if (*unit >= 0 && p.unit != *unit)
		return fail(err, errlen, "exchange #%zu: response from unit %u, expected %d", idx + 1,
		            p.unit, *unit);
	*unit = p.unit;
	size_t want = bits ? (size_t)(qty + 7) / 8 : (size_t)qty * 2;
	if (!p.exception && p.len != want)
		return fail(err, errlen, "exchange #%zu: %zu data bytes for %d %ss, expected %zu",
		            idx + 1, p.len, (int)qty, fg_modbus_table_name(table), want);
	capture_fill(poll, table, (uint32_t)start, (uint32_t)qty, &p);
	return 0;
}

int fg_modbus_poll_from_capture(const json_t *doc, const struct fg_modbus_plan *plan,
                                struct fg_modbus_poll *poll, int *ret_unit,
                                char *err, size_t errlen)
{
	const json_t *exchanges = json_object_get(doc, "exchanges");
	if (!json_is_array(exchanges) || json_array_size(exchanges) == 0)
		return fail(err, errlen, "no \"exchanges\" array");
	const char *kind = json_string_value(json_object_get(json_object_get(doc, "transport"), "kind"));
	bool rtu = !(kind && strstr(kind, "TCP"));
	json_t *uid = json_object_get(json_object_get(doc, "device"), "unit_id");
	int unit = json_is_integer(uid) ? (int)json_integer_value(uid) : -1;

	int r = fg_modbus_poll_init(poll, plan->blocks, plan->n_blocks, plan->n_words, plan->n_bits);
	if (r < 0)
		return r;
	unsigned silent = 0;
	size_t i;
	const json_t *ex;
	json_array_foreach(exchanges, i, ex) {
		r = json_is_object(ex) ? capture_exchange(ex, i, rtu, poll, &unit, &silent,
		                                          err, errlen)
			: fail(err, errlen, "exchange #%zu is not an object", i + 1);
		if (r < 0) {
			fg_modbus_poll_clear(poll);
			return r;
		}
	}
	poll->status = FG_MODBUS_OK;
	for (size_t b = 0; b < poll->n_blocks; b++)
		if (poll->state[b] == FG_MODBUS_BLOCK_EXCEPTION)
			poll->status = FG_MODBUS_EXCEPTION;
	/* As in the daemon, one unanswered request makes the poll unanswered. */
	if (silent) {
		poll->status = FG_MODBUS_NO_RESPONSE;
		snprintf(poll->error, sizeof(poll->error), "timeout");
	}
	*ret_unit = unit;
	return 0;
}

/* ---- register maps written in the config -------------------------------- */

static const char *const order_names[] = { "ABCD", "CDAB", "BADC", "DCBA" };

static int order_from_name(const char *s, fg_modbus_order *ret)
{
	for (size_t i = 0; i < sizeof(order_names) / sizeof(order_names[0]); i++)
		if (strcmp(s, order_names[i]) == 0) {
			*ret = (fg_modbus_order)i;
			return 0;
		}
	return -EINVAL;
}

static int type_from_name(const char *s, fg_modbus_type *ret)
{
	static const char *const names[] = { "bool", "u16", "i16", "u32", "i32", "f32" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(s, names[i]) == 0) {
			*ret = (fg_modbus_type)i;
			return 0;
		}
	return -EINVAL;
}

/* All digits (at least one)? */
static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

/* "30007" / "300007" references, or "i6" / "h0x10" wire addresses. */
static int address_parse(const char *s, fg_modbus_table *table, uint16_t *addr)
{
	size_t n = strlen(s);
	if (all_digits(s) && (n == 5 || n == 6)) {
		static const fg_modbus_table by_digit[] = {
			['0' - '0'] = FG_MODBUS_COILS, ['1' - '0'] = FG_MODBUS_DISCRETE_INPUTS,
			['3' - '0'] = FG_MODBUS_INPUT_REGISTERS, ['4' - '0'] = FG_MODBUS_HOLDING_REGISTERS,
		};
		int d = s[0] - '0';
		if (d > 4 || !by_digit[d])
			return -EINVAL;
		unsigned long ref = strtoul(s + 1, NULL, 10);
		if (ref < 1 || ref > 65536)
			return -EINVAL;
		*table = by_digit[d];
		*addr = (uint16_t)(ref - 1);
		return 0;
	}
	switch (s[0]) {
	case 'c': *table = FG_MODBUS_COILS; break;
	case 'd': *table = FG_MODBUS_DISCRETE_INPUTS; break;
	case 'h': *table = FG_MODBUS_HOLDING_REGISTERS; break;
	case 'i': *table = FG_MODBUS_INPUT_REGISTERS; break;
	default: return -EINVAL;
	}
	const char *num = s + 1;
	int base = 10;
	if (num[0] == '0' && (num[1] == 'x' || num[1] == 'X')) {
		num += 2;
		base = 16;
	}
	if (!*num || strspn(num, base == 16 ? "0123456789abcdefABCDEF" : "0123456789") != strlen(num))
		return -EINVAL;
	unsigned long a = strtoul(num, NULL, base);
	if (a > 65535)
		return -EINVAL;
	*addr = (uint16_t)a;
	return 0;
}

int fg_modbus_entry_parse(const char *text, struct fg_modbus_entry_text *ret, char *err,
                          size_t errlen)
{
	char buf[160];
	if (strlen(text) >= sizeof(buf))
		return fail(err, errlen, "entry '%.40s...' is too long", text);
	snprintf(buf, sizeof(buf), "%s", text);
	struct fg_modbus_entry_text e;
	memset(&e, 0, sizeof(e));

	char *save = NULL;
	char *name = strtok_r(buf, ":", &save);
	char *address = name ? strtok_r(NULL, ":", &save) : NULL;
	if (!name || !address)
		return fail(err, errlen, "'%s': expected NAME:ADDRESS[:TYPE][:ORDER][:*SCALE][:UNIT]",
		            text);
	if (!valid_name(name))
		return fail(err, errlen, "'%s': name '%s' is not [a-z0-9_]{1,32}", text, name);
	snprintf(e.name, sizeof(e.name), "%s", name);
	if (address_parse(address, &e.reg.table, &e.reg.address) < 0)
		return fail(err, errlen, "'%s': address '%s' is neither a reference like 30007 nor "
		            "a table letter (c, d, h, i) with a wire address like i6", text, address);
	e.reg.type = is_bit_table(e.reg.table) ? FG_MODBUS_BOOL : FG_MODBUS_U16;
	bool typed = false, ordered = false, scaled = false;
	for (char *f = strtok_r(NULL, ":", &save); f; f = strtok_r(NULL, ":", &save)) {
		fg_modbus_type t;
		fg_modbus_order o;
		if (!typed && type_from_name(f, &t) == 0) {
			e.reg.type = t;
			typed = true;
		} else if (!ordered && order_from_name(f, &o) == 0) {
			e.reg.order = o;
			ordered = true;
		} else if (!scaled && f[0] == '*') {
			char *end;
			e.reg.scale = strtod(f + 1, &end);
			if (!f[1] || *end || !isfinite(e.reg.scale) || e.reg.scale == 0)
				return fail(err, errlen, "'%s': scale '%s' is not a non-zero number", text, f);
			scaled = true;
		} else if (!e.unit[0] && strlen(f) < sizeof(e.unit)) {
			snprintf(e.unit, sizeof(e.unit), "%s", f);
		} else {
			return fail(err, errlen, "'%s': field '%s' is no type, word order, *scale or "
			            "unit (or says one of them twice)", text, f);
		}
	}
	e.reg.name = e.name;
	e.reg.unit = e.unit[0] ? e.unit : NULL;
	struct fg_modbus_map one = { sizeof(one), sizeof(e.reg), &e.reg, 1, 0, 0 };
	char why[160];
	if (fg_modbus_map_check(&one, why, sizeof(why)) < 0)
		return fail(err, errlen, "'%s': %s", text, why);
	*ret = e;
	ret->reg.name = ret->name;
	ret->reg.unit = ret->unit[0] ? ret->unit : NULL;
	return 0;
}

/* Split "NAME:VALUE" or "VALUE" into name (maybe "") and value. */
static int split_override(const char *text, char *name, size_t namelen, const char **value)
{
	const char *colon = strrchr(text, ':');
	name[0] = '\0';
	*value = text;
	if (!colon)
		return 0;
	size_t n = (size_t)(colon - text);
	if (n == 0 || n >= namelen)
		return -EINVAL;
	memcpy(name, text, n);
	name[n] = '\0';
	*value = colon + 1;
	return valid_name(name) ? 0 : -EINVAL;
}

int fg_modbus_scale_parse(const char *text, char *name, size_t namelen, double *ret,
                          char *err, size_t errlen)
{
	const char *v;
	char *end;
	if (split_override(text, name, namelen, &v) < 0)
		return fail(err, errlen, "'%s': expected FACTOR or NAME:FACTOR", text);
	double d = strtod(v, &end);
	if (!*v || *end || !isfinite(d) || d == 0)
		return fail(err, errlen, "'%s': '%s' is not a non-zero number", text, v);
	*ret = d;
	return 0;
}

int fg_modbus_order_parse(const char *text, char *name, size_t namelen, fg_modbus_order *ret,
                          char *err, size_t errlen)
{
	const char *v;
	if (split_override(text, name, namelen, &v) < 0 || order_from_name(v, ret) < 0)
		return fail(err, errlen, "'%s': expected ABCD, CDAB, BADC or DCBA, optionally "
		            "as NAME:ORDER", text);
	return 0;
}

/* A composed map and the strings it owns, in one allocation: the struct,
 * then cap entries, then their name and unit buffers. */
struct owned_map {
	struct fg_modbus_map map;
	size_t cap;
	struct fg_modbus_reg *regs;
	char (*names)[FG_MODBUS_NAME_MAX + 1];
	char (*units)[17];
};

static struct owned_map *owned_map_new(size_t cap)
{
	size_t each = sizeof(struct fg_modbus_reg) + FG_MODBUS_NAME_MAX + 1 + 17;
	struct owned_map *m = calloc(1, sizeof(*m) + (cap ? cap : 1) * each);
	if (!m)
		return NULL;
	m->cap = cap;
	m->regs = (struct fg_modbus_reg *)(void *)(m + 1);
	m->names = (void *)(m->regs + cap);
	m->units = (void *)(m->names + cap);
	m->map.struct_size = sizeof(m->map);
	m->map.reg_size = sizeof(struct fg_modbus_reg);
	m->map.regs = m->regs;
	return m;
}

static struct fg_modbus_reg *find_entry(struct owned_map *m, const char *name)
{
	for (size_t i = 0; i < m->map.n_regs; i++)
		if (strcmp(m->regs[i].name, name) == 0)
			return &m->regs[i];
	return NULL;
}

/* Put reg into slot i of m, copying its strings. */
static void own_entry(struct owned_map *m, size_t i, const struct fg_modbus_reg *reg)
{
	m->regs[i] = *reg;
	snprintf(m->names[i], sizeof(m->names[i]), "%s", reg->name ? reg->name : "");
	m->regs[i].name = m->names[i];
	if (reg->unit) {
		snprintf(m->units[i], sizeof(m->units[i]), "%s", reg->unit);
		m->regs[i].unit = m->units[i];
	}
}

static int compose_overrides(struct owned_map *m, char *const *scale, size_t n_scale,
                             char *const *word_order, size_t n_word_order, char *err,
                             size_t errlen)
{
	char name[FG_MODBUS_NAME_MAX + 1];
	for (size_t i = 0; i < n_scale; i++) {
		double d;
		int r = fg_modbus_scale_parse(scale[i], name, sizeof(name), &d, err, errlen);
		if (r < 0)
			return r;
		struct fg_modbus_reg *e = name[0] ? find_entry(m, name) : NULL;
		if (name[0] && !e)
			return fail(err, errlen, "scale '%s': the register map has no entry '%s'",
			            scale[i], name);
		for (size_t k = 0; k < m->map.n_regs; k++)
			if ((e ? e == &m->regs[k] : true) && m->regs[k].type != FG_MODBUS_BOOL)
				m->regs[k].scale = d;
	}
	for (size_t i = 0; i < n_word_order; i++) {
		fg_modbus_order o;
		int r = fg_modbus_order_parse(word_order[i], name, sizeof(name), &o, err, errlen);
		if (r < 0)
			return r;
		struct fg_modbus_reg *e = name[0] ? find_entry(m, name) : NULL;
		if (name[0] && !e)
			return fail(err, errlen, "word_order '%s': the register map has no entry '%s'",
			            word_order[i], name);
		for (size_t k = 0; k < m->map.n_regs; k++)
			if ((e ? e == &m->regs[k] : true) && m->regs[k].type != FG_MODBUS_BOOL)
				m->regs[k].order = o;
	}
	return 0;
}

int fg_modbus_map_compose(const struct fg_modbus_map *base, char *const *registers,
                          size_t n_registers, char *const *scale, size_t n_scale,
                          char *const *word_order, size_t n_word_order,
                          struct fg_modbus_map **ret, char *err, size_t errlen)
{
	size_t n_base = base ? base->n_regs : 0;
	if (base && (base->struct_size < MAP_V1_SIZE || base->reg_size < REG_V1_SIZE ||
	             (n_base && !base->regs)))
		return fail(err, errlen, "the plugin's register map structs are smaller than ABI v1's");
	if (n_base > FG_MODBUS_MAX_ENTRIES || n_registers > FG_MODBUS_MAX_ENTRIES)
		return fail(err, errlen, "more than %d register map entries", FG_MODBUS_MAX_ENTRIES);
	struct owned_map *m = owned_map_new(n_base + n_registers);
	if (!m)
		return -ENOMEM;
	if (base) {
		m->map.max_gap = base->max_gap;
		m->map.max_count = base->max_count;
	}
	for (size_t i = 0; i < n_base; i++)
		own_entry(m, m->map.n_regs++, fg_modbus_map_reg(base, i));

	int r = 0;
	for (size_t i = 0; r == 0 && i < n_registers; i++) {
		struct fg_modbus_entry_text e;
		r = fg_modbus_entry_parse(registers[i], &e, err, errlen);
		if (r < 0)
			break;
		struct fg_modbus_reg *same = find_entry(m, e.name);
		if (same)
			own_entry(m, (size_t)(same - m->regs), &e.reg);
		else if (m->map.n_regs == FG_MODBUS_MAX_ENTRIES)
			r = fail(err, errlen, "more than %d register map entries", FG_MODBUS_MAX_ENTRIES);
		else    /* cap = n_base + n_registers: always room */
			own_entry(m, m->map.n_regs++, &e.reg);
	}
	if (r == 0)
		r = compose_overrides(m, scale, n_scale, word_order, n_word_order, err, errlen);
	if (r == 0 && m->map.n_regs == 0)
		r = fail(err, errlen, "the register map is empty: the plugin declares no entries, "
		         "so give them with `registers`");
	if (r == 0)
		r = fg_modbus_map_check(&m->map, err, errlen);
	if (r < 0) {
		free(m);
		return r;
	}
	*ret = &m->map;
	return 0;
}

void fg_modbus_map_free(struct fg_modbus_map *map)
{
	/* map is the first member of the owned_map allocation. */
	free(map);
}
