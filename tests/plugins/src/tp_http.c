/* Test plugin for HTTP through the host table (tests/plugins/
 * test_http_plugin.c).
 *   ask  "fetch" {path}  → GET <url><path>; reply {status, body, chunks,
 *                          same_thread, code, kind, error} from on_done
 *   tell "hold"          → GET <url>/silent, kept in flight
 *   ask  "cancel"        → jiwa_http_cancel on the held request; reply {rc}
 *   ask  "status"        → reply {outstanding, canceled}
 * on_done and fini log one line each, so the test can see that a request
 * cut short by shutdown got its on_done (ECANCELED) before fini.
 */
#include <jiwa/plugin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  char *url;
  pthread_t loop_thread;
  int outstanding;
  int canceled;
  uint64_t held_id;
} tp_ctx_t;

typedef struct {
  jiwa_msg_t *req; /* NULL for "hold" */
  int status;
  int chunks;
  int same_thread;
  char body[2048];
  size_t blen;
} call_t;

static const jiwa_cfg_field_t tp_config[] = {
    {JIWA_CFG_STR, "url", NULL, offsetof(tp_ctx_t, url), JIWA_CFG_REQUIRED, 0,
     0, "base URL of the test server"},
    {0}};

static int tp_init(jiwa_actor_t *self, void *vctx) {
  tp_ctx_t *ctx = vctx;
  ctx->loop_thread = pthread_self();
  return 0;
}

static void on_response(jiwa_actor_t *self, void *vctx,
                        const jiwa_http_response_t *r, void *ud) {
  tp_ctx_t *ctx = vctx;
  call_t *c = ud;
  c->status = r->status;
  c->same_thread = pthread_equal(pthread_self(), ctx->loop_thread);
}

static int on_data(jiwa_actor_t *self, void *vctx, const void *d, size_t n,
                   void *ud) {
  tp_ctx_t *ctx = vctx;
  call_t *c = ud;
  c->chunks++;
  if (!pthread_equal(pthread_self(), ctx->loop_thread))
    c->same_thread = 0;
  size_t k = n < sizeof c->body - c->blen ? n : sizeof c->body - c->blen;
  memcpy(c->body + c->blen, d, k);
  c->blen += k;
  return 0;
}

static void on_done(jiwa_actor_t *self, void *vctx,
                    const jiwa_http_result_t *res, void *ud) {
  tp_ctx_t *ctx = vctx;
  call_t *c = ud;
  ctx->outstanding--;
  if (res->code == JIWA_ECANCELED)
    ctx->canceled++;
  if (!pthread_equal(pthread_self(), ctx->loop_thread))
    c->same_thread = 0;
  jiwa_log(self, JIWA_LOG_INFO, "tp_http: on_done %s (%s)",
           jiwa_err_name(res->code), res->error);
  if (c->req) {
    jiwa_mp_writer_t w;
    jiwa_mp_writer_init(&w);
    msgpack_pack_map(&w.pk, 7);
    jiwa_mp_put_kv_int(&w.pk, "status", c->status);
    jiwa_mp_put_str(&w.pk, "body");
    msgpack_pack_str(&w.pk, c->blen);
    msgpack_pack_str_body(&w.pk, c->body, c->blen);
    jiwa_mp_put_kv_int(&w.pk, "chunks", c->chunks);
    jiwa_mp_put_kv_int(&w.pk, "same_thread", c->same_thread);
    jiwa_mp_put_kv_int(&w.pk, "code", res->code);
    jiwa_mp_put_kv_str(&w.pk, "kind", jiwa_http_fail_name(res->kind));
    jiwa_mp_put_kv_str(&w.pk, "error", res->error);
    jiwa_reply(self, c->req, "fetch.reply", w.sbuf.data, w.sbuf.size);
    jiwa_mp_writer_free(&w);
    jiwa_msg_release(c->req);
  }
  free(c);
}

static const jiwa_http_cbs_t cbs = {on_response, on_data, on_done};

static int fetch(jiwa_actor_t *self, tp_ctx_t *ctx, const char *path,
                 size_t plen, const jiwa_msg_t *m, uint64_t *id) {
  char url[512];
  snprintf(url, sizeof url, "%s%.*s", ctx->url, (int)plen, path);
  call_t *c = calloc(1, sizeof *c);
  if (!c)
    return JIWA_ENOMEM;
  c->same_thread = 1;
  jiwa_http_req_t req;
  jiwa_http_req_init(&req);
  req.url = url;
  req.total_ms = 20000;
  int rc = jiwa_http_request(self, &req, &cbs, c, id);
  if (rc) {
    free(c);
    return rc;
  }
  c->req = m ? jiwa_msg_retain(m) : NULL;
  ctx->outstanding++;
  return 0;
}

static void reply_ints(jiwa_actor_t *self, const jiwa_msg_t *m, const char *k1,
                       int64_t v1, const char *k2, int64_t v2) {
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, k2 ? 2 : 1);
  jiwa_mp_put_kv_int(&w.pk, k1, v1);
  if (k2)
    jiwa_mp_put_kv_int(&w.pk, k2, v2);
  jiwa_reply(self, m, "tp.reply", w.sbuf.data, w.sbuf.size);
  jiwa_mp_writer_free(&w);
}

static int tp_receive(jiwa_actor_t *self, void *vctx, const jiwa_msg_t *m) {
  tp_ctx_t *ctx = vctx;
  const char *type = jiwa_msg_type(m);
  if (strcmp(type, "hold") == 0)
    return fetch(self, ctx, "/silent", 7, NULL, &ctx->held_id) == 0
               ? 0
               : JIWA_EPLUGIN;
  if (jiwa_msg_kind(m) != JIWA_MSG_ASK)
    return 0;
  if (strcmp(type, "fetch") == 0) {
    const char *path;
    size_t plen;
    if (jiwa_msg_get_str(m, "path", &path, &plen))
      return jiwa_reply_error(self, m, JIWA_EINVAL, "fetch needs a path");
    int rc = fetch(self, ctx, path, plen, m, NULL);
    return rc ? jiwa_reply_error(self, m, rc, "request refused") : 0;
  }
  if (strcmp(type, "cancel") == 0) {
    reply_ints(self, m, "rc", jiwa_http_cancel(self, ctx->held_id), NULL, 0);
    return 0;
  }
  if (strcmp(type, "status") == 0) {
    reply_ints(self, m, "outstanding", ctx->outstanding, "canceled",
               ctx->canceled);
    return 0;
  }
  return jiwa_reply_error(self, m, JIWA_ENOTSUP, "tp_http: unknown type");
}

static void tp_fini(jiwa_actor_t *self, void *vctx) {
  tp_ctx_t *ctx = vctx;
  jiwa_log(self, JIWA_LOG_INFO, "tp_http: fini outstanding=%d canceled=%d",
           ctx->outstanding, ctx->canceled);
}

static const jiwa_plugin_desc_t tp_desc = {
    JIWA_DESC_HEADER,    .name = "tp_http",
    .version = "1",      .description = "HTTP test plugin",
    .config = tp_config, .ctx_size = sizeof(tp_ctx_t),
    .init = tp_init,     .receive = tp_receive,
    .fini = tp_fini,
};

JIWA_PLUGIN(tp_desc)
