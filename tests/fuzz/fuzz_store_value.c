/*
 * Fuzz the store's value envelope decoder (jiwa_store_value_decode) and its
 * agreement with the write path: a payload jiwa_store_batch_put accepts must
 * always decode after encoding, or `jiwa store check` would call good data
 * corrupt. Invariants (abort on breach):
 *  - decode never reads outside the input and, on success, returns a
 *    version in 1..65535 and a payload that ends exactly at the input's end
 *    and is one well-formed msgpack object (depth <= 15);
 *  - encode(decode(x)) decodes to the same version and payload bytes;
 *  - the input as a payload: accepted by batch_put <=> one whole msgpack
 *    object of depth <= 15; when accepted, its envelope decodes back to it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jiwa/mp.h"
#include "jiwa_store.h"

#define CHECK(c)                                                               \
  do {                                                                         \
    if (!(c))                                                                  \
      abort();                                                                 \
  } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* exact-size copy so ASan sees any overread */
  uint8_t *buf = malloc(size ? size : 1);
  CHECK(buf);
  if (size)
    memcpy(buf, data, size);

  jiwa_store_val_t v;
  if (jiwa_store_value_decode(buf, size, &v) == 0) {
    CHECK(v.version >= 1 && v.version <= JIWA_STORE_VERSION_MAX);
    const uint8_t *p = v.data;
    CHECK(p >= buf && p + v.len == buf + size);
    size_t used = 0;
    CHECK(jiwa_mp_scan(p, v.len, JIWA_MP_MAX_DEPTH - 1, &used) == 0);
    CHECK(used == v.len);
    size_t n = jiwa_store_value_size(v.version, v.len);
    uint8_t *re = malloc(n);
    CHECK(re);
    CHECK(jiwa_store_value_encode(v.version, v.data, v.len, re, n) == n);
    jiwa_store_val_t w;
    CHECK(jiwa_store_value_decode(re, n, &w) == 0);
    CHECK(w.version == v.version && w.len == v.len);
    CHECK(memcmp(w.data, v.data, v.len) == 0);
    free(re);
  }

  /* the input as a payload, through the write path's validation */
  jiwa_store_batch_t *b;
  CHECK(jiwa_store_batch_new(&b) == 0);
  uint32_t version =
      size ? (uint32_t)buf[0] * 257u % JIWA_STORE_VERSION_MAX + 1u : 1u;
  int rc =
      jiwa_store_batch_put(b, JIWA_STORE_DB_KV, "ns\0k", 4, version, buf, size);
  size_t used = 0;
  int whole = size &&
              jiwa_mp_scan(buf, size, JIWA_MP_MAX_DEPTH - 1, &used) == 0 &&
              used == size;
  CHECK((rc == 0) == whole);
  CHECK(jiwa_store_batch_count(b) == (rc == 0 ? 1u : 0u));
  if (rc == 0) {
    size_t n = jiwa_store_value_size(version, size);
    uint8_t *env = malloc(n);
    CHECK(env);
    CHECK(jiwa_store_value_encode(version, buf, size, env, n) == n);
    CHECK(jiwa_store_value_encode(version, buf, size, env, n - 1) == 0);
    jiwa_store_val_t w;
    CHECK(jiwa_store_value_decode(env, n, &w) == 0);
    CHECK(w.version == version && w.len == size);
    CHECK(memcmp(w.data, buf, size) == 0);
    free(env);
  }
  jiwa_store_batch_free(b);
  free(buf);
  return 0;
}
