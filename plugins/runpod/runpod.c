/*
 * runpod — a RunPod serverless endpoint through its native API, as an
 * actor answering `llm.complete` (see README.md): POST /runsync (default)
 * or /run, then GET /status/{id} every poll_ms while the job is queued or
 * running, until it completes or the call's deadline passes (then the job
 * is cancelled with POST /cancel/{id}). No streaming: a streaming asker
 * gets the whole answer as one llm.delta, then the final.
 * (For token streaming use the openai plugin on the endpoint's OpenAI
 * route, .../v2/{id}/openai/v1.)
 */
#include <jiwa/plugin.h>

#include "llm_common/llm.h"
#include "runpod_proto.h"

typedef struct {
  llm_inst_t inst; /* first: llm_common's view of this context */
  char *endpoint_id;
  char *mode;
  char *input;
  int64_t poll_ms;
  int async;
  int prompt_form;
} runpod_ctx_t;

static const jiwa_cfg_field_t runpod_config[] = {
    LLM_CFG_FIELDS(runpod_ctx_t, "https://api.runpod.ai/v2", "",
                   "RUNPOD_API_KEY", "95000"),
    {JIWA_CFG_STR, "endpoint_id", NULL, offsetof(runpod_ctx_t, endpoint_id),
     JIWA_CFG_REQUIRED, 0, 0, "the serverless endpoint id (path /v2/{id})"},
    {JIWA_CFG_STR, "mode", "runsync", offsetof(runpod_ctx_t, mode), 0, 0, 0,
     "\"runsync\" (wait for the answer, poll if it is still running) or "
     "\"run\" (queue the job, then poll)"},
    {JIWA_CFG_STR, "input", "messages", offsetof(runpod_ctx_t, input), 0, 0,
     0, "\"messages\" (input.messages, chat workers) or \"prompt\" "
        "(input.prompt, a plain transcript)"},
    {JIWA_CFG_INT, "poll_ms", "1000", offsetof(runpod_ctx_t, poll_ms), 0, 10,
     600000, "interval between /status polls"},
    {0}};

static int runpod_prepare(llm_inst_t *inst, const llm_build_t *b,
                          llm_http_t *h) {
  runpod_ctx_t *ctx = (runpod_ctx_t *)inst;
  llm_build_t nb = *b;
  nb.stream = 0; /* the native API does not stream */
  int rc = llm_http_url(h, "%s/%s/%s", inst->cfg.endpoint, ctx->endpoint_id,
                        ctx->async ? "run" : "runsync");
  if (!rc)
    rc = runpod_build(&nb, ctx->prompt_form, &h->body, &h->body_len);
  if (!rc)
    rc = llm_http_secret(h, "authorization", "Bearer ", inst->cfg.api_key);
  h->method = "POST";
  return rc;
}

static int runpod_poll(llm_inst_t *inst, const char *job, llm_http_t *h) {
  runpod_ctx_t *ctx = (runpod_ctx_t *)inst;
  int rc = llm_http_url(h, "%s/%s/status/%s", inst->cfg.endpoint,
                        ctx->endpoint_id, job);
  if (!rc)
    rc = llm_http_secret(h, "authorization", "Bearer ", inst->cfg.api_key);
  h->method = "GET";
  return rc;
}

static int runpod_cancel(llm_inst_t *inst, const char *job, llm_http_t *h) {
  runpod_ctx_t *ctx = (runpod_ctx_t *)inst;
  int rc = llm_http_url(h, "%s/%s/cancel/%s", inst->cfg.endpoint,
                        ctx->endpoint_id, job);
  if (!rc)
    rc = llm_http_secret(h, "authorization", "Bearer ", inst->cfg.api_key);
  h->method = "POST";
  return rc;
}

/* A worker that answers with an event stream anyway: each event is a
 * status body. */
static int runpod_event(llm_out_t *o, const char *event, const char *data,
                        size_t len) {
  return runpod_body(o, data, len);
}

static const llm_proto_t runpod_proto = {
    .name = "runpod",
    .streams = 0,
    .prepare = runpod_prepare,
    .poll = runpod_poll,
    .cancel = runpod_cancel,
    .event = runpod_event,
    .body = runpod_body,
};

static int runpod_init(jiwa_actor_t *self, void *vctx) {
  runpod_ctx_t *ctx = vctx;
  if (strcmp(ctx->mode, "runsync") == 0)
    ctx->async = 0;
  else if (strcmp(ctx->mode, "run") == 0)
    ctx->async = 1;
  else {
    jiwa_log(self, JIWA_LOG_ERROR,
             "runpod: mode must be \"runsync\" or \"run\"");
    return JIWA_ECONFIG;
  }
  if (strcmp(ctx->input, "messages") == 0)
    ctx->prompt_form = 0;
  else if (strcmp(ctx->input, "prompt") == 0)
    ctx->prompt_form = 1;
  else {
    jiwa_log(self, JIWA_LOG_ERROR,
             "runpod: input must be \"messages\" or \"prompt\"");
    return JIWA_ECONFIG;
  }
  for (const char *p = ctx->endpoint_id; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
          (*p >= '0' && *p <= '9') || *p == '-' || *p == '_')) {
      jiwa_log(self, JIWA_LOG_ERROR,
               "runpod: endpoint_id may hold letters, digits, '-' and '_'");
      return JIWA_ECONFIG;
    }
  if (!*ctx->endpoint_id) {
    jiwa_log(self, JIWA_LOG_ERROR, "runpod: endpoint_id is empty");
    return JIWA_ECONFIG;
  }
  ctx->inst.poll_ms = (uint32_t)ctx->poll_ms;
  ctx->inst.model = *ctx->inst.cfg.model ? ctx->inst.cfg.model
                                         : ctx->endpoint_id;
  return llm_init(self, &ctx->inst, &runpod_proto);
}

static int runpod_receive(jiwa_actor_t *self, void *ctx,
                          const jiwa_msg_t *msg) {
  return llm_receive(self, ctx, msg);
}

static void runpod_fini(jiwa_actor_t *self, void *ctx) { llm_fini(self, ctx); }

static const jiwa_plugin_desc_t runpod_desc = {
    JIWA_DESC_HEADER,
    .name = "runpod",
    .version = "1.0.0",
    .description = "RunPod serverless, native API (/runsync, /run + /status)",
    .config = runpod_config,
    .ctx_size = sizeof(runpod_ctx_t),
    .init = runpod_init,
    .receive = runpod_receive,
    .fini = runpod_fini,
};

JIWA_PLUGIN(runpod_desc)
