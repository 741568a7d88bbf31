/*
 * The daemon's configuration: an INI file (default etc/firegrid.conf).
 *
 * Sections
 *   [daemon]          gateway identity, state and plugin directories, logging
 *   [store]           SQLite path, durability, event retention
 *   [mqtt]            the local broker connection (one per gateway)
 *   [source NAME]     which plugin decodes which MQTT topics; other keys in
 *                     the section are the plugin's own options, validated
 *                     later against the plugin's option table
 *   [sink NAME]       a webhook receiver (one or more)
 *   [api]             the HTTP server (ops-center API, health, metrics)
 *   [gb26875 NAME] a TCP listener for GB/T 26875.3 transmitters (UITDs)
 *   [client NAME]     an API client: its credentials and what it may do
 *   [incidents]       the incident lifecycle: reopening, double knock, ...
 *   [escalation]      the three-tier grid: timers per hazard class
 *   [modbus-bus NAME] a Modbus TCP endpoint or RTU serial line (one worker
 *                     thread each)
 *   [modbus-device NAME]  a polled device on a bus; other keys in the
 *                     section are its plugin's options (thresholds...)
 *   [interlock NAME]  a local power cut-off rule (coils to write on alarms)
 *
 * Every daemon key is declared in an option table in conf.c (key, type,
 * default, bounds, description), which validates it and generates the
 * documented default config (fg_conf_write_defaults, shipped as
 * etc/firegrid.conf; a unit test keeps the two identical).  Unknown keys,
 * unknown sections, duplicate keys, duplicate source/sink names, missing
 * required keys, bad values and syntax errors are all reported, each as
 *   /etc/firegrid/firegrid.conf:14: [mqtt] port: expected an integer in 1..65535, got 'x'
 * Keys in the file; each field below is named after its key, with an mqtt_
 * prefix for [mqtt] and a unit suffix (_ms, _s) where the key has none:
 *   [daemon]  gateway_id (required), state_dir, plugin_dir, log_level
 *             (error|warning|info|debug), watchdog, shutdown_timeout
 *   [store]   db_path, durability (normal|full), event_retention, max_events
 *   [mqtt]    enabled, host, port, client_id, username, password | password_file,
 *             ca_file, cert_file, key_file, tls_insecure, keepalive (seconds),
 *             reconnect_min, reconnect_max, max_payload
 *   [source NAME]  plugin, topics (both required), qos (0..2), http_clients,
 *             http_max_body, http_auth (any|basic|digest|bearer), http_realm,
 *             http_digest_algorithm (md5|sha256), stream_*, plugin options
 *   [sink NAME]    url, secret | secret_file (both required), timeout,
 *             connect_timeout, max_connections, retry_min, retry_max, give_up,
 *             min_severity (info|warning|major|critical), ca_file, tls_verify,
 *             format (cloudevents|pagerduty|cap), routing_key | routing_key_file
 *   [api]     enabled, listen (list of ADDR:PORT), max_body, connection_limit,
 *             idle_timeout, signature_tolerance, metrics_public
 *   [client NAME]  token | token_file, secret | secret_file (at least one),
 *             allow (list of read, actions, ingest, metrics)
 *   [incidents]  reopen_window, confirm_persist, confirm_window, confirm_scope
 *             (building|unit), storm_devices, storm_window, offline_settle
 *   [escalation]  fire, fire_elderly_alone, ebike, fire_lane, device_health
 *             (each a list of up to 3 durations, the tiers), fire_lane_hold,
 *             fire_lane_resolve_within
 *   [modbus-bus NAME]  type (tcp|rtu, required), host, port (tcp), device,
 *             baud, parity (none|even|odd), data_bits, stop_bits (rtu),
 *             timeout, connect_timeout, reconnect_min, reconnect_max
 *   [modbus-device NAME]  bus, unit, plugin (required), role, interval,
 *             timeout (0 = the bus's), offline_after, offline_interval,
 *             registers, scale, word_order (lists; see docs/modbus.md),
 *             plugin options
 *   [interlock NAME]  device, coils (required), from and/or trigger_devices,
 *             cut_value (off|on), on (trigger kinds), dry_run
 * A [modbus-device] may not share its name with a [source]: both name the
 * plugin instance whose state the store keeps.  Cross-references (bus,
 * device, from) must name sections of the file; trigger_devices name
 * devices of any source and are not checked against the file.
 * Durations take a unit (500ms, 10s, 5m, 24h, 2d; bare number = seconds) and
 * are stored in the *_ms fields.  An empty value leaves an optional key unset.
 * `topics` is a whitespace/comma separated list that may continue on
 * indented lines (libinih limits a line to 197 characters).  Secrets
 * (`password`, `secret`) may instead be given as `password_file` /
 * `secret_file`: the first line of that file, read at load time (trailing
 * whitespace stripped).  Paths are used as written, except that a relative
 * db_path is taken under state_dir.
 *
 * A loaded struct fg_conf is immutable; SIGHUP loads a new one and swaps it
 * in only when it is entirely valid.
 */
#ifndef FG_CONF_H
#define FG_CONF_H

#include <stddef.h>
#include <stdint.h>
#include "firegrid/plugin.h"

enum fg_durability {
	FG_DURABILITY_NORMAL = 0,   /* WAL, synchronous=NORMAL: survives a crash of firegridd, may lose the last commits on power loss */
	FG_DURABILITY_FULL = 1,     /* WAL, synchronous=FULL: fsync on every group commit */
};

/* [source] http_auth: how pushes to the source authenticate (http.h). */
enum fg_http_auth {
	FG_HTTP_AUTH_ANY = 0,      /* a bearer token, a signature or HTTP Basic */
	FG_HTTP_AUTH_BASIC,        /* HTTP Basic only */
	FG_HTTP_AUTH_DIGEST,       /* HTTP Digest only (RFC 7616, libmicrohttpd's) */
	FG_HTTP_AUTH_BEARER,       /* a bearer token only */
};

/* [source] http_digest_algorithm. */
enum fg_http_digest_alg {
	FG_HTTP_DIGEST_MD5 = 0,
	FG_HTTP_DIGEST_SHA256,
};

/* A plugin option line kept raw until the plugin's table validates it. */
struct fg_conf_kv {
	char *key;
	char *value;
	int line;
};

struct fg_conf_source {
	char *name;                /* from "[source NAME]" */
	int line;                  /* line of the section header */
	char *plugin;              /* plugin name (required) */
	char **topics;             /* MQTT topic filters (none for a source fed only
	                              by HTTP pushes or an event stream) */
	size_t n_topics;
	int qos;                   /* subscription QoS, default 1 */
	struct fg_conf_kv *opts;   /* remaining keys, for the plugin */
	size_t n_opts;
	/* HTTP pushes to POST /v1/ingest/NAME (push.h): the [client]s (allowed
	 * "ingest") that may post here; none = pushes refused. */
	char **http_clients;
	size_t n_http_clients;
	int64_t http_max_body;     /* bytes, default 4 MiB */
	int http_auth;             /* enum fg_http_auth, default any */
	char *http_realm;          /* realm of the challenges, default "firegrid" */
	int http_digest_alg;       /* enum fg_http_digest_alg, default md5 */
	/* An event stream firegrid reads from the device (stream.h). */
	char *stream_url;          /* http(s)://camera/cgi-bin/eventManager.cgi?... */
	char *stream_username;
	char *stream_password;     /* or stream_password_file */
	int64_t stream_reconnect_min_ms;  /* default 1s */
	int64_t stream_reconnect_max_ms;  /* default 60s */
	int64_t stream_idle_timeout_ms;   /* reconnect when silent this long, default 60s */
	/* Section kind named in plugin option errors; NULL = "source".  Set
	 * by modules that run a plugin from a section of their own. */
	const char *section;
};

struct fg_conf_sink {
	char *name;                /* from "[sink NAME]" */
	int line;
	char *url;                 /* http:// or https:// (required) */
	char *secret;              /* "whsec_<base64>" (required; or secret_file) */
	int64_t timeout_ms;        /* whole request, default 10s */
	int64_t connect_timeout_ms;/* default 5s */
	int64_t max_connections;   /* per sink, default 4, max 16 */
	int64_t retry_min_ms;      /* first backoff ceiling, default 1s */
	int64_t retry_max_ms;      /* backoff cap, default 5m */
	int64_t give_up_ms;        /* non-critical revisions older than this are
	                              dead-lettered; default 7d; critical never */
	fg_severity min_severity;  /* default info: send everything */
	char *ca_file;             /* optional, for https */
	int tls_verify;            /* default 1 */
	int format;                /* enum fg_format (formats.h): cloudevents (default),
	                              pagerduty, cap */
	char *routing_key;         /* pagerduty: the integration's routing key (or _file) */
	int64_t inline_snapshots_max_bytes; /* cloudevents: pictures up to this size go
	                              base64 into the body too; default 0 = URL + hash only */
};

/* An API client ([client NAME]): who may call the HTTP API, and for what. */
struct fg_conf_client {
	char *name;                /* from "[client NAME]" */
	int line;
	char *token;               /* bearer token (or token_file), >= 16 characters */
	char *secret;              /* Standard Webhooks "whsec_" secret (or secret_file) */
	char **allow;              /* scopes: read, actions, ingest, metrics */
	size_t n_allow;
	/* HTTP Basic credentials (cameras that cannot send a bearer token);
	 * username and password come together. */
	char *username;
	char *password;            /* or password_file */
};

/* [gb26875 NAME]: a TCP listener for GB/T 26875.3 transmitters (gb26875.h).
 * Frames go to the sources whose topics match gb26875/NAME/<transmitter>. */
struct fg_conf_gb26875 {
	char *name;                /* from "[gb26875 NAME]" */
	int line;
	char *listen;              /* "ADDR:PORT" / "[V6]:PORT" (required) */
	int64_t offline_after_ms;  /* silence before offline; default 10m, 0 = never */
	int checksum;              /* verify frame checksums; default 1 */
	int64_t max_connections;   /* default 64 */
};

enum fg_modbus_bus_type {
	FG_MODBUS_BUS_TCP = 0,
	FG_MODBUS_BUS_RTU = 1,
};

struct fg_conf_modbus_bus {
	char *name;                /* from "[modbus-bus NAME]" */
	int line;
	enum fg_modbus_bus_type type;   /* required */
	char *host;                /* tcp: IP address (required for tcp) */
	int64_t port;              /* tcp: default 502 */
	char *device;              /* rtu: serial device (required for rtu) */
	int64_t baud;              /* rtu: default 9600 */
	int parity;                /* rtu: 'N' (default), 'E' or 'O' */
	int64_t data_bits;         /* rtu: default 8 */
	int64_t stop_bits;         /* rtu: default 1 */
	int64_t timeout_ms;        /* response timeout of its devices, default 1s */
	int64_t connect_timeout_ms;/* default 3s */
	int64_t reconnect_min_ms;  /* first reconnect delay ceiling, default 1s */
	int64_t reconnect_max_ms;  /* cap, default 60s */
};

struct fg_conf_modbus_device {
	char *name;                /* from "[modbus-device NAME]"; the device id */
	int line;
	char *bus;                 /* a [modbus-bus] name (required) */
	int64_t unit;              /* unit id (required), 0..247 (rtu) or 0..255 (tcp) */
	char *plugin;              /* a Modbus plugin (required) */
	char *role;                /* free text, e.g. "port 07 meter" */
	int64_t interval_ms;       /* poll interval, default 5s */
	int64_t timeout_ms;        /* response timeout, 0 = the bus's */
	int64_t offline_after;     /* consecutive unanswered polls, default 3 */
	int64_t offline_interval_ms; /* poll interval while offline, default 30s */
	char **registers;          /* extra map entries "name:address:type[:...]" */
	size_t n_registers;
	char **scale;              /* "FACTOR" or "name:FACTOR" overrides */
	size_t n_scale;
	char **word_order;         /* "ORDER" or "name:ORDER" overrides */
	size_t n_word_order;
	struct fg_conf_kv *opts;   /* remaining keys, for the plugin */
	size_t n_opts;
};

struct fg_conf_interlock {
	char *name;                /* from "[interlock NAME]" */
	int line;
	char *device;              /* the [modbus-device] whose coils cut power (required) */
	char **coils;              /* 0-based coil addresses (required) */
	size_t n_coils;
	int cut_value;             /* value written to cut: 0 (off, default) or 1 */
	char **on;                 /* trigger kinds, default smoke overtemp residual_current */
	size_t n_on;
	char **from;               /* [modbus-device] names whose alarms trigger */
	size_t n_from;
	int dry_run;               /* only log and record what would be written */
	/* Detectors of any source whose alarms trigger: an event's device id
	 * or its message topic, matched exactly.  A rule has from or
	 * trigger_devices (or both). */
	char **trigger_devices;
	size_t n_trigger_devices;
};

struct fg_conf {
	char *path;                /* file it was loaded from */

	/* [daemon] */
	char *gateway_id;          /* required; appears in webhook source/ids */
	char *state_dir;           /* default /var/lib/firegrid */
	char *plugin_dir;          /* default: the install's plugin dir */
	int log_level;             /* FG_LOG_*; default info */
	int64_t watchdog_ms;       /* 0 = use WATCHDOG_USEC from systemd */
	int64_t shutdown_timeout_ms; /* max wait for in-flight webhooks on SIGTERM, default 5s */

	/* [store] */
	char *db_path;             /* default <state_dir>/firegrid.db; a relative key value is
	                              resolved under state_dir at load time */
	enum fg_durability durability;
	int64_t event_retention_ms;/* default 30d */
	int64_t max_events;        /* default 1000000 */

	/* [mqtt] */
	int mqtt_enabled;          /* default 1 */
	char *mqtt_host;           /* default 127.0.0.1 */
	int64_t mqtt_port;         /* default 1883 */
	char *mqtt_client_id;      /* default "firegrid-<gateway_id>" */
	char *mqtt_username;
	char *mqtt_password;       /* or password_file */
	char *mqtt_ca_file;        /* enables TLS */
	char *mqtt_cert_file;
	char *mqtt_key_file;
	int mqtt_tls_insecure;     /* skip host name check; default 0 */
	int64_t mqtt_keepalive_s;  /* default 30 */
	int64_t mqtt_reconnect_min_ms; /* default 500ms */
	int64_t mqtt_reconnect_max_ms; /* default 30s */
	int64_t mqtt_max_payload;  /* bytes; larger messages are counted and dropped; default 262144 */

	struct fg_conf_source *sources;
	size_t n_sources;
	struct fg_conf_sink *sinks;
	size_t n_sinks;

	/* [api] */
	int api_enabled;           /* default 1 (on loopback) */
	char **api_listen;         /* "ADDR:PORT" / "[V6]:PORT"; default 127.0.0.1:8089 */
	size_t n_api_listen;
	int64_t api_max_body;      /* bytes; larger request bodies get 413; default 65536 */
	int64_t api_connection_limit; /* per listener, default 64 */
	int64_t api_idle_timeout_ms;  /* idle connections are closed; default 30s */
	int64_t api_signature_tolerance_ms; /* webhook-timestamp skew accepted; default 5m */
	int api_metrics_public;    /* GET /metrics without credentials; default 1 */
	char *api_tls_cert_file;   /* PEM; with tls_key_file the API speaks HTTPS only */
	char *api_tls_key_file;

	/* [snapshots] camera pictures (snapshot.h) */
	int snap_enabled;          /* default 1 */
	char *snap_dir;            /* default <state_dir>/snapshots */
	int64_t snap_max_bytes;    /* all pictures together, default 256 MiB */
	int64_t snap_max_age_ms;   /* default 7d */
	int64_t snap_max_image;    /* one picture, bytes, default 4 MiB */
	char *snap_base_url;       /* prefix of the URLs in webhooks, e.g.
	                              https://gw.example:8089; default none: "/v1/snapshots/<sha256>" */
	int64_t snap_fetch_timeout_ms; /* one fetch of a camera's picture (snapfetch.h), default 10s */
	int64_t snap_fetch_attempts;   /* tries per picture, default 3 */
	int64_t snap_fetch_retry_ms;   /* first retry delay ceiling (full jitter, doubling), 2s */

	struct fg_conf_client *clients;
	size_t n_clients;

	/* [incidents] */
	int64_t reopen_window_ms;  /* a re-alarm this soon after close reopens; default 30m */
	int64_t confirm_persist_ms;/* a fire alarm still on after this is confirmed; default 60s */
	int64_t confirm_window_ms; /* two detectors of one building this close: confirmed; 120s */
	int confirm_scope_unit;    /* 1: the second detector must be in the same unit */
	int64_t storm_devices;     /* more offline devices of a site than this ... default 5 */
	int64_t storm_window_ms;   /* ... within this: one site incident; default 60s */
	int64_t offline_settle_ms; /* offline held this long after (re)connecting; default 60s */

	/* [escalation]: per hazard class, the times (from the start of the
	 * wait for a dispatch) at which levels 1, 2, 3 are reached. */
	struct fg_conf_tiers {
		char **list;           /* as written */
		size_t n_list;
		int64_t ms[3];         /* parsed, strictly increasing */
		size_t n;
	} esc_fire, esc_fire_elderly, esc_ebike, esc_fire_lane, esc_device_health;
	int64_t fire_lane_hold_ms;          /* report a blocked fire lane only after; default 30m */
	int64_t fire_lane_resolve_within_ms;/* after the report, resolve within (else overdue); 48h */

	struct fg_conf_gb26875 *gb26875;
	size_t n_gb26875;
	struct fg_conf_modbus_bus *modbus_buses;
	size_t n_modbus_buses;
	struct fg_conf_modbus_device *modbus_devices;
	size_t n_modbus_devices;
	struct fg_conf_interlock *interlocks;
	size_t n_interlocks;
};

/*
 * Load and validate a config file.  On success returns 0, *ret and
 * *ret_errors = NULL.  On failure returns a negative errno (-EINVAL for a
 * bad config, -ENOENT etc. when the file cannot be read, -ENOMEM), leaves
 * *ret untouched, and *ret_errors holds one or more newline-separated
 * messages of the form "FILE:LINE: [section] key: reason", in line order,
 * without a trailing newline (malloc'd; the caller frees and logs them).
 * Every error in the file is reported, not just the first.  ret_errors may
 * be NULL.  Never logs.
 */
int fg_conf_load(const char *path, struct fg_conf **ret, char **ret_errors);

/* Same, from a string (tests, fuzzing); `name` stands in for the file name. */
int fg_conf_load_string(const char *name, const char *text, struct fg_conf **ret,
                        char **ret_errors);

void fg_conf_free(struct fg_conf *conf);   /* NULL-safe */

/* Write the documented default config (every key, its default and its
 * description, generated from the tables) to f. */
#include <stdio.h>
void fg_conf_write_defaults(FILE *f);

#endif
