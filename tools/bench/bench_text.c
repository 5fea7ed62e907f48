/*
 * bench_text: texts per second for language detection and the hash
 * embedder, on short chat messages and on long (~2 KB) texts.
 *
 * Each figure is the median of RUNS runs. The baseline, measured in the
 * same run over the same texts, is a plain byte scan (count ASCII letters
 * and fold every byte into a checksum): the cheapest thing that still reads
 * every byte, so the ratio says how many byte-scans one call costs.
 *
 * Usage: bench_text [runs (default 7)]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jiwa_embed.h"
#include "jiwa_lang.h"

static const char *const k_short[] = {
    "aku malu nih",
    "ciao, quanto costa?",
    "berapa lama urus kitas?",
    "grazie mille!",
    "ok thanks",
    "How long does a KITAS take?",
    "kak, udah jadi belum?",
    "vorrei aprire una società a Bali",
    "can I extend my visa on arrival?",
    "makasih banyak ya kak",
    "perfetto, ci vediamo lunedì",
    "my landlord wants two years upfront",
};
#define NSHORT (sizeof k_short / sizeof k_short[0])
#define RUNS_DEFAULT 7

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

typedef struct {
  const char **texts;
  size_t *lens;
  size_t n;
} corpus_t;

static volatile uint64_t g_sink;

static void run_scan(const corpus_t *c, size_t reps) {
  uint64_t acc = 0;
  for (size_t r = 0; r < reps; r++)
    for (size_t i = 0; i < c->n; i++) {
      const uint8_t *p = (const uint8_t *)c->texts[i];
      uint64_t h = 0, letters = 0;
      for (size_t k = 0; k < c->lens[i]; k++) {
        letters += (uint8_t)((p[k] | 0x20) - 'a') < 26;
        h = (h ^ p[k]) * 0x100000001b3ULL;
      }
      acc += h + letters;
    }
  g_sink += acc;
}

static void run_detect(const corpus_t *c, size_t reps) {
  uint64_t acc = 0;
  for (size_t r = 0; r < reps; r++)
    for (size_t i = 0; i < c->n; i++) {
      jiwa_lang_result_t res;
      jiwa_lang_detect(c->texts[i], c->lens[i], &res);
      acc += (uint64_t)res.lang;
    }
  g_sink += acc;
}

static jiwa_embed_t *g_emb;
static float *g_out;

static void run_embed(const corpus_t *c, size_t reps) {
  for (size_t r = 0; r < reps; r++)
    if (jiwa_embed_texts(g_emb, c->texts, c->lens, c->n, g_out) != 0) {
      fprintf(stderr, "embed failed\n");
      exit(1);
    }
  g_sink += (uint64_t)(g_out[0] * 1000.0f);
}

/* Median texts/s of @p runs runs of @p fn, each about 0.2 s. */
static double measure(void (*fn)(const corpus_t *, size_t), const corpus_t *c,
                      int runs) {
  size_t reps = 1;
  for (;;) { /* calibrate */
    double t0 = now();
    fn(c, reps);
    double dt = now() - t0;
    if (dt > 0.05 || reps > (1u << 24))
      break;
    reps *= 2;
  }
  double t0 = now();
  fn(c, reps);
  double per = (now() - t0) / (double)reps;
  size_t want = per > 0 ? (size_t)(0.2 / per) + 1 : reps;
  double rates[32];
  for (int k = 0; k < runs; k++) {
    t0 = now();
    fn(c, want);
    double dt = now() - t0;
    rates[k] = (double)(want * c->n) / dt;
  }
  qsort(rates, (size_t)runs, sizeof rates[0], cmp_double);
  return rates[runs / 2];
}

static void report(const char *what, const corpus_t *c, int runs) {
  double base = measure(run_scan, c, runs);
  double det = measure(run_detect, c, runs);
  double emb = measure(run_embed, c, runs);
  size_t bytes = 0;
  for (size_t i = 0; i < c->n; i++)
    bytes += c->lens[i];
  printf("%-6s texts (%zu, avg %zu B): byte-scan %12.0f/s | detect %10.0f/s "
         "(%.1fx slower) | embed-%u %9.0f/s (%.1fx slower)\n",
         what, c->n, bytes / c->n, base, det, base / det, jiwa_embed_dim(g_emb),
         emb, base / emb);
}

int main(int argc, char **argv) {
  int runs = argc > 1 ? atoi(argv[1]) : RUNS_DEFAULT;
  if (runs < 1 || runs > 31)
    runs = RUNS_DEFAULT;
  if (jiwa_embed_hash_new(0, &g_emb) != 0) {
    fprintf(stderr, "cannot create the hash embedder\n");
    return 1;
  }
  /* short: the chat messages; long: 2 KB made of them */
  const char *st[NSHORT];
  size_t sl[NSHORT];
  for (size_t i = 0; i < NSHORT; i++) {
    st[i] = k_short[i];
    sl[i] = strlen(k_short[i]);
  }
  enum { NLONG = 8, LONG_BYTES = 2048 };
  char *lbuf[NLONG];
  const char *lt[NLONG];
  size_t ll[NLONG];
  for (size_t i = 0; i < NLONG; i++) {
    lbuf[i] = malloc(LONG_BYTES + 64);
    if (!lbuf[i])
      return 1;
    size_t n = 0, k = i;
    while (n < LONG_BYTES) {
      const char *s = k_short[(k++ * 5) % NSHORT];
      size_t m = strlen(s);
      memcpy(lbuf[i] + n, s, m);
      n += m;
      lbuf[i][n++] = ' ';
    }
    lt[i] = lbuf[i];
    ll[i] = n;
  }
  g_out = malloc(NSHORT * jiwa_embed_dim(g_emb) * sizeof *g_out);
  if (!g_out)
    return 1;
  corpus_t cs = {st, sl, NSHORT}, cl = {lt, ll, NLONG};
  printf("bench_text: median of %d runs, single thread\n", runs);
  report("short", &cs, runs);
  report("long", &cl, runs);
  for (size_t i = 0; i < NLONG; i++)
    free(lbuf[i]);
  free(g_out);
  jiwa_embed_destroy(g_emb);
  return 0;
}
