/*
 * echo — answers asks (`echo`, `chat`, any type but `ping`) with the text
 * it was sent, optionally after a delay and optionally streamed word by
 * word. The offline demo, the
 * benchmarks and the reload tests use it as a stand-in for a real pattern.
 */
#include <jiwa/plugin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  char *greeting;
  int64_t delay_ms;
  int stream;
  uint64_t served;
  struct pending *waiting; /* delayed answers not sent yet */
} echo_ctx_t;

static const jiwa_cfg_field_t echo_config[] = {
    {JIWA_CFG_STR, "greeting", "halo", offsetof(echo_ctx_t, greeting), 0, 0,
     0, "word put before every echoed text"},
    {JIWA_CFG_INT, "delay_ms", "0", offsetof(echo_ctx_t, delay_ms), 0, 0,
     60000, "answer after this many milliseconds (0 = at once)"},
    {JIWA_CFG_BOOL, "stream", "false", offsetof(echo_ctx_t, stream), 0, 0, 0,
     "stream the answer word by word as echo.delta messages"},
    {0}};

typedef struct pending {
  jiwa_msg_t *req;
  struct pending *prev, *next;
} pending_t;

static void unlink_pending(echo_ctx_t *ctx, pending_t *p) {
  if (p->prev)
    p->prev->next = p->next;
  else
    ctx->waiting = p->next;
  if (p->next)
    p->next->prev = p->prev;
}

static void pack_text(jiwa_mp_writer_t *w, const char *key, const char *s,
                      size_t n) {
  msgpack_pack_map(&w->pk, 1);
  jiwa_mp_put_str(&w->pk, key);
  msgpack_pack_str(&w->pk, n);
  msgpack_pack_str_body(&w->pk, s, n);
}

static void answer(jiwa_actor_t *self, echo_ctx_t *ctx,
                   const jiwa_msg_t *req) {
  const char *text = "";
  size_t len = 0;
  jiwa_msg_get_str(req, "text", &text, &len);
  char *out = malloc(strlen(ctx->greeting) + len + 3);
  if (!out) {
    jiwa_reply_error(self, req, JIWA_ENOMEM, "echo: out of memory");
    return;
  }
  int n = sprintf(out, "%s, %.*s", ctx->greeting, (int)len, text);
  jiwa_mp_writer_t w;
  int stream = ctx->stream;
  size_t blen;
  const void *body = jiwa_msg_body(req, &blen);
  jiwa_mp_get_bool(body, blen, "stream", &stream); /* a request may ask */
  if (stream) {
    /* one delta per word, then the whole text as the final reply */
    const char *p = out, *end = out + n;
    while (p < end) {
      const char *sp = memchr(p, ' ', (size_t)(end - p));
      const char *stop = sp ? sp + 1 : end;
      jiwa_mp_writer_init(&w);
      pack_text(&w, "text", p, (size_t)(stop - p));
      jiwa_stream(self, req, "echo.delta", w.sbuf.data, w.sbuf.size);
      jiwa_mp_writer_free(&w);
      p = stop;
    }
  }
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 2);
  jiwa_mp_put_str(&w.pk, "text");
  msgpack_pack_str(&w.pk, (size_t)n);
  msgpack_pack_str_body(&w.pk, out, (size_t)n);
  jiwa_mp_put_kv_int(&w.pk, "served", (int64_t)++ctx->served);
  jiwa_reply(self, req, "echo.reply", w.sbuf.data, w.sbuf.size);
  jiwa_mp_writer_free(&w);
  free(out);
}

static void delayed(jiwa_actor_t *self, void *vctx, void *ud) {
  pending_t *p = ud;
  unlink_pending(vctx, p);
  answer(self, vctx, p->req);
  jiwa_msg_release(p->req);
  free(p);
}

static int echo_receive(jiwa_actor_t *self, void *vctx,
                        const jiwa_msg_t *msg) {
  echo_ctx_t *ctx = vctx;
  if (jiwa_msg_kind(msg) != JIWA_MSG_ASK)
    return 0;
  if (strcmp(jiwa_msg_type(msg), "ping") == 0)
    return jiwa_reply(self, msg, "pong", NULL, 0);
  if (ctx->delay_ms > 0) {
    pending_t *p = malloc(sizeof *p);
    if (!p)
      return jiwa_reply_error(self, msg, JIWA_ENOMEM, "echo: out of memory");
    p->req = jiwa_msg_retain(msg);
    if (jiwa_timer_start(self, (uint64_t)ctx->delay_ms, 0, delayed, p,
                         NULL)) {
      jiwa_msg_release(p->req);
      free(p);
      return jiwa_reply_error(self, msg, JIWA_EBUSY, "echo: no timer");
    }
    p->prev = NULL;
    p->next = ctx->waiting;
    if (p->next)
      p->next->prev = p;
    ctx->waiting = p;
    return 0;
  }
  answer(self, ctx, msg);
  return 0;
}

/* Only reached with answers still waiting when the drain deadline cut the
 * timers short: the runtime already told their askers; free what we hold. */
static void echo_fini(jiwa_actor_t *self, void *vctx) {
  echo_ctx_t *ctx = vctx;
  while (ctx->waiting) {
    pending_t *p = ctx->waiting;
    ctx->waiting = p->next;
    jiwa_msg_release(p->req);
    free(p);
  }
}

static const jiwa_plugin_desc_t echo_desc = {
    JIWA_DESC_HEADER,
    .name = "echo",
    .version = "1.0.0",
    .description = "echoes text back (demo, benchmarks, reload tests)",
    .config = echo_config,
    .ctx_size = sizeof(echo_ctx_t),
    .receive = echo_receive,
    .fini = echo_fini,
};

JIWA_PLUGIN(echo_desc)
