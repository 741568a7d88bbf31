/* Standard Webhooks signing and verification; see sign.h. */
#include "sign.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/opensslv.h>

#if OPENSSL_VERSION_MAJOR < 3
#error "firegrid needs OpenSSL 3 (EVP_MAC)"
#endif

#define SECRET_PREFIX "whsec_"
#define HMAC_LEN 32                                   /* SHA-256 */
#define SIG_B64_LEN (4 * ((HMAC_LEN + 2) / 3))        /* 44 */

/*
 * A secret is standard (padded) base64.  EVP_DecodeBlock() neither checks
 * nor strips the padding: it reports 3 bytes per 4 characters, so the '='
 * count is taken off by hand, and a length that is not a multiple of 4 is
 * rejected before it gets there.
 */
int fg_sign_key_decode(const char *secret, uint8_t key[FG_SIGN_KEY_MAX], size_t *ret_len)
{
	if (!secret || !key || !ret_len)
		return -EINVAL;
	if (strncmp(secret, SECRET_PREFIX, strlen(SECRET_PREFIX)) == 0)
		secret += strlen(SECRET_PREFIX);

	size_t n = strlen(secret);
	if (n == 0 || n % 4 != 0 || n > 4 * ((FG_SIGN_KEY_MAX + 2) / 3))
		return -EINVAL;

	size_t pad = 0;
	if (secret[n - 1] == '=')
		pad++;
	if (secret[n - 2] == '=')
		pad++;
	/* '=' anywhere but the end, or whitespace EVP_DecodeBlock would skip,
	 * means this is not a clean secret. */
	for (size_t i = 0; i < n - pad; i++)
		if (secret[i] == '=' || secret[i] == ' ' || secret[i] == '\t' ||
		    secret[i] == '\r' || secret[i] == '\n')
			return -EINVAL;

	unsigned char buf[3 * ((FG_SIGN_KEY_MAX + 2) / 3)];
	int len = EVP_DecodeBlock(buf, (const unsigned char *)secret, (int)n);
	if (len < 0 || (size_t)len < pad)
		return -EINVAL;
	len -= (int)pad;
	if (len == 0 || len > FG_SIGN_KEY_MAX)
		return -EINVAL;

	memcpy(key, buf, (size_t)len);
	OPENSSL_cleanse(buf, sizeof(buf));
	*ret_len = (size_t)len;
	return 0;
}

/* HMAC-SHA256 over "<id>.<timestamp>.<body>", streamed so the body is never
 * copied. */
static int sign_raw(const uint8_t *key, size_t key_len, const char *msg_id, int64_t timestamp_s,
                    const char *body, size_t body_len, unsigned char mac[HMAC_LEN])
{
	char ts[24];
	int ts_len = snprintf(ts, sizeof(ts), ".%" PRId64 ".", timestamp_s);
	int r = -EIO;

	EVP_MAC *hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = hmac ? EVP_MAC_CTX_new(hmac) : NULL;
	if (!ctx)
		goto out;

	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	size_t out_len = 0;
	if (EVP_MAC_init(ctx, key, key_len, params) != 1 ||
	    EVP_MAC_update(ctx, (const unsigned char *)msg_id, strlen(msg_id)) != 1 ||
	    EVP_MAC_update(ctx, (const unsigned char *)ts, (size_t)ts_len) != 1 ||
	    (body_len > 0 && EVP_MAC_update(ctx, (const unsigned char *)body, body_len) != 1) ||
	    EVP_MAC_final(ctx, mac, &out_len, HMAC_LEN) != 1 || out_len != HMAC_LEN)
		goto out;
	r = 0;
out:
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(hmac);
	return r;
}

int fg_sign(const uint8_t *key, size_t key_len, const char *msg_id, int64_t timestamp_s,
            const char *body, size_t body_len, char out[FG_SIGN_SIG_MAX])
{
	unsigned char mac[HMAC_LEN];

	if (!key || key_len == 0 || !msg_id || (!body && body_len) || !out)
		return -EINVAL;
	int r = sign_raw(key, key_len, msg_id, timestamp_s, body ? body : "", body_len, mac);
	if (r < 0)
		return r;
	memcpy(out, "v1,", 3);
	EVP_EncodeBlock((unsigned char *)out + 3, mac, HMAC_LEN);   /* NUL-terminates */
	return 0;
}

/*
 * The header is a space-separated list ("v1,abc v1,def v1a,..."), which is
 * how a sender rotating secrets signs with both.  Entries of other versions
 * are skipped.  Only equal-length candidates are compared, and they are
 * compared in constant time, so timing says nothing about the expected
 * signature.
 */
int fg_sign_verify(const uint8_t *key, size_t key_len, const char *msg_id, int64_t timestamp_s,
                   const char *body, size_t body_len, const char *header)
{
	char expected[FG_SIGN_SIG_MAX];

	if (!header)
		return -EBADMSG;
	if (fg_sign(key, key_len, msg_id, timestamp_s, body, body_len, expected) < 0)
		return -EBADMSG;

	const char *want = expected + 3;
	int ok = 0;
	const char *p = header;
	while (*p) {
		while (*p == ' ')
			p++;
		const char *end = p;
		while (*end && *end != ' ')
			end++;
		size_t n = (size_t)(end - p);
		if (n == 3 + SIG_B64_LEN && memcmp(p, "v1,", 3) == 0 &&
		    CRYPTO_memcmp(p + 3, want, SIG_B64_LEN) == 0)
			ok = 1;
		p = end;
	}
	OPENSSL_cleanse(expected, sizeof(expected));
	return ok ? 0 : -EBADMSG;
}
