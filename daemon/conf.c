/*
 * The daemon's configuration: libinih splits the INI text, option tables
 * below say what every key means; see conf.h.
 *
 * Debian's libinih is built with INI_HANDLER_LINENO=0, INI_MAX_LINE=200 and
 * without INI_CALL_HANDLER_ON_NEW_SECTION, and ini_parse_stream() returns
 * only the first bad line.  So the text is fed through our own reader, which
 * numbers the lines, rejects over-long ones itself (inih would silently cut
 * them into pieces), and looks at every line inih did not hand to on_key():
 * those are blank, comments, section headers (tracked here, so an empty
 * [sink x] is still seen and checked) or syntax errors (reported, all of
 * them).  inih still does the key = value splitting, comments and
 * whitespace.
 */
#include "conf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <curl/curl.h>
#include <ini.h>
#include <mosquitto.h>
#include <openssl/crypto.h>

#include "fg_config.h"
#include "formats.h"
#include "http.h"
#include "modbus_map.h"
#include "options.h"
#include "sign.h"
#include "util.h"

#define CONF_MAX_BYTES (1024 * 1024)
#define NAME_MAX_LEN 48                /* gateway id, client id, section names */
#define SECRET_MIN_BYTES 24
#define SECRET_MAX_BYTES 64
#define MAX_KEYS 24                    /* per section table */

/* ------------------------------------------------------------------------ */
/* Key tables                                                                */
/* ------------------------------------------------------------------------ */

enum key_flags {
	K_REQUIRED = 1u << 0,  /* must be given, and not empty */
	K_SECRET = 1u << 1,    /* may come from a file as KEY_file = PATH; wiped when freed */
	K_LIST = 1u << 2,      /* char ** at offset with its size_t count right after;
	                          indented continuation lines append to it */
	K_PATH = 1u << 3,      /* names a file that must be readable now */
};

struct choice {
	const char *name;
	int value;
};

/*
 * A daemon key: the plugin ABI's fg_option (key, type, default, offset,
 * description, bounds) plus what only the daemon needs.  Keys with
 * `choices` are stored as int (enums) and handled here, never by options.c;
 * their o.type is FG_OPT_STRING for documentation only.
 */
struct conf_key {
	struct fg_option o;
	unsigned flags;
	const struct choice *choices;    /* NULL-terminated */
	int (*check)(const char *value, char *err, size_t errlen);   /* strings, list items */
	const char *example;             /* value written for a required key in the defaults */
};

static int check_name(const char *v, char *err, size_t errlen);
static int check_topic(const char *v, char *err, size_t errlen);
static int check_url(const char *v, char *err, size_t errlen);
static int check_webhook_secret(const char *v, char *err, size_t errlen);
static int check_listen(const char *v, char *err, size_t errlen);
static int check_token(const char *v, char *err, size_t errlen);
static int check_scope(const char *v, char *err, size_t errlen);
static int check_tier(const char *v, char *err, size_t errlen);
static int check_realm(const char *v, char *err, size_t errlen);

static const struct choice log_levels[] = {
	{ "error", FG_LOG_ERR }, { "warning", FG_LOG_WARN }, { "info", FG_LOG_INFO },
	{ "debug", FG_LOG_DEBUG }, { NULL, 0 },
};
static const struct choice durabilities[] = {
	{ "normal", FG_DURABILITY_NORMAL }, { "full", FG_DURABILITY_FULL }, { NULL, 0 },
};
static const struct choice severities[] = {
	{ "info", FG_SEV_INFO }, { "warning", FG_SEV_WARNING }, { "major", FG_SEV_MAJOR },
	{ "critical", FG_SEV_CRITICAL }, { NULL, 0 },
};
static const struct choice formats[] = {
	{ "cloudevents", FG_FORMAT_CLOUDEVENTS }, { "pagerduty", FG_FORMAT_PAGERDUTY },
	{ "cap", FG_FORMAT_CAP }, { NULL, 0 },
};
static const struct choice confirm_scopes[] = {
	{ "building", 0 }, { "unit", 1 }, { NULL, 0 },
};
static const struct choice qos_levels[] = {
	{ "0", 0 }, { "1", 1 }, { "2", 2 }, { NULL, 0 },
};
static const struct choice http_auths[] = {
	{ "any", FG_HTTP_AUTH_ANY }, { "basic", FG_HTTP_AUTH_BASIC },
	{ "digest", FG_HTTP_AUTH_DIGEST }, { "bearer", FG_HTTP_AUTH_BEARER }, { NULL, 0 },
};
static const struct choice digest_algs[] = {
	{ "md5", FG_HTTP_DIGEST_MD5 }, { "sha256", FG_HTTP_DIGEST_SHA256 }, { NULL, 0 },
};

/* Enum fields are written through an int. */
_Static_assert(sizeof(enum fg_durability) == sizeof(int), "durability stored as int");
_Static_assert(sizeof(fg_severity) == sizeof(int), "severity stored as int");

/* Duration bounds are in milliseconds. */
#define T_SEC 1000.0
#define T_MIN (60 * T_SEC)
#define T_HOUR (60 * T_MIN)
#define T_DAY (24 * T_HOUR)

#define C(f) offsetof(struct fg_conf, f)
static const struct conf_key daemon_keys[] = {
	{ .o = { "gateway_id", FG_OPT_STRING, NULL, C(gateway_id),
	    "Identity of this gateway in webhooks and the MQTT client id (letters, digits, '.', '_', '-')",
	    0, 0 }, .flags = K_REQUIRED, .check = check_name,
	  .example = "compound-01" },
	{ .o = { "state_dir", FG_OPT_STRING, "/var/lib/firegrid", C(state_dir),
	    "Directory for the database and other state", 0, 0 } },
	{ .o = { "plugin_dir", FG_OPT_STRING, NULL, C(plugin_dir),
	    "Directory with plugin modules (*.so); unset = the directory chosen at build time",
	    0, 0 } },
	{ .o = { "log_level", FG_OPT_STRING, "info", C(log_level),
	    "Least important log messages written", 0, 0 }, .choices = log_levels },
	{ .o = { "watchdog", FG_OPT_DURATION, "0", C(watchdog_ms),
	    "systemd watchdog interval; 0 = take it from WATCHDOG_USEC", 0, 10 * T_MIN } },
	{ .o = { "shutdown_timeout", FG_OPT_DURATION, "5s", C(shutdown_timeout_ms),
	    "On SIGTERM, longest wait for webhooks in flight", 0, 5 * T_MIN } },
};

static const struct conf_key store_keys[] = {
	{ .o = { "db_path", FG_OPT_STRING, "firegrid.db", C(db_path),
	    "SQLite database; a relative path is taken under state_dir", 0, 0 } },
	{ .o = { "durability", FG_OPT_STRING, "normal", C(durability),
	    "normal: survives a crash of firegridd; full: also a power cut (fsync every commit)",
	    0, 0 }, .choices = durabilities },
	{ .o = { "event_retention", FG_OPT_DURATION, "30d", C(event_retention_ms),
	    "Raw events older than this are pruned (incidents are kept)", T_MIN, 3650 * T_DAY } },
	{ .o = { "max_events", FG_OPT_INT, "1000000", C(max_events),
	    "Most raw events kept; the oldest are pruned first", 1000, 1e9 } },
};

static const struct conf_key mqtt_keys[] = {
	{ .o = { "enabled", FG_OPT_BOOL, "true", C(mqtt_enabled),
	    "Connect to the local broker at all", 0, 0 } },
	{ .o = { "host", FG_OPT_STRING, "127.0.0.1", C(mqtt_host),
	    "Broker address (an IP literal keeps name lookups off the event loop)", 0, 0 } },
	{ .o = { "port", FG_OPT_INT, "1883", C(mqtt_port), "Broker TCP port", 1, 65535 } },
	{ .o = { "client_id", FG_OPT_STRING, NULL, C(mqtt_client_id),
	    "MQTT client id of the persistent session; default firegrid-<gateway_id>", 0, 0 },
	  .check = check_name },
	{ .o = { "username", FG_OPT_STRING, NULL, C(mqtt_username), "Broker user name", 0, 0 } },
	{ .o = { "password", FG_OPT_STRING, NULL, C(mqtt_password), "Broker password", 0, 0 },
	  .flags = K_SECRET },
	{ .o = { "ca_file", FG_OPT_STRING, NULL, C(mqtt_ca_file),
	    "CA certificates (PEM); setting it turns TLS on", 0, 0 }, .flags = K_PATH },
	{ .o = { "cert_file", FG_OPT_STRING, NULL, C(mqtt_cert_file),
	    "Client certificate (PEM) for TLS client authentication; needs key_file", 0, 0 },
	  .flags = K_PATH },
	{ .o = { "key_file", FG_OPT_STRING, NULL, C(mqtt_key_file),
	    "Private key (PEM) of cert_file", 0, 0 }, .flags = K_PATH },
	{ .o = { "tls_insecure", FG_OPT_BOOL, "false", C(mqtt_tls_insecure),
	    "Skip the broker host name check (testing only)", 0, 0 } },
	{ .o = { "keepalive", FG_OPT_INT, "30", C(mqtt_keepalive_s),
	    "Seconds between keepalive pings when idle", 5, 3600 } },
	{ .o = { "reconnect_min", FG_OPT_DURATION, "500ms", C(mqtt_reconnect_min_ms),
	    "First reconnect delay ceiling (full jitter, doubling)", 10, T_HOUR } },
	{ .o = { "reconnect_max", FG_OPT_DURATION, "30s", C(mqtt_reconnect_max_ms),
	    "Cap of the reconnect delay", 100, T_DAY } },
	{ .o = { "max_payload", FG_OPT_INT, "262144", C(mqtt_max_payload),
	    "Bytes; larger messages are counted and dropped", 1024, 268435455 } },
};
#undef C

#define S(f) offsetof(struct fg_conf_source, f)
static const struct conf_key source_keys[] = {
	{ .o = { "plugin", FG_OPT_STRING, NULL, S(plugin), "Plugin that decodes these messages", 0, 0 },
	  .flags = K_REQUIRED, .check = check_name, .example = "zigbee2mqtt" },
	{ .o = { "topics", FG_OPT_STRING, NULL, S(topics),
	    "MQTT topic filters, separated by spaces or commas; indented lines continue the list "
	    "(needed unless the source is fed by http_clients or stream_url)",
	    0, 0 }, .flags = K_LIST, .check = check_topic,
	  .example = "zigbee2mqtt/#" },
	{ .o = { "qos", FG_OPT_STRING, "1", S(qos), "Subscription QoS", 0, 0 }, .choices = qos_levels },
	{ .o = { "http_clients", FG_OPT_STRING, NULL, S(http_clients),
	    "[client]s (allowed 'ingest') that may push to POST /v1/ingest/NAME; unset = no pushes",
	    0, 0 }, .flags = K_LIST, .check = check_name },
	{ .o = { "http_max_body", FG_OPT_INT, "4194304", S(http_max_body),
	    "Largest push body in bytes (pictures included); larger ones are answered 413",
	    1024, 64 << 20 } },
	{ .o = { "http_auth", FG_OPT_STRING, "any", S(http_auth),
	    "How pushes authenticate: any (a client's token, signature or HTTP Basic), basic, "
	    "digest (HTTP Digest with the clients' username and password) or bearer", 0, 0 },
	  .choices = http_auths },
	{ .o = { "http_realm", FG_OPT_STRING, "firegrid", S(http_realm),
	    "Realm named in the Basic and Digest challenges (the digest hashes include it)", 0, 0 },
	  .check = check_realm },
	{ .o = { "http_digest_algorithm", FG_OPT_STRING, "md5", S(http_digest_alg),
	    "Digest algorithm offered and accepted: md5 (what cameras do) or sha256", 0, 0 },
	  .choices = digest_algs },
	{ .o = { "stream_url", FG_OPT_STRING, NULL, S(stream_url),
	    "An event stream firegrid reads from the device (Dahua eventManager, Hikvision "
	    "alertStream), http:// or https://", 0, 0 }, .check = check_url },
	{ .o = { "stream_username", FG_OPT_STRING, NULL, S(stream_username),
	    "User name for the stream (digest or basic, as the device asks)", 0, 0 } },
	{ .o = { "stream_password", FG_OPT_STRING, NULL, S(stream_password),
	    "Password for the stream", 0, 0 }, .flags = K_SECRET },
	{ .o = { "stream_reconnect_min", FG_OPT_DURATION, "1s", S(stream_reconnect_min_ms),
	    "First reconnect delay ceiling of the stream (full jitter, doubling)", 10, T_HOUR } },
	{ .o = { "stream_reconnect_max", FG_OPT_DURATION, "60s", S(stream_reconnect_max_ms),
	    "Cap of the stream's reconnect delay", 100, T_DAY } },
	{ .o = { "stream_idle_timeout", FG_OPT_DURATION, "60s", S(stream_idle_timeout_ms),
	    "Reconnect when the stream has been silent this long (devices send heartbeats)",
	    T_SEC, T_HOUR } },
};
#undef S
_Static_assert(offsetof(struct fg_conf_source, n_topics) ==
               offsetof(struct fg_conf_source, topics) + sizeof(char **) &&
               offsetof(struct fg_conf_source, n_http_clients) ==
               offsetof(struct fg_conf_source, http_clients) + sizeof(char **),
               "K_LIST keeps its count right after the array");

#define K(f) offsetof(struct fg_conf_sink, f)
static const struct conf_key sink_keys[] = {
	{ .o = { "url", FG_OPT_STRING, NULL, K(url), "Webhook receiver, http:// or https://", 0, 0 },
	  .flags = K_REQUIRED, .check = check_url,
	  .example = "https://ops.example.org/firegrid/webhook" },
	{ .o = { "secret", FG_OPT_STRING, NULL, K(secret),
	    "Standard Webhooks signing secret: whsec_ and the base64 of 24..64 random bytes",
	    0, 0 }, .flags = K_REQUIRED | K_SECRET, .check = check_webhook_secret,
	  .example = "/etc/firegrid/ops-center.secret" },
	{ .o = { "timeout", FG_OPT_DURATION, "10s", K(timeout_ms), "Whole request, connect included",
	    100, 10 * T_MIN } },
	{ .o = { "connect_timeout", FG_OPT_DURATION, "5s", K(connect_timeout_ms),
	    "TCP and TLS connection set-up", 100, 5 * T_MIN } },
	{ .o = { "max_connections", FG_OPT_INT, "4", K(max_connections),
	    "Parallel connections to this receiver", 1, 16 } },
	{ .o = { "retry_min", FG_OPT_DURATION, "1s", K(retry_min_ms),
	    "First retry delay ceiling (full jitter, doubling; Retry-After is honoured)", 10, T_HOUR } },
	{ .o = { "retry_max", FG_OPT_DURATION, "5m", K(retry_max_ms), "Cap of the retry delay",
	    T_SEC, T_DAY } },
	{ .o = { "give_up", FG_OPT_DURATION, "7d", K(give_up_ms),
	    "Non-critical revisions still undelivered after this are dead-lettered; critical never",
	    T_MIN, 3650 * T_DAY } },
	{ .o = { "min_severity", FG_OPT_STRING, "info", K(min_severity),
	    "Least severe incidents sent to this receiver", 0, 0 }, .choices = severities },
	{ .o = { "ca_file", FG_OPT_STRING, NULL, K(ca_file),
	    "CA certificates (PEM) for https; unset = the system store", 0, 0 }, .flags = K_PATH },
	{ .o = { "tls_verify", FG_OPT_BOOL, "true", K(tls_verify),
	    "Verify the receiver's certificate and host name", 0, 0 } },
	{ .o = { "format", FG_OPT_STRING, "cloudevents", K(format),
	    "Body of each revision: cloudevents (CloudEvents 1.0 JSON), pagerduty (Events API v2), "
	    "cap (OASIS CAP 1.2 XML); docs/formats.md", 0, 0 }, .choices = formats },
	{ .o = { "routing_key", FG_OPT_STRING, NULL, K(routing_key),
	    "format = pagerduty: the integration's routing key", 0, 0 }, .flags = K_SECRET },
	{ .o = { "inline_snapshots_max_bytes", FG_OPT_INT, "0", K(inline_snapshots_max_bytes),
	    "format = cloudevents: camera pictures up to this size also go base64 into the body "
	    "(data_base64 next to url and sha256), for receivers that cannot fetch from the "
	    "gateway; 0 = URL and hash only", 0, 64 << 20 } },
};
#undef K

#define C(f) offsetof(struct fg_conf, f)
static const struct conf_key api_keys[] = {
	{ .o = { "enabled", FG_OPT_BOOL, "true", C(api_enabled),
	    "Serve the HTTP API (ops-center callbacks, /healthz, /metrics)", 0, 0 } },
	{ .o = { "listen", FG_OPT_STRING, "127.0.0.1:8089", C(api_listen),
	    "Addresses to listen on, ADDR:PORT or [IPV6]:PORT (IP literals); anything beyond "
	    "loopback only when listed here", 0, 0 }, .flags = K_LIST, .check = check_listen },
	{ .o = { "max_body", FG_OPT_INT, "65536", C(api_max_body),
	    "Largest request body in bytes; larger ones are answered 413", 1024, 64 << 20 } },
	{ .o = { "connection_limit", FG_OPT_INT, "64", C(api_connection_limit),
	    "Most connections open at once per listen address", 1, 4096 } },
	{ .o = { "idle_timeout", FG_OPT_DURATION, "30s", C(api_idle_timeout_ms),
	    "Connections idle this long are closed", T_SEC, T_HOUR } },
	{ .o = { "signature_tolerance", FG_OPT_DURATION, "5m", C(api_signature_tolerance_ms),
	    "Signed requests: largest difference between webhook-timestamp and our clock",
	    T_SEC, T_HOUR } },
	{ .o = { "metrics_public", FG_OPT_BOOL, "true", C(api_metrics_public),
	    "GET /metrics needs no credentials (else a client allowed 'metrics')", 0, 0 } },
	{ .o = { "tls_cert_file", FG_OPT_STRING, NULL, C(api_tls_cert_file),
	    "Certificate chain (PEM); with tls_key_file every listen address speaks HTTPS", 0, 0 },
	  .flags = K_PATH },
	{ .o = { "tls_key_file", FG_OPT_STRING, NULL, C(api_tls_key_file),
	    "Private key (PEM) of tls_cert_file", 0, 0 }, .flags = K_PATH },
};

static const struct conf_key snapshots_keys[] = {
	{ .o = { "enabled", FG_OPT_BOOL, "true", C(snap_enabled),
	    "Keep the pictures cameras push with their events", 0, 0 } },
	{ .o = { "dir", FG_OPT_STRING, NULL, C(snap_dir),
	    "Where pictures are kept, named by SHA-256; unset = <state_dir>/snapshots", 0, 0 } },
	{ .o = { "max_bytes", FG_OPT_INT, "268435456", C(snap_max_bytes),
	    "All pictures together; the oldest are deleted first", 1 << 20, 1e12 } },
	{ .o = { "max_age", FG_OPT_DURATION, "7d", C(snap_max_age_ms),
	    "Pictures older than this are deleted", T_MIN, 3650 * T_DAY } },
	{ .o = { "max_image_bytes", FG_OPT_INT, "4194304", C(snap_max_image),
	    "Largest single picture; larger ones are refused (counted)", 1024, 64 << 20 } },
	{ .o = { "base_url", FG_OPT_STRING, NULL, C(snap_base_url),
	    "Prefix of picture URLs in webhooks (e.g. https://gw.example:8089); unset = the path "
	    "/v1/snapshots/<sha256> alone", 0, 0 }, .check = check_url },
	{ .o = { "fetch_timeout", FG_OPT_DURATION, "10s", C(snap_fetch_timeout_ms),
	    "One fetch of a picture a camera serves (Frigate api_url), connect included",
	    T_SEC, 5 * T_MIN } },
	{ .o = { "fetch_attempts", FG_OPT_INT, "3", C(snap_fetch_attempts),
	    "Tries per picture before it is given up (the incident never waits for it)", 1, 10 } },
	{ .o = { "fetch_retry", FG_OPT_DURATION, "2s", C(snap_fetch_retry_ms),
	    "First retry delay ceiling of a picture fetch (full jitter, doubling)", 100, T_HOUR } },
};
#undef C
_Static_assert(offsetof(struct fg_conf, n_api_listen) ==
               offsetof(struct fg_conf, api_listen) + sizeof(char **),
               "K_LIST keeps its count right after the array");

#define C(f) offsetof(struct fg_conf, f)
static const struct conf_key incidents_keys[] = {
	{ .o = { "reopen_window", FG_OPT_DURATION, "30m", C(reopen_window_ms),
	    "A re-alarm of the same device and kind this soon after the incident was closed "
	    "reopens it instead of opening a new one; 0 = never", 0, 30 * T_DAY } },
	{ .o = { "confirm_persist", FG_OPT_DURATION, "60s", C(confirm_persist_ms),
	    "A fire-class alarm (sent at once as unconfirmed) still on after this is "
	    "confirmed (the double knock)", T_SEC, T_HOUR } },
	{ .o = { "confirm_window", FG_OPT_DURATION, "120s", C(confirm_window_ms),
	    "A fire-class alarm is confirmed when a second registered detector in the same "
	    "building (or unit) alarms within this", T_SEC, T_HOUR } },
	{ .o = { "confirm_scope", FG_OPT_STRING, "building", C(confirm_scope_unit),
	    "Where the second detector must be: building or unit", 0, 0 },
	  .choices = confirm_scopes },
	{ .o = { "storm_devices", FG_OPT_INT, "5", C(storm_devices),
	    "More devices of one site (compound, else source) going offline than this within "
	    "storm_window raise one site-level incident instead", 1, 100000 } },
	{ .o = { "storm_window", FG_OPT_DURATION, "60s", C(storm_window_ms),
	    "How long an offline report waits to be grouped; 0 = report each at once", 0,
	    T_HOUR } },
	{ .o = { "offline_settle", FG_OPT_DURATION, "60s", C(offline_settle_ms),
	    "After firegridd starts or the broker link comes back, offline reports wait this "
	    "long and are dropped if the device is back by then", 0, T_HOUR } },
};

#define TIERS(f) offsetof(struct fg_conf, f.list)
static const struct conf_key escalation_keys[] = {
	{ .o = { "fire", FG_OPT_STRING, "60s 180s 300s", TIERS(esc_fire),
	    "Fire class (smoke, heat, CO, residual current) not dispatched: times after the alarm "
	    "of levels 1, 2, 3 (medium grid, large grid, fire brigade desk)", 0, 0 },
	  .flags = K_LIST, .check = check_tier },
	{ .o = { "fire_elderly_alone", FG_OPT_STRING, "30s 90s 150s", TIERS(esc_fire_elderly),
	    "The same for households flagged elderly_alone in the device registry", 0, 0 },
	  .flags = K_LIST, .check = check_tier },
	{ .o = { "ebike", FG_OPT_STRING, "15m 30m 45m", TIERS(esc_ebike),
	    "E-bike shed overheat and overcurrent", 0, 0 }, .flags = K_LIST, .check = check_tier },
	{ .o = { "fire_lane", FG_OPT_STRING, "24h 48h", TIERS(esc_fire_lane),
	    "Blocked fire lane, counted from its report", 0, 0 },
	  .flags = K_LIST, .check = check_tier },
	{ .o = { "device_health", FG_OPT_STRING, "24h 48h 72h", TIERS(esc_device_health),
	    "Battery low, tamper, fault, offline", 0, 0 }, .flags = K_LIST, .check = check_tier },
	{ .o = { "fire_lane_hold", FG_OPT_DURATION, "30m", C(fire_lane_hold_ms),
	    "A blocked fire lane is reported only if still blocked after this", 0, 7 * T_DAY } },
	{ .o = { "fire_lane_resolve_within", FG_OPT_DURATION, "48h", C(fire_lane_resolve_within_ms),
	    "A reported blocked fire lane not resolved this long after its report is overdue; "
	    "0 = no such deadline", 0, 30 * T_DAY } },
};
#undef TIERS
#undef C

#define K(f) offsetof(struct fg_conf_client, f)
static const struct conf_key client_keys[] = {
	{ .o = { "token", FG_OPT_STRING, NULL, K(token),
	    "Bearer token this client sends (Authorization: Bearer ...), 16 or more characters",
	    0, 0 }, .flags = K_SECRET, .check = check_token },
	{ .o = { "secret", FG_OPT_STRING, NULL, K(secret),
	    "Standard Webhooks secret this client signs its requests with (whsec_...)", 0, 0 },
	  .flags = K_SECRET, .check = check_webhook_secret },
	{ .o = { "allow", FG_OPT_STRING, "read actions", K(allow),
	    "What the client may do: read, actions, ingest, metrics", 0, 0 },
	  .flags = K_LIST, .check = check_scope },
	{ .o = { "username", FG_OPT_STRING, NULL, K(username),
	    "HTTP Basic user name, for devices that cannot send a token (cameras); needs password",
	    0, 0 } },
	{ .o = { "password", FG_OPT_STRING, NULL, K(password),
	    "HTTP Basic password, 12 or more characters (send it over TLS beyond the local network)",
	    0, 0 }, .flags = K_SECRET },
};
#undef K
_Static_assert(offsetof(struct fg_conf_client, n_allow) ==
               offsetof(struct fg_conf_client, allow) + sizeof(char **),
               "K_LIST keeps its count right after the array");

#define G(f) offsetof(struct fg_conf_gb26875, f)
static const struct conf_key gb26875_keys[] = {
	{ .o = { "listen", FG_OPT_STRING, NULL, G(listen),
	    "TCP address the transmitters connect to: ADDR:PORT or [IPV6]:PORT", 0, 0 },
	  .flags = K_REQUIRED, .check = check_listen, .example = "0.0.0.0:5000" },
	{ .o = { "offline_after", FG_OPT_DURATION, "10m", G(offline_after_ms),
	    "A transmitter silent this long goes offline (0 = never); counted from start-up for "
	    "those known before", 0, 7 * T_DAY } },
	{ .o = { "checksum", FG_OPT_BOOL, "true", G(checksum),
	    "Verify frame checksums; a bad frame is counted, not confirmed, and the stream "
	    "resynchronised on the next '@@'", 0, 0 } },
	{ .o = { "max_connections", FG_OPT_INT, "64", G(max_connections),
	    "Transmitters connected at once; more are refused", 1, 4096 } },
};
#undef G

static int check_modbus_entry(const char *v, char *err, size_t errlen);
static int check_modbus_scale(const char *v, char *err, size_t errlen);
static int check_modbus_order(const char *v, char *err, size_t errlen);
static int check_coil(const char *v, char *err, size_t errlen);
static int check_trigger_kind(const char *v, char *err, size_t errlen);
static int check_trigger_device(const char *v, char *err, size_t errlen);

static const struct choice bus_types[] = {
	{ "tcp", FG_MODBUS_BUS_TCP }, { "rtu", FG_MODBUS_BUS_RTU }, { NULL, 0 },
};
static const struct choice parities[] = {
	{ "none", 'N' }, { "even", 'E' }, { "odd", 'O' }, { NULL, 0 },
};
static const struct choice coil_values[] = {
	{ "off", 0 }, { "on", 1 }, { NULL, 0 },
};
_Static_assert(sizeof(enum fg_modbus_bus_type) == sizeof(int), "bus type stored as int");

#define B(f) offsetof(struct fg_conf_modbus_bus, f)
static const struct conf_key modbus_bus_keys[] = {
	{ .o = { "type", FG_OPT_STRING, NULL, B(type), "Modbus TCP endpoint or RTU serial line",
	    0, 0 }, .flags = K_REQUIRED, .choices = bus_types, .example = "tcp" },
	{ .o = { "host", FG_OPT_STRING, NULL, B(host),
	    "tcp: address of the device or gateway (an IP literal keeps lookups off the worker)",
	    0, 0 } },
	{ .o = { "port", FG_OPT_INT, "502", B(port), "tcp: port", 1, 65535 } },
	{ .o = { "device", FG_OPT_STRING, NULL, B(device), "rtu: serial device, e.g. /dev/ttyUSB0",
	    0, 0 } },
	{ .o = { "baud", FG_OPT_INT, "9600", B(baud), "rtu: bits per second", 300, 4000000 } },
	{ .o = { "parity", FG_OPT_STRING, "none", B(parity), "rtu: parity", 0, 0 },
	  .choices = parities },
	{ .o = { "data_bits", FG_OPT_INT, "8", B(data_bits), "rtu: data bits", 5, 8 } },
	{ .o = { "stop_bits", FG_OPT_INT, "1", B(stop_bits), "rtu: stop bits", 1, 2 } },
	{ .o = { "timeout", FG_OPT_DURATION, "1s", B(timeout_ms),
	    "Response timeout of the devices on this bus (a device may set its own)", 10, T_MIN } },
	{ .o = { "connect_timeout", FG_OPT_DURATION, "3s", B(connect_timeout_ms),
	    "tcp: connection set-up", 10, T_MIN } },
	{ .o = { "reconnect_min", FG_OPT_DURATION, "1s", B(reconnect_min_ms),
	    "First reconnect delay ceiling after the bus failed (full jitter, doubling)", 10, T_HOUR } },
	{ .o = { "reconnect_max", FG_OPT_DURATION, "1m", B(reconnect_max_ms),
	    "Cap of the reconnect delay", 100, T_DAY } },
};
#undef B

#define D(f) offsetof(struct fg_conf_modbus_device, f)
static const struct conf_key modbus_device_keys[] = {
	{ .o = { "bus", FG_OPT_STRING, NULL, D(bus), "The [modbus-bus] the device is on", 0, 0 },
	  .flags = K_REQUIRED, .check = check_name, .example = "shed-b3" },
	{ .o = { "unit", FG_OPT_INT, NULL, D(unit),
	    "Unit (slave) id: 1..247 on RTU; on TCP what the gateway routes (often 1 or 255)",
	    0, 255 }, .flags = K_REQUIRED, .example = "7" },
	{ .o = { "plugin", FG_OPT_STRING, NULL, D(plugin),
	    "Modbus plugin: the model's register map and thresholds", 0, 0 },
	  .flags = K_REQUIRED, .check = check_name, .example = "sdm120" },
	{ .o = { "role", FG_OPT_STRING, NULL, D(role),
	    "What the device watches, carried in events (e.g. port 07 meter)", 0, 0 } },
	{ .o = { "interval", FG_OPT_DURATION, "5s", D(interval_ms), "Poll interval", 100, T_DAY } },
	{ .o = { "timeout", FG_OPT_DURATION, "0", D(timeout_ms),
	    "Response timeout; 0 = the bus's", 0, T_MIN } },
	{ .o = { "offline_after", FG_OPT_INT, "3", D(offline_after),
	    "Consecutive unanswered polls before the device is reported offline", 1, 1000 } },
	{ .o = { "offline_interval", FG_OPT_DURATION, "30s", D(offline_interval_ms),
	    "Poll interval while offline, so a dead device costs little bus time", 100, T_DAY } },
	{ .o = { "registers", FG_OPT_STRING, NULL, D(registers),
	    "Map entries NAME:ADDRESS[:TYPE][:ORDER][:*SCALE][:UNIT] added to (or replacing) "
	    "the plugin's", 0, 0 }, .flags = K_LIST, .check = check_modbus_entry },
	{ .o = { "scale", FG_OPT_STRING, NULL, D(scale),
	    "Scale overrides: FACTOR for every numeric entry, or NAME:FACTOR", 0, 0 },
	  .flags = K_LIST, .check = check_modbus_scale },
	{ .o = { "word_order", FG_OPT_STRING, NULL, D(word_order),
	    "Word order overrides: ABCD, CDAB, BADC or DCBA for every entry, or NAME:ORDER", 0, 0 },
	  .flags = K_LIST, .check = check_modbus_order },
};
#undef D
_Static_assert(offsetof(struct fg_conf_modbus_device, n_registers) ==
               offsetof(struct fg_conf_modbus_device, registers) + sizeof(char **) &&
               offsetof(struct fg_conf_modbus_device, n_scale) ==
               offsetof(struct fg_conf_modbus_device, scale) + sizeof(char **) &&
               offsetof(struct fg_conf_modbus_device, n_word_order) ==
               offsetof(struct fg_conf_modbus_device, word_order) + sizeof(char **),
               "K_LIST keeps its count right after the array");

#define I(f) offsetof(struct fg_conf_interlock, f)
static const struct conf_key interlock_keys[] = {
	{ .o = { "device", FG_OPT_STRING, NULL, I(device),
	    "The [modbus-device] whose coils switch the charging power", 0, 0 },
	  .flags = K_REQUIRED, .check = check_name, .example = "b3-relays" },
	{ .o = { "coils", FG_OPT_STRING, NULL, I(coils),
	    "0-based coil addresses to write (relay 1 = coil 0)", 0, 0 },
	  .flags = K_REQUIRED | K_LIST, .check = check_coil, .example = "0 1 2 3" },
	{ .o = { "cut_value", FG_OPT_STRING, "off", I(cut_value),
	    "Coil value that cuts the power (restoring writes the other)", 0, 0 },
	  .choices = coil_values },
	{ .o = { "on", FG_OPT_STRING, "smoke overtemp residual_current", I(on),
	    "Event kinds that cut (smoke, heat, overtemp, overcurrent, residual_current)", 0, 0 },
	  .flags = K_LIST, .check = check_trigger_kind },
	{ .o = { "from", FG_OPT_STRING, NULL, I(from),
	    "[modbus-device] names whose alarms trigger the cut (this or trigger_devices)", 0, 0 },
	  .flags = K_LIST, .check = check_name, .example = "b3-temp b3-smoke" },
	{ .o = { "trigger_devices", FG_OPT_STRING, NULL, I(trigger_devices),
	    "Detectors of any source whose alarms trigger the cut: a device id as incidents show "
	    "it, or the exact topic it publishes on", 0, 0 },
	  .flags = K_LIST, .check = check_trigger_device,
	  .example = "zigbee2mqtt/shed-b3-smoke" },
	{ .o = { "dry_run", FG_OPT_BOOL, "false", I(dry_run),
	    "Only log and record what would be written", 0, 0 } },
};
#undef I
_Static_assert(offsetof(struct fg_conf_interlock, n_coils) ==
               offsetof(struct fg_conf_interlock, coils) + sizeof(char **) &&
               offsetof(struct fg_conf_interlock, n_on) ==
               offsetof(struct fg_conf_interlock, on) + sizeof(char **) &&
               offsetof(struct fg_conf_interlock, n_from) ==
               offsetof(struct fg_conf_interlock, from) + sizeof(char **) &&
               offsetof(struct fg_conf_interlock, n_trigger_devices) ==
               offsetof(struct fg_conf_interlock, trigger_devices) + sizeof(char **),
               "K_LIST keeps its count right after the array");

/* Sources and sinks both begin with these two fields. */
struct named_head {
	char *name;
	int line;
};
_Static_assert(offsetof(struct fg_conf_source, line) == offsetof(struct named_head, line) &&
               offsetof(struct fg_conf_sink, line) == offsetof(struct named_head, line) &&
               offsetof(struct fg_conf_client, line) == offsetof(struct named_head, line) &&
               offsetof(struct fg_conf_gb26875, line) == offsetof(struct named_head, line) &&
               offsetof(struct fg_conf_modbus_bus, line) == offsetof(struct named_head, line) &&
               offsetof(struct fg_conf_modbus_device, line) ==
               offsetof(struct named_head, line) &&
               offsetof(struct fg_conf_interlock, line) == offsetof(struct named_head, line),
               "named sections start with name and line");

/* Sections whose unknown keys go to a plugin keep them here. */
struct plugin_opts {
	struct fg_conf_kv *opts;
	size_t n_opts;
};
_Static_assert(offsetof(struct fg_conf_source, n_opts) ==
               offsetof(struct fg_conf_source, opts) + sizeof(struct fg_conf_kv *) &&
               offsetof(struct fg_conf_modbus_device, n_opts) ==
               offsetof(struct fg_conf_modbus_device, opts) + sizeof(struct fg_conf_kv *),
               "plugin options keep their count right after the array");

struct loader;
struct cursec;

struct conf_section {
	const char *name;
	const struct conf_key *keys;
	size_t n_keys;
	/* Named sections ("[sink NAME]") are arrays in struct fg_conf. */
	bool named;
	size_t array_off, count_off, elem_size;
	/* Offset in the section's struct of the struct plugin_opts that keeps
	 * its unknown keys for a plugin; 0 (false) = unknown keys are errors. */
	size_t plugin_opts;
	void (*finish)(struct loader *l, struct cursec *sec);   /* checks across keys */
	const char *doc;             /* comment above the section in the defaults */
	const char *example_name;
	bool example_commented;      /* the defaults show it commented out (optional,
	                                and not valid without the user's values) */
};

static void finish_mqtt(struct loader *l, struct cursec *sec);
static void finish_sink(struct loader *l, struct cursec *sec);
static void finish_client(struct loader *l, struct cursec *sec);
static void finish_source(struct loader *l, struct cursec *sec);
static void finish_api(struct loader *l, struct cursec *sec);
static void finish_escalation(struct loader *l, struct cursec *sec);
static void finish_modbus_bus(struct loader *l, struct cursec *sec);

#define TABLE(t) t, sizeof(t) / sizeof((t)[0])
#define FITS(t) _Static_assert(sizeof(t) / sizeof((t)[0]) <= MAX_KEYS, #t " has too many keys")
FITS(daemon_keys);
FITS(store_keys);
FITS(mqtt_keys);
FITS(source_keys);
FITS(sink_keys);
FITS(api_keys);
FITS(client_keys);
FITS(incidents_keys);
FITS(escalation_keys);
FITS(gb26875_keys);
FITS(snapshots_keys);
FITS(modbus_bus_keys);
FITS(modbus_device_keys);
FITS(interlock_keys);
#define NAMED(type, arr, cnt) true, offsetof(struct fg_conf, arr), \
	offsetof(struct fg_conf, cnt), sizeof(type)
static const struct conf_section sections[] = {
	{ "daemon", TABLE(daemon_keys), false, 0, 0, 0, false, NULL,
	  "# The gateway itself.\n", NULL, false },
	{ "store", TABLE(store_keys), false, 0, 0, 0, false, NULL,
	  "# The SQLite store: events, incidents, outbox, dead letters.\n", NULL, false },
	{ "mqtt", TABLE(mqtt_keys), false, 0, 0, 0, false, finish_mqtt,
	  "# The local MQTT broker the devices publish to.\n", NULL, false },
	{ "source", TABLE(source_keys), NAMED(struct fg_conf_source, sources, n_sources),
	  offsetof(struct fg_conf_source, opts), finish_source,
	  "# [source NAME]: which plugin decodes which MQTT topics; any number of sources.\n"
	  "# Other keys in the section are options of the plugin (see `firegridctl plugins`).\n",
	  "zigbee2mqtt", false },
	{ "sink", TABLE(sink_keys), NAMED(struct fg_conf_sink, sinks, n_sinks), false,
	  finish_sink,
	  "# [sink NAME]: a webhook receiver (CloudEvents, Standard Webhooks signatures);\n"
	  "# one or more.\n",
	  "ops-center", false },
	{ "api", TABLE(api_keys), false, 0, 0, 0, false, finish_api,
	  "# The HTTP API: ops-center callbacks and reads (/v1/...), /healthz, /metrics.\n"
	  "# See docs/api.md.\n", NULL, false },
	{ "client", TABLE(client_keys), NAMED(struct fg_conf_client, clients, n_clients), false,
	  finish_client,
	  "# [client NAME]: who may call the API; any number.  Each needs a token (bearer)\n"
	  "# or a secret (Standard Webhooks signature over the request), or both.\n",
	  "ops-center", true },
	{ "incidents", TABLE(incidents_keys), false, 0, 0, 0, false, NULL,
	  "# The incident lifecycle (docs/lifecycle.md).\n", NULL, false },
	{ "escalation", TABLE(escalation_keys), false, 0, 0, 0, false, finish_escalation,
	  "# Three-tier grid escalation while an incident waits for a dispatch: level 0 is\n"
	  "# the small grid, then medium grid, large grid, fire brigade duty desk.  Each\n"
	  "# hazard class lists up to three times, counted from the start of the wait\n"
	  "# (docs/lifecycle.md).\n", NULL, false },
	{ "snapshots", TABLE(snapshots_keys), false, 0, 0, 0, false, NULL,
	  "# Pictures cameras push with their events (docs/cameras.md): kept under a size and\n"
	  "# age quota, referenced from webhooks, served by GET /v1/snapshots/<sha256>.\n",
	  NULL, false },
	{ "gb26875", TABLE(gb26875_keys), NAMED(struct fg_conf_gb26875, gb26875, n_gb26875), false,
	  NULL,
	  "# [gb26875 NAME]: a TCP listener for GB/T 26875.3-2011 user information transmission\n"
	  "# devices (UITDs); any number.  Every data frame is confirmed after it is stored.\n"
	  "# Frames go to the [source] whose topics match gb26875/NAME/<transmitter address>\n"
	  "# (plugin = gb26875, topics = gb26875/NAME/#).\n",
	  "uitd", true },
	{ "modbus-bus", TABLE(modbus_bus_keys),
	  NAMED(struct fg_conf_modbus_bus, modbus_buses, n_modbus_buses), false,
	  finish_modbus_bus,
	  "# [modbus-bus NAME]: a Modbus TCP endpoint or RTU serial line, polled by a\n"
	  "# worker thread of its own (docs/modbus.md); any number.\n",
	  "shed-b3", true },
	{ "modbus-device", TABLE(modbus_device_keys),
	  NAMED(struct fg_conf_modbus_device, modbus_devices, n_modbus_devices),
	  offsetof(struct fg_conf_modbus_device, opts), NULL,
	  "# [modbus-device NAME]: a polled device; NAME is its device id.  Other keys\n"
	  "# are options of its plugin: thresholds (see `firegridctl plugins`).\n",
	  "b3-port07", true },
	{ "interlock", TABLE(interlock_keys),
	  NAMED(struct fg_conf_interlock, interlocks, n_interlocks), false, NULL,
	  "# [interlock NAME]: cut charging power locally when an alarm comes in;\n"
	  "# never restored automatically (`firegridctl interlock restore NAME`).\n"
	  "# A rule needs `from` (Modbus devices) or `trigger_devices` (any source).\n",
	  "shed-b3", true },
};
#define N_SECTIONS (sizeof(sections) / sizeof(sections[0]))

/* ------------------------------------------------------------------------ */
/* Value checks                                                              */
/* ------------------------------------------------------------------------ */

__attribute__((format(printf, 3, 4)))
static int reason(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int check_name(const char *v, char *err, size_t errlen)
{
	size_t n = strlen(v);
	if (n > NAME_MAX_LEN)
		return reason(err, errlen, "longer than %d characters", NAME_MAX_LEN);
	if (strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != n)
		return reason(err, errlen, "'%s' may only contain letters, digits, '.', '_' and '-'", v);
	return 0;
}

static int check_topic(const char *v, char *err, size_t errlen)
{
	if (mosquitto_validate_utf8(v, (int)strlen(v)) != MOSQ_ERR_SUCCESS ||
	    mosquitto_sub_topic_check(v) != MOSQ_ERR_SUCCESS)
		return reason(err, errlen, "'%s' is not a valid MQTT topic filter", v);
	return 0;
}

static int check_url(const char *v, char *err, size_t errlen)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL;
	int r = 0;

	if (!u)
		return -ENOMEM;
	if (curl_url_set(u, CURLUPART_URL, v, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host)
		r = reason(err, errlen, "'%s' is not a valid URL", v);
	else if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)
		r = reason(err, errlen, "'%s' must start with http:// or https://", v);
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return r;
}

/* Never quotes the value: it is a secret. */
static int check_webhook_secret(const char *v, char *err, size_t errlen)
{
	static const char prefix[] = "whsec_";
	const size_t max_b64 = 4 * ((SECRET_MAX_BYTES + 2) / 3);
	uint8_t key[FG_SIGN_KEY_MAX];
	size_t n = 0;

	if (strncmp(v, prefix, strlen(prefix)) != 0)
		return reason(err, errlen, "expected whsec_ followed by base64");
	if (strlen(v + strlen(prefix)) > max_b64)
		return reason(err, errlen, "key longer than %d bytes", SECRET_MAX_BYTES);
	int r = fg_sign_key_decode(v, key, &n);
	OPENSSL_cleanse(key, sizeof(key));
	if (r < 0)
		return reason(err, errlen, "the part after whsec_ is not valid base64");
	if (n < SECRET_MIN_BYTES || n > SECRET_MAX_BYTES)
		return reason(err, errlen, "key is %zu bytes, expected %d..%d", n, SECRET_MIN_BYTES,
		              SECRET_MAX_BYTES);
	return 0;
}

static int check_listen(const char *v, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	if (fg_http_addr_parse(v, &ss) < 0)
		return reason(err, errlen, "'%.64s' is not ADDR:PORT or [IPV6]:PORT with an IP "
		              "literal and a port in 1..65535", v);
	if (fg_http_addr_port(&ss) == 0)
		return reason(err, errlen, "'%.64s': port 0 is not a fixed port", v);
	return 0;
}

/* Never quotes the value: it is a secret. */
/* Goes into a quoted-string of WWW-Authenticate as is. */
static int check_realm(const char *v, char *err, size_t errlen)
{
	size_t n = strlen(v);
	if (n < 1 || n > 64)
		return reason(err, errlen, "a realm has 1..64 characters, this one %zu", n);
	for (const char *p = v; *p; p++)
		if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20 || *p == 0x7f)
			return reason(err, errlen, "a realm may not contain quotes, backslashes or "
			              "control characters");
	return 0;
}

static int check_token(const char *v, char *err, size_t errlen)
{
	size_t n = strlen(v);
	if (n < 16 || n > 256)
		return reason(err, errlen, "a token has 16..256 characters, this one %zu", n);
	for (const char *p = v; *p; p++)
		if (*p <= ' ' || *p > '~')
			return reason(err, errlen, "a token is printable ASCII without spaces");
	return 0;
}

static int check_tier(const char *v, char *err, size_t errlen)
{
	int64_t ms;
	if (fg_parse_duration_ms(v, &ms) < 0 || ms < 1000 || ms > 30LL * 86400000)
		return reason(err, errlen, "expected durations in 1s..30d, got '%.32s'", v);
	return 0;
}

static int check_scope(const char *v, char *err, size_t errlen)
{
	static const char *const scopes[] = { FG_HTTP_SCOPE_READ, FG_HTTP_SCOPE_ACTIONS,
	                                      FG_HTTP_SCOPE_INGEST, FG_HTTP_SCOPE_METRICS };
	for (size_t i = 0; i < FG_ARRAY_SIZE(scopes); i++)
		if (strcmp(v, scopes[i]) == 0)
			return 0;
	return reason(err, errlen, "expected read, actions, ingest or metrics, got '%.48s'", v);
}

static int check_modbus_entry(const char *v, char *err, size_t errlen)
{
	struct fg_modbus_entry_text e;
	return fg_modbus_entry_parse(v, &e, err, errlen);
}

static int check_modbus_scale(const char *v, char *err, size_t errlen)
{
	char name[FG_MODBUS_NAME_MAX + 1];
	double d;
	return fg_modbus_scale_parse(v, name, sizeof(name), &d, err, errlen);
}

static int check_modbus_order(const char *v, char *err, size_t errlen)
{
	char name[FG_MODBUS_NAME_MAX + 1];
	fg_modbus_order o;
	return fg_modbus_order_parse(v, name, sizeof(name), &o, err, errlen);
}

static int check_coil(const char *v, char *err, size_t errlen)
{
	int64_t n;
	if (fg_parse_int(v, &n) < 0 || n < 0 || n > 65535)
		return reason(err, errlen, "'%s' is not a coil address 0..65535", v);
	return 0;
}

/* Matched exactly against device ids and topics: a wildcard would let one
 * mistyped line cut power on alarms from anywhere. */
static int check_trigger_device(const char *v, char *err, size_t errlen)
{
	size_t n = strlen(v);
	if (n > 255 || mosquitto_validate_utf8(v, (int)n) != MOSQ_ERR_SUCCESS)
		return reason(err, errlen, "'%.40s' is not a device id or topic (UTF-8, at most 255 "
		              "bytes)", v);
	if (strpbrk(v, "+#*"))
		return reason(err, errlen, "'%s': wildcards are not accepted, name each detector", v);
	return 0;
}

static int check_trigger_kind(const char *v, char *err, size_t errlen)
{
	static const char *const ok[] = { "smoke", "heat", "overtemp", "overcurrent",
	                                  "residual_current" };
	for (size_t i = 0; i < FG_ARRAY_SIZE(ok); i++)
		if (strcmp(v, ok[i]) == 0)
			return 0;
	return reason(err, errlen, "'%s' is not smoke, heat, overtemp, overcurrent or "
	              "residual_current", v);
}

/* ------------------------------------------------------------------------ */
/* Typed access to one key's field                                           */
/* ------------------------------------------------------------------------ */

#define FIELD(block, off, type) ((type *)(void *)((char *)(block) + (off)))

struct list {
	char **items;
	size_t n;
};

static struct list *key_list(const struct conf_key *k, void *block)
{
	return FIELD(block, k->o.offset, struct list);
}

static void key_reset(const struct conf_key *k, void *block)
{
	if (k->choices) {
		*FIELD(block, k->o.offset, int) = 0;
	} else if (k->flags & K_LIST) {
		struct list *ls = key_list(k, block);
		for (size_t i = 0; i < ls->n; i++)
			free(ls->items[i]);
		free(ls->items);
		ls->items = NULL;
		ls->n = 0;
	} else {
		char **s = FIELD(block, k->o.offset, char *);
		if (k->o.type == FG_OPT_STRING && (k->flags & K_SECRET) && *s)
			OPENSSL_cleanse(*s, strlen(*s));
		fg_option_reset(&k->o, block);
	}
}

static bool key_empty(const struct conf_key *k, void *block)
{
	if (k->flags & K_LIST)
		return key_list(k, block)->n == 0;
	if (!k->choices && k->o.type == FG_OPT_STRING)
		return *FIELD(block, k->o.offset, char *) == NULL;
	return false;
}

/* "error, warning, info, debug" */
static char *choice_names(const struct conf_key *k, char *buf, size_t len)
{
	buf[0] = '\0';
	for (const struct choice *c = k->choices; c->name; c++) {
		size_t n = strlen(buf);
		snprintf(buf + n, len - n, "%s%s", n ? ", " : "", c->name);
	}
	return buf;
}

static int set_choice(const struct conf_key *k, void *block, const char *value, char *err,
                      size_t errlen)
{
	char names[96];
	for (const struct choice *c = k->choices; c->name; c++) {
		if (strcmp(c->name, value) == 0) {
			*FIELD(block, k->o.offset, int) = c->value;
			return 0;
		}
	}
	return reason(err, errlen, "expected one of %s, got '%.48s'",
	              choice_names(k, names, sizeof(names)), value);
}

/* Split on blanks and commas; every item is checked before any is kept. */
static int append_list(const struct conf_key *k, void *block, const char *value, char *err,
                       size_t errlen)
{
	static const char seps[] = " \t,";
	struct list *ls = key_list(k, block);
	char *copy = strdup(value), *save = NULL;
	int r = 0;

	if (!copy)
		return -ENOMEM;
	for (char *t = strtok_r(copy, seps, &save); t; t = strtok_r(NULL, seps, &save))
		if (k->check && (r = k->check(t, err, errlen)) < 0)
			goto out;
	strcpy(copy, value);
	for (char *t = strtok_r(copy, seps, &save); t; t = strtok_r(NULL, seps, &save)) {
		char **items = realloc(ls->items, (ls->n + 1) * sizeof(*items));
		if (!items || !(t = strdup(t))) {
			if (items)
				ls->items = items;
			r = -ENOMEM;
			goto out;
		}
		ls->items = items;
		ls->items[ls->n++] = t;
	}
out:
	free(copy);
	return r;
}

/* Parse and store one value (from the file, a secret file or a default). */
static int key_set(const struct conf_key *k, void *block, const char *value, char *err,
                   size_t errlen)
{
	int r;

	if (k->choices)
		return set_choice(k, block, value, err, errlen);
	if (k->flags & K_LIST)
		return append_list(k, block, value, err, errlen);
	if (k->o.type == FG_OPT_STRING) {
		if (!*value) {             /* "key =" leaves an optional string unset */
			key_reset(k, block);
			return 0;
		}
		if ((k->flags & K_PATH) && access(value, R_OK) < 0)
			return reason(err, errlen, "cannot read '%s': %s", value, strerror(errno));
		if (k->check && (r = k->check(value, err, errlen)) < 0)
			return r;
	}
	return fg_options_set(&k->o, block, value, err, errlen);
}

/* ------------------------------------------------------------------------ */
/* Loading                                                                   */
/* ------------------------------------------------------------------------ */

/* One error message, sorted by line before they are joined. */
struct conf_err {
	int line;
	size_t seq;
	char *text;                      /* "FILE:LINE: [section] key: reason" */
};

/* The section being read. */
struct cursec {
	const struct conf_section *def;  /* NULL: before any section */
	void *block;                     /* struct fg_conf, or the source / sink */
	bool skip;                       /* header was rejected: its keys are ignored */
	int line;                        /* of the header; 0 when the section is absent */
	char label[NAME_MAX_LEN + 16];   /* "[sink ops]" for messages */
	int seen[MAX_KEYS];              /* line each key was given on, 0 = not given */
	bool seen_file[MAX_KEYS];        /* ... as KEY_file */
	bool rejected[MAX_KEYS];         /* ... with a value already reported as bad */
	int last;                        /* key index on the previous key line, -1 none */
	char last_name[64];              /* its name as written (inih passes it again
	                                    for continuation lines) */
};

struct loader {
	const char *file;                /* name used in messages */
	const char *text;
	size_t len, pos;

	int line;                        /* number of the current line */
	const char *raw;                 /* the current line as in the text */
	size_t raw_len;
	bool pending;                    /* raw line not yet looked at after inih */
	bool handled;                    /* inih called on_key() for it */

	struct cursec sec;
	int fixed_line[N_SECTIONS];      /* header line of unnamed sections, 0 = absent */
	struct fg_conf *conf;

	bool want_errors;                /* the caller asked for the messages */
	struct conf_err *errs;
	size_t n_errors;
	bool oom;
};

__attribute__((format(printf, 5, 6)))
static void conf_error(struct loader *l, int line, const char *label, const char *key,
                       const char *fmt, ...)
{
	char *why = NULL, *text = NULL;
	va_list ap;

	l->n_errors++;
	if (!l->want_errors)
		return;
	va_start(ap, fmt);
	int r = vasprintf(&why, fmt, ap);
	va_end(ap);
	struct conf_err *errs = realloc(l->errs, l->n_errors * sizeof(*errs));
	if (errs)
		l->errs = errs;
	if (r < 0 || !errs ||
	    asprintf(&text, "%s:%d: %s%s%s%s%s", l->file, line, label ? label : "",
	             label && *label ? (key ? " " : ": ") : "", key ? key : "", key ? ": " : "",
	             why) < 0) {
		if (r >= 0)
			free(why);
		l->n_errors--;
		l->oom = true;
		return;
	}
	free(why);
	l->errs[l->n_errors - 1] = (struct conf_err){ line, l->n_errors, text };
}

static int cmp_err(const void *a, const void *b)
{
	const struct conf_err *x = a, *y = b;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* All messages in line order, newline-separated; frees them. */
static char *join_errors(struct loader *l)
{
	size_t len = 1;
	char *out, *p;

	if (!l->errs)
		return NULL;
	qsort(l->errs, l->n_errors, sizeof(*l->errs), cmp_err);
	for (size_t i = 0; i < l->n_errors; i++)
		len += strlen(l->errs[i].text) + 1;
	p = out = malloc(len);
	for (size_t i = 0; i < l->n_errors; i++) {
		if (out)
			p += sprintf(p, "%s%s", i ? "\n" : "", l->errs[i].text);
		free(l->errs[i].text);
	}
	free(l->errs);
	l->errs = NULL;
	return out;
}

#define sec_error(l, line, key, ...) conf_error(l, line, (l)->sec.label, key, __VA_ARGS__)

/* Line to blame for something a section lacks: its header, else the end. */
static int section_line(const struct loader *l, const struct cursec *sec)
{
	return sec->line ? sec->line : (l->line ? l->line : 1);
}

static int find_key(const struct conf_section *def, const char *name, bool *is_file)
{
	static const char suffix[] = "_file";
	size_t n = strlen(name), sn = strlen(suffix);

	*is_file = false;
	for (size_t i = 0; i < def->n_keys; i++)
		if (strcmp(def->keys[i].o.key, name) == 0)
			return (int)i;
	if (n <= sn || strcmp(name + n - sn, suffix) != 0)
		return -1;
	for (size_t i = 0; i < def->n_keys; i++) {
		const char *k = def->keys[i].o.key;
		if ((def->keys[i].flags & K_SECRET) && strlen(k) == n - sn &&
		    strncmp(k, name, n - sn) == 0) {
			*is_file = true;
			return (int)i;
		}
	}
	return -1;
}

/* Missing required keys, defaults for the rest, then checks across keys. */
static void finish_section(struct loader *l, struct cursec *sec)
{
	const struct conf_section *def = sec->def;
	char err[256];

	for (size_t i = 0; i < def->n_keys; i++) {
		const struct conf_key *k = &def->keys[i];
		if (sec->seen[i]) {
			if ((k->flags & K_REQUIRED) && !sec->rejected[i] && key_empty(k, sec->block))
				sec_error(l, sec->seen[i], k->o.key, "must not be empty");
		} else if (k->flags & K_REQUIRED) {
			sec_error(l, section_line(l, sec), k->o.key, "required key missing%s%s%s",
			          sec->line ? "" : " (there is no ", sec->line ? "" : sec->label,
			          sec->line ? "" : " section)");
		} else if (k->o.default_value &&
		           key_set(k, sec->block, k->o.default_value, err, sizeof(err)) < 0) {
			sec_error(l, section_line(l, sec), k->o.key, "bad built-in default: %s", err);
		}
	}
	if (def->finish)
		def->finish(l, sec);
}

static void close_section(struct loader *l)
{
	if (l->sec.def && !l->sec.skip)
		finish_section(l, &l->sec);
	memset(&l->sec, 0, sizeof(l->sec));
	l->sec.last = -1;
}

static void *add_named(struct loader *l, const struct conf_section *def, const char *name,
                       int line)
{
	char **arr = FIELD(l->conf, def->array_off, char *);
	size_t *n = FIELD(l->conf, def->count_off, size_t);
	char *grown = realloc(*arr, (*n + 1) * def->elem_size);
	char *dup = strdup(name);

	if (grown)
		*arr = grown;
	if (!grown || !dup) {
		free(dup);
		l->oom = true;
		return NULL;
	}
	struct named_head *h = (void *)(grown + *n * def->elem_size);
	memset(h, 0, def->elem_size);
	h->name = dup;
	h->line = line;
	(*n)++;
	return h;
}

static const struct named_head *find_named(struct loader *l, const struct conf_section *def,
                                           const char *name)
{
	char *arr = *FIELD(l->conf, def->array_off, char *);
	size_t n = *FIELD(l->conf, def->count_off, size_t);

	for (size_t i = 0; i < n; i++) {
		const struct named_head *h = (const void *)(arr + i * def->elem_size);
		if (strcmp(h->name, name) == 0)
			return h;
	}
	return NULL;
}

/* A header "[kind NAME]" (text between the brackets) on the current line. */
static void open_section(struct loader *l, const char *text, size_t len)
{
	struct cursec *sec = &l->sec;
	char buf[256], err[200];
	const struct conf_section *def = NULL;

	close_section(l);
	sec->skip = true;
	sec->line = l->line;
	snprintf(buf, sizeof(buf), "%.*s", (int)len, text);
	char *kind = buf + strspn(buf, " \t");
	char *name = kind + strcspn(kind, " \t");
	if (*name)
		*name++ = '\0';
	name += strspn(name, " \t");
	for (size_t n = strlen(name); n && (name[n - 1] == ' ' || name[n - 1] == '\t'); n--)
		name[n - 1] = '\0';
	snprintf(sec->label, sizeof(sec->label), "[%s%s%.*s]", kind, *name ? " " : "",
	         NAME_MAX_LEN, name);

	for (size_t i = 0; i < N_SECTIONS; i++)
		if (strcmp(sections[i].name, kind) == 0)
			def = &sections[i];
	if (!def) {
		char names[160] = "";
		for (size_t i = 0; i < N_SECTIONS; i++) {
			size_t n = strlen(names);
			snprintf(names + n, sizeof(names) - n, "%s%s%s", n ? ", " : "",
			         sections[i].name, sections[i].named ? " NAME" : "");
		}
		sec_error(l, l->line, NULL, "unknown section (expected %s)", names);
		return;
	}
	if (def->named) {
		const struct named_head *dup;
		if (!*name) {
			sec_error(l, l->line, NULL, "needs a name: [%s NAME]", kind);
		} else if (check_name(name, err, sizeof(err)) < 0) {
			sec_error(l, l->line, NULL, "bad name: %s", err);
		} else if ((dup = find_named(l, def, name))) {
			sec_error(l, l->line, NULL, "%s '%s' is already defined at line %d", kind, name,
			          dup->line);
		} else if ((sec->block = add_named(l, def, name, l->line))) {
			sec->def = def;
			sec->skip = false;
		}
		return;
	}
	size_t idx = (size_t)(def - sections);
	if (*name) {
		sec_error(l, l->line, NULL, "takes no name");
	} else if (l->fixed_line[idx]) {
		sec_error(l, l->line, NULL, "section is already defined at line %d",
		          l->fixed_line[idx]);
	} else {
		l->fixed_line[idx] = l->line;
		sec->def = def;
		sec->block = l->conf;
		sec->skip = false;
	}
}

/* A key of a [source] (or [modbus-device]) section that is not ours: kept
 * for the plugin. */
static void add_plugin_opt(struct loader *l, const char *name, const char *value)
{
	struct plugin_opts *src = FIELD(l->sec.block, l->sec.def->plugin_opts, struct plugin_opts);

	for (size_t i = 0; i < src->n_opts; i++) {
		if (strcmp(src->opts[i].key, name) == 0) {
			sec_error(l, l->line, name, "duplicate key (first given at line %d)",
			          src->opts[i].line);
			return;
		}
	}
	struct fg_conf_kv *opts = realloc(src->opts, (src->n_opts + 1) * sizeof(*opts));
	if (!opts) {
		l->oom = true;
		return;
	}
	src->opts = opts;
	struct fg_conf_kv *kv = &opts[src->n_opts];
	kv->key = strdup(name);
	kv->value = strdup(value);
	kv->line = l->line;
	src->n_opts++;
	if (!kv->key || !kv->value)
		l->oom = true;
}

static void on_continuation(struct loader *l, const char *name, const char *value)
{
	struct cursec *sec = &l->sec;
	char err[256];

	if (sec->last >= 0 && (sec->def->keys[sec->last].flags & K_LIST)) {
		if (key_set(&sec->def->keys[sec->last], sec->block, value, err, sizeof(err)) < 0) {
			sec->rejected[sec->last] = true;
			sec_error(l, l->line, name, "%s", err);
		}
		return;
	}
	sec_error(l, l->line, name, "indented line continues the value of '%s'; only lists "
	          "may span lines (remove the indentation)", name);
}

/* Only regular files: a FIFO or a device named by mistake must not block
 * loading (SIGHUP reloads run on the event loop). */
static int read_secret(const char *path, char **ret)
{
	struct stat sb;
	if (stat(path, &sb) < 0)
		return -errno;
	if (!S_ISREG(sb.st_mode))
		return -EINVAL;
	return fg_read_secret_file(path, ret);
}

/* inih's handler: one key = value line, or an indented continuation line. */
static int on_key(void *user, const char *section, const char *name, const char *value)
{
	struct loader *l = user;
	struct cursec *sec = &l->sec;
	char err[256];
	bool is_file;

	l->handled = true;
	if (sec->skip)
		return 1;
	if (!sec->def) {
		conf_error(l, l->line, NULL, name, "key outside of any section");
		return 1;
	}
	bool indented = l->raw_len && (l->raw[0] == ' ' || l->raw[0] == '\t');
	if (indented && sec->last_name[0] && strcmp(name, sec->last_name) == 0) {
		on_continuation(l, name, value);
		return 1;
	}
	snprintf(sec->last_name, sizeof(sec->last_name), "%s", name);
	sec->last = find_key(sec->def, name, &is_file);
	if (sec->last < 0) {
		if (sec->def->plugin_opts)
			add_plugin_opt(l, name, value);
		else
			sec_error(l, l->line, name, "unknown key");
		return 1;
	}

	int i = sec->last;
	const struct conf_key *k = &sec->def->keys[i];
	if (sec->seen[i]) {
		if (sec->seen_file[i] == is_file)
			sec_error(l, l->line, name, "duplicate key (first given at line %d)",
			          sec->seen[i]);
		else
			sec_error(l, l->line, name, "give either %s or %s_file, not both (the other "
			          "is at line %d)", k->o.key, k->o.key, sec->seen[i]);
		return 1;
	}
	sec->seen[i] = l->line;
	sec->seen_file[i] = is_file;

	char *secret = NULL;
	int r = is_file ? read_secret(value, &secret) : 0;
	if (r < 0 && r != -ENOMEM)
		snprintf(err, sizeof(err), "cannot read '%s': %s", value,
		         r == -ENODATA ? "the file is empty" :
		         r == -EINVAL ? "not a regular file" : fg_strerror(r));
	else if (r == 0)
		r = key_set(k, sec->block, secret ? secret : value, err, sizeof(err));
	if (r == -ENOMEM) {
		l->oom = true;
	} else if (r < 0) {
		sec->rejected[i] = true;
		sec_error(l, l->line, name, "%s", err);
	}
	if (secret) {
		OPENSSL_cleanse(secret, strlen(secret));
		free(secret);
	}
	(void)section;   /* ours is tracked from the raw headers, see open_section() */
	return 1;
}

/* A line inih saw but did not pass to on_key(): blank, comment, header or junk. */
static void finish_line(struct loader *l)
{
	if (!l->pending)
		return;
	l->pending = false;
	if (l->handled)
		return;

	const char *s = l->raw, *e = l->raw + l->raw_len;
	if (l->line == 1 && l->raw_len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
		s += 3;   /* inih skips a UTF-8 byte order mark */
	while (s < e && (*s == ' ' || *s == '\t'))
		s++;
	if (s == e || *s == ';' || *s == '#')
		return;
	if (*s != '[') {
		conf_error(l, l->line, NULL, NULL,
		           "expected 'key = value', a [section] header or a comment");
		return;
	}
	const char *close = memchr(s, ']', (size_t)(e - s));
	if (!close) {
		close_section(l);
		l->sec.skip = true;
		conf_error(l, l->line, NULL, NULL, "section header without a closing ']'");
		return;
	}
	open_section(l, s + 1, (size_t)(close - s - 1));
	for (s = close + 1; s < e && (*s == ' ' || *s == '\t'); s++)
		;
	if (s < e && *s != ';' && *s != '#')
		sec_error(l, l->line, NULL, "unexpected text after the section header");
}

/* The key name of a line inih never sees, for the message (or NULL). */
static const char *line_key(const char *s, size_t n, char *buf, size_t len)
{
	const char *eq = memchr(s, '=', n);
	if (!eq)
		return NULL;
	while (s < eq && (*s == ' ' || *s == '\t'))
		s++;
	size_t k = (size_t)(eq - s);
	while (k && (s[k - 1] == ' ' || s[k - 1] == '\t'))
		k--;
	if (k == 0 || k >= len)
		return NULL;
	memcpy(buf, s, k);
	buf[k] = '\0';
	return buf;
}

/*
 * inih's reader: hands out one line at a time.  A line that does not fit
 * inih's buffer (or holds a NUL byte) is reported here and replaced by a
 * blank line, so line numbers stay right and nothing is split.
 */
static char *reader(char *buf, int num, void *stream)
{
	struct loader *l = stream;

	finish_line(l);
	if (l->pos >= l->len || num < 3)
		return NULL;

	const char *s = l->text + l->pos;
	const char *nl = memchr(s, '\n', l->len - l->pos);
	size_t n = nl ? (size_t)(nl - s) : l->len - l->pos;
	l->pos += n + (nl ? 1 : 0);
	if (n && s[n - 1] == '\r')
		n--;
	l->line++;
	l->raw = s;
	l->raw_len = n;
	l->handled = false;

	/* inih needs room for "\r\n\0" after the text. */
	size_t max = (size_t)num - 3;
	char key[64];
	const char *why = NULL;
	if (memchr(s, '\0', n))
		why = "line contains a NUL byte";
	else if (n > max)
		why = "line is too long";
	if (!why) {
		memcpy(buf, s, n);
		memcpy(buf + n, "\n", 2);
		l->pending = true;
		return buf;
	}

	const char *lead = s + strspn(s, " \t");
	if (lead < s + n && *lead == '[') {
		/* A header we cannot read: keep its keys out of the section before. */
		close_section(l);
		l->sec.skip = true;
		conf_error(l, l->line, NULL, NULL, "%s (%zu characters, at most %zu)", why, n, max);
	} else {
		const char *name = line_key(s, n, key, sizeof(key));
		sec_error(l, l->line, name, "%s (%zu characters, at most %zu)%s", why, n, max,
		          n > max ? "; a list can continue on indented lines" : "");
		/* The key was given, badly: no "required key missing" on top. */
		bool is_file;
		int i = name && l->sec.def && !l->sec.skip ? find_key(l->sec.def, name, &is_file) : -1;
		if (i >= 0 && !l->sec.seen[i]) {
			l->sec.seen[i] = l->line;
			l->sec.seen_file[i] = is_file;
			l->sec.rejected[i] = true;
		}
	}
	l->pending = false;
	memcpy(buf, "\n", 2);
	return buf;
}

/* Line where `key` was given, else the section's line. */
static int key_line(const struct loader *l, const struct cursec *sec, const char *key)
{
	bool is_file;
	int i = find_key(sec->def, key, &is_file);
	return i >= 0 && sec->seen[i] ? sec->seen[i] : section_line(l, sec);
}

static void finish_mqtt(struct loader *l, struct cursec *sec)
{
	const struct fg_conf *c = l->conf;

	if (c->mqtt_reconnect_min_ms > c->mqtt_reconnect_max_ms)
		sec_error(l, key_line(l, sec, "reconnect_min"), "reconnect_min",
		          "must not exceed reconnect_max");
	if (!c->mqtt_cert_file != !c->mqtt_key_file)
		sec_error(l, key_line(l, sec, c->mqtt_cert_file ? "cert_file" : "key_file"),
		          c->mqtt_cert_file ? "cert_file" : "key_file",
		          "cert_file and key_file go together");
}

static void finish_client(struct loader *l, struct cursec *sec)
{
	const struct fg_conf_client *c = sec->block;

	if (!c->token && !c->secret && !c->username)
		sec_error(l, section_line(l, sec), NULL, "needs a token (or token_file), a secret "
		          "(or secret_file), or a username and password");
	if (!c->username != !c->password)
		sec_error(l, key_line(l, sec, c->username ? "username" : "password"),
		          c->username ? "username" : "password", "username and password go together");
	else if (c->password && strlen(c->password) < 12)
		sec_error(l, key_line(l, sec, "password"), "password", "needs 12 or more characters");
	if (c->username && (!c->username[0] || strchr(c->username, ':')))
		sec_error(l, key_line(l, sec, "username"), "username", "must not be empty or contain ':'");
}

static void finish_api(struct loader *l, struct cursec *sec)
{
	const struct fg_conf *c = sec->block;

	if (!c->api_tls_cert_file != !c->api_tls_key_file)
		sec_error(l, key_line(l, sec, c->api_tls_cert_file ? "tls_cert_file" : "tls_key_file"),
		          c->api_tls_cert_file ? "tls_cert_file" : "tls_key_file",
		          "tls_cert_file and tls_key_file go together");
}

static void finish_source(struct loader *l, struct cursec *sec)
{
	const struct fg_conf_source *s = sec->block;

	bool is_file;
	int ti = find_key(sec->def, "topics", &is_file);
	if (!s->n_topics && !s->n_http_clients && !s->stream_url) {
		if (ti >= 0 && sec->seen[ti]) {
			if (!sec->rejected[ti])
				sec_error(l, sec->seen[ti], "topics", "must not be empty");
		} else {
			sec_error(l, section_line(l, sec), "topics", "required key missing (or "
			          "http_clients or stream_url for a source fed over HTTP)");
		}
	}
	if (s->http_auth != FG_HTTP_AUTH_ANY && !s->n_http_clients)
		sec_error(l, key_line(l, sec, "http_auth"), "http_auth",
		          "is for pushes: the source needs http_clients");
	if (s->stream_reconnect_min_ms > s->stream_reconnect_max_ms)
		sec_error(l, key_line(l, sec, "stream_reconnect_min"), "stream_reconnect_min",
		          "must not exceed stream_reconnect_max");
	if (s->stream_url && strncmp(s->stream_url, "http://", 7) != 0 &&
	    strncmp(s->stream_url, "https://", 8) != 0)
		sec_error(l, key_line(l, sec, "stream_url"), "stream_url",
		          "must be an http:// or https:// URL");
}

/* Each tier list: at most three, strictly increasing, parsed into ms. */
static void finish_escalation(struct loader *l, struct cursec *sec)
{
	struct fg_conf *c = l->conf;
	struct fg_conf_tiers *lists[] = { &c->esc_fire, &c->esc_fire_elderly, &c->esc_ebike,
	                                  &c->esc_fire_lane, &c->esc_device_health };
	_Static_assert(FG_ARRAY_SIZE(lists) == FG_ARRAY_SIZE(escalation_keys) - 2,
	               "every tier key is parsed");
	for (size_t i = 0; i < FG_ARRAY_SIZE(lists); i++) {
		struct fg_conf_tiers *t = lists[i];
		const char *key = escalation_keys[i].o.key;
		t->n = 0;
		if (t->n_list > 3) {
			sec_error(l, key_line(l, sec, key), key, "at most three tiers, got %zu",
			          t->n_list);
			continue;
		}
		for (size_t j = 0; j < t->n_list; j++) {
			if (fg_parse_duration_ms(t->list[j], &t->ms[j]) < 0)
				break;    /* already reported by check_tier */
			if (j && t->ms[j] <= t->ms[j - 1]) {
				sec_error(l, key_line(l, sec, key), key, "tiers must grow: %s is not "
				          "after %s", t->list[j], t->list[j - 1]);
				break;
			}
			t->n = j + 1;
		}
	}
}

static void finish_sink(struct loader *l, struct cursec *sec)
{
	const struct fg_conf_sink *s = sec->block;

	if (s->retry_min_ms > s->retry_max_ms)
		sec_error(l, key_line(l, sec, "retry_min"), "retry_min", "must not exceed retry_max");
	if (s->format == FG_FORMAT_PAGERDUTY && !s->routing_key)
		sec_error(l, key_line(l, sec, "format"), "routing_key",
		          "format = pagerduty needs the integration's routing_key");
}

/* Every [gb26875] listener needs a source for its frames. */
static void check_gb26875_sources(struct loader *l)
{
	const struct fg_conf *c = l->conf;
	for (size_t i = 0; i < c->n_gb26875; i++) {
		const struct fg_conf_gb26875 *g = &c->gb26875[i];
		char topic[NAME_MAX_LEN + 32], label[NAME_MAX_LEN + 16];
		bool found = false;
		snprintf(topic, sizeof(topic), "gb26875/%s/000000000000", g->name);
		for (size_t s = 0; s < c->n_sources && !found; s++)
			for (size_t t = 0; t < c->sources[s].n_topics && !found; t++)
				mosquitto_topic_matches_sub(c->sources[s].topics[t], topic, &found);
		snprintf(label, sizeof(label), "[gb26875 %s]", g->name);
		if (!found)
			conf_error(l, g->line, label, NULL, "no [source] takes its frames; add one with "
			           "plugin = gb26875 and topics = gb26875/%s/#", g->name);
	}
}

static void finish_modbus_bus(struct loader *l, struct cursec *sec)
{
	const struct fg_conf_modbus_bus *b = sec->block;

	if (b->type == FG_MODBUS_BUS_TCP && !b->host)
		sec_error(l, section_line(l, sec), "host", "required for type = tcp");
	if (b->type == FG_MODBUS_BUS_RTU && !b->device)
		sec_error(l, section_line(l, sec), "device", "required for type = rtu");
	if (b->reconnect_min_ms > b->reconnect_max_ms)
		sec_error(l, key_line(l, sec, "reconnect_min"), "reconnect_min",
		          "must not exceed reconnect_max");
}

static const struct fg_conf_modbus_bus *find_bus(const struct fg_conf *c, const char *name)
{
	for (size_t i = 0; name && i < c->n_modbus_buses; i++)
		if (strcmp(c->modbus_buses[i].name, name) == 0)
			return &c->modbus_buses[i];
	return NULL;
}

static const struct fg_conf_modbus_device *find_device(const struct fg_conf *c, const char *name)
{
	for (size_t i = 0; name && i < c->n_modbus_devices; i++)
		if (strcmp(c->modbus_devices[i].name, name) == 0)
			return &c->modbus_devices[i];
	return NULL;
}

/* References between the Modbus sections, once all of them are read. */
static const struct fg_conf_client *find_client(const struct fg_conf *c, const char *name)
{
	for (size_t i = 0; i < c->n_clients; i++)
		if (strcmp(c->clients[i].name, name) == 0)
			return &c->clients[i];
	return NULL;
}

/* A source that takes one kind of credentials only: its http_clients must
 * have them.  Digest finds the password by user name, so the user names of
 * its clients must be unique among all clients. */
static void check_push_clients(struct loader *l)
{
	const struct fg_conf *c = l->conf;
	char label[NAME_MAX_LEN + 24];

	for (size_t i = 0; i < c->n_sources; i++) {
		const struct fg_conf_source *s = &c->sources[i];
		if (s->http_auth == FG_HTTP_AUTH_ANY)
			continue;
		snprintf(label, sizeof(label), "[source %s]", s->name);
		for (size_t k = 0; k < s->n_http_clients; k++) {
			const struct fg_conf_client *cl = find_client(c, s->http_clients[k]);
			if (!cl) {
				conf_error(l, s->line, label, "http_clients", "no [client %s] in this file",
				           s->http_clients[k]);
			} else if (s->http_auth == FG_HTTP_AUTH_BEARER ? !cl->token : !cl->password) {
				conf_error(l, s->line, label, "http_clients", "[client %s] has no %s, which "
				           "http_auth = %s needs", cl->name,
				           s->http_auth == FG_HTTP_AUTH_BEARER ? "token" : "username and password",
				           http_auths[s->http_auth].name);
			} else if (s->http_auth == FG_HTTP_AUTH_DIGEST) {
				for (size_t j = 0; j < c->n_clients; j++)
					if (&c->clients[j] != cl && c->clients[j].username &&
					    strcmp(c->clients[j].username, cl->username) == 0)
						conf_error(l, s->line, label, "http_clients", "[client %s] shares "
						           "its username with [client %s] (line %d); digest needs it "
						           "unique", cl->name, c->clients[j].name, c->clients[j].line);
			}
		}
	}
}

static void check_modbus_refs(struct loader *l)
{
	const struct fg_conf *c = l->conf;
	char label[NAME_MAX_LEN + 24];

	for (size_t i = 0; i < c->n_modbus_devices; i++) {
		const struct fg_conf_modbus_device *d = &c->modbus_devices[i];
		snprintf(label, sizeof(label), "[modbus-device %s]", d->name);
		const struct fg_conf_modbus_bus *b = find_bus(c, d->bus);
		if (d->bus && !b)
			conf_error(l, d->line, label, "bus", "no [modbus-bus %s] in this file", d->bus);
		if (b && b->type == FG_MODBUS_BUS_RTU && (d->unit < 1 || d->unit > 247))
			conf_error(l, d->line, label, "unit", "RTU unit ids are 1..247, got %lld",
			           (long long)d->unit);
		for (size_t k = 0; k < c->n_sources; k++)
			if (strcmp(c->sources[k].name, d->name) == 0)
				conf_error(l, d->line, label, NULL, "name is already used by the [source] "
				           "at line %d (both name a plugin instance)", c->sources[k].line);
	}
	for (size_t i = 0; i < c->n_interlocks; i++) {
		const struct fg_conf_interlock *il = &c->interlocks[i];
		snprintf(label, sizeof(label), "[interlock %s]", il->name);
		if (il->device && !find_device(c, il->device))
			conf_error(l, il->line, label, "device", "no [modbus-device %s] in this file",
			           il->device);
		for (size_t k = 0; k < il->n_from; k++)
			if (!find_device(c, il->from[k]))
				conf_error(l, il->line, label, "from", "no [modbus-device %s] in this file",
				           il->from[k]);
		if (!il->n_from && !il->n_trigger_devices)
			conf_error(l, il->line, label, "trigger_devices", "a rule needs `from` or "
			           "`trigger_devices` (or both): nothing would trigger it");
	}
}

/* Values derived from others once everything is read. */
static int finish_conf(struct fg_conf *c)
{
	if (!c->plugin_dir && !(c->plugin_dir = strdup(FG_PLUGIN_DIR)))
		return -ENOMEM;
	if (c->db_path && c->state_dir && c->db_path[0] != '/') {
		char *p;
		if (asprintf(&p, "%s/%s", c->state_dir, c->db_path) < 0)
			return -ENOMEM;
		free(c->db_path);
		c->db_path = p;
	}
	if (!c->mqtt_client_id && c->gateway_id &&
	    asprintf(&c->mqtt_client_id, "firegrid-%s", c->gateway_id) < 0) {
		c->mqtt_client_id = NULL;
		return -ENOMEM;
	}
	return 0;
}

static int load_text(const char *name, const char *text, size_t len, struct fg_conf **ret,
                     char **ret_errors)
{
	struct loader l = {
		.file = name, .text = text, .len = len, .sec = { .last = -1 },
		.want_errors = ret_errors != NULL,
	};
	int r;

	l.conf = calloc(1, sizeof(*l.conf));
	if (!l.conf || !(l.conf->path = strdup(name))) {
		l.oom = true;
		goto out;
	}

	r = ini_parse_stream(reader, &l, on_key, &l);
	finish_line(&l);
	if (r > 0 && l.n_errors == 0)
		conf_error(&l, r, NULL, NULL, "syntax error");
	if (r == -2)
		l.oom = true;
	close_section(&l);
	for (size_t i = 0; i < N_SECTIONS; i++) {
		if (!sections[i].named && !l.fixed_line[i]) {
			l.sec.def = &sections[i];
			l.sec.block = l.conf;
			snprintf(l.sec.label, sizeof(l.sec.label), "[%s]", sections[i].name);
			close_section(&l);
		}
	}
	check_gb26875_sources(&l);
	check_modbus_refs(&l);
	check_push_clients(&l);
	if (finish_conf(l.conf) < 0)
		l.oom = true;
out:
	r = l.oom ? -ENOMEM : l.n_errors ? -EINVAL : 0;
	if (r == -ENOMEM)
		conf_error(&l, l.line, NULL, NULL, "out of memory");
	char *errors = join_errors(&l);
	if (r < 0) {
		fg_conf_free(l.conf);
		if (ret_errors)
			*ret_errors = errors;
		return r;
	}
	if (ret_errors)
		*ret_errors = NULL;
	*ret = l.conf;
	return 0;
}

int fg_conf_load_string(const char *name, const char *text, struct fg_conf **ret,
                        char **ret_errors)
{
	if (!name || !text || !ret)
		return -EINVAL;
	return load_text(name, text, strlen(text), ret, ret_errors);
}

int fg_conf_load(const char *path, struct fg_conf **ret, char **ret_errors)
{
	char *text;
	size_t len;

	if (!path || !ret)
		return -EINVAL;
	int r = fg_read_file(path, CONF_MAX_BYTES, &text, &len);
	if (r < 0) {
		if (ret_errors && asprintf(ret_errors, "%s: cannot read the file: %s", path,
		                           r == -EFBIG ? "larger than 1 MiB" : fg_strerror(r)) < 0)
			*ret_errors = NULL;
		return r;
	}
	r = load_text(path, text, len, ret, ret_errors);
	free(text);
	return r;
}

static void free_block(const struct conf_section *def, void *block)
{
	for (size_t i = 0; i < def->n_keys; i++)
		key_reset(&def->keys[i], block);
}

void fg_conf_free(struct fg_conf *conf)
{
	if (!conf)
		return;
	for (size_t i = 0; i < N_SECTIONS; i++) {
		const struct conf_section *def = &sections[i];
		if (!def->named) {
			free_block(def, conf);
			continue;
		}
		char *arr = *FIELD(conf, def->array_off, char *);
		size_t n = *FIELD(conf, def->count_off, size_t);
		for (size_t j = 0; j < n; j++) {
			struct named_head *h = (void *)(arr + j * def->elem_size);
			free_block(def, h);
			free(h->name);
			if (def->plugin_opts) {
				struct plugin_opts *src = FIELD(h, def->plugin_opts, struct plugin_opts);
				for (size_t o = 0; o < src->n_opts; o++) {
					free(src->opts[o].key);
					free(src->opts[o].value);
				}
				free(src->opts);
			}
		}
		free(arr);
	}
	free(conf->path);
	free(conf);
}

/* ------------------------------------------------------------------------ */
/* The documented default config                                             */
/* ------------------------------------------------------------------------ */

/* `commented`: the section is an example; its required keys stay commented
 * out too, or they would land in the section above. */
static void write_key(FILE *f, const struct conf_key *k, bool commented)
{
	char type[112], names[96];

	if (k->choices) {
		snprintf(type, sizeof(type), "one of %s", choice_names(k, names, sizeof(names)));
	} else if (k->flags & K_LIST) {
		snprintf(type, sizeof(type), "list");
	} else {
		fg_options_describe(&k->o, type, sizeof(type));
	}
	fprintf(f, "\n# %s.\n# %s; ", k->o.description, type);
	if (k->flags & K_REQUIRED)
		fprintf(f, "required");
	else if (k->example)
		fprintf(f, "see above");    /* required in some setups (topics) */
	else if (k->o.default_value)
		fprintf(f, "default %s", k->o.default_value);
	else
		fprintf(f, "optional");
	if (k->flags & K_SECRET)
		fprintf(f, "; or %s_file = PATH: the first line of that file", k->o.key);
	fprintf(f, "\n");

	if ((k->flags & K_REQUIRED) || k->example)
		fprintf(f, "%s%s%s = %s\n", commented ? "#" : "", k->o.key,
		        (k->flags & K_SECRET) ? "_file" : "", k->example ? k->example : "");
	else
		fprintf(f, "#%s =%s%s\n", k->o.key, k->o.default_value ? " " : "",
		        k->o.default_value ? k->o.default_value : "");
}

void fg_conf_write_defaults(FILE *f)
{
	fputs("# firegrid configuration (firegridd --config FILE).\n"
	      "#\n"
	      "# Generated by `firegridd --dump-defaults` from the option tables of the\n"
	      "# daemon: every key is listed with its meaning, type and default.  Lines\n"
	      "# starting with '#' or ';' are comments; keys commented out are at their\n"
	      "# default.  Durations take a unit: 500ms, 10s, 5m, 24h, 2d (a bare number\n"
	      "# means seconds).  Booleans: true/false, yes/no, on/off, 1/0.  An empty\n"
	      "# value leaves an optional key unset.  Lines are limited to 197 characters.\n"
	      "# Unknown keys, duplicate keys and bad values are errors naming file:line.\n",
	      f);
	for (size_t i = 0; i < N_SECTIONS; i++) {
		const struct conf_section *def = &sections[i];
		fprintf(f, "\n%s%s[%s%s%s]\n", def->doc, def->example_commented ? "#" : "", def->name,
		        def->named ? " " : "", def->named ? def->example_name : "");
		for (size_t j = 0; j < def->n_keys; j++)
			write_key(f, &def->keys[j], def->example_commented);
	}
}
