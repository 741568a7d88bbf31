/* Unit tests for Standard Webhooks signing (sign.c). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "sign.h"

static int failures;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #c); failures++; } } while (0)

/* The test vector published with the Standard Webhooks specification. */
#define SPEC_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SPEC_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define SPEC_TS 1614265330
#define SPEC_BODY "{\"test\": 2432232314}"
#define SPEC_SIG "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

static uint8_t key[FG_SIGN_KEY_MAX];
static size_t key_len;

static int verify(const char *id, long long ts, const char *body, const char *header)
{
	return fg_sign_verify(key, key_len, id, ts, body, strlen(body), header);
}

static void test_vector(void)
{
	char sig[FG_SIGN_SIG_MAX];
	CHECK(fg_sign_key_decode(SPEC_SECRET, key, &key_len) == 0);
	CHECK(key_len == 24);
	CHECK(key[0] == 0x31 && key[23] == 0xb0);
	CHECK(fg_sign(key, key_len, SPEC_ID, SPEC_TS, SPEC_BODY, strlen(SPEC_BODY), sig) == 0);
	CHECK(strcmp(sig, SPEC_SIG) == 0);

	/* The prefix is optional. */
	uint8_t k2[FG_SIGN_KEY_MAX];
	size_t k2_len = 0;
	CHECK(fg_sign_key_decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", k2, &k2_len) == 0);
	CHECK(k2_len == key_len && memcmp(k2, key, key_len) == 0);
}

static void test_verify(void)
{
	CHECK(verify(SPEC_ID, SPEC_TS, SPEC_BODY, SPEC_SIG) == 0);
	/* Any one matching entry of a list passes (secret rotation). */
	CHECK(verify(SPEC_ID, SPEC_TS, SPEC_BODY,
	             "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= " SPEC_SIG) == 0);
	CHECK(verify(SPEC_ID, SPEC_TS, SPEC_BODY, SPEC_SIG " v1a,whatever") == 0);
	CHECK(verify(SPEC_ID, SPEC_TS, SPEC_BODY, "  " SPEC_SIG "  ") == 0);

	/* Every input is covered by the MAC. */
	CHECK(verify(SPEC_ID, SPEC_TS + 1, SPEC_BODY, SPEC_SIG) == -EBADMSG);
	CHECK(verify("msg_other", SPEC_TS, SPEC_BODY, SPEC_SIG) == -EBADMSG);
	CHECK(verify(SPEC_ID, SPEC_TS, "{\"test\": 2432232315}", SPEC_SIG) == -EBADMSG);
	/* Wrong version tag, truncated, empty, lists without a match. */
	CHECK(verify(SPEC_ID, SPEC_TS, SPEC_BODY, "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=") == -EBADMSG);
	CHECK(verify(SPEC_ID, SPEC_TS, SPEC_BODY, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE") == -EBADMSG);
	CHECK(verify(SPEC_ID, SPEC_TS, SPEC_BODY, "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=") == -EBADMSG);
	CHECK(verify(SPEC_ID, SPEC_TS, SPEC_BODY, "") == -EBADMSG);
	CHECK(verify(SPEC_ID, SPEC_TS, SPEC_BODY, "v1, v1,x") == -EBADMSG);
	CHECK(fg_sign_verify(key, key_len, SPEC_ID, SPEC_TS, SPEC_BODY, strlen(SPEC_BODY), NULL) == -EBADMSG);

	/* A different key does not verify. */
	uint8_t other[FG_SIGN_KEY_MAX];
	size_t other_len = 0;
	CHECK(fg_sign_key_decode("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", other, &other_len) == 0);
	CHECK(fg_sign_verify(other, other_len, SPEC_ID, SPEC_TS, SPEC_BODY, strlen(SPEC_BODY),
	                     SPEC_SIG) == -EBADMSG);

	/* Sign/verify round trip on an empty and a binary-ish body. */
	char sig[FG_SIGN_SIG_MAX];
	CHECK(fg_sign(key, key_len, "id", 0, "", 0, sig) == 0);
	CHECK(fg_sign_verify(key, key_len, "id", 0, "", 0, sig) == 0);
	const char bin[] = { 'a', 0, 'b', '\n' };
	CHECK(fg_sign(key, key_len, "id", -5, bin, sizeof(bin), sig) == 0);
	CHECK(fg_sign_verify(key, key_len, "id", -5, bin, sizeof(bin), sig) == 0);
	CHECK(fg_sign_verify(key, key_len, "id", -5, bin, 1, sig) == -EBADMSG);
}

static void test_bad_secrets(void)
{
	uint8_t k[FG_SIGN_KEY_MAX];
	size_t n = 12345;
	const char *bad[] = {
		"", "whsec_", "whsec_abc", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS!",
		"whsec_MfKQ9r8G KYqrTwjUPD8ILPZIo2LaLaS", "whsec_=AAA", "whsec_A=AA",
		"whsec_====", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = fg_sign_key_decode(bad[i], k, &n);
		if (r != -EINVAL)
			fprintf(stderr, "secret %zu accepted\n", i);
		CHECK(r == -EINVAL);
		CHECK(n == 12345);   /* untouched on failure */
	}
	CHECK(fg_sign_key_decode(NULL, k, &n) == -EINVAL);

	/* Longest allowed key (128 bytes = 172 base64 chars) and one longer. */
	char s[300] = "whsec_";
	memset(s + 6, 'A', 172);
	s[6 + 172] = '\0';
	s[6 + 171] = '=';                 /* 172 chars with one '=' -> 128 bytes */
	CHECK(fg_sign_key_decode(s, k, &n) == 0 && n == 128);
	memset(s + 6, 'A', 176);
	s[6 + 176] = '\0';
	CHECK(fg_sign_key_decode(s, k, &n) == -EINVAL);

	/* Padding handled: 1 and 2 '=' give 2 and 1 trailing bytes. */
	CHECK(fg_sign_key_decode("whsec_AAE=", k, &n) == 0 && n == 2 && k[1] == 1);
	CHECK(fg_sign_key_decode("whsec_AQ==", k, &n) == 0 && n == 1 && k[0] == 1);

	char sig[FG_SIGN_SIG_MAX];
	CHECK(fg_sign(k, 0, "id", 1, "x", 1, sig) == -EINVAL);
	CHECK(fg_sign(k, 1, NULL, 1, "x", 1, sig) == -EINVAL);
}

int main(void)
{
	test_vector();
	test_verify();
	test_bad_secrets();
	if (failures)
		fprintf(stderr, "%d check(s) failed\n", failures);
	return failures ? 1 : 0;
}
