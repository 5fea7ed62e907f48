/* Fuzz target for the shadow comparison (runtime/memory/jiwa_compare.c).
 * The input is split at its first two NUL bytes into request, primary and
 * shadow answers (model output); latencies come from the first bytes.
 * Invariants: never crashes; measures are in range; the verdict is one of
 * three with a reason whenever both answers have words; agreement and the
 * disagreement list go together; a text compared with itself keeps its
 * facts with Jaccard 1; the msgpack record is one well-formed map that
 * renders as JSON. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jiwa/errors.h"
#include "jiwa/json.h"
#include "jiwa/mp.h"
#include "jiwa_compare.h"

static void check(const jiwa_compare_result_t *r) {
  if (!(r->jaccard >= 0 && r->jaccard <= 1) ||
      !(r->cosine >= -1 && r->cosine <= 1) ||
      !(r->similarity >= 0 && r->similarity <= 1) ||
      (unsigned)r->verdict > JIWA_VERDICT_LOSE ||
      r->ndisagree > JIWA_COMPARE_MAX_DISAGREE ||
      r->nreasons > JIWA_COMPARE_MAX_REASONS ||
      r->facts_agree != (r->ndisagree == 0) ||
      (r->primary_tokens && r->shadow_tokens && !r->nreasons))
    abort();
  for (unsigned i = 0; i < r->ndisagree; i++)
    for (const char *c = r->disagree[i]; *c; c++)
      if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
        abort();
  char *mp, *json;
  size_t ml, used;
  if (jiwa_compare_to_mp(r, &mp, &ml) || jiwa_mp_scan(mp, ml, 2, &used) ||
      used != ml || jiwa_mp_to_json(mp, ml, &json, NULL))
    abort();
  free(json);
  free(mp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *s = (const char *)data, *end = s + size;
  const char *z1 = memchr(s, 0, size);
  const char *p = z1 ? z1 + 1 : end;
  const char *z2 = z1 ? memchr(p, 0, (size_t)(end - p)) : NULL;
  const char *sh = z2 ? z2 + 1 : p;
  jiwa_compare_input_t in = {
      s,  z1 ? (size_t)(z1 - s) : size,
      size > 2 && data[0] < 64 ? "id" : NULL,
      p,  (size_t)((z2 ? z2 : end) - p),
      size ? data[0] * 10.0 : 0,
      sh, (size_t)(end - sh),
      size > 1 ? data[1] * 10.0 : 0};
  jiwa_compare_result_t r;
  if (jiwa_compare(&in, NULL, NULL, &r) != 0)
    abort();
  check(&r);
  /* the primary against itself */
  in.shadow = in.primary;
  in.shadow_len = in.primary_len;
  if (jiwa_compare(&in, NULL, NULL, &r) != 0)
    abort();
  check(&r);
  if (!r.facts_agree || r.jaccard != 1 ||
      (r.primary_tokens && fabs(r.cosine - 1) > 1e-4))
    abort();
  return 0;
}
