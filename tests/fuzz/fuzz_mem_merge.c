/* Fuzz target for the JIWA memory (runtime/memory/jiwa_memmerge.c).
 * The input is (1) a stored memory to decode — outside bytes — and (2)
 * split at NUL bytes into model outputs: each is validated (or, when
 * rejected, run through the heuristic extractor) and merged, several times
 * and at clock values taken from the input. Invariants: never crashes;
 * the decoder accepts only what re-encodes to the same bytes; after every
 * merge the counts hold their limits and the encoding is at most
 * JIWA_MEMORY_MAX_BYTES and decodes back to the same bytes; the summary
 * stays within its limits. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jiwa/errors.h"
#include "jiwa_heuristic.h"
#include "jiwa_memmerge.h"

/* Big structs are allocated once: the harness must stay fast under ASan. */
static jiwa_memory_t *g_mem, *g_dec;
static jiwa_profile_t *g_prof;

static void stable(const jiwa_memory_t *m) {
  char *a, *b;
  size_t al, bl;
  jiwa_memory_t *d = g_dec;
  if (jiwa_memory_encode(m, &a, &al) || al > JIWA_MEMORY_MAX_BYTES ||
      jiwa_memory_decode(a, al, d) || jiwa_memory_encode(d, &b, &bl) ||
      al != bl || memcmp(a, b, al))
    abort();
  free(a);
  free(b);
}

static void bounds(const jiwa_memory_t *m, int64_t now) {
  if (m->nfacts > JIWA_MEMORY_MAX_FACTS ||
      m->nhistory > JIWA_MEMORY_MAX_HISTORY ||
      m->nsignals > JIWA_MEMORY_MAX_SIGNALS ||
      m->ngoals > JIWA_MEMORY_MAX_GOALS ||
      m->trust.nevidence > JIWA_MEMORY_MAX_EVIDENCE)
    abort();
  for (unsigned i = 0; i < m->nfacts; i++)
    if (!(m->facts[i].conf >= 0 && m->facts[i].conf <= 1))
      abort();
  if (m->trust.set && !(m->trust.level >= 0 && m->trust.level <= 1))
    abort();
  char out[256];
  size_t n = jiwa_memory_summary(m, now, JIWA_LANG_IT, 120, NULL, out,
                                 sizeof out);
  if (n >= sizeof out || strlen(out) != n || jiwa_utf8_chars(out, n) > 120)
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!g_mem) {
    g_mem = malloc(sizeof *g_mem);
    g_dec = malloc(sizeof *g_dec);
    g_prof = malloc(sizeof *g_prof);
    if (!g_mem || !g_dec || !g_prof)
      abort();
  }
  jiwa_memory_t *m = g_mem;
  jiwa_profile_t *p = g_prof;
  /* (1) the input as a stored memory */
  int rc = jiwa_memory_decode(data, size, m);
  if (rc == 0)
    stable(m);
  else if (rc != JIWA_EPROTO && rc != JIWA_ETOOBIG && rc != JIWA_ENOTSUP)
    abort();
  else if (m->nfacts || m->nhistory || m->merges)
    abort(); /* a refused memory is left empty */
  /* (2) the input as model outputs, merged into it */
  uint64_t clock = 1700000000000ULL;
  const char *s = (const char *)data, *end = s + size;
  unsigned chunks = 0;
  while (s < end && chunks < 8) {
    const char *z = memchr(s, 0, (size_t)(end - s));
    size_t len = z ? (size_t)(z - s) : (size_t)(end - s);
    if (jiwa_profile_parse(s, len, p, NULL) != 0) {
      const char *t[] = {s};
      if (jiwa_heuristic_extract(NULL, t, &len, 1, p) != 0)
        abort();
    }
    /* the clock moves by an amount taken from the input, sometimes back */
    uint64_t step = len ? (uint64_t)(unsigned char)s[0] * 3600000ULL : 1;
    for (int rep = 0; rep < 3; rep++) {
      clock += (len > 1 && (unsigned char)s[1] < 16) ? -step / 2 : step;
      if (jiwa_memory_merge(m, p, (int64_t)clock, NULL) != 0)
        abort();
      bounds(m, (int64_t)clock);
    }
    chunks++;
    s += len + 1;
  }
  stable(m);
  return 0;
}
