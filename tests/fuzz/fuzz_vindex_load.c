/*
 * Fuzz the vector index image loader: arbitrary bytes go to
 * jiwa_vindex_view(); an accepted image is searched (graph, exact and
 * filtered paths), fully checked, and, when the check passes, thawed and
 * mutated. Invariants (abort on breach): no crash or out-of-bounds read
 * (the sanitizers watch), hits are live slots sorted best first, a thawed
 * image passes the check again after mutations.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jiwa_vindex.h"

#define CHECK(c)                                                               \
  do {                                                                         \
    if (!(c))                                                                  \
      abort();                                                                 \
  } while (0)

static int odd(uint32_t id, void *ud) {
  (void)ud;
  return id & 1u;
}

static void probe(const jiwa_vindex_t *v, const float *q, int mode) {
  jiwa_vindex_hit_t h[8];
  uint32_t n = 0;
  jiwa_vindex_query_t o;
  memset(&o, 0, sizeof o);
  uint64_t allow[2] = {UINT64_C(0x5555555555555555), 0xff};
  if (mode == 1)
    o.exact = 1;
  if (mode == 2) {
    o.accept = odd;
    o.selectivity = 0.5f;
  }
  if (mode == 3) {
    o.allow = allow;
    o.allow_bits = 128;
  }
  o.ef = mode == 0 ? 1 : 0;
  int rc = jiwa_vindex_search(v, q, 8, &o, h, &n);
  CHECK(rc == 0 || rc == JIWA_ENOMEM);
  CHECK(n <= 8);
  for (uint32_t i = 0; i < n; i++) {
    CHECK(h[i].id < jiwa_vindex_slots(v));
    CHECK(jiwa_vindex_get(v, h[i].id, NULL, NULL) == 0);
    if (mode == 2)
      CHECK(h[i].id & 1u);
    if (mode == 3)
      CHECK(h[i].id < 128 && ((allow[h[i].id / 64] >> (h[i].id % 64)) & 1));
    if (i)
      CHECK(!(h[i].score > h[i - 1].score));
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* the view wants 8-byte alignment: hand it an aligned copy */
  void *buf = malloc(size ? size : 1);
  if (!buf)
    return 0;
  memcpy(buf, data, size);
  jiwa_vindex_t *v = NULL;
  int rc = jiwa_vindex_view(buf, size, &v);
  CHECK(rc == 0 || rc == JIWA_EPROTO || rc == JIWA_ENOTSUP ||
        rc == JIWA_ENOMEM);
  if (rc == JIWA_EPROTO && size >= 192) {
    /* Mutated headers almost never keep their checksum: fix it up so the
     * field checks behind it get fuzzed too. */
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (size_t i = 0; i < 184; i++) {
      h ^= ((uint8_t *)buf)[i];
      h *= UINT64_C(0x100000001b3);
    }
    memcpy((uint8_t *)buf + 184, &h, 8);
    rc = jiwa_vindex_view(buf, size, &v);
    CHECK(rc == 0 || rc == JIWA_EPROTO || rc == JIWA_ENOTSUP ||
          rc == JIWA_ENOMEM);
  }
  if (rc) {
    CHECK(v == NULL);
    free(buf);
    return 0;
  }
  uint32_t dim = jiwa_vindex_dim(v);
  float *q = malloc((size_t)dim * sizeof *q);
  if (!q)
    goto done;
  for (uint32_t i = 0; i < dim; i++)
    q[i] = 1.0f + (float)(i % 5) - (i & 2 ? 2.5f : 0.0f);
  for (int mode = 0; mode < 4; mode++)
    probe(v, q, mode);
  if (jiwa_vindex_check(v) == 0) {
    jiwa_vindex_t *t = NULL;
    rc = jiwa_vindex_thaw(v, &t);
    CHECK(rc == 0 || rc == JIWA_ENOMEM);
    if (t) {
      uint32_t id;
      CHECK(jiwa_vindex_add(t, q, 1, &id) == 0);
      CHECK(jiwa_vindex_check(t) == 0);
      if (jiwa_vindex_slots(t) > 1) {
        uint32_t other = (id + 1) % jiwa_vindex_slots(t);
        rc = jiwa_vindex_delete(t, other);
        CHECK(rc == 0 || rc == JIWA_ENOENT);
        q[0] += 1.0f;
        rc = jiwa_vindex_update(t, id, q);
        CHECK(rc == 0);
      }
      CHECK(jiwa_vindex_check(t) == 0);
      probe(t, q, 0);
      probe(t, q, 2);
      jiwa_vindex_free(t);
    }
  }
  free(q);
done:
  jiwa_vindex_free(v);
  free(buf);
  return 0;
}
