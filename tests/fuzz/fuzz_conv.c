/* The conversation log's decoders of outside bytes (plugins/convlog):
 * the record parser (a tell from the policy, an imported JSONL entry) in
 * its strict and lax modes, the record packer, ISO-8601 times and the
 * time arguments of shadow.report. Invariants (abort on breach):
 *  - a parsed record packs into exactly one msgpack map that parses again,
 *    strictly, to the same user, time, text and answer (import round trip);
 *  - lax parsing never fails on a map that strict parsing accepts;
 *  - an accepted ISO time formats and parses back to the same ms;
 *  - time keys keep their order (digits of a larger time compare larger).
 * First input byte: the mode; the rest is the payload. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conv_record.h"
#include "conv_util.h"

/* conv_util.h's store helpers reach the host table; never called here */
const jiwa_host_t *jiwa__host;

#define CHECK(c)                                                               \
  do {                                                                         \
    if (!(c)) {                                                                \
      fprintf(stderr, "fuzz_conv: %s failed (line %d)\n", #c, __LINE__);       \
      abort();                                                                 \
    }                                                                          \
  } while (0)

static void same_sv(const sv_t *a, const sv_t *b) {
  CHECK(a->set == b->set || (!a->set && b->n == 0));
  if (a->set) {
    CHECK(a->n == b->n);
    CHECK(memcmp(a->p, b->p, a->n) == 0);
  }
}

static void fuzz_record(const uint8_t *d, size_t n) {
  rec_t strict, lax, again;
  char err[200];
  int rs = rec_parse(d, n, 1, &strict, err, sizeof err);
  int rl = rec_parse(d, n, 0, &lax, err, sizeof err);
  if (rs == 0)
    CHECK(rl == 0);
  CHECK(strlen(err) < sizeof err);
  if (rl != 0)
    return;
  if (!lax.has_time)
    lax.time_ms = 0;
  rec_t *r = rs == 0 ? &strict : &lax;
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  rec_pack(r, &w.pk);
  size_t used = 0;
  CHECK(jiwa_mp_scan(w.sbuf.data, w.sbuf.size, JIWA_MP_MAX_DEPTH, &used) == 0);
  CHECK(used == w.sbuf.size);
  int ra = rec_parse(w.sbuf.data, w.sbuf.size, 0, &again, err, sizeof err);
  CHECK(ra == 0);
  CHECK(again.time_ms == r->time_ms);
  CHECK(again.ignored == 0);
  same_sv(&r->user, &again.user);
  same_sv(&r->text, &again.text);
  same_sv(&r->answer, &again.answer);
  if (rs == 0) { /* an import: what was stored imports again */
    CHECK(rec_parse(w.sbuf.data, w.sbuf.size, 1, &again, err, sizeof err) ==
          0);
  }
  jiwa_mp_writer_free(&w);
}

static void fuzz_iso(const uint8_t *d, size_t n) {
  int64_t ms;
  if (convk_iso_parse((const char *)d, n, &ms) == 0) {
    CHECK(ms >= 0);
    char iso[32];
    convk_iso_format(ms, iso);
    int64_t back = -1;
    if (ms < 253402300800000LL) { /* before year 10000 */
      CHECK(convk_iso_parse(iso, strlen(iso), &back) == 0);
      CHECK(back == ms);
    }
    char a[CONVK_DIGITS], b[CONVK_DIGITS];
    convk_digits24(ms, 0xffffffffu, a);
    convk_digits24(ms + 1, 0, b);
    CHECK(memcmp(a, b, CONVK_DIGITS) < 0);
    CHECK(convk_digits_time(a) == ms);
  }
  int64_t t;
  (void)convk_time_arg((const char *)d, n, 1700000000000LL, &t);
  char ub[CONVK_BASE_MAX];
  size_t ul = convk_user_base((const char *)d, n, ub);
  CHECK(ul == 0 || (ul == n + 4 && ul <= CONVK_BASE_MAX));
  CHECK(convk_cut_utf8((const char *)d, n, n / 2) <= n / 2 || n / 2 >= n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  if (data[0] & 1)
    fuzz_iso(data + 1, size - 1);
  else
    fuzz_record(data + 1, size - 1);
  return 0;
}
