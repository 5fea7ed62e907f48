/*
 * anthropic — Claude over the Anthropic Messages API, as an actor answering
 * `llm.complete` (see README.md). The lifecycle, retries, breaker and
 * deadlines are llm_common's; the wire format is anthropic_proto.c.
 */
#include <jiwa/plugin.h>

#include "anthropic_proto.h"
#include "llm_common/llm.h"

typedef struct {
  llm_inst_t inst; /* first: llm_common's view of this context */
  char *version;
} anthropic_ctx_t;

static const jiwa_cfg_field_t anthropic_config[] = {
    LLM_CFG_FIELDS(anthropic_ctx_t, "https://api.anthropic.com",
                   "claude-sonnet-4-5", "ANTHROPIC_API_KEY", "30000"),
    {JIWA_CFG_STR, "anthropic_version", "2023-06-01",
     offsetof(anthropic_ctx_t, version), 0, 0, 0,
     "value of the anthropic-version header"},
    {0}};

static int anthropic_prepare(llm_inst_t *inst, const llm_build_t *b,
                             llm_http_t *h) {
  anthropic_ctx_t *ctx = (anthropic_ctx_t *)inst;
  int rc = llm_http_url(h, "%s/v1/messages", inst->cfg.endpoint);
  if (!rc)
    rc = anthropic_build(b, &h->body, &h->body_len);
  if (!rc)
    rc = llm_http_header(h, "anthropic-version", ctx->version);
  if (!rc)
    rc = llm_http_secret(h, "x-api-key", "", inst->cfg.api_key);
  h->method = "POST";
  return rc;
}

static const llm_proto_t anthropic_proto = {
    .name = "anthropic",
    .streams = 1,
    .prepare = anthropic_prepare,
    .event = anthropic_event,
    .body = anthropic_body,
};

static int anthropic_init(jiwa_actor_t *self, void *ctx) {
  return llm_init(self, ctx, &anthropic_proto);
}

static int anthropic_receive(jiwa_actor_t *self, void *ctx,
                             const jiwa_msg_t *msg) {
  return llm_receive(self, ctx, msg);
}

static void anthropic_fini(jiwa_actor_t *self, void *ctx) {
  llm_fini(self, ctx);
}

static const jiwa_plugin_desc_t anthropic_desc = {
    JIWA_DESC_HEADER,
    .name = "anthropic",
    .version = "1.0.0",
    .description = "Claude over the Anthropic Messages API (SSE streaming)",
    .config = anthropic_config,
    .ctx_size = sizeof(anthropic_ctx_t),
    .init = anthropic_init,
    .receive = anthropic_receive,
    .fini = anthropic_fini,
};

JIWA_PLUGIN(anthropic_desc)
