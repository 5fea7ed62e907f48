/*
 * bench_hybrid — the hybrid chat's fast paths (issue 7).
 *
 *  1. Cultural retrieval: cultural_rag `rag.query` (detect + embed + search
 *     + rank + format) through the plugin harness, at the 520 starter
 *     insights and at N synthetic insights (default 100,000) made by
 *     varying the starter ones with a seeded generator and imported
 *     straight into the collection (jiwa_coll_import, one batch), their
 *     markers told to the plugin with `rag.markers` as the knowledge
 *     import does. Queries: the 119 messages of tests/data/rag/queries.tsv,
 *     with their language. Figures: the time inside the plugin (took_us),
 *     the round trip through the harness, and the baseline in the same
 *     run: a bare jiwa_coll_search of the same text (k 16, language
 *     filter, dedup 0.9: the plugin's main search).
 *  2. Golden hit end to end over the socket: a client → jiwad (the shipped
 *     config/jiwa.lua: 2 workers, two hybrid routers, golden_cache seeded;
 *     models on mockllm) → router → golden_cache → reply, exact and
 *     semantic hits, against the `health` op over the same socket.
 *  3. Chats/s with golden hits on jiwad's 2 workers and C concurrent
 *     clients (one thread and one connection each, one request at a time),
 *     against health/s at the same C.
 *
 * p50/p99 in microseconds; throughput the median of REPEATS runs; ratios
 * against the baselines of the same run. The bench starts mockllm and
 * jiwad itself (temp dir, ephemeral port) from the build dir.
 *
 * Usage: bench_hybrid [--synthetic N] [--rounds N] [--requests N]
 *                     [--clients 1,4,16,32] [--skip-100k]
 */
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jiwa/client.h"
#include "jiwa/harness.h"
#include "jiwa/json.h"
#include "jiwa/mp.h"
#include "jiwa_coll.h"
#include "jiwa_knowledge.h"
#include "bench_util.h"

#define REPEATS 3

static const char *g_src, *g_plugins;
static char g_bindir[PATH_MAX];

static void die(const char *what, const char *why);

/* ---- samples ------------------------------------------------------------------ */

typedef struct {
  uint64_t *v; /* ns */
  size_t n, cap;
} samples_t;

static void s_add(samples_t *s, uint64_t ns) {
  if (s->n == s->cap) {
    s->cap = s->cap ? 2 * s->cap : 1024;
    s->v = realloc(s->v, s->cap * sizeof *s->v);
    if (!s->v)
      die("samples", "out of memory");
  }
  s->v[s->n++] = ns;
}

static double s_pct(samples_t *s, unsigned p) {
  qsort(s->v, s->n, sizeof *s->v, cmp_u64);
  return (double)pctl(s->v, s->n, p) / 1e3;
}

static void row(const char *name, samples_t *s, double base50) {
  double p50 = s_pct(s, 50), p99 = s_pct(s, 99);
  if (base50 > 0)
    printf("  %-50s p50 %8.1f us  p99 %8.1f us  x%.2f\n", name, p50, p99,
           p50 / base50);
  else
    printf("  %-50s p50 %8.1f us  p99 %8.1f us  (baseline)\n", name, p50,
           p99);
}

/* ---- processes ------------------------------------------------------------------ */

static pid_t g_mock = -1, g_jiwad = -1;
static char g_tmp[256];

static void stop(pid_t *pid) {
  if (*pid <= 0)
    return;
  kill(*pid, SIGTERM);
  for (int i = 0; i < 1000; i++) {
    if (waitpid(*pid, NULL, WNOHANG) == *pid) {
      *pid = -1;
      return;
    }
    usleep(10000);
  }
  kill(*pid, SIGKILL);
  waitpid(*pid, NULL, 0);
  *pid = -1;
}

static void rm_tmp(void) {
  if (!g_tmp[0])
    return;
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
  if (system(cmd) != 0)
    fprintf(stderr, "bench_hybrid: could not remove %s\n", g_tmp);
  g_tmp[0] = '\0';
}

static void die(const char *what, const char *why) {
  fprintf(stderr, "bench_hybrid: %s: %s\n", what, why);
  stop(&g_jiwad);
  stop(&g_mock);
  rm_tmp();
  exit(1);
}

static pid_t spawn(char *const argv[], const char *log) {
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    execv(argv[0], argv);
    _exit(127);
  }
  if (pid < 0)
    die("fork", "failed");
  return pid;
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *b = malloc((size_t)n + 1);
  if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
    free(b);
    b = NULL;
  }
  if (b)
    b[n] = '\0';
  fclose(f);
  return b;
}

/* Replace every @p from in @p *s by @p to; returns the count. */
static int replace_all(char **s, const char *from, const char *to) {
  int count = 0;
  size_t fl = strlen(from), tl = strlen(to), off = 0;
  char *at;
  while ((at = strstr(*s + off, from))) {
    size_t pre = (size_t)(at - *s), rest = strlen(at + fl);
    char *n = malloc(pre + tl + rest + 1);
    if (!n)
      die("config", "out of memory");
    memcpy(n, *s, pre);
    memcpy(n + pre, to, tl);
    memcpy(n + pre + tl, at + fl, rest + 1);
    free(*s);
    *s = n;
    off = pre + tl;
    count++;
  }
  return count;
}

/* ---- the labelled queries ---------------------------------------------------- */

typedef struct {
  char lang[4];
  char text[512];
} query_t;

static query_t *load_queries(size_t *n) {
  char path[PATH_MAX + 64];
  snprintf(path, sizeof path, "%s/tests/data/rag/queries.tsv", g_src);
  FILE *f = fopen(path, "r");
  if (!f)
    die(path, "cannot open");
  query_t *v = NULL;
  size_t cnt = 0, cap = 0;
  char line[2048];
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\r\n")] = '\0';
    if (!line[0] || line[0] == '#')
      continue;
    char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
    if (!t2)
      continue;
    if (cnt == cap) {
      cap = cap ? 2 * cap : 128;
      v = realloc(v, cap * sizeof *v);
      if (!v)
        die("queries", "out of memory");
    }
    *t1 = '\0';
    snprintf(v[cnt].lang, sizeof v[cnt].lang, "%.3s", line);
    snprintf(v[cnt].text, sizeof v[cnt].text, "%.511s", t2 + 1);
    cnt++;
  }
  fclose(f);
  *n = cnt;
  return v;
}

/* ---- 1. cultural retrieval ---------------------------------------------------------- */

static void hask(jiwa_harness_t *h, const char *type, const void *b,
                 size_t len, jiwa_harness_reply_t *r) {
  if (jiwa_harness_ask(h, type, b, len, 600000, r))
    die(type, "ask failed");
  if (jiwa_msg_kind(r->final) != JIWA_MSG_REPLY) {
    const char *t = "";
    jiwa_msg_error(r->final, &t);
    die(type, t);
  }
}

static void wait_rag_seeded(jiwa_harness_t *h) {
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 0);
  for (int i = 0; i < 60000; i++) {
    jiwa_harness_reply_t r;
    hask(h, "rag.stats", w.sbuf.data, w.sbuf.size, &r);
    size_t len;
    const void *b = jiwa_msg_body(r.final, &len);
    char seed[32] = "";
    int busy = 1;
    jiwa_mp_get_strcpy(b, len, "seed", seed, sizeof seed);
    jiwa_mp_get_bool(b, len, "busy", &busy);
    jiwa_harness_reply_free(&r);
    if (strcmp(seed, "done") == 0 && !busy)
      break;
    usleep(5000);
  }
  jiwa_mp_writer_free(&w);
}

/* xorshift64*: the synthetic pack is the same on every run */
static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(uint32_t n) {
  g_rng ^= g_rng >> 12;
  g_rng ^= g_rng << 25;
  g_rng ^= g_rng >> 27;
  return (uint32_t)((g_rng * 2685821657736338717ull) >> 33) % n;
}

/* The starter insights, parsed (the base of the synthetic ones). */
static jiwa_knowledge_insight_t *load_starter(size_t *n) {
  static const char *const files[3] = {"insights_en.jsonl",
                                       "insights_id.jsonl",
                                       "insights_it.jsonl"};
  jiwa_knowledge_insight_t *all = NULL;
  size_t total = 0;
  for (int f = 0; f < 3; f++) {
    char path[PATH_MAX + 64], err[320];
    snprintf(path, sizeof path, "%s/config/knowledge/%s", g_src, files[f]);
    char *buf = NULL;
    size_t len = 0, k = 0;
    if (jiwa_knowledge_read_file(path, 64u << 20, &buf, &len))
      die(path, "cannot read");
    jiwa_knowledge_insight_t *v = NULL;
    if (jiwa_knowledge_parse_insights(buf, len, files[f], &v, &k, err,
                                      sizeof err))
      die(path, err);
    all = realloc(all, (total + k) * sizeof *all);
    if (!all)
      die("starter", "out of memory");
    memcpy(all + total, v, k * sizeof *v);
    total += k;
    free(v); /* the elements moved into all (each owns its own mem) */
    free(buf);
  }
  *n = total;
  return all;
}

/* A variant of @p b's text: words dropped, words from other insights of
 * the same language put in, 40..400 characters. */
static void vary_text(const jiwa_knowledge_insight_t *b,
                      const jiwa_knowledge_insight_t *donor, char *out,
                      size_t cap) {
  char words[64][48];
  int nw = 0;
  const char *p = b->text;
  while (*p && nw < 64) {
    while (*p == ' ')
      p++;
    size_t l = strcspn(p, " ");
    if (!l)
      break;
    if (l < sizeof words[0] && rnd(100) >= 12)
      snprintf(words[nw++], sizeof words[0], "%.*s", (int)l, p);
    p += l;
  }
  /* two to four words of a donor text of the same language */
  const char *d = donor->text;
  size_t dl = strlen(d);
  int extra = 2 + (int)rnd(3);
  for (int e = 0; e < extra && nw < 64; e++) {
    size_t at = rnd((uint32_t)dl);
    while (at > 0 && d[at - 1] != ' ')
      at--;
    size_t l = strcspn(d + at, " ");
    if (l && l < sizeof words[0]) {
      int pos = (int)rnd((uint32_t)nw + 1);
      memmove(words[pos + 1], words[pos], (size_t)(nw - pos) * sizeof words[0]);
      snprintf(words[pos], sizeof words[0], "%.*s", (int)l, d + at);
      nw++;
    }
  }
  size_t o = 0;
  out[0] = '\0';
  for (int i = 0; i < nw && o + strlen(words[i]) + 2 < cap && o < 390; i++)
    o += (size_t)snprintf(out + o, cap - o, "%s%s", i ? " " : "", words[i]);
  while (o < 45 && o + 8 < cap) /* keep the 40-character floor */
    o += (size_t)snprintf(out + o, cap - o, " (var)");
}

/* N synthetic insights as knowledge JSONL (each line checked by the real
 * parser afterwards), made from the starter ones. */
static char *make_synthetic(const jiwa_knowledge_insight_t *base, size_t nb,
                            size_t n, size_t *len) {
  size_t cap = n * 900 + 1024, o = 0;
  char *out = malloc(cap);
  if (!out)
    die("synthetic", "out of memory");
  for (size_t i = 0; i < n; i++) {
    const jiwa_knowledge_insight_t *b = &base[rnd((uint32_t)nb)];
    const jiwa_knowledge_insight_t *d = b;
    for (int t = 0; t < 8; t++) { /* a donor in the same language */
      d = &base[rnd((uint32_t)nb)];
      if (strcmp(d->lang, b->lang) == 0)
        break;
    }
    char id[64], title[128], text[512];
    snprintf(id, sizeof id, "ins-%s-syn-%06zu", b->lang, i);
    size_t tl = strlen(b->title);
    if (tl > 64) { /* cut on a character boundary */
      tl = 64;
      while (tl > 0 && ((unsigned char)b->title[tl] & 0xC0) == 0x80)
        tl--;
    }
    snprintf(title, sizeof title, "%.*s %zu", (int)tl, b->title, i);
    vary_text(b, d, text, sizeof text);
    jiwa_mp_writer_t w;
    jiwa_mp_writer_init(&w);
    msgpack_pack_map(&w.pk, b->emotion[0] ? 11 : 10);
    jiwa_mp_put_kv_str(&w.pk, "id", id);
    jiwa_mp_put_kv_str(&w.pk, "lang", b->lang);
    jiwa_mp_put_kv_str(&w.pk, "category", b->category);
    jiwa_mp_put_kv_str(&w.pk, "topic", b->topic);
    jiwa_mp_put_kv_str(&w.pk, "type", "insight");
    if (b->emotion[0])
      jiwa_mp_put_kv_str(&w.pk, "emotion", b->emotion);
    jiwa_mp_put_kv_str(&w.pk, "title", title);
    jiwa_mp_put_kv_str(&w.pk, "text", text);
    jiwa_mp_put_kv_str(&w.pk, "respond", b->respond);
    jiwa_mp_put_str(&w.pk, "markers");
    msgpack_pack_array(&w.pk, b->nmarkers);
    for (uint32_t m = 0; m < b->nmarkers; m++)
      jiwa_mp_put_str(&w.pk, b->markers[m]);
    jiwa_mp_put_kv_str(&w.pk, "source", "synthetic");
    char *js = NULL;
    size_t jl = 0;
    if (jiwa_mp_to_json(w.sbuf.data, w.sbuf.size, &js, &jl))
      die("synthetic", "to JSON");
    jiwa_mp_writer_free(&w);
    if (o + jl + 2 > cap)
      die("synthetic", "buffer");
    memcpy(out + o, js, jl);
    o += jl;
    out[o++] = '\n';
    free(js);
  }
  *len = o;
  return out;
}

/* Import @p v into the collection in one batch, then tell the plugin their
 * markers (rag.markers, in asks of 5,000 entries). */
static void import_insights(jiwa_harness_t *h, jiwa_coll_t *coll,
                            const jiwa_knowledge_insight_t *v, size_t n) {
  jiwa_coll_record_t *recs = calloc(n, sizeof *recs);
  if (!recs)
    die("import", "out of memory");
  for (size_t i = 0; i < n; i++)
    recs[i] = (jiwa_coll_record_t){.id = v[i].id,
                                   .text = v[i].embed,
                                   .text_len = v[i].embed_len,
                                   .meta = v[i].meta,
                                   .meta_len = v[i].meta_len};
  size_t bad = 0;
  if (jiwa_coll_import(coll, recs, n, NULL, NULL, &bad))
    die("jiwa_coll_import", jiwa_coll_errmsg());
  free(recs);
  for (size_t at = 0; at < n; at += 5000) {
    size_t k = n - at < 5000 ? n - at : 5000;
    jiwa_mp_writer_t w;
    jiwa_mp_writer_init(&w);
    msgpack_pack_map(&w.pk, 1);
    jiwa_mp_put_str(&w.pk, "entries");
    msgpack_pack_array(&w.pk, (uint32_t)k);
    for (size_t i = at; i < at + k; i++) {
      msgpack_pack_map(&w.pk, 3);
      jiwa_mp_put_kv_str(&w.pk, "id", v[i].id);
      jiwa_mp_put_kv_str(&w.pk, "lang", v[i].lang);
      jiwa_mp_put_str(&w.pk, "markers");
      msgpack_pack_array(&w.pk, v[i].nmarkers);
      for (uint32_t m = 0; m < v[i].nmarkers; m++)
        jiwa_mp_put_str(&w.pk, v[i].markers[m]);
    }
    jiwa_harness_reply_t r;
    hask(h, "rag.markers", w.sbuf.data, w.sbuf.size, &r);
    jiwa_harness_reply_free(&r);
    jiwa_mp_writer_free(&w);
  }
}

static void bench_retrieval(jiwa_harness_t *h, jiwa_coll_t *coll,
                            const query_t *qs, size_t nq, int rounds,
                            const char *label) {
  uint64_t count = 0;
  jiwa_coll_count(coll, &count);
  printf("cultural retrieval at %llu insights (%s), %d rag.query round "
         "robin over %zu labelled messages:\n",
         (unsigned long long)count, label, rounds, nq);
  jiwa_mp_writer_t *bodies = calloc(nq, sizeof *bodies);
  for (size_t i = 0; i < nq; i++) {
    jiwa_mp_writer_init(&bodies[i]);
    msgpack_pack_map(&bodies[i].pk, 3);
    jiwa_mp_put_kv_str(&bodies[i].pk, "query", qs[i].text);
    jiwa_mp_put_kv_str(&bodies[i].pk, "lang", qs[i].lang);
    jiwa_mp_put_kv_int(&bodies[i].pk, "k", 3);
  }
  samples_t bare = {0}, inside = {0}, trip = {0};
  int needed = 0;
  for (size_t i = 0; i < nq; i++) { /* warm up, count the needed */
    jiwa_harness_reply_t r;
    hask(h, "rag.query", bodies[i].sbuf.data, bodies[i].sbuf.size, &r);
    size_t len;
    const void *b = jiwa_msg_body(r.final, &len);
    int nd = 0;
    jiwa_mp_get_bool(b, len, "needed", &nd);
    needed += nd;
    jiwa_harness_reply_free(&r);
  }
  for (int i = 0; i < rounds; i++) {
    size_t q = (size_t)i % nq;
    const char *lv[1] = {qs[q].lang};
    jiwa_coll_filter_t f = {"lang", lv, 1};
    jiwa_coll_query_t cq = JIWA_COLL_QUERY_INIT;
    cq.text = qs[q].text;
    cq.k = 16;
    cq.filters = &f;
    cq.nfilters = 1;
    cq.dedup = 0.9f;
    cq.flags = JIWA_COLL_WITH_META;
    jiwa_coll_result_t res;
    uint64_t t0 = now_ns();
    if (jiwa_coll_search(coll, &cq, &res))
      die("search", jiwa_coll_errmsg());
    s_add(&bare, now_ns() - t0);
    jiwa_coll_result_free(&res);

    jiwa_harness_reply_t r;
    t0 = now_ns();
    hask(h, "rag.query", bodies[q].sbuf.data, bodies[q].sbuf.size, &r);
    s_add(&trip, now_ns() - t0);
    int64_t us = -1;
    jiwa_msg_get_int(r.final, "took_us", &us);
    s_add(&inside, (uint64_t)(us < 0 ? 0 : us) * 1000u);
    jiwa_harness_reply_free(&r);
  }
  printf("  (%d of %zu messages get context)\n", needed, nq);
  double b50 = s_pct(&bare, 50);
  row("baseline: bare collection search (k 16, lang, dedup)", &bare, 0);
  row("rag.query inside the plugin (took_us)", &inside, b50);
  row("rag.query round trip through the harness", &trip, b50);
  printf("  goal p99 <= 1 ms inside the plugin: %s\n",
         s_pct(&inside, 99) <= 1000.0 ? "met" : "NOT met");
  for (size_t i = 0; i < nq; i++)
    jiwa_mp_writer_free(&bodies[i]);
  free(bodies);
  free(bare.v);
  free(inside.v);
  free(trip.v);
}

static void part_retrieval(int rounds, size_t synthetic) {
  size_t nq = 0;
  query_t *qs = load_queries(&nq);
  char so[PATH_MAX + 32], settings[8192], err[512];
  snprintf(so, sizeof so, "%s/cultural_rag.so", g_plugins);
  snprintf(settings, sizeof settings,
           "{ seed_files = { '%s/config/knowledge/insights_en.jsonl', "
           "'%s/config/knowledge/insights_id.jsonl', "
           "'%s/config/knowledge/insights_it.jsonl' } }",
           g_src, g_src, g_src);
  jiwa_harness_t *h;
  if (jiwa_harness_open(&h, so, settings, err, sizeof err))
    die("harness", err);
  if (jiwa_harness_add_collection(h, "cultural", "hash", 512, err, sizeof err))
    die("collection", err);
  wait_rag_seeded(h);
  jiwa_coll_t *coll = jiwa_harness_collection(h, "cultural");
  bench_retrieval(h, coll, qs, nq, rounds, "the starter pack");

  if (synthetic > 0) {
    size_t nb = 0;
    jiwa_knowledge_insight_t *base = load_starter(&nb);
    uint64_t t0 = now_ns();
    size_t jl = 0;
    char *jsonl = make_synthetic(base, nb, synthetic, &jl);
    jiwa_knowledge_insight_t *syn = NULL;
    size_t ns = 0;
    if (jiwa_knowledge_parse_insights(jsonl, jl, "synthetic", &syn, &ns, err,
                                      sizeof err))
      die("synthetic pack", err);
    free(jsonl);
    uint64_t t1 = now_ns();
    import_insights(h, coll, syn, ns);
    uint64_t t2 = now_ns();
    printf("synthetic pack: %zu insights generated and parsed in %.1f s, "
           "imported (embed + HNSW + one commit) and markers told in %.1f "
           "s\n",
           ns, (double)(t1 - t0) / 1e9, (double)(t2 - t1) / 1e9);
    char label[64];
    snprintf(label, sizeof label, "starter + %zu synthetic", ns);
    bench_retrieval(h, coll, qs, nq, rounds, label);
    jiwa_knowledge_insights_free(syn, ns);
    jiwa_knowledge_insights_free(base, nb);
  }
  free(qs);
  if (jiwa_harness_close(h))
    fprintf(stderr, "bench_hybrid: harness closed with handles open\n");
}

/* ---- 2 and 3. jiwad over the socket ---------------------------------------------- */

static char g_sock[512];

static void start_daemon(void) {
  const char *t = getenv("TMPDIR");
  snprintf(g_tmp, sizeof g_tmp, "%s/jiwa-bench-hybrid-XXXXXX",
           t && *t ? t : "/tmp");
  if (!mkdtemp(g_tmp))
    die("mkdtemp", "failed");
  char mock[PATH_MAX + 32], jiwad[PATH_MAX + 32], pf[600], log[600];
  snprintf(mock, sizeof mock, "%s/../mockllm/mockllm", g_bindir);
  snprintf(jiwad, sizeof jiwad, "%s/../../jiwad", g_bindir);
  snprintf(pf, sizeof pf, "%s/mock.port", g_tmp);
  snprintf(log, sizeof log, "%s/mock.log", g_tmp);
  char *margv[] = {mock, "--port", "0", "--port-file", pf, "--quiet", NULL};
  g_mock = spawn(margv, log);
  int port = 0;
  for (int i = 0; i < 1000 && !port; i++) {
    FILE *f = fopen(pf, "r");
    if (f) {
      if (fscanf(f, "%d", &port) != 1)
        port = 0;
      fclose(f);
    }
    if (!port)
      usleep(10000);
  }
  if (!port)
    die("mockllm", "did not start");

  /* the shipped config: only the mock port, paths and state dir change */
  char path[PATH_MAX + 64], rep[PATH_MAX + 64];
  snprintf(path, sizeof path, "%s/config/jiwa.lua", g_src);
  char *conf = slurp(path);
  if (!conf)
    die(path, "cannot read");
  snprintf(rep, sizeof rep, "127.0.0.1:%d", port);
  int ok = replace_all(&conf, "127.0.0.1:8088", rep) > 0;
  snprintf(rep, sizeof rep, "\"%s\"", g_src);
  ok &= replace_all(&conf, "config_dir .. \"/..\"", rep) == 1;
  snprintf(rep, sizeof rep, "plugin_dir = \"%s\"", g_plugins);
  ok &= replace_all(&conf, "plugin_dir = \"../build/plugins\"", rep) == 1;
  snprintf(rep, sizeof rep, "state_dir = \"%s/state\"", g_tmp);
  ok &= replace_all(&conf, "state_dir = \"../build/state\"", rep) == 1;
  /* warnings only: an info line per request would be measured too */
  ok &= replace_all(&conf, "level = \"info\"", "level = \"warn\"") == 1;
  if (!ok)
    die("config/jiwa.lua", "changed: a substitution failed");
  snprintf(path, sizeof path, "%s/jiwa.lua", g_tmp);
  FILE *f = fopen(path, "w");
  if (!f)
    die(path, "cannot write");
  fputs(conf, f);
  fclose(f);
  free(conf);
  snprintf(log, sizeof log, "%s/jiwad.log", g_tmp);
  snprintf(g_sock, sizeof g_sock, "%s/state/jiwad.sock", g_tmp);
  char *jargv[] = {jiwad, "-c", path, NULL};
  g_jiwad = spawn(jargv, log);
}

static jiwa_client_t *connect_or_die(void) {
  char err[512];
  jiwa_client_t *c = NULL;
  if (jiwa_client_connect(&c, g_sock, 10000, err, sizeof err))
    die("connect", err);
  return c;
}

typedef struct {
  void *b;
  size_t n;
} body_t;

static body_t chat_body(const char *text) {
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 1);
  jiwa_mp_put_kv_str(&w.pk, "text", text);
  body_t b = {malloc(w.sbuf.size), w.sbuf.size};
  memcpy(b.b, w.sbuf.data, w.sbuf.size);
  jiwa_mp_writer_free(&w);
  return b;
}

/* One request; returns the final frame's "route" (or the op) in @p what. */
static void call(jiwa_client_t *c, const char *op, const body_t *b,
                 char *what, size_t cap) {
  jiwa_client_frame_t fin;
  char err[512];
  if (jiwa_client_call(c, op, b ? b->b : NULL, b ? b->n : 0, 30000, NULL,
                       NULL, &fin, err, sizeof err))
    die(op, err);
  char name[64], msg[256];
  if (jiwa_client_frame_error(&fin, name, sizeof name, msg, sizeof msg))
    die(op, msg);
  if (what) {
    what[0] = '\0';
    jiwa_mp_get_strcpy(fin.body, fin.body_len, "route", what, cap);
  }
  jiwa_client_frame_free(&fin);
}

static void wait_ready(void) {
  char log[600];
  snprintf(log, sizeof log, "%s/jiwad.log", g_tmp);
  jiwa_client_t *c = NULL;
  for (int i = 0; i < 3000 && !c; i++) {
    char err[256];
    if (jiwa_client_connect(&c, g_sock, 1000, err, sizeof err))
      c = NULL;
    if (!c) {
      if (waitpid(g_jiwad, NULL, WNOHANG) == g_jiwad) {
        g_jiwad = -1;
        die("jiwad exited", log);
      }
      usleep(10000);
    }
  }
  if (!c)
    die("jiwad did not start", log);
  /* the golden seed is in when the question hits */
  body_t b = chat_body("How long does it take to get a KITAS?");
  char route[32] = "";
  for (int i = 0; i < 3000; i++) {
    call(c, "chat", &b, route, sizeof route);
    if (strcmp(route, "golden") == 0)
      break;
    usleep(10000);
  }
  free(b.b);
  jiwa_client_close(c);
  if (strcmp(route, "golden") != 0)
    die("golden seed", "the KITAS question never hit");
}

static const char *const GOLD_EXACT[] = {
    "How long does it take to get a KITAS?",
    "Kapan batas lapor SPT Tahunan?",
    "Quanto tempo ci vuole per ottenere il KITAS?",
    "Can I extend my visa on arrival?",
};
static const char *const GOLD_SEMANTIC[] = {
    "how long does getting a KITAS take?",
    "batas lapor spt tahunan kapan ya?",
    "quanto tempo ci vuole per avere il KITAS?",
    "is it possible to extend my visa on arrival?",
};
#define NG 4

static void part_golden_latency(int requests) {
  jiwa_client_t *c = connect_or_die();
  body_t exact[NG], sem[NG];
  char route[32];
  for (int i = 0; i < NG; i++) {
    exact[i] = chat_body(GOLD_EXACT[i]);
    sem[i] = chat_body(GOLD_SEMANTIC[i]);
    call(c, "chat", &exact[i], route, sizeof route);
    if (strcmp(route, "golden") != 0)
      die(GOLD_EXACT[i], "no golden hit");
    call(c, "chat", &sem[i], route, sizeof route);
    if (strcmp(route, "golden") != 0)
      die(GOLD_SEMANTIC[i], "no golden hit");
  }
  samples_t health = {0}, ex = {0}, se = {0};
  for (int i = 0; i < requests; i++) {
    uint64_t t0 = now_ns();
    call(c, "health", NULL, NULL, 0);
    s_add(&health, now_ns() - t0);
    t0 = now_ns();
    call(c, "chat", &exact[i % NG], NULL, 0);
    s_add(&ex, now_ns() - t0);
    t0 = now_ns();
    call(c, "chat", &sem[i % NG], NULL, 0);
    s_add(&se, now_ns() - t0);
  }
  printf("golden hit end to end over the socket (client -> jiwad -> router "
         "-> golden_cache -> reply), shipped config, 1 client, %d each:\n",
         requests);
  double h50 = s_pct(&health, 50);
  row("baseline: health op over the socket", &health, 0);
  row("chat, exact golden hit", &ex, h50);
  row("chat, semantic golden hit", &se, h50);
  printf("  goal p99 <= 0.5 ms: exact %s, semantic %s\n",
         s_pct(&ex, 99) <= 500.0 ? "met" : "NOT met",
         s_pct(&se, 99) <= 500.0 ? "met" : "NOT met");
  for (int i = 0; i < NG; i++) {
    free(exact[i].b);
    free(sem[i].b);
  }
  free(health.v);
  free(ex.v);
  free(se.v);
  jiwa_client_close(c);
}

typedef struct {
  pthread_t t;
  int golden; /* 1: golden chats, 0: health */
  int n, idx;
  jiwa_client_t *c;
  samples_t lat;
} worker_t;

static void *client_thread(void *arg) {
  worker_t *w = arg;
  body_t b[NG];
  for (int i = 0; i < NG; i++)
    b[i] = chat_body(i % 2 ? GOLD_SEMANTIC[i] : GOLD_EXACT[i]);
  for (int i = 0; i < w->n; i++) {
    uint64_t t0 = now_ns();
    if (w->golden)
      call(w->c, "chat", &b[(i + w->idx) % NG], NULL, 0);
    else
      call(w->c, "health", NULL, NULL, 0);
    s_add(&w->lat, now_ns() - t0);
  }
  for (int i = 0; i < NG; i++)
    free(b[i].b);
  return NULL;
}

/* One run: @p nc clients, @p per requests each; returns requests/s. */
static double load_run(int nc, int per, int golden, double *p99) {
  worker_t *ws = calloc((size_t)nc, sizeof *ws);
  for (int i = 0; i < nc; i++) {
    ws[i].c = connect_or_die();
    ws[i].golden = golden;
    ws[i].n = per;
    ws[i].idx = i;
  }
  uint64_t t0 = now_ns();
  for (int i = 0; i < nc; i++)
    pthread_create(&ws[i].t, NULL, client_thread, &ws[i]);
  for (int i = 0; i < nc; i++)
    pthread_join(ws[i].t, NULL);
  double el = (double)(now_ns() - t0) / 1e9;
  samples_t all = {0};
  for (int i = 0; i < nc; i++) {
    for (size_t k = 0; k < ws[i].lat.n; k++)
      s_add(&all, ws[i].lat.v[k]);
    free(ws[i].lat.v);
    jiwa_client_close(ws[i].c);
  }
  *p99 = s_pct(&all, 99);
  free(all.v);
  free(ws);
  return (double)nc * per / el;
}

static void part_throughput(int requests, const int *clients, int nclients) {
  printf("chats/s with golden hits, jiwad on 2 workers (shipped config), C "
         "clients (one connection each, one request at a time), median of "
         "%d runs (this machine: %ld CPUs, shared by jiwad and the "
         "clients):\n",
         REPEATS, sysconf(_SC_NPROCESSORS_ONLN));
  for (int k = 0; k < nclients; k++) {
    int nc = clients[k];
    int per = requests / nc > 50 ? requests / nc : 50;
    double hr[REPEATS], gr[REPEATS], hp[REPEATS], gp[REPEATS];
    for (int r = 0; r < REPEATS; r++) {
      hr[r] = load_run(nc, per, 0, &hp[r]);
      gr[r] = load_run(nc, per, 1, &gp[r]);
    }
    double h = median(hr, REPEATS), g = median(gr, REPEATS);
    printf("  C = %2d: golden chats %8.0f /s (p99 %7.1f us)   baseline "
           "health %8.0f /s (p99 %7.1f us)   ratio x%.2f\n",
           nc, g, median(gp, REPEATS), h, median(hp, REPEATS), g / h);
  }
}

int main(int argc, char **argv) {
  size_t synthetic = 100000;
  int rounds = 5000, requests = 5000, skip100k = 0;
  int clients[8] = {1, 4, 16, 32}, nclients = 4;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--synthetic") && i + 1 < argc)
      synthetic = (size_t)strtoul(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
      rounds = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--requests") && i + 1 < argc)
      requests = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--skip-100k"))
      skip100k = 1;
    else if (!strcmp(argv[i], "--clients") && i + 1 < argc) {
      nclients = 0;
      for (char *p = argv[++i]; *p && nclients < 8;) {
        clients[nclients] = atoi(p);
        if (clients[nclients] > 0)
          nclients++;
        p += strcspn(p, ",");
        p += *p == ',';
      }
    } else {
      fprintf(stderr,
              "usage: bench_hybrid [--synthetic N] [--rounds N] [--requests "
              "N] [--clients 1,4,16,32] [--skip-100k]\n");
      return 2;
    }
  }
  if (rounds < 10 || requests < 10 || nclients == 0) {
    fprintf(stderr, "bench_hybrid: rounds and requests must be >= 10\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  setvbuf(stdout, NULL, _IOLBF, 0); /* progress shows when piped */
  char self[PATH_MAX];
  ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
  if (sl <= 0)
    die("readlink", "cannot find this binary");
  self[sl] = '\0';
  snprintf(g_bindir, sizeof g_bindir, "%s", self);
  char *slash = strrchr(g_bindir, '/');
  if (slash)
    *slash = '\0';
  g_src = getenv("JIWA_SOURCE_DIR");
  g_plugins = getenv("JIWA_PLUGIN_OUT");
  if (!g_src)
    g_src = JIWA_BENCH_SOURCE_DIR;
  if (!g_plugins)
    g_plugins = JIWA_BENCH_PLUGIN_DIR;

  part_retrieval(rounds, skip100k ? 0 : synthetic);
  start_daemon();
  wait_ready();
  part_golden_latency(requests);
  part_throughput(requests, clients, nclients);
  stop(&g_jiwad);
  stop(&g_mock);
  rm_tmp();
  return 0;
}
