/*
 * Event streams firegrid reads from devices: for every [source] with a
 * stream_url, a long-lived HTTP GET (libcurl, digest or basic auth as the
 * device asks, on the loop through curluv.h) whose multipart body
 * (multipart/x-mixed-replace or multipart/mixed: Dahua eventManager
 * attach, Hikvision alertStream) is cut into parts as it arrives.  Each
 * part -- delimiter, headers and body, exactly as on the wire -- goes to
 * the source's plugin as one message (fg_ingest_msg_to): transport
 * "stream", topic the stream URL, headers content-type (the stream's, so
 * the boundary is known) and x-firegrid-peer (the URL's host).  A part is
 * delivered as soon as its Content-Length worth of body has arrived, or
 * else when the next delimiter does.
 *
 * The connection is kept up: when it ends, fails, answers anything but
 * 200, or stays silent for stream_idle_timeout (devices send heartbeats),
 * it is opened again after a capped full-jitter backoff
 * (stream_reconnect_min .. stream_reconnect_max; back to the minimum after
 * a connection that delivered events for a minute).  A part that does not
 * parse is counted and skipped up to the next delimiter; a part over
 * 1 MiB drops the buffer.  Counters: firegrid_stream_parts_total{source},
 * firegrid_stream_disconnects_total{source}, firegrid_stream_errors_total
 * {source}; gauge firegrid_stream_connected{source}.
 *
 * Thread: loop thread only.
 */
#ifndef FG_STREAM_H
#define FG_STREAM_H

#include "conf.h"
#include "ingest.h"

struct uv_loop_s;
typedef struct fg_streams fg_streams;

/* Start a stream for every source of conf with a stream_url.  *ing is read
 * for every part (the daemon replaces its ingest on reload).  Credentials
 * and URLs are copied. */
int fg_streams_new(struct uv_loop_s *loop, const struct fg_conf *conf, fg_ingest **ing,
                   fg_streams **ret);
/* Reload: every stream is reopened with the new settings. */
int fg_streams_set_conf(fg_streams *s, const struct fg_conf *conf);
/* Number of streams connected now (a 200 answer is being read). */
size_t fg_streams_connected(const fg_streams *s);
/* Stop every transfer and close the handles (asynchronously: the loop must
 * run on).  NULL-safe, idempotent. */
void fg_streams_close(fg_streams *s);
/* Free once the loop has run the close callbacks.  NULL-safe. */
void fg_streams_free(fg_streams *s);

#endif
