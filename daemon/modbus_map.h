/*
 * Modbus register maps on the host side: checking a plugin's map, planning
 * the requests of one poll, decoding the registers that came back and
 * building the JSON payload decode() receives (its format is documented in
 * firegrid/plugin.h, "Modbus register maps").  Also the pieces the decode
 * tool needs to turn a captured exchange (hex ADUs) into the same payload:
 * ADU parsing with CRC / MBAP checks.
 *
 * Pure functions: no I/O, no libmodbus, no logging; callable from any
 * thread on data that thread owns.  The bus workers (modbus.c) fill a
 * struct fg_modbus_poll; everything else runs on the loop thread.
 */
#ifndef FG_MODBUS_MAP_H
#define FG_MODBUS_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "firegrid/plugin.h"

#define FG_MODBUS_MAX_ENTRIES 256
#define FG_MODBUS_NAME_MAX 32
#define FG_MODBUS_MAX_READ_REGS 125     /* protocol limit per FC03/FC04 */
#define FG_MODBUS_MAX_READ_BITS 2000    /* protocol limit per FC01/FC02 */
#define FG_MODBUS_OFFLINE_AFTER_DEFAULT 3

/* The i-th entry of a map, honouring the plugin's reg_size stride. */
const struct fg_modbus_reg *fg_modbus_map_reg(const struct fg_modbus_map *map, size_t i);

/* Registers (1 or 2) an entry occupies; 1 bit for booleans. */
unsigned fg_modbus_type_width(fg_modbus_type type);

/* Modbus function code that reads a table (1..4), 0 for an invalid table. */
int fg_modbus_read_function(fg_modbus_table table);
/* "coil", "discrete input", "holding register", "input register". */
const char *fg_modbus_table_name(fg_modbus_table table);
/* Name of an exception code ("illegal data address"), "exception N" else. */
const char *fg_modbus_exception_name(int code);

/*
 * Check a map before it is used: sizes (struct_size, reg_size at least this
 * host's v1 structs), 1..256 entries, names [a-z0-9_]{1,32} and unique,
 * table and type valid together (booleans exactly for coils and discrete
 * inputs), the entry within the 65536-address space, a finite scale, a unit
 * of at most 16 bytes.  Returns 0 or -EINVAL with a reason naming the entry.
 */
int fg_modbus_map_check(const struct fg_modbus_map *map, char *err, size_t errlen);

/* ---- register maps written in the config -------------------------------- */

/*
 * One map entry as written in a [modbus-device] `registers` list:
 *   NAME:ADDRESS[:TYPE][:ORDER][:*SCALE][:UNIT]
 * ADDRESS is either a documented 1-based reference whose leading digit names
 * the table (00001 coil 0, 10001 discrete input 0, 30001 input register 0,
 * 40001 holding register 0; five or six digits, e.g. 30007 or 300007), or a
 * table letter and the 0-based wire address in decimal or 0x hex (c0, d3,
 * i6, h0x10).  TYPE is u16 (default for registers), i16, u32, i32, f32 or
 * bool (the only type, and the default, of coils and discrete inputs).
 * ORDER is ABCD (default), CDAB, BADC or DCBA; *SCALE multiplies (*0.1);
 * anything else is the unit (at most 16 bytes: V A mA degC %RH).
 * Examples: temperature:30002:i16:*0.1:degC  current:i6:f32:CDAB:A  smoke:d0
 */
struct fg_modbus_entry_text {
	struct fg_modbus_reg reg;  /* name and unit point into this struct */
	char name[FG_MODBUS_NAME_MAX + 1];
	char unit[17];
};
int fg_modbus_entry_parse(const char *text, struct fg_modbus_entry_text *ret, char *err,
                          size_t errlen);

/* "0.01" (every numeric entry) or "NAME:0.01"; name[0] = '\0' for all. */
int fg_modbus_scale_parse(const char *text, char *name, size_t namelen, double *ret,
                          char *err, size_t errlen);
/* "CDAB" (every register entry) or "NAME:CDAB". */
int fg_modbus_order_parse(const char *text, char *name, size_t namelen, fg_modbus_order *ret,
                          char *err, size_t errlen);

/*
 * A device's effective map: the plugin's entries (base, may be NULL or
 * empty), then the config's `registers` (an entry named like one of the
 * plugin's replaces it), then the `scale` and `word_order` overrides (each
 * named entry must exist).  The result owns copies of every string, is
 * checked with fg_modbus_map_check(), and is freed with fg_modbus_map_free.
 * Returns 0 or -EINVAL (reason names the list item) / -ENOMEM.
 */
int fg_modbus_map_compose(const struct fg_modbus_map *base, char *const *registers,
                          size_t n_registers, char *const *scale, size_t n_scale,
                          char *const *word_order, size_t n_word_order,
                          struct fg_modbus_map **ret, char *err, size_t errlen);
void fg_modbus_map_free(struct fg_modbus_map *map);        /* NULL-safe */

/* One read request of a poll. */
struct fg_modbus_block {
	fg_modbus_table table;
	uint16_t address;          /* first register/bit, 0-based */
	uint16_t count;            /* registers or bits */
	uint32_t offset;           /* first slot in fg_modbus_poll.words (register
	                              tables) or .bits (bit tables) */
};

/* The requests that read a whole map, in table then address order. */
struct fg_modbus_plan {
	struct fg_modbus_block *blocks;
	size_t n_blocks;
	size_t n_words;            /* size of the words buffer a poll needs */
	size_t n_bits;             /* size of the bits buffer (one byte per bit) */
};

/*
 * Plan the requests for a (checked) map: entries of one table are sorted by
 * address and joined into one request while the hole between them is at
 * most map->max_gap and the request stays within max_count (or the protocol
 * limit).  Overlapping entries share registers.  Returns 0 or -ENOMEM.
 */
int fg_modbus_plan_new(const struct fg_modbus_map *map, struct fg_modbus_plan **ret);
void fg_modbus_plan_free(struct fg_modbus_plan *plan);   /* NULL-safe */

enum fg_modbus_status {
	FG_MODBUS_OK = 0,           /* every request answered normally */
	FG_MODBUS_EXCEPTION = 1,    /* the device answered; at least one exception */
	FG_MODBUS_NO_RESPONSE = 2,  /* timeout, bad frame, no connection */
};

enum fg_modbus_block_state {
	FG_MODBUS_BLOCK_UNREAD = 0,
	FG_MODBUS_BLOCK_OK = 1,
	FG_MODBUS_BLOCK_EXCEPTION = 2,
};

/*
 * The outcome of one poll: per block, whether it was read, and the data.
 * Buffers are owned by the struct (fg_modbus_poll_init / _clear); blocks
 * point into a plan that must outlive it.
 */
struct fg_modbus_poll {
	const struct fg_modbus_block *blocks;
	size_t n_blocks;
	uint8_t *state;            /* enum fg_modbus_block_state per block */
	uint8_t *code;             /* exception code per block */
	uint16_t *words;
	uint8_t *bits;
	enum fg_modbus_status status;
	char error[96];            /* NO_RESPONSE: what failed */
};

int fg_modbus_poll_init(struct fg_modbus_poll *poll, const struct fg_modbus_block *blocks,
                        size_t n_blocks, size_t n_words, size_t n_bits);
void fg_modbus_poll_clear(struct fg_modbus_poll *poll);     /* NULL-safe */

/*
 * Decode one entry from the words it occupies (1 or 2), applying type, word
 * order and scale.  Integers scaled by 1/10^k are divided (so 546 x 0.1 is
 * exactly the double nearest 54.6); float32 values are rounded to the 7
 * significant digits a float carries (0x4111 0x47AE is 9.08, not
 * 9.0799999237).  Returns the value.
 */
double fg_modbus_decode(const struct fg_modbus_reg *reg, const uint16_t *words);

/*
 * Reachability of a device: consecutive polls without any response.  At
 * offline_after of them the device is offline; the first answer (normal or
 * exception) makes it online again.  Starts online.
 */
struct fg_modbus_reach {
	uint32_t failures;
	bool online;
};
#define FG_MODBUS_REACH_INIT { 0, true }
/* Returns true when `online` changed. */
bool fg_modbus_reach_update(struct fg_modbus_reach *reach, bool answered,
                            uint32_t offline_after);

/* Where a payload came from (all strings borrowed). */
struct fg_modbus_origin {
	const char *device;
	const char *bus;
	int unit;
	const char *role;          /* may be NULL */
};

/*
 * The payload for decode(): the JSON object documented in plugin.h, as a
 * malloc'd compact string (*ret_len without the NUL).  commanded may be
 * NULL or a JSON object (borrowed).  Returns NULL on OOM.
 */
char *fg_modbus_payload(const struct fg_modbus_map *map, const struct fg_modbus_poll *poll,
                        const struct fg_modbus_origin *origin,
                        const struct fg_modbus_reach *reach, const json_t *commanded,
                        size_t *ret_len);

/* "modbus/<bus>/<unit>/<device>" into buf. */
const char *fg_modbus_topic(const struct fg_modbus_origin *origin, char *buf, size_t len);

/* ---- captured exchanges (firegridctl decode) ------------------------------ */

/* CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF) as sent: low byte first. */
uint16_t fg_modbus_crc16(const uint8_t *p, size_t n);

/* A response PDU taken out of an ADU. */
struct fg_modbus_pdu {
	uint8_t unit;
	uint8_t function;          /* without the 0x80 exception bit */
	bool exception;
	uint8_t code;              /* exception code */
	const uint8_t *data;       /* after the byte count (normal responses) */
	size_t len;                /* bytes of data */
};

/*
 * Parse a response ADU: RTU (unit, PDU, CRC checked) or TCP (7-byte MBAP
 * header whose length field must match).  Read responses must carry a byte
 * count that matches the frame.  Returns 0 or -EINVAL / -EBADMSG (CRC) with
 * a reason.
 */
int fg_modbus_adu_parse(const uint8_t *adu, size_t len, bool rtu, struct fg_modbus_pdu *ret,
                        char *err, size_t errlen);

/*
 * Turn a captured exchange description (the corpus format: "transport":
 * {"kind":"Modbus RTU"|"Modbus TCP"}, "exchanges":[{"function",
 * "start_address","quantity","response_adu_hex"|null}...]) into a poll of
 * `plan`: every response is checked (CRC/MBAP, function, unit, byte count)
 * and its registers or bits land in the blocks they cover; an exception
 * response marks the covered blocks EXCEPTION; a null response means no
 * response.  Blocks no exchange covered stay unread.  *ret_unit gets the
 * unit id of the responses (or the file's device.unit_id).  Returns 0 or
 * -EINVAL with a reason.
 */
int fg_modbus_poll_from_capture(const json_t *doc, const struct fg_modbus_plan *plan,
                                struct fg_modbus_poll *poll, int *ret_unit,
                                char *err, size_t errlen);

#endif
