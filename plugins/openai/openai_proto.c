/*
 * openai_proto — OpenAI-compatible chat completions (see openai_proto.h).
 * Servers differ in small ways, all tolerated here: Ollama and llama.cpp
 * may omit the usage chunk or `model`; vLLM sends usage only when asked;
 * some send `finish_reason` and `[DONE]` in the same breath.
 */
#include "openai_proto.h"

#include <stdlib.h>
#include <string.h>

int openai_build(const llm_build_t *b, const openai_opts_t *opts, char **json,
                 size_t *len) {
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  int has_t = b->temperature >= 0;
  int so = b->stream && opts->include_usage;
  msgpack_pack_map(&w.pk, 4 + has_t + so);
  jiwa_mp_put_kv_str(&w.pk, "model", b->model);
  jiwa_mp_put_str(&w.pk, "messages");
  llm_pack_messages(&w.pk, b->req, b->system);
  jiwa_mp_put_kv_int(&w.pk,
                     opts->max_tokens_field && *opts->max_tokens_field
                         ? opts->max_tokens_field
                         : "max_tokens",
                     b->max_tokens);
  if (has_t)
    jiwa_mp_put_kv_double(&w.pk, "temperature", b->temperature);
  jiwa_mp_put_kv_bool(&w.pk, "stream", b->stream);
  if (so) {
    jiwa_mp_put_str(&w.pk, "stream_options");
    msgpack_pack_map(&w.pk, 1);
    jiwa_mp_put_kv_bool(&w.pk, "include_usage", 1);
  }
  int rc = llm_writer_json(&w, json, len);
  jiwa_mp_writer_free(&w);
  return rc;
}

static int error_of(llm_out_t *o, const char *mp, size_t mplen,
                    const char *where) {
  const char *m = "", *t = "", *c = "";
  size_t mn = 0, tn = 0, cn = 0;
  if (llm_mp_str(mp, mplen, "error.message", &m, &mn) != 0)
    llm_mp_str(mp, mplen, "error", &m, &mn); /* {"error": "text"} */
  llm_mp_str(mp, mplen, "error.type", &t, &tn);
  llm_mp_str(mp, mplen, "error.code", &c, &cn);
  int retry = llm_eq(t, tn, "server_error") || llm_eq(t, tn, "requests") ||
              llm_eq(c, cn, "rate_limit_exceeded") ||
              llm_eq(t, tn, "overloaded_error") ||
              llm_eq(c, cn, "overloaded");
  return llm_out_error(o, JIWA_EUPSTREAM, retry, "upstream error%s: %.*s%s%.*s",
                       where, (int)mn, m, tn ? " " : "", (int)tn, t);
}

static void usage_of(llm_out_t *o, const char *mp, size_t mplen) {
  int64_t v;
  if (llm_mp_int(mp, mplen, "usage.prompt_tokens", &v) == 0 && v >= 0)
    o->input_tokens = v;
  if (llm_mp_int(mp, mplen, "usage.completion_tokens", &v) == 0 && v >= 0)
    o->output_tokens = v;
}

static int parse(llm_out_t *o, const char *data, size_t len, char **mp,
                 size_t *mplen, const char *what) {
  char jerr[160];
  int rc = llm_json(data, len, mp, mplen, jerr, sizeof jerr);
  if (rc)
    return llm_out_error(o, rc == JIWA_ENOMEM ? rc : JIWA_EPROTO, 0,
                         "malformed JSON in %s (%s)", what, jerr);
  return 0;
}

int openai_event(llm_out_t *o, const char *event, const char *data,
                 size_t len) {
  o->events++;
  if (llm_eq(data, len, "[DONE]")) {
    o->done = 1;
    return 0;
  }
  char *mp = NULL;
  size_t mplen = 0;
  int rc = parse(o, data, len, &mp, &mplen, "a stream chunk");
  if (rc)
    return rc;
  const char *s;
  size_t n;
  if (llm_mp_path(mp, mplen, "error", NULL) == 0 || strcmp(event, "error") == 0) {
    rc = error_of(o, mp, mplen, " in stream");
    free(mp);
    return rc;
  }
  if (!o->model[0] && llm_mp_str(mp, mplen, "model", &s, &n) == 0)
    llm_out_model(o, s, n);
  if (llm_mp_str(mp, mplen, "choices.0.delta.content", &s, &n) == 0)
    rc = llm_out_text(o, s, n);
  else if (llm_mp_str(mp, mplen, "choices.0.text", &s, &n) == 0)
    rc = llm_out_text(o, s, n); /* completion-style servers */
  if (rc == 0 && llm_mp_str(mp, mplen, "choices.0.finish_reason", &s, &n) == 0 &&
      n) {
    llm_out_finish(o, s, n);
    o->done = 1;
  }
  usage_of(o, mp, mplen);
  free(mp);
  return rc;
}

int openai_body(llm_out_t *o, const char *json, size_t len) {
  o->events++;
  char *mp = NULL;
  size_t mplen = 0;
  int rc = parse(o, json, len, &mp, &mplen, "the response");
  if (rc)
    return rc;
  const char *s;
  size_t n;
  if (llm_mp_path(mp, mplen, "error", NULL) == 0) {
    rc = error_of(o, mp, mplen, "");
    free(mp);
    return rc;
  }
  int t = llm_mp_type(mp, mplen, "choices.0.message.content");
  if (t == JIWA_MP_STR) {
    llm_mp_str(mp, mplen, "choices.0.message.content", &s, &n);
    rc = llm_out_text(o, s, n);
  } else if (t == JIWA_MP_NIL) {
    rc = 0; /* an empty answer (e.g. only a tool call) */
  } else if (llm_mp_str(mp, mplen, "choices.0.text", &s, &n) == 0) {
    rc = llm_out_text(o, s, n);
  } else {
    rc = llm_out_error(o, JIWA_EPROTO, 0,
                       "response has no choices[0].message.content");
  }
  if (rc == 0) {
    if (llm_mp_str(mp, mplen, "model", &s, &n) == 0)
      llm_out_model(o, s, n);
    if (llm_mp_str(mp, mplen, "choices.0.finish_reason", &s, &n) == 0)
      llm_out_finish(o, s, n);
    usage_of(o, mp, mplen);
    o->done = 1;
  }
  free(mp);
  return rc;
}
