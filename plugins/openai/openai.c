/*
 * openai — OpenAI-compatible chat completions as an actor answering
 * `llm.complete` (see README.md): OpenAI itself, vLLM, llama.cpp server,
 * Ollama, RunPod's OpenAI route — only the base URL differs.
 */
#include <jiwa/plugin.h>

#include "llm_common/llm.h"
#include "openai_proto.h"

typedef struct {
  llm_inst_t inst; /* first: llm_common's view of this context */
  char *max_tokens_field;
  int include_usage;
} openai_ctx_t;

static const jiwa_cfg_field_t openai_config[] = {
    LLM_CFG_FIELDS(openai_ctx_t, "https://api.openai.com/v1", "gpt-4o-mini",
                   "OPENAI_API_KEY", "30000"),
    {JIWA_CFG_STR, "max_tokens_field", "max_tokens",
     offsetof(openai_ctx_t, max_tokens_field), 0, 0, 0,
     "\"max_tokens\" (vLLM, llama.cpp, Ollama) or \"max_completion_tokens\" "
     "(newer OpenAI models)"},
    {JIWA_CFG_BOOL, "include_usage", "true",
     offsetof(openai_ctx_t, include_usage), 0, 0, 0,
     "send stream_options.include_usage (token counts on streams)"},
    {0}};

static int openai_prepare(llm_inst_t *inst, const llm_build_t *b,
                          llm_http_t *h) {
  openai_ctx_t *ctx = (openai_ctx_t *)inst;
  openai_opts_t o = {.max_tokens_field = ctx->max_tokens_field,
                     .include_usage = ctx->include_usage};
  int rc = llm_http_url(h, "%s/chat/completions", inst->cfg.endpoint);
  if (!rc)
    rc = openai_build(b, &o, &h->body, &h->body_len);
  if (!rc)
    rc = llm_http_secret(h, "authorization", "Bearer ", inst->cfg.api_key);
  h->method = "POST";
  return rc;
}

static const llm_proto_t openai_proto = {
    .name = "openai",
    .streams = 1,
    .prepare = openai_prepare,
    .event = openai_event,
    .body = openai_body,
};

static int openai_init(jiwa_actor_t *self, void *vctx) {
  openai_ctx_t *ctx = vctx;
  if (strcmp(ctx->max_tokens_field, "max_tokens") != 0 &&
      strcmp(ctx->max_tokens_field, "max_completion_tokens") != 0) {
    jiwa_log(self, JIWA_LOG_ERROR,
             "openai: max_tokens_field must be \"max_tokens\" or "
             "\"max_completion_tokens\"");
    return JIWA_ECONFIG;
  }
  return llm_init(self, &ctx->inst, &openai_proto);
}

static int openai_receive(jiwa_actor_t *self, void *ctx,
                          const jiwa_msg_t *msg) {
  return llm_receive(self, ctx, msg);
}

static void openai_fini(jiwa_actor_t *self, void *ctx) { llm_fini(self, ctx); }

static const jiwa_plugin_desc_t openai_desc = {
    JIWA_DESC_HEADER,
    .name = "openai",
    .version = "1.0.0",
    .description = "OpenAI-compatible chat completions (OpenAI, vLLM, "
                   "llama.cpp, Ollama, RunPod's OpenAI route)",
    .config = openai_config,
    .ctx_size = sizeof(openai_ctx_t),
    .init = openai_init,
    .receive = openai_receive,
    .fini = openai_fini,
};

JIWA_PLUGIN(openai_desc)
