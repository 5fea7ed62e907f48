/*
 * huggingface — text generation on Hugging Face as an actor answering
 * `llm.complete` (see README.md), meant as the last fallback of a chain:
 * a TGI server (/generate_stream, SSE token events; /generate) or the
 * Inference API (/models/{model}).
 */
#include <jiwa/plugin.h>

#include "huggingface_proto.h"
#include "llm_common/llm.h"

typedef struct {
  llm_inst_t inst; /* first: llm_common's view of this context */
  char *mode;
  int tgi;
} hf_ctx_t;

static const jiwa_cfg_field_t hf_config[] = {
    LLM_CFG_FIELDS(hf_ctx_t, "https://api-inference.huggingface.co",
                   "meta-llama/Llama-3.1-8B-Instruct", "HF_TOKEN", "60000"),
    {JIWA_CFG_STR, "mode", "inference", offsetof(hf_ctx_t, mode), 0, 0, 0,
     "\"inference\" (POST {endpoint}/models/{model}) or \"tgi\" (a TGI "
     "server at endpoint: /generate_stream, /generate)"},
    {0}};

static int hf_prepare(llm_inst_t *inst, const llm_build_t *b, llm_http_t *h) {
  hf_ctx_t *ctx = (hf_ctx_t *)inst;
  int rc;
  if (ctx->tgi)
    rc = llm_http_url(h, "%s/%s", inst->cfg.endpoint,
                      b->stream ? "generate_stream" : "generate");
  else
    rc = llm_http_url(h, "%s/models/%s", inst->cfg.endpoint, inst->cfg.model);
  if (!rc)
    rc = hf_build(b, !ctx->tgi, &h->body, &h->body_len);
  if (!rc)
    rc = llm_http_secret(h, "authorization", "Bearer ", inst->cfg.api_key);
  h->method = "POST";
  return rc;
}

static const llm_proto_t hf_proto = {
    .name = "huggingface",
    .streams = 1,
    .prepare = hf_prepare,
    .event = hf_event,
    .body = hf_body,
};

static int hf_init(jiwa_actor_t *self, void *vctx) {
  hf_ctx_t *ctx = vctx;
  if (strcmp(ctx->mode, "tgi") == 0)
    ctx->tgi = 1;
  else if (strcmp(ctx->mode, "inference") == 0)
    ctx->tgi = 0;
  else {
    jiwa_log(self, JIWA_LOG_ERROR,
             "huggingface: mode must be \"inference\" or \"tgi\"");
    return JIWA_ECONFIG;
  }
  if (!ctx->tgi && !*ctx->inst.cfg.model) {
    jiwa_log(self, JIWA_LOG_ERROR,
             "huggingface: mode \"inference\" needs a model");
    return JIWA_ECONFIG;
  }
  return llm_init(self, &ctx->inst, &hf_proto);
}

static int hf_receive(jiwa_actor_t *self, void *ctx, const jiwa_msg_t *msg) {
  return llm_receive(self, ctx, msg);
}

static void hf_fini(jiwa_actor_t *self, void *ctx) { llm_fini(self, ctx); }

static const jiwa_plugin_desc_t hf_desc = {
    JIWA_DESC_HEADER,
    .name = "huggingface",
    .version = "1.0.0",
    .description = "Hugging Face text generation (TGI or the Inference API), "
                   "a last fallback",
    .config = hf_config,
    .ctx_size = sizeof(hf_ctx_t),
    .init = hf_init,
    .receive = hf_receive,
    .fini = hf_fini,
};

JIWA_PLUGIN(hf_desc)
