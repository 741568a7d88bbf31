/*
 * Standard Webhooks signatures (https://www.standardwebhooks.com):
 *   webhook-signature: v1,<base64(HMAC-SHA256(key, "<id>.<timestamp>.<body>"))>
 * where key is the base64-decoded part of a "whsec_<base64>" secret.
 * OpenSSL libcrypto does the HMAC and base64; nothing is hand-rolled.
 */
#ifndef FG_SIGN_H
#define FG_SIGN_H

#include <stddef.h>
#include <stdint.h>

#define FG_SIGN_KEY_MAX 128
#define FG_SIGN_SIG_MAX 64   /* "v1," + 44 base64 chars + NUL fits */

/* Decode "whsec_<base64>" (the prefix is optional) into key.  -EINVAL for a
 * bad secret (empty, not base64, longer than FG_SIGN_KEY_MAX). */
int fg_sign_key_decode(const char *secret, uint8_t key[FG_SIGN_KEY_MAX], size_t *ret_len);

/* Compute "v1,<base64>" into out (FG_SIGN_SIG_MAX bytes). */
int fg_sign(const uint8_t *key, size_t key_len, const char *msg_id, int64_t timestamp_s,
            const char *body, size_t body_len, char out[FG_SIGN_SIG_MAX]);

/* Check a webhook-signature header value (space-separated list of
 * "v1,<sig>" entries; any match passes, constant-time compare).
 * Returns 0 when valid, -EBADMSG otherwise. */
int fg_sign_verify(const uint8_t *key, size_t key_len, const char *msg_id, int64_t timestamp_s,
                   const char *body, size_t body_len, const char *header);

#endif
