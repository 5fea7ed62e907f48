/*
 * nightly — the three stages of a run (README.md: Stages).
 *
 *  clusters: conversations.query over the last N days (deltas of records)
 *            → hash embedding + jiwa_cluster on the thread pool → the top
 *            clusters (name = most central query, sizes, coverage) stored
 *            in kv `clusters:<run>`.
 *  golden:   golden.lookup of each top cluster's name (a hit is fresh) →
 *            for up to max_golden misses: rag.query + knowledge.search for
 *            context, then the golden model → one golden.import of every
 *            answer at the end (all or nothing).
 *  cultural: topics × languages prompts to the cultural model → list
 *            parsing → dedup within the batch and against the collection
 *            → one upsert; with regenerate_cultural the generated
 *            insights of earlier runs that were not produced again are
 *            deleted afterwards (the curated pack is never touched).
 *
 * Nothing a stage produces is written before the stage has everything: a
 * failure leaves the golden set and the insights as they were.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jiwa_embed.h"
#include "jiwa_listparse.h"
#include "jiwa_textnorm.h"
#include "nightly_int.h"

#define EMBED_DIM 512u
#define DEDUP_DIM 512u
#define ITEMS_MAX 20000u
#define LABELS_MAX 4096u

static const char *lang_name(const char *code) {
  if (strcmp(code, "en") == 0)
    return "English";
  if (strcmp(code, "id") == 0)
    return "Indonesian (Bahasa Indonesia)";
  if (strcmp(code, "it") == 0)
    return "Italian";
  return code;
}

/* Cut @p n bytes of UTF-8 back to a character boundary at most @p max. */
static size_t utf8_cut(const char *s, size_t n, size_t max) {
  if (n <= max)
    return n;
  size_t k = max;
  while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80)
    k--;
  return k;
}

static uint64_t norm_hash(const char *s, size_t n) {
  char buf[2048];
  size_t k = jiwa_text_normalize(s, n, buf, sizeof buf);
  return jiwa_text_hash64(buf, k, 0x6e69676874ULL);
}

/* ============================================================================
 * clusters
 * ========================================================================== */

static int add_record(night_run_t *r, const uint8_t *b, size_t n) {
  const char *text, *lang, *label;
  size_t tl, ll, bl;
  int64_t t;
  if (jiwa_mp_get_str(b, n, "text", &text, &tl) || tl == 0)
    return 0;
  if (jiwa_mp_get_int(b, n, "time_ms", &t) == 0 &&
      (t <= r->since_ms || t > r->until_ms))
    return 0; /* outside the window: the log's bounds may differ from ours */
  if ((int64_t)r->n >= r->ctx->max_queries) {
    r->counts.dropped++;
    return 0;
  }
  if (r->n == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 1024;
    char **tx = realloc(r->texts, cap * sizeof *tx);
    if (tx)
      r->texts = tx;
    size_t *ln = realloc(r->lens, cap * sizeof *ln);
    if (ln)
      r->lens = ln;
    char(*lg)[8] = realloc(r->langs, cap * sizeof *lg);
    if (lg)
      r->langs = lg;
    uint32_t *lb = realloc(r->labels, cap * sizeof *lb);
    if (lb)
      r->labels = lb;
    if (!tx || !ln || !lg || !lb)
      return JIWA_ENOMEM;
    r->cap = cap;
  }
  tl = utf8_cut(text, tl, NIGHT_TEXT_MAX);
  char *copy = night_strndup(text, tl);
  if (!copy)
    return JIWA_ENOMEM;
  size_t i = r->n;
  r->texts[i] = copy;
  r->lens[i] = tl;
  r->langs[i][0] = 0;
  if (jiwa_mp_get_str(b, n, "lang", &lang, &ll) == 0 && ll < 8) {
    memcpy(r->langs[i], lang, ll);
    r->langs[i][ll] = 0;
  }
  /* an optional evaluation label: purity and ARI when every record has one */
  if (r->have_labels && jiwa_mp_get_str(b, n, "label", &label, &bl) == 0 &&
      bl > 0 && bl < 64) {
    size_t k = 0;
    while (k < r->nlabel_names && !(strlen(r->label_names[k]) == bl &&
                                    memcmp(r->label_names[k], label, bl) == 0))
      k++;
    if (k == r->nlabel_names) {
      if (k >= LABELS_MAX) {
        r->have_labels = 0;
      } else {
        if (k == r->label_cap) {
          size_t cap = r->label_cap ? r->label_cap * 2 : 32;
          char **p = realloc(r->label_names, cap * sizeof *p);
          if (!p)
            return JIWA_ENOMEM;
          r->label_names = p;
          r->label_cap = cap;
        }
        r->label_names[k] = night_strndup(label, bl);
        if (!r->label_names[k])
          return JIWA_ENOMEM;
        r->nlabel_names++;
      }
    }
    r->labels[i] = (uint32_t)k;
  } else {
    r->have_labels = 0;
  }
  r->n++;
  return 0;
}

static int add_records(night_run_t *r, const void *body, size_t len) {
  jiwa_mp_reader_t at;
  jiwa_mp_item_t it;
  if (jiwa_mp_map_find(body, len, "records", &at))
    return 0; /* a progress delta without records */
  if (jiwa_mp_next(&at, &it) || it.type != JIWA_MP_ARRAY)
    return JIWA_EPROTO;
  for (uint32_t i = 0; i < it.v.count; i++) {
    const uint8_t *s = at.p;
    if (jiwa_mp_skip(&at))
      return JIWA_EPROTO;
    int rc = add_record(r, s, (size_t)(at.p - s));
    if (rc)
      return rc;
  }
  return 0;
}

typedef struct {
  night_run_t *r;
  /* out */
  night_cluster_t *clusters;
  size_t nclusters, total_clusters, unique, unassigned;
  double coverage, purity, ari;
  int rc;
} cl_job_t;

typedef struct {
  uint32_t idx;
  float score;
} scored_t;

static int by_score(const void *a, const void *b) {
  const scored_t *x = a, *y = b;
  if (x->score != y->score)
    return x->score > y->score ? -1 : 1;
  return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int summarise(const night_run_t *r, const float *vecs,
                     const jiwa_clustering_t *cl, size_t k,
                     night_cluster_t *out, double *cum) {
  const jiwa_cluster_t *c = &cl->clusters[k];
  out->size = c->n;
  out->share = r->n ? (double)c->n / (double)r->n : 0;
  *cum += out->share;
  out->coverage = *cum;
  out->cohesion = c->cohesion;
  uint32_t rep = c->representative;
  out->name = night_strndup(r->texts[rep], r->lens[rep]);
  if (!out->name)
    return JIWA_ENOMEM;
  /* majority language */
  char langs[8][8];
  size_t counts[8] = {0}, nl = 0;
  for (size_t i = 0; i < c->n; i++) {
    const char *l = r->langs[c->members[i]];
    size_t j = 0;
    while (j < nl && strcmp(langs[j], l) != 0)
      j++;
    if (j == nl && nl < 8)
      snprintf(langs[nl++], 8, "%s", l);
    if (j < nl)
      counts[j]++;
  }
  size_t best = 0;
  for (size_t j = 1; j < nl; j++)
    if (counts[j] > counts[best])
      best = j;
  snprintf(out->lang, sizeof out->lang, "%s", nl ? langs[best] : "");
  /* examples: distinct members nearest the centre, in the cluster's
   * language (they become the golden entry's paraphrases) */
  scored_t *s = malloc(c->n * sizeof *s);
  if (!s)
    return JIWA_ENOMEM;
  for (size_t i = 0; i < c->n; i++) {
    const float *v = vecs + (size_t)c->members[i] * cl->dim;
    float d = 0;
    for (unsigned j = 0; j < cl->dim; j++)
      d += v[j] * c->centroid[j];
    s[i].idx = c->members[i];
    s[i].score = d;
  }
  qsort(s, c->n, sizeof *s, by_score);
  uint64_t seen[NIGHT_EXAMPLES + 1];
  size_t nseen = 0;
  seen[nseen++] = norm_hash(r->texts[rep], r->lens[rep]);
  for (size_t i = 0; i < c->n && out->nexamples < NIGHT_EXAMPLES; i++) {
    uint32_t m = s[i].idx;
    if (strcmp(r->langs[m], out->lang) != 0)
      continue;
    uint64_t h = norm_hash(r->texts[m], r->lens[m]);
    int dup = 0;
    for (size_t j = 0; j < nseen && !dup; j++)
      dup = seen[j] == h;
    if (dup)
      continue;
    seen[nseen++] = h;
    out->examples[out->nexamples] = night_strndup(r->texts[m], r->lens[m]);
    if (!out->examples[out->nexamples]) {
      free(s);
      return JIWA_ENOMEM;
    }
    out->nexamples++;
  }
  free(s);
  return 0;
}

/* The thread pool: embed, cluster, score, summarise. Touches the run's
 * query arrays (nothing else reads or writes them meanwhile) and its own
 * job struct only. */
static void cluster_work(void *ud) {
  cl_job_t *j = ud;
  night_run_t *r = j->r;
  jiwa_embed_t *emb = NULL;
  float *vecs = NULL;
  jiwa_clustering_t *cl = NULL;
  j->rc = jiwa_embed_hash_new(EMBED_DIM, &emb);
  if (j->rc)
    goto out;
  vecs = malloc(r->n * (size_t)EMBED_DIM * sizeof *vecs);
  if (!vecs) {
    j->rc = JIWA_ENOMEM;
    goto out;
  }
  if ((j->rc = jiwa_embed_texts(emb, (const char *const *)r->texts, r->lens,
                                r->n, vecs)) ||
      (j->rc = jiwa_cluster(vecs, r->n, EMBED_DIM, NULL, &cl)))
    goto out;
  j->total_clusters = cl->n_clusters;
  j->unique = cl->unique;
  j->unassigned = cl->unassigned;
  j->coverage = jiwa_cluster_coverage(cl, 50);
  j->purity = j->ari = -1;
  if (r->have_labels && r->n > 0 &&
      (jiwa_cluster_purity(cl->assign, r->labels, r->n, &j->purity) ||
       jiwa_cluster_ari(cl->assign, r->labels, r->n, &j->ari)))
    j->purity = j->ari = -1;
  size_t keep = cl->n_clusters < NIGHT_KEEP_CLUSTERS ? cl->n_clusters
                                                     : NIGHT_KEEP_CLUSTERS;
  j->clusters = calloc(keep ? keep : 1, sizeof *j->clusters);
  if (!j->clusters) {
    j->rc = JIWA_ENOMEM;
    goto out;
  }
  double cum = 0;
  for (size_t k = 0; k < keep; k++) {
    j->nclusters = k + 1;
    if ((j->rc = summarise(r, vecs, cl, k, &j->clusters[k], &cum)))
      goto out;
  }
out:
  jiwa_clustering_free(cl);
  free(vecs);
  jiwa_embed_destroy(emb);
}

static void clusters_free(night_cluster_t *v, size_t n) {
  for (size_t i = 0; v && i < n; i++) {
    free(v[i].name);
    for (size_t k = 0; k < v[i].nexamples; k++)
      free(v[i].examples[k]);
  }
  free(v);
}

int night_pack_clusters(const night_run_t *r, jiwa_mp_writer_t *w) {
  int labels = r->counts.purity >= 0;
  msgpack_pack_map(&w->pk, 8 + (labels ? 2 : 0));
  jiwa_mp_put_kv_str(&w->pk, "run", r->id);
  jiwa_mp_put_kv_int(&w->pk, "at_ms", r->now_ms);
  jiwa_mp_put_kv_int(&w->pk, "days", r->plan.days);
  jiwa_mp_put_kv_int(&w->pk, "queries", r->counts.queries);
  jiwa_mp_put_kv_int(&w->pk, "total_clusters", r->counts.clusters);
  jiwa_mp_put_kv_double(&w->pk, "coverage_top50", r->counts.coverage_top50);
  jiwa_mp_put_kv_int(&w->pk, "shown", (int64_t)r->nclusters);
  if (labels) {
    jiwa_mp_put_kv_double(&w->pk, "purity", r->counts.purity);
    jiwa_mp_put_kv_double(&w->pk, "ari", r->counts.ari);
  }
  jiwa_mp_put_str(&w->pk, "clusters");
  msgpack_pack_array(&w->pk, r->nclusters);
  for (size_t i = 0; i < r->nclusters; i++) {
    const night_cluster_t *c = &r->clusters[i];
    static const char *g[] = {"", "fresh", "generated", "small"};
    msgpack_pack_map(&w->pk, 10);
    jiwa_mp_put_kv_int(&w->pk, "rank", (int64_t)i + 1);
    jiwa_mp_put_kv_int(&w->pk, "size", (int64_t)c->size);
    jiwa_mp_put_kv_double(&w->pk, "share", c->share);
    jiwa_mp_put_kv_double(&w->pk, "coverage", c->coverage);
    jiwa_mp_put_kv_str(&w->pk, "name", c->name);
    jiwa_mp_put_kv_str(&w->pk, "lang", c->lang);
    jiwa_mp_put_kv_double(&w->pk, "cohesion", c->cohesion);
    jiwa_mp_put_kv_str(&w->pk, "golden", g[c->golden & 3]);
    jiwa_mp_put_kv_str(&w->pk, "golden_id", c->golden_id);
    jiwa_mp_put_str(&w->pk, "examples");
    msgpack_pack_array(&w->pk, c->nexamples);
    for (size_t k = 0; k < c->nexamples; k++)
      jiwa_mp_put_str(&w->pk, c->examples[k]);
  }
  return 0;
}

static void store_clusters(night_run_t *r) {
  night_ctx_t *c = r->ctx;
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  night_pack_clusters(r, &w);
  char key[40];
  int kl = snprintf(key, sizeof key, "clusters:%s", r->id);
  int rc = jiwa_kv_put(c->self, key, (size_t)kl, w.sbuf.data, w.sbuf.size, NULL,
                       NULL);
  jiwa_mp_writer_free(&w);
  jiwa_mp_writer_init(&w);
  jiwa_mp_put_str(&w.pk, r->id);
  if (rc == 0)
    rc = jiwa_kv_put(c->self, "last_clusters", 13, w.sbuf.data, w.sbuf.size,
                     NULL, NULL);
  jiwa_mp_writer_free(&w);
  if (rc)
    jiwa_log(c->self, JIWA_LOG_ERROR, "run %s: storing its clusters failed: %s",
             r->id, jiwa_strerror(rc));
}

static void cluster_done(jiwa_actor_t *self, void *vctx, int status, void *ud) {
  (void)self;
  (void)vctx;
  cl_job_t *j = ud;
  night_run_t *r = j->r;
  r->pending--;
  if (status || j->rc) {
    clusters_free(j->clusters, j->nclusters);
    night_fail(r, "clusters", "clustering %zu queries failed: %s", r->n,
               jiwa_strerror(status ? status : j->rc));
  } else {
    r->clusters = j->clusters;
    r->nclusters = j->nclusters;
    r->counts.clusters = (int64_t)j->total_clusters;
    r->counts.unique = (int64_t)j->unique;
    r->counts.unassigned = (int64_t)j->unassigned;
    r->counts.coverage_top50 = j->coverage;
    r->counts.purity = j->purity;
    r->counts.ari = j->ari;
    store_clusters(r);
    night_progress(r, "clusters", r->n, r->n, 1);
    night_next_stage(r);
  }
  free(j);
}

static void convlog_reply(jiwa_actor_t *self, void *vctx, const jiwa_msg_t *m,
                          void *ud) {
  night_ctx_t *c = vctx;
  night_run_t *r = ud;
  jiwa_msg_kind_t k = jiwa_msg_kind(m);
  if (k == JIWA_MSG_DELTA) {
    if (r->failed)
      return;
    size_t bl;
    const void *b = jiwa_msg_body(m, &bl);
    int rc = add_records(r, b, bl);
    if (rc)
      night_fail(r, "clusters", "reading the conversation log failed: %s",
                 jiwa_strerror(rc));
    else
      night_progress(r, "queries", r->n, 0, 0);
    return;
  }
  r->pending--;
  if (r->failed) {
    night_settle(r);
    return;
  }
  if (k == JIWA_MSG_ERROR) {
    const char *t = "";
    int code = jiwa_msg_error(m, &t);
    night_fail(r, "clusters", "the conversation log '%s' failed: %s: %s",
               c->convlog, jiwa_err_name(code), t);
    return;
  }
  size_t bl;
  const void *b = jiwa_msg_body(m, &bl);
  int rc = add_records(r, b, bl); /* a final may carry records too */
  if (rc) {
    night_fail(r, "clusters", "reading the conversation log failed: %s",
               jiwa_strerror(rc));
    return;
  }
  r->counts.queries = (int64_t)r->n;
  night_progress(r, "queries", r->n, r->n, 1);
  r->stage_t0 = jiwa_now_ms();
  cl_job_t *j = calloc(1, sizeof *j);
  if (!j) {
    night_fail(r, "clusters", "out of memory");
    return;
  }
  j->r = r;
  rc = jiwa_queue_work(self, cluster_work, cluster_done, j);
  if (rc) {
    free(j);
    night_fail(r, "clusters", "cannot queue the clustering: %s",
               jiwa_strerror(rc));
    return;
  }
  r->pending++;
  night_progress(r, "clustering", 0, r->n, 1);
}

void night_clusters_start(night_run_t *r) {
  night_ctx_t *c = r->ctx;
  r->until_ms = r->now_ms;
  r->since_ms = r->now_ms - r->plan.days * 86400000;
  r->have_labels = 1;
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 3);
  jiwa_mp_put_kv_int(&w.pk, "since_ms", r->since_ms);
  jiwa_mp_put_kv_int(&w.pk, "until_ms", r->until_ms);
  jiwa_mp_put_kv_int(&w.pk, "limit", c->max_queries);
  int rc = jiwa_ask(c->self, c->convlog, "conversations.query", w.sbuf.data,
                    w.sbuf.size, (uint32_t)c->ask_timeout_ms, convlog_reply, r);
  jiwa_mp_writer_free(&w);
  if (rc) {
    night_fail(r, "clusters", "cannot ask the conversation log '%s': %s",
               c->convlog, jiwa_strerror(rc));
    return;
  }
  r->pending++;
  night_progress(r, "queries", 0, 0, 1);
}

/* ============================================================================
 * golden
 * ========================================================================== */

static void golden_lookup_next(night_run_t *r);
static void golden_pump(night_run_t *r);

static void lookup_reply(jiwa_actor_t *self, void *vctx, const jiwa_msg_t *m,
                         void *ud) {
  (void)self;
  night_ctx_t *c = vctx;
  night_run_t *r = ud;
  if (jiwa_msg_kind(m) == JIWA_MSG_DELTA)
    return;
  r->pending--;
  if (r->failed) {
    night_settle(r);
    return;
  }
  if (jiwa_msg_kind(m) == JIWA_MSG_ERROR) {
    const char *t = "";
    int code = jiwa_msg_error(m, &t);
    night_fail(r, "golden",
               "the golden cache '%s' failed golden.lookup: "
               "%s: %s",
               c->golden, jiwa_err_name(code), t);
    return;
  }
  night_cluster_t *cl = &r->clusters[r->look_next];
  size_t bl;
  const void *b = jiwa_msg_body(m, &bl);
  int hit = 0;
  jiwa_mp_get_bool(b, bl, "hit", &hit);
  r->counts.golden_looked++;
  if (hit) {
    cl->golden = 1;
    jiwa_mp_get_strcpy(b, bl, "id", cl->golden_id, sizeof cl->golden_id);
    r->counts.golden_fresh++;
  } else {
    night_cand_t *cd = &r->cands[r->ncands++];
    memset(cd, 0, sizeof *cd);
    cd->run = r;
    cd->cluster = r->look_next;
  }
  r->look_next++;
  night_progress(r, "golden lookups", r->look_next,
                 r->nclusters < (size_t)r->plan.max_golden
                     ? r->nclusters
                     : (size_t)r->plan.max_golden,
                 0);
  golden_lookup_next(r);
}

static void golden_write(night_run_t *r);

static void golden_lookup_next(night_run_t *r) {
  night_ctx_t *c = r->ctx;
  /* the top max_golden clusters; those with a fresh answer are skipped */
  size_t top = r->nclusters < (size_t)r->plan.max_golden
                   ? r->nclusters
                   : (size_t)r->plan.max_golden;
  while (r->look_next < top) {
    night_cluster_t *cl = &r->clusters[r->look_next];
    if (!cl->lang[0]) { /* no language known: no golden entry possible */
      cl->golden = 3;
      r->counts.golden_small++;
      r->look_next++;
      continue;
    }
    if ((int64_t)cl->size < r->plan.min_cluster) {
      /* sorted by size: every cluster after this one is as small */
      for (size_t i = r->look_next; i < top; i++)
        r->clusters[i].golden = 3;
      r->counts.golden_small += (int64_t)(top - r->look_next);
      r->look_next = top;
      break;
    }
    jiwa_mp_writer_t w;
    jiwa_mp_writer_init(&w);
    msgpack_pack_map(&w.pk, 2);
    jiwa_mp_put_kv_str(&w.pk, "query", cl->name);
    jiwa_mp_put_kv_str(&w.pk, "lang", cl->lang);
    int rc =
        jiwa_ask(c->self, c->golden, "golden.lookup", w.sbuf.data, w.sbuf.size,
                 (uint32_t)c->ask_timeout_ms, lookup_reply, r);
    jiwa_mp_writer_free(&w);
    if (rc) {
      night_fail(r, "golden", "cannot ask the golden cache '%s': %s", c->golden,
                 jiwa_strerror(rc));
      return;
    }
    r->pending++;
    return;
  }
  r->counts.golden_candidates = (int64_t)r->ncands;
  r->stage_t0 = jiwa_now_ms();
  if (r->ncands == 0) {
    store_clusters(r);
    night_next_stage(r);
    return;
  }
  night_progress(r, "golden", 0, r->ncands, 1);
  golden_pump(r);
}

static void cand_step(night_cand_t *cd);

static int append_ctx(night_cand_t *cd, const char *s, size_t n) {
  if (n == 0)
    return 0;
  char *p = realloc(cd->context, cd->context_len + n + 2);
  if (!p)
    return JIWA_ENOMEM;
  cd->context = p;
  if (cd->context_len)
    p[cd->context_len++] = '\n';
  memcpy(p + cd->context_len, s, n);
  cd->context_len += n;
  p[cd->context_len] = 0;
  return 0;
}

/* After a step's ask: context steps never fail the run, the model does. */
static void cand_reply(jiwa_actor_t *self, void *vctx, const jiwa_msg_t *m,
                       void *ud) {
  (void)self;
  night_ctx_t *c = vctx;
  night_cand_t *cd = ud;
  night_run_t *r = cd->run;
  if (jiwa_msg_kind(m) == JIWA_MSG_DELTA)
    return;
  r->pending--;
  if (r->failed) {
    night_settle(r);
    return;
  }
  night_cluster_t *cl = &r->clusters[cd->cluster];
  size_t bl;
  const void *b = jiwa_msg_body(m, &bl);
  int err = jiwa_msg_kind(m) == JIWA_MSG_ERROR;
  const char *etext = "";
  int code = err ? jiwa_msg_error(m, &etext) : 0;
  if (cd->step == 0 || cd->step == 1) {
    if (err) {
      r->counts.context_errors++;
      jiwa_log(c->self, JIWA_LOG_WARN, "run %s: context for \"%s\": %s: %s",
               r->id, cl->name, jiwa_err_name(code), etext);
    } else if (cd->step == 0) {
      const char *s;
      size_t n;
      if (jiwa_mp_get_str(b, bl, "context", &s, &n) == 0)
        append_ctx(cd, s, n);
    } else {
      jiwa_mp_reader_t at;
      jiwa_mp_item_t it;
      if (jiwa_mp_map_find(b, bl, "hits", &at) == 0 &&
          jiwa_mp_next(&at, &it) == 0 && it.type == JIWA_MP_ARRAY) {
        for (uint32_t i = 0; i < it.v.count; i++) {
          const uint8_t *h = at.p;
          if (jiwa_mp_skip(&at))
            break;
          const char *s;
          size_t n;
          if (jiwa_mp_get_str(h, (size_t)(at.p - h), "text", &s, &n) == 0) {
            append_ctx(cd, "- ", 2);
            append_ctx(cd, s, n);
          }
        }
      }
    }
    cd->step++;
    cand_step(cd);
    return;
  }
  /* the model */
  if (err) {
    night_fail(r, "golden", "model '%s' failed for \"%s\": %s: %s",
               r->plan.golden_model, cl->name, jiwa_err_name(code), etext);
    return;
  }
  const char *s;
  size_t n;
  if (jiwa_mp_get_str(b, bl, "text", &s, &n) || n == 0) {
    night_fail(r, "golden", "model '%s' gave no answer for \"%s\"",
               r->plan.golden_model, cl->name);
    return;
  }
  /* trim, and keep under the golden schema's 4000 characters */
  while (n && (s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == '\r'))
    n--;
  while (n && (*s == ' ' || *s == '\n' || *s == '\r'))
    s++, n--;
  n = utf8_cut(s, n, 4000);
  cd->answer = n ? night_strndup(s, n) : NULL;
  if (!cd->answer) {
    night_fail(r, "golden", "model '%s' gave no answer for \"%s\"",
               r->plan.golden_model, cl->name);
    return;
  }
  r->counts.golden_generated++;
  cd->step = 3;
  r->cand_done++;
  night_progress(r, "golden", r->cand_done, r->ncands, 0);
  if (r->cand_done == r->ncands)
    golden_write(r);
  else
    golden_pump(r);
}

static const char *GOLDEN_SYSTEM =
    "You write the golden answer to a question users of an Indonesian "
    "business assistant ask often (visas, companies, tax, property, daily "
    "life in Bali). It will be served as it is to everyone who asks the "
    "same thing. Answer in the language of the question, accurately and "
    "briefly (at most 150 words), hedged where rules change, naming "
    "documents by their real names. Plain text, no preamble, no sign-off.";

static void cand_step(night_cand_t *cd) {
  night_run_t *r = cd->run;
  night_ctx_t *c = r->ctx;
  night_cluster_t *cl = &r->clusters[cd->cluster];
  const char *to = NULL, *type = NULL;
  uint32_t timeout = (uint32_t)c->ask_timeout_ms;
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  if (cd->step == 0 && c->rag && c->rag[0]) {
    to = c->rag;
    type = "rag.query";
    msgpack_pack_map(&w.pk, 3);
    jiwa_mp_put_kv_str(&w.pk, "query", cl->name);
    jiwa_mp_put_kv_str(&w.pk, "lang", cl->lang);
    jiwa_mp_put_kv_int(&w.pk, "k", 3);
  } else if (cd->step <= 1 && c->knowledge && c->knowledge[0]) {
    cd->step = 1;
    to = c->knowledge;
    type = "knowledge.search";
    msgpack_pack_map(&w.pk, 3);
    jiwa_mp_put_kv_str(&w.pk, "text", cl->name);
    jiwa_mp_put_kv_str(&w.pk, "lang", cl->lang);
    jiwa_mp_put_kv_int(&w.pk, "k", 3);
  } else {
    cd->step = 2;
    to = r->plan.golden_model;
    type = "llm.complete";
    timeout = (uint32_t)c->model_timeout_ms;
    /* the user message: the question and how else it was asked */
    size_t cap = 512 + strlen(cl->name);
    for (size_t k = 0; k < cl->nexamples; k++)
      cap += strlen(cl->examples[k]) + 8;
    char *u = malloc(cap);
    if (!u) {
      jiwa_mp_writer_free(&w);
      night_fail(r, "golden", "out of memory");
      return;
    }
    size_t k = (size_t)snprintf(u, cap,
                                "Write the golden answer to this frequent "
                                "question (language: %s).\nQuestion: %s\n",
                                lang_name(cl->lang), cl->name);
    if (cl->nexamples && k < cap)
      k += (size_t)snprintf(u + k, cap - k, "Other ways users asked it:\n");
    for (size_t e = 0; e < cl->nexamples && k < cap; e++)
      k += (size_t)snprintf(u + k, cap - k, "- %s\n", cl->examples[e]);
    int has_ctx = cd->context_len > 0;
    msgpack_pack_map(&w.pk, 5 + has_ctx);
    jiwa_mp_put_kv_str(&w.pk, "system",
                       r->plan.golden_system ? r->plan.golden_system
                                             : GOLDEN_SYSTEM);
    if (has_ctx)
      jiwa_mp_put_kv_str(&w.pk, "context", cd->context);
    jiwa_mp_put_str(&w.pk, "messages");
    msgpack_pack_array(&w.pk, 1);
    msgpack_pack_map(&w.pk, 2);
    jiwa_mp_put_kv_str(&w.pk, "role", "user");
    jiwa_mp_put_kv_str(&w.pk, "content", u);
    jiwa_mp_put_kv_bool(&w.pk, "stream", 0);
    jiwa_mp_put_kv_int(&w.pk, "max_tokens", 600);
    jiwa_mp_put_kv_str(&w.pk, "lang", cl->lang);
    free(u);
  }
  int rc = jiwa_ask(c->self, to, type, w.sbuf.data, w.sbuf.size, timeout,
                    cand_reply, cd);
  jiwa_mp_writer_free(&w);
  if (rc) {
    if (cd->step < 2) { /* context is optional: go on without it */
      r->counts.context_errors++;
      cd->step++;
      cand_step(cd);
      return;
    }
    night_fail(r, "golden", "cannot ask model '%s': %s", to, jiwa_strerror(rc));
    return;
  }
  r->pending++;
}

static void golden_pump(night_run_t *r) {
  while (!r->failed && r->cand_next < r->ncands &&
         (int64_t)(r->cand_next - r->cand_done) < r->ctx->concurrency) {
    night_cand_t *cd = &r->cands[r->cand_next++];
    cand_step(cd);
  }
}

static void import_reply(jiwa_actor_t *self, void *vctx, const jiwa_msg_t *m,
                         void *ud) {
  (void)self;
  night_ctx_t *c = vctx;
  night_run_t *r = ud;
  if (jiwa_msg_kind(m) == JIWA_MSG_DELTA)
    return;
  r->pending--;
  if (jiwa_msg_kind(m) == JIWA_MSG_ERROR) {
    const char *t = "";
    int code = jiwa_msg_error(m, &t);
    night_fail(r, "golden",
               "the golden cache '%s' refused the %zu answers (none was "
               "written): %s: %s",
               c->golden, r->ncands, jiwa_err_name(code), t);
    return;
  }
  int64_t n = 0;
  size_t bl;
  const void *b = jiwa_msg_body(m, &bl);
  jiwa_mp_get_int(b, bl, "imported", &n);
  r->counts.golden_written = n;
  for (size_t i = 0; i < r->ncands; i++)
    r->clusters[r->cands[i].cluster].golden = 2;
  store_clusters(r);
  night_progress(r, "golden", r->ncands, r->ncands, 1);
  night_next_stage(r);
}

/* One golden.import of every answer: the golden cache validates them all
 * before it writes any. */
static void golden_write(night_run_t *r) {
  night_ctx_t *c = r->ctx;
  char source[64];
  snprintf(source, sizeof source, "nightly:%s", r->id);
  /* entries first (a repeated id is left out), then the request */
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  size_t nent = r->ncands;
  int ttl = c->golden_ttl_days > 0;
  for (size_t i = 0; i < r->ncands; i++) {
    night_cand_t *cd = &r->cands[i];
    night_cluster_t *cl = &r->clusters[cd->cluster];
    size_t ql = utf8_cut(cl->name, strlen(cl->name), 300);
    uint64_t h = norm_hash(cl->name, strlen(cl->name));
    snprintf(cl->golden_id, sizeof cl->golden_id, "nightly-%s-%016" PRIx64,
             cl->lang, h);
    int repeat = 0; /* two clusters named alike: one entry */
    for (size_t k = 0; k < i && !repeat; k++)
      repeat = strcmp(r->clusters[r->cands[k].cluster].golden_id,
                      cl->golden_id) == 0;
    if (repeat) {
      nent--;
      continue;
    }
    /* paraphrases: 3..300 characters, none equal to the question */
    const char *para[16];
    size_t pl[16], np = 0;
    for (size_t k = 0; k < cl->nexamples && (int64_t)np < r->plan.paraphrases;
         k++) {
      size_t l = utf8_cut(cl->examples[k], strlen(cl->examples[k]), 300);
      if (l < 3 || (l == ql && memcmp(cl->examples[k], cl->name, l) == 0))
        continue;
      para[np] = cl->examples[k];
      pl[np++] = l;
    }
    msgpack_pack_map(&w.pk, 7 + ttl);
    jiwa_mp_put_kv_str(&w.pk, "id", cl->golden_id);
    jiwa_mp_put_kv_str(&w.pk, "lang", cl->lang);
    jiwa_mp_put_str(&w.pk, "question");
    msgpack_pack_str(&w.pk, ql);
    msgpack_pack_str_body(&w.pk, cl->name, ql);
    jiwa_mp_put_str(&w.pk, "paraphrases");
    msgpack_pack_array(&w.pk, np);
    for (size_t k = 0; k < np; k++) {
      msgpack_pack_str(&w.pk, pl[k]);
      msgpack_pack_str_body(&w.pk, para[k], pl[k]);
    }
    jiwa_mp_put_kv_str(&w.pk, "answer", cd->answer);
    jiwa_mp_put_str(&w.pk, "tags");
    msgpack_pack_array(&w.pk, 1);
    jiwa_mp_put_str(&w.pk, "nightly");
    jiwa_mp_put_kv_str(&w.pk, "source", source);
    if (ttl)
      jiwa_mp_put_kv_double(&w.pk, "ttl_days", c->golden_ttl_days);
  }
  jiwa_mp_writer_t req;
  jiwa_mp_writer_init(&req);
  msgpack_pack_map(&req.pk, 1);
  jiwa_mp_put_str(&req.pk, "entries");
  msgpack_pack_array(&req.pk, nent);
  msgpack_sbuffer_write(&req.sbuf, w.sbuf.data, w.sbuf.size);
  jiwa_mp_writer_free(&w);
  int rc =
      jiwa_ask(c->self, c->golden, "golden.import", req.sbuf.data,
               req.sbuf.size, (uint32_t)c->ask_timeout_ms, import_reply, r);
  jiwa_mp_writer_free(&req);
  if (rc) {
    night_fail(r, "golden", "cannot ask the golden cache '%s' to import: %s",
               c->golden, jiwa_strerror(rc));
    return;
  }
  r->pending++;
}

void night_golden_start(night_run_t *r) {
  if (r->plan.max_golden == 0 || r->nclusters == 0) {
    night_next_stage(r);
    return;
  }
  size_t n = (size_t)r->plan.max_golden;
  if (n > r->nclusters)
    n = r->nclusters;
  r->cands = calloc(n, sizeof *r->cands);
  if (!r->cands) {
    night_fail(r, "golden", "out of memory");
    return;
  }
  night_progress(r, "golden lookups", 0, r->nclusters, 1);
  golden_lookup_next(r);
}

/* ============================================================================
 * cultural
 * ========================================================================== */

typedef struct {
  night_run_t *r;
  size_t idx; /* prompt: topic * nlangs + lang */
} prompt_t;

static void cultural_write(night_run_t *r);
static void cultural_pump(night_run_t *r);

static const char *CULTURAL_SYSTEM =
    "You are an expert on Indonesian (and Balinese) culture writing short "
    "insights for an assistant that helps people live and do business in "
    "Indonesia. Each insight says what a custom or feeling means and how "
    "to respond to it well. Be respectful, concrete, never stereotype "
    "(write 'many Indonesians', 'often').";

static int add_item(night_run_t *r, size_t topic, const char *lang,
                    const jiwa_list_item_t *li) {
  if (r->nitems >= ITEMS_MAX)
    return 0;
  if (r->nitems == r->items_cap) {
    size_t cap = r->items_cap ? r->items_cap * 2 : 64;
    night_item_t *p = realloc(r->items, cap * sizeof *p);
    if (!p)
      return JIWA_ENOMEM;
    r->items = p;
    r->items_cap = cap;
  }
  night_item_t *it = &r->items[r->nitems];
  memset(it, 0, sizeof *it);
  snprintf(it->lang, sizeof it->lang, "%s", lang);
  it->topic = topic;
  it->text = night_strndup(li->text, utf8_cut(li->text, li->text_len, 1200));
  it->title = li->title ? night_strndup(li->title,
                                        utf8_cut(li->title, li->title_len, 80))
                        : NULL;
  if (!it->text || (li->title && !it->title)) {
    free(it->text);
    free(it->title);
    return JIWA_ENOMEM;
  }
  r->nitems++;
  return 0;
}

static void prompt_reply(jiwa_actor_t *self, void *vctx, const jiwa_msg_t *m,
                         void *ud) {
  (void)self;
  (void)vctx;
  prompt_t *p = ud;
  night_run_t *r = p->r;
  if (jiwa_msg_kind(m) == JIWA_MSG_DELTA)
    return;
  size_t idx = p->idx;
  free(p);
  r->pending--;
  if (r->failed) {
    night_settle(r);
    return;
  }
  size_t topic = idx / r->plan.nlangs;
  const char *lang = r->plan.langs[idx % r->plan.nlangs];
  if (jiwa_msg_kind(m) == JIWA_MSG_ERROR) {
    const char *t = "";
    int code = jiwa_msg_error(m, &t);
    night_fail(r, "cultural", "model '%s' failed for topic %s (%s): %s: %s",
               r->plan.cultural_model, r->plan.topics[topic].name, lang,
               jiwa_err_name(code), t);
    return;
  }
  const char *s = "";
  size_t n = 0;
  size_t bl;
  const void *b = jiwa_msg_body(m, &bl);
  jiwa_mp_get_str(b, bl, "text", &s, &n);
  jiwa_list_t *list = NULL;
  jiwa_listparse_limits_t lim = {.max_items = (size_t)r->plan.per_prompt * 2};
  int rc = jiwa_listparse(s, n, &lim, &list);
  if (rc) {
    night_fail(r, "cultural", "parsing the list for topic %s (%s): %s",
               r->plan.topics[topic].name, lang, jiwa_strerror(rc));
    return;
  }
  if (list->n == 0)
    r->counts.cultural_empty++;
  for (size_t i = 0; i < list->n && !rc; i++) {
    if (list->items[i].text_len < 20) /* a fragment, not an insight */
      continue;
    rc = add_item(r, topic, lang, &list->items[i]);
    if (rc == 0)
      r->counts.cultural_items++;
  }
  jiwa_list_free(list);
  if (rc) {
    night_fail(r, "cultural", "out of memory");
    return;
  }
  r->prompt_done++;
  night_progress(r, "cultural", r->prompt_done, r->nprompts, 0);
  if (r->prompt_done == r->nprompts)
    cultural_write(r);
  else
    cultural_pump(r);
}

static void prompt_start(night_run_t *r, size_t idx) {
  night_ctx_t *c = r->ctx;
  const night_topic_t *t = &r->plan.topics[idx / r->plan.nlangs];
  const char *lang = r->plan.langs[idx % r->plan.nlangs];
  char u[1600];
  snprintf(u, sizeof u,
           "Topic: %s (category %s).%s%s\n"
           "Write %d distinct cultural insights on this topic for a reader "
           "who writes in %s, in that language. Answer as a numbered list, "
           "one insight per item: **Title** — what it means and how to "
           "respond (2 or 3 sentences). No introduction, no conclusion.",
           t->name, t->category, t->hint ? " " : "", t->hint ? t->hint : "",
           (int)r->plan.per_prompt, lang_name(lang));
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 5);
  jiwa_mp_put_kv_str(&w.pk, "system",
                     r->plan.cultural_system ? r->plan.cultural_system
                                             : CULTURAL_SYSTEM);
  jiwa_mp_put_str(&w.pk, "messages");
  msgpack_pack_array(&w.pk, 1);
  msgpack_pack_map(&w.pk, 2);
  jiwa_mp_put_kv_str(&w.pk, "role", "user");
  jiwa_mp_put_kv_str(&w.pk, "content", u);
  jiwa_mp_put_kv_bool(&w.pk, "stream", 0);
  jiwa_mp_put_kv_int(&w.pk, "max_tokens", 1500);
  jiwa_mp_put_kv_str(&w.pk, "lang", lang);
  prompt_t *p = malloc(sizeof *p);
  int rc = JIWA_ENOMEM;
  if (p) {
    p->r = r;
    p->idx = idx;
    rc = jiwa_ask(c->self, r->plan.cultural_model, "llm.complete", w.sbuf.data,
                  w.sbuf.size, (uint32_t)c->model_timeout_ms, prompt_reply, p);
    if (rc)
      free(p);
  }
  jiwa_mp_writer_free(&w);
  if (rc) {
    night_fail(r, "cultural", "cannot ask model '%s': %s",
               r->plan.cultural_model, jiwa_strerror(rc));
    return;
  }
  r->pending++;
}

static void cultural_pump(night_run_t *r) {
  while (!r->failed && r->prompt_next < r->nprompts &&
         (int64_t)(r->prompt_next - r->prompt_done) < r->ctx->concurrency)
    prompt_start(r, r->prompt_next++);
}

/* The generated insights of earlier runs (kv gen:<id>). */
static int old_cb(const void *key, size_t klen, const void *val, size_t vlen,
                  void *ud) {
  (void)val;
  (void)vlen;
  night_run_t *r = ud;
  if (klen <= 4)
    return 0;
  char **p = realloc(r->old_ids, (r->nold + 1) * sizeof *p);
  if (!p)
    return JIWA_ENOMEM;
  r->old_ids = p;
  r->old_ids[r->nold] = night_strndup((const char *)key + 4, klen - 4);
  if (!r->old_ids[r->nold])
    return JIWA_ENOMEM;
  r->nold++;
  return 0;
}

static int is_old(const night_run_t *r, const char *id, size_t n) {
  for (size_t i = 0; i < r->nold; i++)
    if (strlen(r->old_ids[i]) == n && memcmp(r->old_ids[i], id, n) == 0)
      return 1;
  return 0;
}

void night_cultural_start(night_run_t *r) {
  night_ctx_t *c = r->ctx;
  r->nprompts = r->plan.ntopics * r->plan.nlangs;
  r->counts.cultural_prompts = (int64_t)r->nprompts;
  int rc = jiwa_kv_scan(c->self, "gen:", 4, 100000, old_cb, r);
  if (rc < 0) {
    night_fail(r, "cultural", "reading the generated insights failed: %s",
               jiwa_strerror(rc));
    return;
  }
  night_progress(r, "cultural", 0, r->nprompts, 1);
  cultural_pump(r);
}

static void pack_meta(jiwa_mp_writer_t *w, const night_run_t *r,
                      const night_item_t *it) {
  const night_topic_t *t = &r->plan.topics[it->topic];
  jiwa_mp_writer_init(w);
  msgpack_pack_map(&w->pk, 10);
  jiwa_mp_put_kv_str(&w->pk, "lang", it->lang);
  jiwa_mp_put_kv_str(&w->pk, "category", t->category);
  jiwa_mp_put_kv_str(&w->pk, "topic", t->name);
  jiwa_mp_put_kv_str(&w->pk, "type", "insight");
  jiwa_mp_put_kv_str(&w->pk, "title", it->title ? it->title : t->name);
  jiwa_mp_put_kv_str(&w->pk, "text", it->text);
  jiwa_mp_put_kv_str(&w->pk, "respond", "");
  jiwa_mp_put_kv_str(&w->pk, "source", "generated");
  jiwa_mp_put_kv_str(&w->pk, "run", r->id);
  jiwa_mp_put_str(&w->pk, "markers");
  msgpack_pack_array(&w->pk, 0);
}

static char *embed_text(const night_item_t *it) {
  size_t tl = it->title ? strlen(it->title) : 0, xl = strlen(it->text);
  char *s = malloc(tl + xl + 2);
  if (!s)
    return NULL;
  size_t k = 0;
  if (tl) {
    memcpy(s, it->title, tl);
    s[tl] = '\n';
    k = tl + 1;
  }
  memcpy(s + k, it->text, xl + 1);
  return s;
}

static void kv_gen(night_run_t *r, const char *id, int put) {
  char key[140];
  int kl = snprintf(key, sizeof key, "gen:%s", id);
  if (put) {
    jiwa_mp_writer_t w;
    jiwa_mp_writer_init(&w);
    jiwa_mp_put_str(&w.pk, r->id);
    jiwa_kv_put(r->ctx->self, key, (size_t)kl, w.sbuf.data, w.sbuf.size, NULL,
                NULL);
    jiwa_mp_writer_free(&w);
  } else {
    jiwa_kv_del(r->ctx->self, key, (size_t)kl, NULL, NULL);
  }
}

static void delete_done(jiwa_actor_t *self, void *vctx, int status, void *ud) {
  (void)self;
  (void)vctx;
  night_run_t *r = ud;
  r->pending--;
  if (status) {
    night_fail(r, "cultural",
               "the %" PRId64 " new insights are in, but removing %zu old "
               "generated ones failed: %s",
               r->counts.cultural_written, r->ndel, jiwa_strerror(status));
    return;
  }
  for (size_t i = 0; i < r->ndel; i++)
    kv_gen(r, r->del_ids[i], 0);
  r->counts.cultural_removed = (int64_t)r->ndel;
  night_next_stage(r);
}

static void cultural_delete_old(night_run_t *r) {
  night_ctx_t *c = r->ctx;
  r->del_ids = calloc(r->nold ? r->nold : 1, sizeof *r->del_ids);
  if (!r->del_ids) {
    night_fail(r, "cultural", "out of memory");
    return;
  }
  for (size_t i = 0; i < r->nold; i++) {
    int kept = 0;
    for (size_t k = 0; k < r->nitems && !kept; k++)
      kept = r->items[k].keep && strcmp(r->items[k].id, r->old_ids[i]) == 0;
    if (!kept)
      r->del_ids[r->ndel++] = r->old_ids[i];
  }
  if (r->ndel == 0) {
    night_next_stage(r);
    return;
  }
  int rc = jiwa_collection_delete(c->self, c->collection,
                                  (const char *const *)r->del_ids, NULL,
                                  r->ndel, delete_done, r);
  if (rc) {
    night_fail(r, "cultural",
               "the new insights are in, but removing %zu old generated ones "
               "failed: %s",
               r->ndel, jiwa_strerror(rc));
    return;
  }
  r->pending++;
}

static void upsert_done(jiwa_actor_t *self, void *vctx, int status, void *ud) {
  (void)self;
  (void)vctx;
  night_run_t *r = ud;
  r->pending--;
  size_t kept = 0;
  for (size_t i = 0; i < r->nitems; i++)
    kept += r->items[i].keep != 0;
  if (status) {
    night_fail(r, "cultural",
               "writing %zu insights to '%s' failed (none was written): %s",
               kept, r->ctx->collection, jiwa_strerror(status));
    return;
  }
  r->counts.cultural_written = (int64_t)kept;
  for (size_t i = 0; i < r->nitems; i++)
    if (r->items[i].keep)
      kv_gen(r, r->items[i].id, 1);
  night_progress(r, "cultural", r->nprompts, r->nprompts, 1);
  if (r->plan.regenerate)
    cultural_delete_old(r);
  else
    night_next_stage(r);
}

/* Dedup (within the batch by the hash embedder, against the collection by
 * its own search), then one upsert. */
static void cultural_write(night_run_t *r) {
  night_ctx_t *c = r->ctx;
  jiwa_embed_t *emb = NULL;
  float *vecs = NULL;
  jiwa_coll_record_t *recs = NULL;
  jiwa_mp_writer_t *metas = NULL;
  char **texts = NULL;
  size_t nrec = 0;
  int rc = jiwa_embed_hash_new(DEDUP_DIM, &emb);
  if (rc == 0 && r->nitems) {
    vecs = calloc(r->nitems * (size_t)DEDUP_DIM, sizeof *vecs);
    recs = calloc(r->nitems, sizeof *recs);
    metas = calloc(r->nitems, sizeof *metas);
    texts = calloc(r->nitems, sizeof *texts);
    if (!vecs || !recs || !metas || !texts)
      rc = JIWA_ENOMEM;
  }
  for (size_t i = 0; rc == 0 && i < r->nitems; i++) {
    night_item_t *it = &r->items[i];
    const night_topic_t *t = &r->plan.topics[it->topic];
    texts[i] = embed_text(it);
    if (!texts[i]) {
      rc = JIWA_ENOMEM;
      break;
    }
    char h[64];
    snprintf(h, sizeof h, "%s\n", it->lang);
    uint64_t hv = norm_hash(texts[i], strlen(texts[i])) ^
                  jiwa_text_hash64(h, strlen(h), 7);
    snprintf(it->id, sizeof it->id, "gen-%s-%s-%016" PRIx64, it->lang, t->name,
             hv);
    float *v = vecs + i * DEDUP_DIM;
    if ((rc = jiwa_embed_hash_text(emb, texts[i], strlen(texts[i]), it->lang,
                                   v)))
      break;
    /* within the batch */
    int dup = 0;
    for (size_t k = 0; k < i && !dup; k++) {
      if (!r->items[k].keep || strcmp(r->items[k].lang, it->lang) != 0)
        continue;
      const float *u = vecs + k * DEDUP_DIM;
      float d = 0;
      for (unsigned j = 0; j < DEDUP_DIM; j++)
        d += u[j] * v[j];
      dup = d >= (float)c->dedup;
    }
    /* against what the collection holds */
    if (!dup) {
      const char *vals[1] = {it->lang};
      jiwa_coll_filter_t f = {"lang", vals, 1};
      jiwa_coll_query_t q = JIWA_COLL_QUERY_INIT;
      q.text = texts[i];
      q.k = 4;
      q.min_score = (float)c->dedup;
      q.filters = &f;
      q.nfilters = 1;
      jiwa_coll_result_t res;
      rc = jiwa_collection_search(c->self, c->collection, &q, &res);
      if (rc)
        break;
      for (uint32_t k = 0; k < res.n && !dup; k++) {
        const jiwa_coll_hit_t *hit = &res.hits[k];
        if (r->plan.regenerate &&
            (is_old(r, hit->id, hit->id_len) || strcmp(hit->id, it->id) == 0))
          continue; /* being replaced */
        dup = 1;
      }
      jiwa_collection_result_free(&res);
    }
    if (dup) {
      r->counts.cultural_duplicates++;
      continue;
    }
    it->keep = 1;
    pack_meta(&metas[nrec], r, it);
    recs[nrec].id = it->id;
    recs[nrec].text = texts[i];
    recs[nrec].meta = metas[nrec].sbuf.data;
    recs[nrec].meta_len = metas[nrec].sbuf.size;
    nrec++;
  }
  if (rc) {
    night_fail(r, "cultural",
               "checking the insights for duplicates in '%s' "
               "failed: %s",
               c->collection, jiwa_strerror(rc));
  } else if (nrec == 0) {
    night_progress(r, "cultural", r->nprompts, r->nprompts, 1);
    if (r->plan.regenerate)
      cultural_delete_old(r);
    else
      night_next_stage(r);
  } else {
    rc = jiwa_collection_upsert(c->self, c->collection, recs, nrec, upsert_done,
                                r);
    if (rc)
      night_fail(r, "cultural", "writing %zu insights to '%s' failed: %s", nrec,
                 c->collection, jiwa_strerror(rc));
    else
      r->pending++;
  }
  for (size_t i = 0; metas && i < nrec; i++)
    jiwa_mp_writer_free(&metas[i]);
  for (size_t i = 0; texts && i < r->nitems; i++)
    free(texts[i]);
  free(texts);
  free(metas);
  free(recs);
  free(vecs);
  jiwa_embed_destroy(emb);
}

/* ============================================================================
 */

void night_run_free_stages(night_run_t *r) {
  for (size_t i = 0; i < r->n; i++)
    free(r->texts[i]);
  free(r->texts);
  free(r->lens);
  free(r->langs);
  free(r->labels);
  for (size_t i = 0; i < r->nlabel_names; i++)
    free(r->label_names[i]);
  free(r->label_names);
  clusters_free(r->clusters, r->nclusters);
  for (size_t i = 0; r->cands && i < r->ncands; i++) {
    free(r->cands[i].context);
    free(r->cands[i].answer);
  }
  free(r->cands);
  for (size_t i = 0; i < r->nitems; i++) {
    free(r->items[i].title);
    free(r->items[i].text);
  }
  free(r->items);
  for (size_t i = 0; i < r->nold; i++)
    free(r->old_ids[i]);
  free(r->old_ids);
  free(r->del_ids);
}
