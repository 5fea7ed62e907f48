/*
 * knowledge — the cultural knowledge collection behind `jiwa knowledge`:
 * import (all or nothing, per-entry errors with their line numbers),
 * search (text, language and category filters, k) and stats. The socket
 * forwards the ops `knowledge.*` to the actor named `knowledge`.
 *
 * Entries follow the insight schema of config/knowledge/README.md and are
 * validated by the same code that reads the starter pack
 * (runtime/store/jiwa_knowledge.h).
 */
#include <jiwa/json.h>
#include <jiwa/plugin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jiwa_knowledge.h"

typedef struct {
  char *collection;
  int64_t k_default;
  double min_score;
} knowledge_ctx_t;

static const jiwa_cfg_field_t knowledge_config[] = {
    {JIWA_CFG_STR, "collection", "cultural",
     offsetof(knowledge_ctx_t, collection), 0, 0, 0,
     "collection imported into and searched (store.collections)"},
    {JIWA_CFG_INT, "k", "5", offsetof(knowledge_ctx_t, k_default), 0, 1, 100,
     "results of a search when the request gives no k"},
    {JIWA_CFG_DOUBLE, "min_score", "0", offsetof(knowledge_ctx_t, min_score),
     0, -1, 1, "drop search hits below this cosine similarity"},
    {0}};

/* The collection named in the request, or the configured one. */
static void coll_of(const knowledge_ctx_t *ctx, const jiwa_msg_t *m,
                    char *out, size_t cap) {
  const char *s;
  size_t n;
  if (jiwa_msg_get_str(m, "collection", &s, &n) == 0)
    snprintf(out, cap, "%.*s", (int)(n < cap - 1 ? n : cap - 1), s);
  else
    snprintf(out, cap, "%s", ctx->collection);
}

/* ---- import ------------------------------------------------------------------- */

#define IMPORT_MAX 100000
#define PROBLEMS_SHOWN 20

typedef struct {
  jiwa_msg_t *req;
  jiwa_knowledge_insight_t *ins;
  size_t n;
  char coll[64];
} import_t;

static void import_free(import_t *im) {
  jiwa_knowledge_insights_free(im->ins, im->n);
  jiwa_msg_release(im->req);
  free(im);
}

static void progress(jiwa_actor_t *self, const jiwa_msg_t *req,
                     const char *stage, size_t done, size_t total) {
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 3);
  jiwa_mp_put_kv_str(&w.pk, "stage", stage);
  jiwa_mp_put_kv_int(&w.pk, "done", (int64_t)done);
  jiwa_mp_put_kv_int(&w.pk, "total", (int64_t)total);
  jiwa_stream(self, req, "knowledge.progress", w.sbuf.data, w.sbuf.size);
  jiwa_mp_writer_free(&w);
}

static void import_done(jiwa_actor_t *self, void *vctx, int status,
                        void *ud) {
  import_t *im = ud;
  if (status) {
    char text[200];
    snprintf(text, sizeof text,
             "knowledge.import into '%s' failed (%s); nothing was imported",
             im->coll, jiwa_strerror(status));
    jiwa_reply_error(self, im->req, status, text);
  } else {
    progress(self, im->req, "committed", im->n, im->n);
    jiwa_mp_writer_t w;
    jiwa_mp_writer_init(&w);
    msgpack_pack_map(&w.pk, 2);
    jiwa_mp_put_kv_int(&w.pk, "imported", (int64_t)im->n);
    jiwa_mp_put_kv_str(&w.pk, "collection", im->coll);
    jiwa_reply(self, im->req, "knowledge.imported", w.sbuf.data,
               w.sbuf.size);
    jiwa_mp_writer_free(&w);
    jiwa_log(self, JIWA_LOG_INFO, "imported %zu insights into '%s'", im->n,
             im->coll);
  }
  import_free(im);
}

/* The line number of entry @p i: the `lines` array the CLI sends, or the
 * entry's position. */
static int64_t line_of(const void *body, size_t len, uint32_t i) {
  jiwa_mp_reader_t at;
  jiwa_mp_item_t it, v;
  if (jiwa_mp_map_find(body, len, "lines", &at) != 0 ||
      jiwa_mp_next(&at, &it) != 0 || it.type != JIWA_MP_ARRAY ||
      i >= it.v.count)
    return (int64_t)i + 1;
  for (uint32_t k = 0; k < i; k++)
    if (jiwa_mp_skip(&at) != 0)
      return (int64_t)i + 1;
  if (jiwa_mp_next(&at, &v) != 0)
    return (int64_t)i + 1;
  return v.type == JIWA_MP_UINT ? (int64_t)v.v.u
         : v.type == JIWA_MP_INT ? v.v.i
                                 : (int64_t)i + 1;
}

static void op_import(jiwa_actor_t *self, knowledge_ctx_t *ctx,
                      const jiwa_msg_t *m) {
  size_t blen;
  const void *body = jiwa_msg_body(m, &blen);
  jiwa_mp_reader_t at;
  jiwa_mp_item_t it;
  if (jiwa_mp_map_find(body, blen, "entries", &at) != 0 ||
      jiwa_mp_next(&at, &it) != 0 || it.type != JIWA_MP_ARRAY ||
      it.v.count == 0 || it.v.count > IMPORT_MAX) {
    jiwa_reply_error(self, m, JIWA_EINVAL,
                     "knowledge.import: field 'entries' must be an array of "
                     "1 to 100000 insights (config/knowledge/README.md)");
    return;
  }
  import_t *im = calloc(1, sizeof *im);
  if (im)
    im->ins = calloc(it.v.count, sizeof *im->ins);
  if (!im || !im->ins) {
    free(im);
    jiwa_reply_error(self, m, JIWA_ENOMEM, "knowledge.import: out of memory");
    return;
  }
  im->req = jiwa_msg_retain(m);
  coll_of(ctx, m, im->coll, sizeof im->coll);
  /* validate everything before writing anything */
  char problems[PROBLEMS_SHOWN * 200 + 100] = "";
  size_t plen = 0;
  uint32_t bad = 0;
  for (uint32_t i = 0; i < it.v.count; i++) {
    const uint8_t *e = at.p;
    if (jiwa_mp_skip(&at) != 0) {
      bad++;
      break;
    }
    char *js = NULL;
    size_t jl = 0;
    char err[200] = "not a JSON object";
    int rc = jiwa_mp_to_json(e, (size_t)(at.p - e), &js, &jl);
    if (rc == 0)
      rc = jiwa_knowledge_parse_insight(js, jl, &im->ins[im->n], err,
                                        sizeof err);
    free(js);
    if (rc == 0) {
      for (size_t k = 0; k < im->n && rc == 0; k++)
        if (strcmp(im->ins[k].id, im->ins[im->n].id) == 0) {
          snprintf(err, sizeof err, "id '%s' is already used by an earlier "
                                    "entry",
                   im->ins[k].id);
          rc = JIWA_EINVAL;
        }
      if (rc)
        jiwa_knowledge_insight_free(&im->ins[im->n]);
      else
        im->n++;
    }
    if (rc && bad++ < PROBLEMS_SHOWN)
      plen += (size_t)snprintf(problems + plen, sizeof problems - plen,
                               "%sline %lld: %s", plen ? "; " : "",
                               (long long)line_of(body, blen, i), err);
  }
  if (bad) {
    char text[sizeof problems + 160];
    snprintf(text, sizeof text,
             "knowledge.import: %u of %u entries are invalid, nothing was "
             "imported: %s%s",
             bad, it.v.count, problems, bad > PROBLEMS_SHOWN ? "; ..." : "");
    jiwa_reply_error(self, m, JIWA_EINVAL, text);
    import_free(im);
    return;
  }
  progress(self, m, "validated", im->n, im->n);
  jiwa_coll_record_t *recs = calloc(im->n, sizeof *recs);
  if (!recs) {
    jiwa_reply_error(self, m, JIWA_ENOMEM, "knowledge.import: out of memory");
    import_free(im);
    return;
  }
  for (size_t i = 0; i < im->n; i++) {
    recs[i].id = im->ins[i].id;
    recs[i].text = im->ins[i].embed;
    recs[i].text_len = im->ins[i].embed_len;
    recs[i].meta = im->ins[i].meta;
    recs[i].meta_len = im->ins[i].meta_len;
  }
  /* one write: the records and the index commit together, or not at all */
  int rc = jiwa_collection_upsert(self, im->coll, recs, im->n, import_done,
                                  im);
  free(recs);
  if (rc) {
    char text[200];
    snprintf(text, sizeof text, "knowledge.import into '%s': %s", im->coll,
             rc == JIWA_ENOENT ? "no such collection (store.collections)"
                               : jiwa_strerror(rc));
    jiwa_reply_error(self, m, rc, text);
    import_free(im);
  }
}

/* ---- search and stats ----------------------------------------------------------- */

static void put_meta_str(msgpack_packer *pk, const void *meta, size_t len,
                         const char *key) {
  const char *s = "";
  size_t n = 0;
  if (meta)
    jiwa_mp_get_str(meta, len, key, &s, &n);
  jiwa_mp_put_str(pk, key);
  msgpack_pack_str(pk, n);
  msgpack_pack_str_body(pk, s, n);
}

static void op_search(jiwa_actor_t *self, knowledge_ctx_t *ctx,
                      const jiwa_msg_t *m) {
  const char *text;
  size_t tl;
  if (jiwa_msg_get_str(m, "text", &text, &tl) != 0 || tl == 0) {
    jiwa_reply_error(self, m, JIWA_EINVAL,
                     "knowledge.search: field 'text' (the query) is missing");
    return;
  }
  int64_t k = ctx->k_default;
  if (jiwa_msg_get_int(m, "k", &k) == 0 && (k < 1 || k > 100)) {
    jiwa_reply_error(self, m, JIWA_EINVAL,
                     "knowledge.search: field 'k' must be 1..100");
    return;
  }
  char lang[17] = "", cat[65] = "", coll[64];
  const char *s;
  size_t n;
  if (jiwa_msg_get_str(m, "lang", &s, &n) == 0)
    snprintf(lang, sizeof lang, "%.*s", (int)(n < 16 ? n : 16), s);
  if (jiwa_msg_get_str(m, "category", &s, &n) == 0)
    snprintf(cat, sizeof cat, "%.*s", (int)(n < 64 ? n : 64), s);
  coll_of(ctx, m, coll, sizeof coll);
  const char *lv[1] = {lang}, *cv[1] = {cat};
  jiwa_coll_filter_t f[2];
  uint32_t nf = 0;
  if (lang[0])
    f[nf++] = (jiwa_coll_filter_t){"lang", lv, 1};
  if (cat[0])
    f[nf++] = (jiwa_coll_filter_t){"category", cv, 1};
  jiwa_coll_query_t q = JIWA_COLL_QUERY_INIT;
  q.text = text;
  q.text_len = tl;
  q.k = (uint32_t)k;
  q.min_score = (float)ctx->min_score;
  q.filters = nf ? f : NULL;
  q.nfilters = nf;
  q.flags = JIWA_COLL_WITH_META;
  jiwa_coll_result_t res;
  uint64_t t0 = jiwa_now_ms();
  int rc = jiwa_collection_search(self, coll, &q, &res);
  if (rc) {
    char t[200];
    snprintf(t, sizeof t, "knowledge.search in '%s': %s", coll,
             rc == JIWA_ENOENT ? "no such collection (store.collections)"
                               : jiwa_strerror(rc));
    jiwa_reply_error(self, m, rc, t);
    return;
  }
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 3);
  jiwa_mp_put_kv_str(&w.pk, "collection", coll);
  jiwa_mp_put_kv_int(&w.pk, "ms", (int64_t)(jiwa_now_ms() - t0));
  jiwa_mp_put_str(&w.pk, "hits");
  msgpack_pack_array(&w.pk, res.n);
  for (uint32_t i = 0; i < res.n; i++) {
    const jiwa_coll_hit_t *h = &res.hits[i];
    msgpack_pack_map(&w.pk, 8);
    jiwa_mp_put_kv_str(&w.pk, "id", h->id);
    jiwa_mp_put_kv_double(&w.pk, "score", (double)h->score);
    put_meta_str(&w.pk, h->meta, h->meta_len, "lang");
    put_meta_str(&w.pk, h->meta, h->meta_len, "category");
    put_meta_str(&w.pk, h->meta, h->meta_len, "topic");
    put_meta_str(&w.pk, h->meta, h->meta_len, "title");
    put_meta_str(&w.pk, h->meta, h->meta_len, "text");
    put_meta_str(&w.pk, h->meta, h->meta_len, "respond");
  }
  jiwa_collection_result_free(&res);
  jiwa_reply(self, m, "knowledge.hits", w.sbuf.data, w.sbuf.size);
  jiwa_mp_writer_free(&w);
}

static void op_stats(jiwa_actor_t *self, knowledge_ctx_t *ctx,
                     const jiwa_msg_t *m) {
  char coll[64];
  coll_of(ctx, m, coll, sizeof coll);
  void *mp = NULL;
  size_t len = 0;
  int rc = jiwa_collection_stats(self, coll, &mp, &len);
  if (rc) {
    char t[200];
    snprintf(t, sizeof t, "knowledge.stats of '%s': %s", coll,
             rc == JIWA_ENOENT ? "no such collection (store.collections)"
                               : jiwa_strerror(rc));
    jiwa_reply_error(self, m, rc, t);
    return;
  }
  jiwa_reply(self, m, "knowledge.stats", mp, len);
  jiwa_kv_free(mp);
}

static int knowledge_receive(jiwa_actor_t *self, void *vctx,
                             const jiwa_msg_t *m) {
  knowledge_ctx_t *ctx = vctx;
  if (jiwa_msg_kind(m) != JIWA_MSG_ASK)
    return 0;
  const char *type = jiwa_msg_type(m);
  if (strcmp(type, "knowledge.import") == 0)
    op_import(self, ctx, m);
  else if (strcmp(type, "knowledge.search") == 0)
    op_search(self, ctx, m);
  else if (strcmp(type, "knowledge.stats") == 0)
    op_stats(self, ctx, m);
  else
    jiwa_reply_error(self, m, JIWA_ENOTSUP,
                     "knowledge: unknown message; use knowledge.import, "
                     "knowledge.search or knowledge.stats");
  return 0;
}

static const jiwa_plugin_desc_t knowledge_desc = {
    JIWA_DESC_HEADER,
    .name = "knowledge",
    .version = "0.1.0",
    .description = "imports, searches and describes a knowledge collection",
    .config = knowledge_config,
    .ctx_size = sizeof(knowledge_ctx_t),
    .receive = knowledge_receive,
};

JIWA_PLUGIN(knowledge_desc)
