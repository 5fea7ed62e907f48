/*
 * template — the smallest complete jiwa plugin. Copy this folder to start a
 * new one (see README.md next to it).
 *
 * It answers `template.hello` asks with {"text": "<prefix> <name>"} and
 * counts the tells it gets. Everything a plugin needs is here: a context
 * struct filled from a config map, init, receive, drain and fini.
 */
#include <jiwa/plugin.h>
#include <stdio.h>
#include <string.h>

typedef struct {
  /* filled by the host from the config map below, before init */
  char *prefix;
  int64_t max_name;
  /* private state */
  uint64_t tells;
} template_ctx_t;

static const jiwa_cfg_field_t template_config[] = {
    {JIWA_CFG_STR, "prefix", "hello", offsetof(template_ctx_t, prefix), 0, 0,
     0, "text put before the name"},
    {JIWA_CFG_INT, "max_name", "64", offsetof(template_ctx_t, max_name), 0, 1,
     1024, "longest name accepted, in bytes"},
    {0}};

static int template_init(jiwa_actor_t *self, void *vctx) {
  template_ctx_t *ctx = vctx;
  jiwa_log(self, JIWA_LOG_INFO, "template ready (prefix '%s')", ctx->prefix);
  return 0;
}

static int template_receive(jiwa_actor_t *self, void *vctx,
                            const jiwa_msg_t *msg) {
  template_ctx_t *ctx = vctx;
  if (jiwa_msg_kind(msg) == JIWA_MSG_TELL) {
    ctx->tells++;
    return 0;
  }
  if (jiwa_msg_kind(msg) != JIWA_MSG_ASK)
    return 0;
  if (strcmp(jiwa_msg_type(msg), "template.hello") != 0)
    return jiwa_reply_error(self, msg, JIWA_ENOTSUP,
                            "template only answers template.hello");
  const char *name;
  size_t len;
  int rc = jiwa_msg_get_str(msg, "name", &name, &len);
  if (rc)
    /* a bad request is the caller's problem, not a broken actor: reply */
    return jiwa_reply_error(self, msg, JIWA_EINVAL,
                            "template.hello needs a string field 'name'");
  if ((int64_t)len > ctx->max_name)
    return jiwa_reply_error(self, msg, JIWA_ETOOBIG, "name is too long");

  char text[1200];
  snprintf(text, sizeof text, "%s %.*s", ctx->prefix, (int)len, name);
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 1);
  jiwa_mp_put_kv_str(&w.pk, "text", text);
  rc = jiwa_reply(self, msg, "template.hello.reply", w.sbuf.data, w.sbuf.size);
  jiwa_mp_writer_free(&w);
  jiwa_count(self, "hellos", 1);
  return rc == JIWA_ESTATE ? 0 : rc;
}

static void template_fini(jiwa_actor_t *self, void *vctx) {
  template_ctx_t *ctx = vctx;
  jiwa_log(self, JIWA_LOG_DEBUG, "template done after %llu tells",
           (unsigned long long)ctx->tells);
}

static const jiwa_plugin_desc_t template_desc = {
    JIWA_DESC_HEADER,
    .name = "template",
    .version = "1.0.0",
    .description = "minimal example plugin: answers template.hello",
    .config = template_config,
    .ctx_size = sizeof(template_ctx_t),
    .init = template_init,
    .receive = template_receive,
    .fini = template_fini,
};

JIWA_PLUGIN(template_desc)
