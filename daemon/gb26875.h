/*
 * GB/T 26875.3-2011 transport: TCP listeners on the loop for user
 * information transmission devices (UITDs, 用户信息传输装置), one per
 * [gb26875 NAME] section.
 *
 * The transport owns the byte stream; the gb26875 plugin decodes one whole
 * frame (plugins/gb26875).  Per connection it
 *   - reassembles frames '@@' ... '##' split or merged across reads (the
 *     length field says where a frame ends; ADU at most 1024 bytes);
 *   - checks '@@', length, '##' and (checksum = true) the sum checksum; a bad
 *     frame is counted (firegrid_gb26875_bad_frames_total{listener}), logged
 *     at a limited rate, never confirmed, and the stream is resynchronised on
 *     the next '@@';
 *   - hands every good frame to on_msg as a message with transport "tcp",
 *     topic "gb26875/<NAME>/<12 hex digits of the source address>", the frame
 *     as payload and a "peer" header;
 *   - answers every data frame (command 2) with a confirm (command 3) that
 *     carries the same serial and version, the addresses swapped, the
 *     gateway's local time and an empty ADU -- but only after the store
 *     transaction holding the frame's events is committed (ack after commit,
 *     as for MQTT PUBACKs).  If the commit fails, the connection is closed
 *     without confirms and the UITD retransmits.  Retransmitted frames (same
 *     serial and content) are recognised by the plugin, never a second
 *     incident.
 * Supervision: a transmitter not heard of for offline_after produces one
 * message on "gb26875/<NAME>/<address>/silent" (payload: seconds of
 * silence), which the plugin turns into `offline`; its next frame, into
 * `online`.  Transmitters known before a restart are read from the plugin's
 * state of the sources that take this listener's topic (its "recent" and
 * "avail" keys) and supervised from start-up.  One connection per
 * transmitter: when it reconnects, the older connection is closed.
 *
 * Thread: loop thread only.  Destruction is asynchronous (uv handles).
 */
#ifndef FG_GB26875_H
#define FG_GB26875_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <uv.h>
#include "conf.h"
#include "firegrid/plugin.h"
#include "store.h"

/* Frame layout constants (GB/T 26875.3-2011, table 1). */
#define FG_GB26875_HEAD_LEN 27      /* '@@' .. command */
#define FG_GB26875_OVERHEAD 30      /* head + checksum + '##' */
#define FG_GB26875_MAX_ADU 1024
#define FG_GB26875_CONFIRM_LEN 30

/* fg_gb26875_frame_find() outcomes. */
enum fg_gb26875_find {
	FG_GB26875_NEED_MORE = 0,   /* no complete frame; buf[0..*ret_off) is garbage */
	FG_GB26875_FRAME = 1,       /* a good frame at *ret_off, *ret_len bytes */
	FG_GB26875_BAD = -1,        /* a bad frame starts at *ret_off: skip its "@@" */
};

/*
 * Find the next frame in buf.  Pure; the reason for BAD (a static string)
 * goes to *ret_why when not NULL.  Garbage before a frame is reported by
 * *ret_off, so the caller can drop it.
 */
enum fg_gb26875_find fg_gb26875_frame_find(const uint8_t *buf, size_t len, bool checksum,
                                           size_t *ret_off, size_t *ret_len,
                                           const char **ret_why);

/* The confirm frame for `frame` (a good frame): same serial and version,
 * addresses swapped, `local` as the time label, command 3, empty ADU. */
void fg_gb26875_confirm(const uint8_t *frame, const struct tm *local,
                        uint8_t out[FG_GB26875_CONFIRM_LEN]);

typedef struct fg_gb26875 fg_gb26875;
typedef void (*fg_gb26875_msg_cb)(void *data, const struct fg_msg *msg);

/*
 * Listen on every [gb26875] section of conf (copied: conf may be freed
 * later).  Returns 0, or -errno when a listener cannot start (the caller
 * logs; what was opened is closed and freed by the loop).  No sections:
 * 0 and *ret = NULL.
 */
int fg_gb26875_new(uv_loop_t *loop, const struct fg_conf *conf, fg_store *st,
                   fg_gb26875_msg_cb on_msg, void *data, fg_gb26875 **ret);

/* Close every listener, connection and timer; frees itself once the last
 * handle is closed, then calls closed_cb (may be NULL).  NULL-safe (then
 * closed_cb runs at once). */
void fg_gb26875_close(fg_gb26875 *g, void (*closed_cb)(void *data), void *data);

/* Whether two configs have the same [gb26875] sections (a reload keeps the
 * listeners and their connections then). */
bool fg_gb26875_conf_equal(const struct fg_conf *a, const struct fg_conf *b);

#endif
