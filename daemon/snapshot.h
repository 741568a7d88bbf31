/*
 * Snapshots: the pictures cameras push with their events, kept as files
 * under [snapshots] dir (default <state_dir>/snapshots), named by the
 * SHA-256 of their bytes ("<sha256>.jpg" / ".png"), so a picture sent twice
 * is stored once and a name says exactly which bytes it is.
 *
 * Only JPEG and PNG are kept, checked by content, not by what the sender
 * claims: JPEG starts with FF D8 FF and ends with FF D9 (trailing padding
 * of up to 32 bytes allowed), PNG starts with its 8-byte signature and an
 * IHDR chunk and ends with an IEND chunk.  Anything else, or a picture over
 * max_image_bytes, is refused and counted
 * (firegrid_snapshots_rejected_total{reason="not_an_image"|"too_large"|"io"}).
 *
 * Quota: the pictures together stay under max_bytes and none is older than
 * max_age; the oldest go first (firegrid_snapshots_deleted_total{reason=
 * "quota"|"age"}; gauges firegrid_snapshots_bytes, firegrid_snapshots_files).
 * A picture stored again counts as new (its age restarts).
 *
 * Webhooks reference a picture by hash and URL (fg_snapshots_url: [snapshots]
 * base_url + "/v1/snapshots/<sha256>"); GET /v1/snapshots/{sha256} serves
 * it to clients allowed "read".
 *
 * Files are written to a temporary name and renamed, so a reader never sees
 * half a picture.  Thread: loop thread only.
 */
#ifndef FG_SNAPSHOT_H
#define FG_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "conf.h"
#include "http.h"

typedef struct fg_snapshots fg_snapshots;

/* Open (creating) the directory and index the pictures already in it.
 * conf must outlive the store (or be replaced with fg_snapshots_set_conf).
 * -errno when the directory cannot be created or read. */
int fg_snapshots_new(const struct fg_conf *conf, fg_snapshots **ret);
/* New limits and base_url (the directory stays until restart). */
void fg_snapshots_set_conf(fg_snapshots *s, const struct fg_conf *conf);
void fg_snapshots_free(fg_snapshots *s);     /* NULL-safe */

struct fg_snapshot {
	char sha256[65];           /* lower-case hex */
	const char *type;          /* "image/jpeg" or "image/png" */
	size_t bytes;
};

/* The image type of data by content ("image/jpeg", "image/png"), or NULL. */
const char *fg_snapshot_type(const void *data, size_t len);

/* Store a picture (or refresh the same one) and enforce the quota.
 * 0 and *ret; -EINVAL (not a JPEG/PNG), -EFBIG (over max_image_bytes) or
 * another -errno (I/O); every refusal is counted. */
int fg_snapshots_put(fg_snapshots *s, const void *data, size_t len, int64_t now_ms,
                     struct fg_snapshot *ret);

/* "<base_url>/v1/snapshots/<sha256>" into buf. */
void fg_snapshots_url(const fg_snapshots *s, const char *sha256, char *buf, size_t len);

/* How events and incidents reference a stored picture:
 * {"sha256", "url", "type", "bytes"} and "name" when given (new reference;
 * NULL when out of memory). */
json_t *fg_snapshot_ref(const fg_snapshots *s, const struct fg_snapshot *sn, const char *name);

/* Delete pictures over the age limit (and over the size quota); returns how
 * many went.  Called by the daemon's housekeeping. */
int fg_snapshots_sweep(fg_snapshots *s, int64_t now_ms);

/* One picture's bytes (malloc'd) and type; -ENOENT when not kept (or not a
 * valid name), -errno on I/O. */
int fg_snapshots_get(fg_snapshots *s, const char *sha256, char **ret_data, size_t *ret_len,
                     const char **ret_type);

/*
 * A CloudEvents body (cloudevent.h) with the bytes of the pictures it
 * references, for a sink with inline_snapshots_max_bytes: every reference
 * object ({"sha256", "url", ...}) in data.incident.snapshots,
 * data.event.attrs.snapshots and data.event.attrs.plate_snapshots whose
 * picture is still kept and at most max_bytes big gets "data_base64" (the
 * standard base64 of the file, no line breaks), once per picture: at its
 * first reference in that order (a later reference to the same sha256
 * stays URL + hash).  Keys stay sorted and compact like the original.
 * Returns the new body (malloc'd), or NULL when nothing was inlined (no
 * references, all too large or gone, not JSON, or out of memory): then the
 * original body is sent as it is.
 */
char *fg_snapshots_inline(fg_snapshots *s, const char *body, size_t max_bytes);

/* Register GET /v1/snapshots/{sha256} (scope read) on the HTTP server. */
int fg_snapshots_routes(fg_snapshots *s, fg_http *http);

#endif
