/*
 * firegrid plugin ABI, version 1.
 *
 * A firegrid plugin is a pure decoder: it is handed one raw device message
 * (MQTT payload, HTTP body, polled register block) together with where it
 * came from, and it reports zero or more normalised events back to the host
 * through a callback.  Plugins never touch SQLite, sockets, curl or the event
 * loop; everything they need from the outside world is in struct fg_host.
 * That keeps them small and testable from corpus files alone
 * (`firegridctl decode` runs exactly the code path the daemon runs).
 *
 * Versioning
 *   Every struct that crosses the boundary begins with its size (and the
 *   descriptor also with FG_PLUGIN_ABI_MAJOR).  New fields are only ever
 *   appended.  The host refuses a plugin whose abi_major differs from its own
 *   or whose descriptor is smaller than the v1 descriptor, and it reads
 *   optional trailing fields only when struct_size says they are present.
 *   Plugins must likewise check fg_msg.struct_size / fg_host.struct_size
 *   before reading fields added after v1.
 *   Appended to fg_host so far: wake_at (FG_HOST_HAS_WAKE_AT()).
 *   Appended to fg_event so far: snapshot_url (FG_EVENT_HAS_SNAPSHOT_URL()).
 *   Appended to the descriptor so far: modbus_map (Modbus register maps).
 *
 * Threading
 *   All plugin entry points are called on the host's loop thread, one call
 *   at a time per plugin instance.  A plugin may keep private state in the
 *   pointer returned by init(); it must not start threads or block.  decode()
 *   should return in well under a millisecond for a typical message.
 *
 * Ownership
 *   Everything the host passes in (messages, option values, state strings) is
 *   owned by the host and valid only for the duration of the call, unless
 *   stated otherwise.  Everything the plugin passes to emit() is copied by the
 *   host before emit() returns, so stack buffers are fine.
 *
 * Exporting
 *   A plugin source file defines its descriptor with FG_PLUGIN_DEFINE().  When
 *   built as a shared module (meson defines FG_PLUGIN_MODULE) this also emits
 *   the single exported symbol `firegrid_plugin_v1`, a function returning the
 *   descriptor; build with -fvisibility=hidden so nothing else leaks.  When
 *   linked statically (tests, firegridctl), the descriptor is reachable as
 *   `fg_plugin_<name>` and the host registers it as a built-in.
 */
#ifndef FIREGRID_PLUGIN_H
#define FIREGRID_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped only for incompatible changes; appending fields does not bump it. */
#define FG_PLUGIN_ABI_MAJOR 1u

/* ------------------------------------------------------------------------ */
/* Normalised events                                                         */
/* ------------------------------------------------------------------------ */

/* What happened.  Values are part of the ABI: never renumber, only append. */
typedef enum fg_kind {
	FG_KIND_NONE = 0,
	FG_KIND_SMOKE = 1,
	FG_KIND_HEAT = 2,
	FG_KIND_CO = 3,
	FG_KIND_TEST = 4,             /* self-test / test button; never a fire */
	FG_KIND_CLEAR = 5,            /* back to normal; see fg_event.clears */
	FG_KIND_BATTERY_LOW = 6,
	FG_KIND_TAMPER = 7,
	FG_KIND_FAULT = 8,
	FG_KIND_OFFLINE = 9,
	FG_KIND_ONLINE = 10,
	FG_KIND_OVERTEMP = 11,
	FG_KIND_OVERCURRENT = 12,
	FG_KIND_RESIDUAL_CURRENT = 13,
	FG_KIND_FIRE_LANE_BLOCKED = 14,
	FG_KIND_FIRE_LANE_CLEARED = 15,
	FG_KIND__COUNT
} fg_kind;

typedef enum fg_severity {
	FG_SEV_INFO = 0,
	FG_SEV_WARNING = 1,
	FG_SEV_MAJOR = 2,
	FG_SEV_CRITICAL = 3,
} fg_severity;

/*
 * One normalised event, reported by a plugin through fg_host.emit().
 * All pointers are borrowed for the duration of emit() only.
 */
struct fg_event {
	uint32_t struct_size;     /* sizeof(struct fg_event) as the plugin saw it */
	fg_kind kind;
	fg_severity severity;
	/* Stable device id within this plugin (e.g. a Zigbee IEEE address, a
	 * Shelly `src`).  Never NULL or empty.  The host qualifies it with the
	 * source name when it has to be unique across sources. */
	const char *device;
	/* For FG_KIND_CLEAR: which kind returns to normal (e.g. FG_KIND_SMOKE).
	 * FG_KIND_NONE means "every active condition of this device".  Ignored
	 * for other kinds. */
	fg_kind clears;
	/* Optional measured value (has_value != 0), e.g. 38 with unit "mA".
	 * Units are SI-ish short symbols: "ppm", "mA", "A", "W", "V", "degC",
	 * "%", "s". */
	int has_value;
	double value;
	const char *unit;          /* NULL when has_value == 0 */
	/* Time the device says the event happened, Unix epoch milliseconds, or
	 * 0 when the message carries no trustworthy clock. */
	int64_t device_time_ms;
	/* Extra facts as a JSON object text (e.g. {"model":"HS1SA","battery":99}),
	 * or NULL.  The host validates it, stores it with the event and carries it
	 * in webhooks.  Must be an object; anything else is dropped with a
	 * counted error. */
	const char *attrs_json;

	/* ---- appended to ABI v1 (the host reads it only when struct_size
	 * covers it: FG_EVENT_HAS_SNAPSHOT_URL) ---- */

	/*
	 * A picture of this event the host should fetch (HTTP GET, http:// or
	 * https://, at most 1024 bytes), or NULL.  Used by cameras that serve
	 * their pictures instead of pushing them (Frigate's
	 * /api/events/<id>/snapshot.jpg).  When the event opens an incident
	 * (or re-alarms or reopens one) the daemon fetches the URL
	 * asynchronously, after the event is stored, stores the picture like a
	 * pushed one and attaches it to the incident (docs/cameras.md); the
	 * event itself is never delayed and never fails because of it.  A
	 * repeat that folds into an open incident fetches nothing.
	 */
	const char *snapshot_url;
};

/* Whether an event (as emitted by a plugin) carries snapshot_url. */
#define FG_EVENT_HAS_SNAPSHOT_URL(ev)                                           \
	((ev)->struct_size >= offsetof(struct fg_event, snapshot_url) +         \
	                      sizeof((ev)->snapshot_url))

/* ------------------------------------------------------------------------ */
/* Messages                                                                  */
/* ------------------------------------------------------------------------ */

struct fg_header {
	const char *name;          /* lower-case for HTTP */
	const char *value;
};

/*
 * One raw message from a transport.
 *
 * HTTP transports ("http": a device's POST to /v1/ingest/<source>; "stream":
 * one part of a multipart event stream firegrid reads from a device) pass
 * the request's or part's headers with lower-case names, plus headers the
 * host adds:
 *   x-firegrid-peer      the device's address as the transport knows it: the
 *                        client IP of a push, the host of a stream URL
 *   x-firegrid-snapshot  once per picture the host took out of a multipart
 *                        body and stored (plugins need not touch image
 *                        bytes): a JSON object {"sha256":"<hex>","url":
 *                        "<url>","type":"image/jpeg","bytes":N,"name":
 *                        "<part name>"}; copy it into attrs to reference the
 *                        picture from an event
 * The payload of a push is the whole body (a multipart body stays
 * multipart: the plugin picks its parts by Content-Type).
 */
struct fg_msg {
	uint32_t struct_size;
	const char *source;        /* configured source name, e.g. "z2m" */
	const char *transport;     /* "mqtt", "http", "modbus", "file" */
	const char *topic;         /* MQTT topic or HTTP path; never NULL */
	const uint8_t *payload;    /* may be NULL when len == 0 */
	size_t len;                /* payloads are NOT NUL-terminated */
	int qos;                   /* MQTT QoS, 0 for other transports */
	int retained;              /* MQTT retain flag as delivered */
	const struct fg_header *headers;  /* HTTP / decode --header; may be NULL */
	size_t n_headers;
	int64_t recv_time_ms;      /* when the host received it, epoch ms */
};

/* ------------------------------------------------------------------------ */
/* Host services                                                             */
/* ------------------------------------------------------------------------ */

/* Opaque per-call context the host hands to decode(); pass it back to every
 * fg_host function.  Valid only during that decode() call. */
typedef struct fg_decode_ctx fg_decode_ctx;

enum fg_log_level {
	FG_LOG_ERR = 3,
	FG_LOG_WARN = 4,
	FG_LOG_INFO = 6,
	FG_LOG_DEBUG = 7,
};

struct fg_host {
	uint32_t struct_size;
	uint32_t abi_major;

	/* Report one normalised event.  The host copies everything. Returns 0,
	 * or a negative errno when the event was rejected (bad kind, empty
	 * device, attrs not a JSON object); the rejection is counted and logged
	 * by the host, the plugin may simply carry on. */
	int (*emit)(fg_decode_ctx *ctx, const struct fg_event *ev);

	/* Explain why decode() is about to fail (printf-style).  The host logs
	 * the reason once, with source, topic and plugin attached, and counts it.
	 * Use together with a negative return from decode(). */
	void (*fail)(fg_decode_ctx *ctx, const char *fmt, ...)
		__attribute__((format(printf, 2, 3)));

	/* Log a line tagged with the plugin name; the host rate-limits it. */
	void (*log)(fg_decode_ctx *ctx, int level, const char *fmt, ...)
		__attribute__((format(printf, 3, 4)));

	/*
	 * Per-device state the host keeps for the plugin instance, so decoders
	 * can detect transitions (false -> true) across messages and restarts.
	 * `device` may be "" for instance-wide state (e.g. a name -> id map).
	 * Keys and values are NUL-terminated strings of at most 1024 bytes.
	 * state_get returns NULL when unset; the string stays valid until the
	 * next state_set on the same device+key or the end of decode().
	 * state_set with value NULL deletes.  The daemon persists state in its
	 * store with the same commit as the events of this message.
	 */
	const char *(*state_get)(fg_decode_ctx *ctx, const char *device, const char *key);
	int (*state_set)(fg_decode_ctx *ctx, const char *device, const char *key,
	                 const char *value);

	/* Current wall-clock time, epoch ms (the decode tool may pin it). */
	int64_t (*now_ms)(fg_decode_ctx *ctx);

	/* ---- appended to ABI v1 (check FG_HOST_HAS_WAKE_AT(host) first) ---- */

	/*
	 * Ask for a wake-up: once the host's clock reaches at_ms (epoch ms), it
	 * calls decode() with a message whose transport is FG_TRANSPORT_WAKE
	 * ("wake"), whose topic is `device` and whose payload is empty; its
	 * recv_time_ms is the time of the wake-up.  This is how a plugin acts
	 * on time passing without a message: a dwell that has elapsed, a
	 * device that has gone silent (sources without end messages).
	 *
	 * One wake-up per (instance, device): a later call replaces the earlier
	 * one, at_ms <= 0 cancels it.  A wake-up fires once; ask again from the
	 * wake-up's decode() for another.  The host keeps wake-ups with the
	 * plugin state (under the reserved key FG_STATE_KEY_WAKE of `device`),
	 * so they survive restarts and commit with the message's events; one
	 * that fell due while the daemon was down fires right after start-up.
	 * The daemon checks about once a second; `firegridctl decode --at`
	 * fires them in time order, each with the clock pinned at its at_ms.
	 * Returns 0, -EINVAL (NULL/empty device), -E2BIG (device over 1024
	 * bytes) or -ENOSPC (more than 65536 pending wake-ups per instance).
	 */
	int (*wake_at)(fg_decode_ctx *ctx, const char *device, int64_t at_ms);

	/* ---- appended to ABI v1 (check FG_HOST_HAS_OPTION_ERROR(host) first) ---- */

	/*
	 * From init() only: say which option is wrong and why, before returning
	 * -EINVAL.  The host reports it as "FILE:LINE: [source NAME] KEY: reason"
	 * at the line where KEY is set (the section's line when it is not set),
	 * the way it reports option values it checks itself, instead of a bare
	 * "plugin refused to start".  Call it once per bad option; calls outside
	 * init() are ignored.
	 */
	void (*option_error)(const char *key, const char *fmt, ...)
		__attribute__((format(printf, 2, 3)));
};

/* Whether a host (as handed to init()) offers wake_at. */
#define FG_HOST_HAS_WAKE_AT(h)                                                  \
	((h)->struct_size >= offsetof(struct fg_host, wake_at) + sizeof((h)->wake_at))

/* Whether a host (as handed to init()) offers option_error. */
#define FG_HOST_HAS_OPTION_ERROR(h)                                             \
	((h)->struct_size >= offsetof(struct fg_host, option_error) + sizeof((h)->option_error))

/* fg_msg.transport of a wake-up requested with fg_host.wake_at(). */
#define FG_TRANSPORT_WAKE "wake"

/* State keys beginning with "fg:" belong to the host (a plugin may read
 * them, never set them).  FG_STATE_KEY_WAKE holds a device's pending
 * wake-up time, epoch ms in decimal. */
#define FG_STATE_KEY_WAKE "fg:wake_at"

/* ------------------------------------------------------------------------ */
/* Declarative options                                                       */
/* ------------------------------------------------------------------------ */

typedef enum fg_opt_type {
	FG_OPT_END = 0,      /* terminates an option table */
	FG_OPT_STRING,       /* const char *; host-owned, valid until fini() */
	FG_OPT_INT,          /* int64_t */
	FG_OPT_DOUBLE,       /* double */
	FG_OPT_BOOL,         /* int: 0 or 1; accepts true/false/yes/no/on/off/1/0 */
	FG_OPT_DURATION,     /* int64_t milliseconds; accepts 500ms, 10s, 5m, 24h, 2d */
} fg_opt_type;

/*
 * One plugin option, as written in a [source NAME] section of the config.
 * The host parses the value, checks it against the type (and min/max for
 * numbers when max > min), and stores it at `offset` inside a zeroed config
 * block of fg_plugin.config_size bytes that init() receives.  Unknown keys
 * are config errors naming file, line and key.  The same table generates the
 * documented defaults (`firegridctl plugins`).
 */
struct fg_option {
	const char *key;
	fg_opt_type type;
	const char *default_value;  /* text form; NULL = no default (zero/NULL) */
	size_t offset;              /* offsetof(your_config, field) */
	const char *description;    /* one line, shown in docs and CLI */
	double min, max;            /* numeric bounds when max > min */
};

#define FG_OPTION_END { NULL, FG_OPT_END, NULL, 0, NULL, 0, 0 }

/* ------------------------------------------------------------------------ */
/* Modbus register maps (optional; appended to ABI v1)                       */
/* ------------------------------------------------------------------------ */

/*
 * Modbus devices have no events: the host polls them.  A Modbus plugin says
 * WHAT to read by returning a register map from fg_plugin.modbus_map; the
 * host plans the requests (entries of one table whose registers are adjacent
 * -- or at most max_gap apart -- are read in one request), polls the device
 * from its bus worker thread, decodes every entry, and hands the result to
 * decode() as one message:
 *
 *   transport "modbus", topic "modbus/<bus>/<unit id>/<device>", and a JSON
 *   object payload (UTF-8, not NUL-terminated like every payload):
 *
 *   {"device":"b3-port07",        the [modbus-device NAME]: use it as the
 *                                 event's device id (or a prefix of it)
 *    "bus":"shed-b3", "unit":7,   where the device sits
 *    "role":"port 07 meter",      the device's configured role, if any
 *    "status":"ok",               "ok": every request was answered
 *                                 "exception": the device answered at least
 *                                   one request with an exception response
 *                                 "no_response": timeout, broken frame or
 *                                   no connection (the poll was abandoned at
 *                                   the first such failure)
 *    "online":true,               the host's verdict: false once
 *                                 offline_after consecutive polls got no
 *                                 response, true again at the first answer
 *    "failures":0,                consecutive polls without a response
 *    "values":{"voltage":229.8,   every map entry that was read, by name:
 *              "relay_1":true},   numbers already decoded (type, word order)
 *                                 and scaled; coils/discrete inputs booleans
 *    "units":{"voltage":"V"},     the unit of every map entry that has one
 *    "exception":{"function":4,   status "exception": the first exception
 *       "address":768,"count":2,  (request's function, 0-based address and
 *       "code":2,                 quantity; the exception code and its name)
 *       "name":"illegal data address"},
 *    "error":"timeout",           status "no_response": what failed
 *    "commanded":{"relay_3":false}}  coils the gateway itself last wrote
 *                                 (local interlock), by entry name; absent
 *                                 when it never wrote any of this device's
 *
 * Keys may be added; decoders ignore keys they do not know.  The plugin
 * turns this into events with its thresholds and the per-device state of
 * fg_host (offline/online transitions, exceptions as fault, hysteresis).
 *
 * Addresses are the 0-based numbers on the wire.  Vendor manuals often print
 * 1-based "register numbers" with the table as the leading digit: 30001 is
 * input register 0, 40001 holding register 0, 10001 discrete input 0,
 * 00001 coil 0 (six-digit forms such as 300001 likewise).  Subtract the base
 * and one: the SDM120's "30007 Current" is input register 6.
 *
 * Word order of 32-bit values, A being the most significant byte:
 *   ABCD  first register = A B, second = C D   (big-endian; Modbus default)
 *   CDAB  first register = C D, second = A B   (word swap; common in
 *                                               Chinese meters/detectors)
 *   BADC  first register = B A, second = D C   (byte swap)
 *   DCBA  first register = D C, second = B A   (little-endian)
 * For 16-bit values BADC and DCBA swap the two bytes; ABCD and CDAB do not.
 */
typedef enum fg_modbus_table {
	FG_MODBUS_COILS = 1,               /* read FC01, written FC05; 1 bit */
	FG_MODBUS_DISCRETE_INPUTS = 2,     /* read FC02; 1 bit, read-only */
	FG_MODBUS_HOLDING_REGISTERS = 3,   /* read FC03; 16-bit words */
	FG_MODBUS_INPUT_REGISTERS = 4,     /* read FC04; 16-bit words, read-only */
} fg_modbus_table;

typedef enum fg_modbus_type {
	FG_MODBUS_BOOL = 0,   /* the only type of coils and discrete inputs */
	FG_MODBUS_U16 = 1,
	FG_MODBUS_I16 = 2,    /* two's complement */
	FG_MODBUS_U32 = 3,    /* two registers */
	FG_MODBUS_I32 = 4,
	FG_MODBUS_F32 = 5,    /* IEEE 754 single, two registers */
} fg_modbus_type;

typedef enum fg_modbus_order {
	FG_MODBUS_ABCD = 0,
	FG_MODBUS_CDAB = 1,
	FG_MODBUS_BADC = 2,
	FG_MODBUS_DCBA = 3,
} fg_modbus_order;

/* One named value of a register map. */
struct fg_modbus_reg {
	const char *name;          /* payload key: [a-z0-9_]{1,32}, unique in the map */
	fg_modbus_table table;
	uint16_t address;          /* 0-based wire address of the first register/bit */
	fg_modbus_type type;
	fg_modbus_order order;     /* see above; ignored for booleans */
	double scale;              /* value = raw * scale (0 is taken as 1) */
	const char *unit;          /* e.g. "V", "A", "degC"; may be NULL */
};

struct fg_modbus_map {
	uint32_t struct_size;      /* sizeof(struct fg_modbus_map) */
	uint32_t reg_size;         /* sizeof(struct fg_modbus_reg): stride of regs[] */
	const struct fg_modbus_reg *regs;
	size_t n_regs;             /* 1..256 */
	/* Unmapped registers a request may read to join two entries into one
	 * request (0: only truly adjacent entries share a request).  Some
	 * devices answer "illegal data address" for holes, so keep it 0 unless
	 * the model is known to read across them. */
	uint16_t max_gap;
	/* Most registers (or bits) per request; 0 = the protocol limit (125
	 * registers, 2000 bits).  Small meters often accept fewer. */
	uint16_t max_count;
};

/* ------------------------------------------------------------------------ */
/* The descriptor                                                            */
/* ------------------------------------------------------------------------ */

struct fg_plugin {
	uint32_t abi_major;          /* FG_PLUGIN_ABI_MAJOR */
	uint32_t struct_size;        /* sizeof(struct fg_plugin) */
	const char *name;            /* [a-z0-9_-]+, unique; used in config */
	const char *version;         /* plugin's own version, free text */
	const char *description;     /* one line */

	const struct fg_option *options;  /* may be NULL; ends with FG_OPTION_END */
	size_t config_size;               /* size of the block options write into */

	/*
	 * Create an instance.  `config` points at the parsed option block (owned
	 * by the host, valid until fini).  Store what you need in *ret_state
	 * (may stay NULL).  Return 0, or a negative errno; on failure fini() is
	 * not called and the host refuses the source with a clear message.
	 */
	int (*init)(const struct fg_host *host, const void *config, void **ret_state);

	/* Destroy an instance.  May be NULL.  Accepts state == NULL. */
	void (*fini)(void *state);

	/*
	 * Decode one message.  Call host->emit() for each event (zero is fine:
	 * heartbeats, duplicates and refreshes produce none).  Return 0 when the
	 * message was understood, or a negative errno (-EINVAL malformed,
	 * -EPROTO unexpected shape, -ENOENT unknown device, -E2BIG too large)
	 * after explaining it with host->fail().  Events emitted before a failure
	 * are kept.  Must never crash on any input.
	 */
	int (*decode)(void *state, const struct fg_msg *msg, fg_decode_ctx *ctx);

	/* ---- appended after the first v1 release; read by the host only when
	 * struct_size covers the field (an older plugin simply lacks it) ---- */

	/*
	 * Modbus models only (NULL otherwise): the register map of one
	 * instance, called once after init() succeeded.  A map may depend on
	 * the instance's options (a model option, per-device scale or word
	 * order, a map written in the config), which is why it is a function
	 * of the state and not a static table.  The returned map, and
	 * everything it points to, must stay valid and unchanged until fini().
	 * NULL means "no usable map": the host refuses the device.  See
	 * "Modbus register maps" below for the payload decode() then receives.
	 */
	const struct fg_modbus_map *(*modbus_map)(void *state);
};

/* Name of the one symbol a plugin module exports. */
#define FG_PLUGIN_SYMBOL "firegrid_plugin_v1"
typedef const struct fg_plugin *(*fg_plugin_entry_fn)(void);

#if defined(FG_PLUGIN_MODULE)
#define FG__PLUGIN_EXPORT(ident)                                              \
	__attribute__((visibility("default"))) const struct fg_plugin *         \
	firegrid_plugin_v1(void);                                               \
	const struct fg_plugin *firegrid_plugin_v1(void) { return &fg_plugin_##ident; }
#else
#define FG__PLUGIN_EXPORT(ident)
#endif

/*
 * Define a plugin descriptor:
 *   FG_PLUGIN_DEFINE(zigbee2mqtt, .name = "zigbee2mqtt", .decode = z2m_decode, ...);
 * `ident` is a C identifier (dashes in .name become underscores here).
 */
#define FG_PLUGIN_DEFINE(ident, ...)                                          \
	const struct fg_plugin fg_plugin_##ident = {                            \
		.abi_major = FG_PLUGIN_ABI_MAJOR,                               \
		.struct_size = sizeof(struct fg_plugin),                        \
		__VA_ARGS__                                                     \
	};                                                                      \
	FG__PLUGIN_EXPORT(ident)

#ifdef __cplusplus
}
#endif

#endif /* FIREGRID_PLUGIN_H */
