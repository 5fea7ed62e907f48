/*
 * bench_rag: cultural_rag `rag.query` and golden_cache `golden.lookup`
 * through the plugin harness (private store, hash embedder, dim 512),
 * against a bare collection search of the same texts in the same run.
 *
 *  - cultural: the 520 starter insights (config/knowledge), 30 queries in
 *    three languages (markers, neutral questions) asked round robin;
 *  - golden: the 30 starter examples + N synthetic entries (default 1000,
 *    3 texts each) via golden.import; lookups that hit exactly, hit
 *    semantically, and miss.
 * For each: the time inside the plugin (the reply's took_us: detection,
 * embedding, search, guard, formatting, reply packing), the round trip of
 * an ask through the harness (thread hop + wake-up included), and as
 * baselines the bare jiwa_coll_search (embed + search, k and filters as
 * the plugin uses them) and the round trip of an ask the plugin refuses at
 * once. p50/p99 in microseconds, ratios plugin / bare search.
 *
 * Usage: bench_rag [ROUNDS [SYNTHETIC]]   (defaults 5000 1000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jiwa/harness.h"
#include "jiwa/mp.h"
#include "jiwa_coll.h"

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

typedef struct {
  double *v;
  size_t n;
} samples_t;

static double pct(samples_t *s, double p) {
  qsort(s->v, s->n, sizeof *s->v, cmp_d);
  size_t i = (size_t)(p * (double)(s->n - 1) + 0.5);
  return s->v[i];
}

static void row(const char *name, samples_t *s, double base50) {
  double p50 = pct(s, 0.50), p99 = pct(s, 0.99);
  if (base50 > 0)
    printf("  %-44s p50 %8.1f us  p99 %8.1f us  (x%.2f of the baseline "
           "p50)\n",
           name, p50, p99, p50 / base50);
  else
    printf("  %-44s p50 %8.1f us  p99 %8.1f us\n", name, p50, p99);
}

static void die(const char *what, const char *err) {
  fprintf(stderr, "bench_rag: %s: %s\n", what, err);
  exit(1);
}

static void ask_body(jiwa_harness_t *h, const char *type, const void *b,
                     size_t len, jiwa_harness_reply_t *r) {
  if (jiwa_harness_ask(h, type, b, len, 60000, r))
    die(type, "ask failed");
}

static int64_t reply_int(const jiwa_harness_reply_t *r, const char *k) {
  int64_t v = -1;
  jiwa_msg_get_int(r->final, k, &v);
  return v;
}

static int reply_bool(const jiwa_harness_reply_t *r, const char *k) {
  size_t len;
  const void *b = jiwa_msg_body(r->final, &len);
  int v = 0;
  jiwa_mp_get_bool(b, len, k, &v);
  return v;
}

static const char *reply_str(const jiwa_harness_reply_t *r, const char *k,
                             char *buf, size_t cap) {
  size_t len;
  const void *b = jiwa_msg_body(r->final, &len);
  if (jiwa_mp_get_strcpy(b, len, k, buf, cap))
    buf[0] = '\0';
  return buf;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static void empty_body(jiwa_mp_writer_t *w) {
  jiwa_mp_writer_init(w);
  msgpack_pack_map(&w->pk, 0);
}

/* Poll a stats ask until the seed import is over. */
static void wait_seed(jiwa_harness_t *h, const char *type) {
  jiwa_mp_writer_t w;
  empty_body(&w);
  for (int i = 0; i < 60000; i++) {
    jiwa_harness_reply_t r;
    char seed[32];
    ask_body(h, type, w.sbuf.data, w.sbuf.size, &r);
    int done = (strcmp(reply_str(&r, "seed", seed, sizeof seed), "done") ==
                    0 ||
                strcmp(seed, "none") == 0) &&
               !reply_bool(&r, "busy") && reply_int(&r, "writes_pending") <= 0;
    jiwa_harness_reply_free(&r);
    if (done)
      break;
    sleep_ms(5);
  }
  jiwa_mp_writer_free(&w);
}

/* The round trip of an ask the plugin refuses at once. */
static void bench_nop(jiwa_harness_t *h, int rounds, samples_t *s) {
  jiwa_mp_writer_t w;
  empty_body(&w);
  for (int i = 0; i < rounds; i++) {
    jiwa_harness_reply_t r;
    double t0 = now_us();
    ask_body(h, "bench.nop", w.sbuf.data, w.sbuf.size, &r);
    s->v[s->n++] = now_us() - t0;
    jiwa_harness_reply_free(&r);
  }
  jiwa_mp_writer_free(&w);
}

static const char *const RAG_Q[][2] = {
    {"aku malu nih, mau tanya soal visa", "id"},
    {"mi vergogno un po' a chiedere", "it"},
    {"I'm a bit embarrassed to ask about my KITAS", "en"},
    {"sungkan mau tanya soal pajak ke atasan", "id"},
    {"my wife's family expects us at the ceremony", "en"},
    {"scusate il disturbo, una domanda sul visto", "it"},
    {"rapatnya jam karet lagi, gimana ya", "id"},
    {"what should I bring to the temple for odalan", "en"},
    {"la famiglia di mia moglie vuole una cerimonia", "it"},
    {"gak enak sama mertua kalau nolak", "id"},
    {"What is the minimum capital for a PT PMA?", "en"},
    {"Berapa modal minimal untuk PT PMA?", "id"},
    {"Qual è il capitale minimo per una PT PMA?", "it"},
    {"how do I renew my passport at the embassy", "en"},
    {"is it rude to say no to my landlord directly", "en"},
    {"quanto costa il KITAS per pensionati", "it"},
    {"mohon maaf, boleh tanya cara urus NPWP?", "id"},
    {"we are worried about Nyepi and our villa guests", "en"},
    {"sono preoccupato per il mio socio indonesiano", "it"},
    {"kecewa banget sama notaris", "id"},
};
#define NRAG (sizeof RAG_Q / sizeof RAG_Q[0])

static void bench_cultural(const char *src, const char *plugdir, int rounds) {
  char so[4096], settings[8192], err[512];
  snprintf(so, sizeof so, "%s/cultural_rag.so", plugdir);
  snprintf(settings, sizeof settings,
           "{ seed_files = { '%s/config/knowledge/insights_en.jsonl', "
           "'%s/config/knowledge/insights_id.jsonl', "
           "'%s/config/knowledge/insights_it.jsonl' } }",
           src, src, src);
  jiwa_harness_t *h;
  if (jiwa_harness_open(&h, so, settings, err, sizeof err))
    die("harness", err);
  if (jiwa_harness_add_collection(h, "cultural", "hash", 512, err, sizeof err))
    die("collection", err);
  wait_seed(h, "rag.stats");
  jiwa_coll_t *coll = jiwa_harness_collection(h, "cultural");
  uint64_t count = 0;
  jiwa_coll_count(coll, &count);
  printf("cultural_rag: %llu insights, %d queries round robin over %zu "
         "texts\n",
         (unsigned long long)count, rounds, NRAG);

  samples_t bare = {calloc((size_t)rounds, sizeof(double)), 0};
  samples_t inside = {calloc((size_t)rounds, sizeof(double)), 0};
  samples_t trip = {calloc((size_t)rounds, sizeof(double)), 0};
  samples_t nop = {calloc((size_t)rounds, sizeof(double)), 0};
  jiwa_mp_writer_t bodies[NRAG];
  for (size_t i = 0; i < NRAG; i++) {
    jiwa_mp_writer_init(&bodies[i]);
    msgpack_pack_map(&bodies[i].pk, 3);
    jiwa_mp_put_kv_str(&bodies[i].pk, "query", RAG_Q[i][0]);
    jiwa_mp_put_kv_str(&bodies[i].pk, "lang", RAG_Q[i][1]);
    jiwa_mp_put_kv_int(&bodies[i].pk, "k", 3);
  }
  /* warm up both paths */
  int needed = 0;
  for (size_t i = 0; i < NRAG; i++) {
    jiwa_harness_reply_t r;
    ask_body(h, "rag.query", bodies[i].sbuf.data, bodies[i].sbuf.size, &r);
    needed += reply_bool(&r, "needed");
    jiwa_harness_reply_free(&r);
  }
  for (int i = 0; i < rounds; i++) {
    size_t q = (size_t)i % NRAG;
    /* baseline: the plugin's main search, bare (pool 16, lang filter,
     * dedup, metadata) */
    const char *lv[1] = {RAG_Q[q][1]};
    jiwa_coll_filter_t f = {"lang", lv, 1};
    jiwa_coll_query_t cq = JIWA_COLL_QUERY_INIT;
    cq.text = RAG_Q[q][0];
    cq.k = 16;
    cq.filters = &f;
    cq.nfilters = 1;
    cq.dedup = 0.9f;
    cq.flags = JIWA_COLL_WITH_META;
    jiwa_coll_result_t res;
    double t0 = now_us();
    if (jiwa_coll_search(coll, &cq, &res))
      die("search", jiwa_coll_errmsg());
    bare.v[bare.n++] = now_us() - t0;
    jiwa_coll_result_free(&res);

    jiwa_harness_reply_t r;
    t0 = now_us();
    ask_body(h, "rag.query", bodies[q].sbuf.data, bodies[q].sbuf.size, &r);
    trip.v[trip.n++] = now_us() - t0;
    inside.v[inside.n++] = (double)reply_int(&r, "took_us");
    jiwa_harness_reply_free(&r);
  }
  bench_nop(h, rounds, &nop);
  printf("  (%d of %zu query texts need context)\n", needed, NRAG);
  double b50 = pct(&bare, 0.5);
  row("baseline: bare collection search (k 16)", &bare, 0);
  row("rag.query inside the plugin (took_us)", &inside, b50);
  row("rag.query round trip through the harness", &trip, b50);
  double n50 = pct(&nop, 0.5);
  row("baseline: harness round trip of a refused ask", &nop, 0);
  printf("  rag.query round trip / refused-ask round trip: x%.2f\n",
         pct(&trip, 0.5) / n50);
  for (size_t i = 0; i < NRAG; i++)
    jiwa_mp_writer_free(&bodies[i]);
  free(bare.v);
  free(inside.v);
  free(trip.v);
  free(nop.v);
  jiwa_harness_close(h);
}

static const char *const GOLD_Q[][2] = {
    {"How long does it take to get a KITAS?", "en"},     /* exact */
    {"how many weeks does a KITAS take?", "en"},         /* semantic */
    {"can I extend the visa on arrival?", "en"},         /* semantic */
    {"how much does a KITAS cost?", "en"},               /* miss (intent) */
    {"Kapan batas lapor SPT Tahunan?", "id"},            /* exact */
    {"berapa biaya KITAS suami WNA?", "id"},             /* miss */
    {"quanto tempo serve per il KITAS?", "it"},          /* semantic */
    {"quanto costa il KITAS?", "it"},                    /* miss */
    {"Synthetic question 6 about permits in Canggu?", "en"}, /* exact */
    {"where can I buy a surfboard in Canggu", "en"},     /* miss */
};
#define NGOLD (sizeof GOLD_Q / sizeof GOLD_Q[0])

static void bench_golden(const char *src, const char *plugdir, int rounds,
                         int synthetic) {
  char so[4096], settings[8192], err[512];
  snprintf(so, sizeof so, "%s/golden_cache.so", plugdir);
  snprintf(settings, sizeof settings,
           "{ seed_files = { '%s/config/knowledge/golden_examples.jsonl' }, "
           "flush_ms = 1000 }",
           src);
  jiwa_harness_t *h;
  if (jiwa_harness_open(&h, so, settings, err, sizeof err))
    die("harness", err);
  if (jiwa_harness_add_collection(h, "golden", "hash", 512, err, sizeof err))
    die("collection", err);
  wait_seed(h, "golden.stats");

  /* synthetic entries, in imports of 500 */
  static const char *const topics[] = {"permits", "taxes", "leases",
                                       "banking", "schools", "insurance"};
  static const char *const places[] = {"Ubud", "Canggu", "Denpasar",
                                       "Sanur", "Jakarta", "Surabaya"};
  static const char *const langs[] = {"en", "id", "it"};
  for (int base = 0; base < synthetic; base += 500) {
    jiwa_mp_writer_t w;
    jiwa_mp_writer_init(&w);
    int n = synthetic - base < 500 ? synthetic - base : 500;
    msgpack_pack_map(&w.pk, 1);
    jiwa_mp_put_str(&w.pk, "entries");
    msgpack_pack_array(&w.pk, (size_t)n);
    for (int i = base; i < base + n; i++) {
      char id[64], q[200], p1[200], p2[200], a[200];
      const char *t = topics[i % 6], *pl = places[(i / 6) % 6];
      snprintf(id, sizeof id, "syn-%05d", i);
      snprintf(q, sizeof q, "Synthetic question %d about %s in %s?", i, t, pl);
      snprintf(p1, sizeof p1, "question %d on %s near %s", i, t, pl);
      snprintf(p2, sizeof p2, "%s in %s, case %d", t, pl, i);
      snprintf(a, sizeof a, "Synthetic answer %d.", i);
      msgpack_pack_map(&w.pk, 6);
      jiwa_mp_put_kv_str(&w.pk, "id", id);
      jiwa_mp_put_kv_str(&w.pk, "lang", langs[i % 3]);
      jiwa_mp_put_kv_str(&w.pk, "question", q);
      jiwa_mp_put_kv_str(&w.pk, "answer", a);
      jiwa_mp_put_str(&w.pk, "paraphrases");
      msgpack_pack_array(&w.pk, 2);
      jiwa_mp_put_str(&w.pk, p1);
      jiwa_mp_put_str(&w.pk, p2);
      jiwa_mp_put_str(&w.pk, "tags");
      msgpack_pack_array(&w.pk, 1);
      jiwa_mp_put_str(&w.pk, t);
    }
    jiwa_harness_reply_t r;
    ask_body(h, "golden.import", w.sbuf.data, w.sbuf.size, &r);
    if (jiwa_msg_kind(r.final) != JIWA_MSG_REPLY)
      die("golden.import", "refused");
    jiwa_harness_reply_free(&r);
    jiwa_mp_writer_free(&w);
  }
  jiwa_coll_t *coll = jiwa_harness_collection(h, "golden");
  uint64_t count = 0;
  jiwa_coll_count(coll, &count);
  printf("golden_cache: 30 examples + %d synthetic entries (%llu question "
         "records), %d lookups round robin over %zu texts\n",
         synthetic, (unsigned long long)count, rounds, NGOLD);

  samples_t bare = {calloc((size_t)rounds, sizeof(double)), 0};
  samples_t inside = {calloc((size_t)rounds, sizeof(double)), 0};
  samples_t trip = {calloc((size_t)rounds, sizeof(double)), 0};
  samples_t nop = {calloc((size_t)rounds, sizeof(double)), 0};
  samples_t hit_in = {calloc((size_t)rounds, sizeof(double)), 0};
  samples_t exact_in = {calloc((size_t)rounds, sizeof(double)), 0};
  jiwa_mp_writer_t bodies[NGOLD];
  int hits = 0;
  for (size_t i = 0; i < NGOLD; i++) {
    jiwa_mp_writer_init(&bodies[i]);
    msgpack_pack_map(&bodies[i].pk, 2);
    jiwa_mp_put_kv_str(&bodies[i].pk, "query", GOLD_Q[i][0]);
    jiwa_mp_put_kv_str(&bodies[i].pk, "lang", GOLD_Q[i][1]);
    jiwa_harness_reply_t r;
    ask_body(h, "golden.lookup", bodies[i].sbuf.data, bodies[i].sbuf.size, &r);
    char m[16];
    int hit = reply_bool(&r, "hit");
    hits += hit;
    printf("    %-46s %s\n", GOLD_Q[i][0],
           hit ? reply_str(&r, "match", m, sizeof m) : "miss");
    jiwa_harness_reply_free(&r);
  }
  for (int i = 0; i < rounds; i++) {
    size_t q = (size_t)i % NGOLD;
    const char *lv[1] = {GOLD_Q[q][1]};
    jiwa_coll_filter_t f = {"lang", lv, 1};
    jiwa_coll_query_t cq = JIWA_COLL_QUERY_INIT;
    cq.text = GOLD_Q[q][0];
    cq.k = 5;
    cq.min_score = 0.5f;
    cq.filters = &f;
    cq.nfilters = 1;
    cq.flags = JIWA_COLL_WITH_TEXT | JIWA_COLL_WITH_META;
    jiwa_coll_result_t res;
    double t0 = now_us();
    if (jiwa_coll_search(coll, &cq, &res))
      die("search", jiwa_coll_errmsg());
    bare.v[bare.n++] = now_us() - t0;
    jiwa_coll_result_free(&res);

    jiwa_harness_reply_t r;
    t0 = now_us();
    ask_body(h, "golden.lookup", bodies[q].sbuf.data, bodies[q].sbuf.size, &r);
    trip.v[trip.n++] = now_us() - t0;
    double in = (double)reply_int(&r, "took_us");
    inside.v[inside.n++] = in;
    char m[16];
    if (reply_bool(&r, "hit")) {
      hit_in.v[hit_in.n++] = in;
      if (strcmp(reply_str(&r, "match", m, sizeof m), "exact") == 0)
        exact_in.v[exact_in.n++] = in;
    }
    jiwa_harness_reply_free(&r);
  }
  bench_nop(h, rounds, &nop);
  printf("  (%d of %zu lookup texts hit)\n", hits, NGOLD);
  double b50 = pct(&bare, 0.5);
  row("baseline: bare collection search (k 5)", &bare, 0);
  row("golden.lookup inside the plugin (took_us)", &inside, b50);
  row("  of which hits", &hit_in, b50);
  row("  of which exact hits", &exact_in, b50);
  row("golden.lookup round trip through the harness", &trip, b50);
  double n50 = pct(&nop, 0.5);
  row("baseline: harness round trip of a refused ask", &nop, 0);
  printf("  golden.lookup round trip / refused-ask round trip: x%.2f\n",
         pct(&trip, 0.5) / n50);
  for (size_t i = 0; i < NGOLD; i++)
    jiwa_mp_writer_free(&bodies[i]);
  free(bare.v);
  free(inside.v);
  free(trip.v);
  free(nop.v);
  free(hit_in.v);
  free(exact_in.v);
  jiwa_harness_close(h);
}

int main(int argc, char **argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : 5000;
  int synthetic = argc > 2 ? atoi(argv[2]) : 1000;
  if (rounds < 10 || synthetic < 0) {
    fprintf(stderr, "usage: bench_rag [ROUNDS [SYNTHETIC]]\n");
    return 2;
  }
  const char *src = getenv("JIWA_SOURCE_DIR");
  const char *plug = getenv("JIWA_PLUGIN_OUT");
  if (!src)
    src = JIWA_BENCH_SOURCE_DIR;
  if (!plug)
    plug = JIWA_BENCH_PLUGIN_DIR;
  bench_cultural(src, plug, rounds);
  bench_golden(src, plug, rounds, synthetic);
  return 0;
}
