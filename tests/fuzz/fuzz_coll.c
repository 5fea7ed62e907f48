/*
 * Fuzz the decoders of stored collection bytes (runtime/store/jiwa_coll.c):
 * the record payload (jiwa_coll_record_decode) and the collection image
 * (jiwa_coll_image_verify: the header, then every id, every posting, the
 * field/value tables' lookups and the vindex image). Both read LMDB bytes,
 * which are outside input. The first input byte picks the mode, so one
 * corpus seeds both (0: record, 1: image payload, 2: raw image content
 * wrapped in a bin here). Invariants (abort on breach):
 *  - no read outside the input (exact-size copies: ASan sees overreads);
 *  - a decoded record's text, meta and vector lie inside the input, meta
 *    is one msgpack map, the vector is dim * 4 bytes; decoding with the
 *    decoded dim succeeds again and with dim + 1 fails;
 *  - verify returns 0 or a negative JIWA_E* code.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jiwa/mp.h"
#include "jiwa_coll.h"

#define CHECK(c)                                                               \
  do {                                                                         \
    if (!(c))                                                                  \
      abort();                                                                 \
  } while (0)

static int inside(const void *p, size_t n, const uint8_t *b, size_t len) {
  const uint8_t *q = p;
  return q >= b && n <= len && q - b <= (ptrdiff_t)(len - n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  uint8_t mode = data[0] % 3;
  size_t len = size - 1;
  uint8_t *buf = malloc(len ? len : 1);
  CHECK(buf);
  if (len)
    memcpy(buf, data + 1, len);

  if (mode == 0) {
    jiwa_coll_recview_t rv;
    if (jiwa_coll_record_decode(buf, len, 0, &rv) == 0) {
      CHECK(rv.dim > 0 && rv.vec);
      CHECK(inside(rv.vec, (size_t)rv.dim * 4, buf, len));
      CHECK(!rv.text || inside(rv.text, rv.text_len, buf, len));
      if (rv.meta) {
        CHECK(inside(rv.meta, rv.meta_len, buf, len));
        jiwa_mp_reader_t r;
        jiwa_mp_item_t it;
        jiwa_mp_reader_init(&r, rv.meta, rv.meta_len);
        CHECK(jiwa_mp_next(&r, &it) == 0 && it.type == JIWA_MP_MAP);
      }
      CHECK(jiwa_coll_record_decode(buf, len, rv.dim, NULL) == 0);
      CHECK(jiwa_coll_record_decode(buf, len, rv.dim + 1, NULL) ==
            JIWA_EPROTO);
    }
  } else {
    uint8_t *in = buf;
    size_t inlen = len;
    uint8_t *wrapped = NULL;
    if (mode == 2) { /* content (pad byte, header, sections) as one bin */
      wrapped = malloc(len + 5);
      CHECK(wrapped);
      wrapped[0] = 0xc6;
      wrapped[1] = (uint8_t)(len >> 24);
      wrapped[2] = (uint8_t)(len >> 16);
      wrapped[3] = (uint8_t)(len >> 8);
      wrapped[4] = (uint8_t)len;
      if (len)
        memcpy(wrapped + 5, buf, len);
      in = wrapped;
      inlen = len + 5;
    }
    int rc = jiwa_coll_image_verify(in, inlen);
    CHECK(rc == 0 || rc == JIWA_EPROTO || rc == JIWA_ENOTSUP ||
          rc == JIWA_ENOMEM || rc == JIWA_EINVAL);
    free(wrapped);
  }
  free(buf);
  return 0;
}
