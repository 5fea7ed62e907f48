/* Test plugin for the loader, supervision and hot-reload tests. Built twice
 * (tp_v1.so, tp_v2.so) with a different TP_VERSION.
 *   ask "work"  → reply {"v": TP_VERSION, "n": seq}; every async_every-th
 *                 one is answered from a 1 ms timer (in-flight work that a
 *                 replaced version must drain)
 *   ask "crash" → receive returns an error (the supervisor restarts us)
 *   ask "hold"  → never answered (the asker's deadline decides)
 */
#include <jiwa/plugin.h>
#include <stdlib.h>
#include <string.h>

#ifndef TP_VERSION
#define TP_VERSION "1"
#endif

typedef struct held {
  jiwa_msg_t *req;
  struct held *next;
} held_t;

typedef struct {
  int fail_init;
  int64_t async_every;
  uint64_t seq;
  held_t *held; /* retained asks (timers pending or "hold") */
} tp_ctx_t;

static const jiwa_cfg_field_t tp_config[] = {
    {JIWA_CFG_BOOL, "fail_init", "false", offsetof(tp_ctx_t, fail_init), 0, 0,
     0, "init returns an error"},
    {JIWA_CFG_INT, "async_every", "8", offsetof(tp_ctx_t, async_every), 0, 0,
     1000, "answer every Nth work ask from a timer (0 = never)"},
    {0}};

static int tp_init(jiwa_actor_t *self, void *vctx) {
  tp_ctx_t *ctx = vctx;
  return ctx->fail_init ? JIWA_EPLUGIN : 0;
}

static void reply_work(jiwa_actor_t *self, tp_ctx_t *ctx,
                       const jiwa_msg_t *req) {
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 2);
  jiwa_mp_put_kv_str(&w.pk, "v", TP_VERSION);
  jiwa_mp_put_kv_int(&w.pk, "n", (int64_t)++ctx->seq);
  jiwa_reply(self, req, "work.reply", w.sbuf.data, w.sbuf.size);
  jiwa_mp_writer_free(&w);
}

static void unhold(tp_ctx_t *ctx, held_t *h) {
  for (held_t **pp = &ctx->held; *pp; pp = &(*pp)->next)
    if (*pp == h) {
      *pp = h->next;
      return;
    }
}

static void later(jiwa_actor_t *self, void *vctx, void *ud) {
  held_t *h = ud;
  unhold(vctx, h);
  reply_work(self, vctx, h->req);
  jiwa_msg_release(h->req);
  free(h);
}

static held_t *hold(tp_ctx_t *ctx, const jiwa_msg_t *m) {
  held_t *h = malloc(sizeof *h);
  if (!h)
    return NULL;
  h->req = jiwa_msg_retain(m);
  h->next = ctx->held;
  ctx->held = h;
  return h;
}

static int tp_receive(jiwa_actor_t *self, void *vctx, const jiwa_msg_t *m) {
  tp_ctx_t *ctx = vctx;
  const char *type = jiwa_msg_type(m);
  if (jiwa_msg_kind(m) != JIWA_MSG_ASK)
    return 0;
  if (strcmp(type, "crash") == 0)
    return JIWA_EPLUGIN;
  if (strcmp(type, "hold") == 0)
    return hold(ctx, m) ? 0 : JIWA_ENOMEM;
  if (strcmp(type, "work") == 0) {
    if (ctx->async_every && (ctx->seq + 1) % (uint64_t)ctx->async_every == 0) {
      held_t *h = hold(ctx, m);
      if (h && jiwa_timer_start(self, 1, 0, later, h, NULL) == 0) {
        ctx->seq++; /* keep the every-Nth rhythm */
        return 0;
      }
      if (h) {
        unhold(ctx, h);
        jiwa_msg_release(h->req);
        free(h);
      }
    }
    reply_work(self, ctx, m);
    return 0;
  }
  return jiwa_reply_error(self, m, JIWA_ENOTSUP, "tp: unknown type");
}

static void tp_fini(jiwa_actor_t *self, void *vctx) {
  tp_ctx_t *ctx = vctx;
  while (ctx->held) {
    held_t *h = ctx->held;
    ctx->held = h->next;
    jiwa_msg_release(h->req);
    free(h);
  }
}

static const jiwa_plugin_desc_t tp_desc = {
    JIWA_DESC_HEADER,
    .name = "tp",
    .version = TP_VERSION,
    .description = "test plugin",
    .config = tp_config,
    .ctx_size = sizeof(tp_ctx_t),
    .init = tp_init,
    .receive = tp_receive,
    .fini = tp_fini,
};

JIWA_PLUGIN(tp_desc)
