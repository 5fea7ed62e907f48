/* Test plugin for the store through the host table (ABI 1.2), driven by
 * tests/plugins/test_coll_plugin.c:
 *   ask "kv.put"   {key, value}   → jiwa_kv_put; reply {status} on commit
 *   ask "kv.get"   {key}          → reply {value} or an error
 *   ask "kv.scan"  {prefix, max}  → reply {n, keys = [...]}
 *   ask "kv.burst" {n, prefix}    → n puts left in flight; reply at once
 *   ask "coll.upsert" {coll, id, text, lang}  → reply {status} on commit
 *   ask "coll.search" {coll, text, lang?, k}  → reply {ids, top_text}
 *   ask "coll.stats"  {coll}      → reply the stats map
 *   ask "status"                  → reply {pending, done, failed, gen}
 * Every write completion counts down `pending`; fini aborts if a write of
 * this generation is still pending (a completion would come after fini),
 * and a completion arriving after fini would be a use-after-free that the
 * sanitizers report.
 */
#include <jiwa/plugin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  int pending;
  int done;
  int failed;
  int finied;
} tp_ctx_t;

static int tp_init(jiwa_actor_t *self, void *vctx) { return 0; }

static void reply_status(jiwa_actor_t *self, jiwa_msg_t *req, int status) {
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 1);
  jiwa_mp_put_kv_int(&w.pk, "status", status);
  jiwa_reply(self, req, "ok", w.sbuf.data, w.sbuf.size);
  jiwa_mp_writer_free(&w);
}

/* Completion of a write: @p ud is the retained request, or NULL. */
static void on_written(jiwa_actor_t *self, void *vctx, int status, void *ud) {
  tp_ctx_t *ctx = vctx;
  if (ctx->finied)
    abort(); /* a completion after fini: the contract is broken */
  ctx->pending--;
  if (status)
    ctx->failed++;
  else
    ctx->done++;
  if (ud) {
    reply_status(self, ud, status);
    jiwa_msg_release(ud);
  }
}

/* A copy of a string field as a NUL-terminated buffer. */
static int field(const jiwa_msg_t *m, const char *k, char *buf, size_t cap) {
  const char *s;
  size_t n;
  if (jiwa_msg_get_str(m, k, &s, &n) || n + 1 > cap)
    return -1;
  memcpy(buf, s, n);
  buf[n] = '\0';
  return 0;
}

static int kv_collect(const void *key, size_t klen, const void *val,
                      size_t vlen, void *ud) {
  jiwa_mp_writer_t *w = ud;
  msgpack_pack_str(&w->pk, klen);
  msgpack_pack_str_body(&w->pk, key, klen);
  return 0;
}

static int tp_receive(jiwa_actor_t *self, void *vctx, const jiwa_msg_t *m) {
  tp_ctx_t *ctx = vctx;
  const char *type = jiwa_msg_type(m);
  char key[256], val[256], coll[64], text[512], lang[16];
  int64_t num = 0;
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  int rc = 0;

  if (strcmp(type, "kv.put") == 0) {
    if (field(m, "key", key, sizeof key) || field(m, "value", val, sizeof val))
      return jiwa_reply_error(self, m, JIWA_EINVAL, "key and value"), 0;
    msgpack_pack_str(&w.pk, strlen(val));
    msgpack_pack_str_body(&w.pk, val, strlen(val));
    jiwa_msg_t *keep = jiwa_msg_retain(m);
    rc = jiwa_kv_put(self, key, strlen(key), w.sbuf.data, w.sbuf.size,
                     on_written, keep);
    if (rc) {
      jiwa_msg_release(keep);
      jiwa_reply_error(self, m, rc, "kv_put refused");
    } else {
      ctx->pending++;
    }
  } else if (strcmp(type, "kv.get") == 0) {
    void *v = NULL;
    size_t vl = 0;
    if (field(m, "key", key, sizeof key))
      return jiwa_reply_error(self, m, JIWA_EINVAL, "key"), 0;
    rc = jiwa_kv_get(self, key, strlen(key), &v, &vl);
    if (rc) {
      jiwa_reply_error(self, m, rc, "kv_get failed");
    } else {
      msgpack_pack_map(&w.pk, 1);
      jiwa_mp_put_str(&w.pk, "value");
      msgpack_sbuffer_write(&w.sbuf, v, vl); /* already one msgpack object */
      jiwa_reply(self, m, "ok", w.sbuf.data, w.sbuf.size);
      jiwa_kv_free(v);
    }
  } else if (strcmp(type, "kv.scan") == 0) {
    jiwa_mp_writer_t keys;
    jiwa_mp_writer_init(&keys);
    if (field(m, "prefix", key, sizeof key))
      key[0] = '\0';
    jiwa_msg_get_int(m, "max", &num);
    int n = jiwa_kv_scan(self, key, strlen(key), (uint32_t)num, kv_collect,
                         &keys);
    if (n < 0) {
      jiwa_reply_error(self, m, n, "kv_scan failed");
    } else {
      msgpack_pack_map(&w.pk, 2);
      jiwa_mp_put_kv_int(&w.pk, "n", n);
      jiwa_mp_put_str(&w.pk, "keys");
      msgpack_pack_array(&w.pk, (size_t)n);
      msgpack_sbuffer_write(&w.sbuf, keys.sbuf.data, keys.sbuf.size);
      jiwa_reply(self, m, "ok", w.sbuf.data, w.sbuf.size);
    }
    jiwa_mp_writer_free(&keys);
  } else if (strcmp(type, "kv.burst") == 0) {
    if (field(m, "prefix", val, sizeof val))
      snprintf(val, sizeof val, "burst");
    jiwa_msg_get_int(m, "n", &num);
    int started = 0;
    for (int64_t i = 0; i < num; i++) {
      snprintf(key, sizeof key, "%.200s-%04lld", val, (long long)i);
      w.sbuf.size = 0;
      msgpack_pack_int64(&w.pk, i);
      if (jiwa_kv_put(self, key, strlen(key), w.sbuf.data, w.sbuf.size,
                      on_written, NULL) == 0) {
        ctx->pending++;
        started++;
      }
    }
    w.sbuf.size = 0;
    msgpack_pack_map(&w.pk, 1);
    jiwa_mp_put_kv_int(&w.pk, "started", started);
    jiwa_reply(self, m, "ok", w.sbuf.data, w.sbuf.size);
  } else if (strcmp(type, "coll.upsert") == 0) {
    if (field(m, "coll", coll, sizeof coll) || field(m, "id", key, sizeof key) ||
        field(m, "text", text, sizeof text) ||
        field(m, "lang", lang, sizeof lang))
      return jiwa_reply_error(self, m, JIWA_EINVAL, "coll id text lang"), 0;
    msgpack_pack_map(&w.pk, 2);
    jiwa_mp_put_kv_str(&w.pk, "lang", lang);
    jiwa_mp_put_kv_str(&w.pk, "category", "test");
    jiwa_coll_record_t rec = {.id = key, .text = text, .meta = w.sbuf.data,
                              .meta_len = w.sbuf.size};
    jiwa_msg_t *keep = jiwa_msg_retain(m);
    rc = jiwa_collection_upsert(self, coll, &rec, 1, on_written, keep);
    if (rc) {
      jiwa_msg_release(keep);
      jiwa_reply_error(self, m, rc, "collection_upsert refused");
    } else {
      ctx->pending++;
    }
  } else if (strcmp(type, "coll.search") == 0) {
    if (field(m, "coll", coll, sizeof coll) ||
        field(m, "text", text, sizeof text))
      return jiwa_reply_error(self, m, JIWA_EINVAL, "coll text"), 0;
    jiwa_coll_query_t q = JIWA_COLL_QUERY_INIT;
    const char *vals[1] = {lang};
    jiwa_coll_filter_t f = {"lang", vals, 1};
    q.text = text;
    q.k = 3;
    q.flags = JIWA_COLL_WITH_TEXT;
    if (jiwa_msg_get_int(m, "k", &num) == 0)
      q.k = (uint32_t)num;
    if (field(m, "lang", lang, sizeof lang) == 0) {
      q.filters = &f;
      q.nfilters = 1;
    }
    jiwa_coll_result_t r;
    rc = jiwa_collection_search(self, coll, &q, &r);
    if (rc) {
      jiwa_reply_error(self, m, rc, "collection_search failed");
    } else {
      msgpack_pack_map(&w.pk, 2);
      jiwa_mp_put_str(&w.pk, "ids");
      msgpack_pack_array(&w.pk, r.n);
      for (uint32_t i = 0; i < r.n; i++)
        jiwa_mp_put_str(&w.pk, r.hits[i].id);
      jiwa_mp_put_kv_str(&w.pk, "top_text", r.n ? r.hits[0].text : "");
      jiwa_reply(self, m, "ok", w.sbuf.data, w.sbuf.size);
      jiwa_collection_result_free(&r);
    }
  } else if (strcmp(type, "coll.stats") == 0) {
    void *st = NULL;
    size_t sl = 0;
    if (field(m, "coll", coll, sizeof coll))
      coll[0] = '\0';
    rc = jiwa_collection_stats(self, coll, &st, &sl);
    if (rc)
      jiwa_reply_error(self, m, rc, "collection_stats failed");
    else
      jiwa_reply(self, m, "ok", st, sl);
    jiwa_kv_free(st);
  } else if (strcmp(type, "status") == 0) {
    msgpack_pack_map(&w.pk, 3);
    jiwa_mp_put_kv_int(&w.pk, "pending", ctx->pending);
    jiwa_mp_put_kv_int(&w.pk, "done", ctx->done);
    jiwa_mp_put_kv_int(&w.pk, "failed", ctx->failed);
    jiwa_reply(self, m, "ok", w.sbuf.data, w.sbuf.size);
  } else {
    jiwa_reply_error(self, m, JIWA_ENOTSUP, "unknown type");
  }
  jiwa_mp_writer_free(&w);
  return 0;
}

static void tp_fini(jiwa_actor_t *self, void *vctx) {
  tp_ctx_t *ctx = vctx;
  jiwa_log(self, JIWA_LOG_INFO, "tp_store: fini with %d pending, %d done",
           ctx->pending, ctx->done);
  if (ctx->pending != 0)
    abort(); /* fini before every completion of this generation ran */
  ctx->finied = 1;
}

static const jiwa_plugin_desc_t tp_desc = {
    JIWA_DESC_HEADER,
    .name = "tp_store",
    .version = "1",
    .description = "store host functions test plugin",
    .ctx_size = sizeof(tp_ctx_t),
    .init = tp_init,
    .receive = tp_receive,
    .fini = tp_fini,
};

JIWA_PLUGIN(tp_desc)
