/*
 * anthropic_proto — the Anthropic Messages API wire format (see
 * anthropic_proto.h). Event order on a stream: message_start,
 * content_block_start, ping, content_block_delta..., content_block_stop,
 * message_delta, message_stop; `error` may come at any point.
 */
#include "anthropic_proto.h"

#include <stdlib.h>
#include <string.h>

int anthropic_build(const llm_build_t *b, char **json, size_t *len) {
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  int has_sys = b->system && *b->system;
  int has_t = b->temperature >= 0;
  msgpack_pack_map(&w.pk, 4 + has_sys + has_t);
  jiwa_mp_put_kv_str(&w.pk, "model", b->model);
  jiwa_mp_put_kv_int(&w.pk, "max_tokens", b->max_tokens);
  jiwa_mp_put_str(&w.pk, "messages");
  llm_pack_messages(&w.pk, b->req, NULL);
  if (has_sys)
    jiwa_mp_put_kv_str(&w.pk, "system", b->system);
  if (has_t) /* the Messages API takes 0..1 */
    jiwa_mp_put_kv_double(&w.pk, "temperature",
                          b->temperature > 1 ? 1.0 : b->temperature);
  jiwa_mp_put_kv_bool(&w.pk, "stream", b->stream);
  int rc = llm_writer_json(&w, json, len);
  jiwa_mp_writer_free(&w);
  return rc;
}

static int retryable_type(const char *s, size_t n) {
  return llm_eq(s, n, "overloaded_error") ||
         llm_eq(s, n, "rate_limit_error") || llm_eq(s, n, "api_error") ||
         llm_eq(s, n, "timeout_error");
}

/* {"type":"error","error":{"type":T,"message":M}} at @p mp. */
static int error_of(llm_out_t *o, const char *mp, size_t mplen,
                    const char *where) {
  const char *t = "", *m = "";
  size_t tn = 0, mn = 0;
  llm_mp_str(mp, mplen, "error.type", &t, &tn);
  llm_mp_str(mp, mplen, "error.message", &m, &mn);
  return llm_out_error(o, JIWA_EUPSTREAM, retryable_type(t, tn),
                       "upstream error%s: %.*s (%.*s)", where, (int)mn, m,
                       (int)tn, t);
}

static void usage_of(llm_out_t *o, const char *mp, size_t mplen,
                     const char *in_path, const char *out_path) {
  int64_t v;
  if (in_path && llm_mp_int(mp, mplen, in_path, &v) == 0 && v >= 0)
    o->input_tokens = v;
  if (out_path && llm_mp_int(mp, mplen, out_path, &v) == 0 && v >= 0)
    o->output_tokens = v;
}

int anthropic_event(llm_out_t *o, const char *event, const char *data,
                    size_t len) {
  o->events++;
  /* keep-alives carry nothing we need: do not parse (they may be big) */
  if (strcmp(event, "ping") == 0)
    return 0;
  char *mp = NULL;
  size_t mplen = 0;
  char jerr[160];
  int rc = llm_json(data, len, &mp, &mplen, jerr, sizeof jerr);
  if (rc)
    return llm_out_error(o, rc == JIWA_ENOMEM ? rc : JIWA_EPROTO, 0,
                         "malformed JSON in the '%.40s' event (%s)", event,
                         jerr);
  const char *ty = event;
  size_t tn = strlen(event);
  /* an unnamed event ("message") says its type in the data */
  if (strcmp(event, "message") == 0)
    llm_mp_str(mp, mplen, "type", &ty, &tn);
  const char *s;
  size_t n;
  rc = 0;
  if (llm_eq(ty, tn, "message_start")) {
    if (llm_mp_str(mp, mplen, "message.model", &s, &n) == 0)
      llm_out_model(o, s, n);
    usage_of(o, mp, mplen, "message.usage.input_tokens",
             "message.usage.output_tokens");
  } else if (llm_eq(ty, tn, "content_block_start")) {
    if (llm_mp_str(mp, mplen, "content_block.type", &s, &n) == 0 &&
        llm_eq(s, n, "text") &&
        llm_mp_str(mp, mplen, "content_block.text", &s, &n) == 0)
      rc = llm_out_text(o, s, n);
  } else if (llm_eq(ty, tn, "content_block_delta")) {
    /* thinking and tool-input deltas are not part of the answer text */
    if (llm_mp_str(mp, mplen, "delta.type", &s, &n) == 0 &&
        llm_eq(s, n, "text_delta")) {
      if (llm_mp_str(mp, mplen, "delta.text", &s, &n) == 0)
        rc = llm_out_text(o, s, n);
      else
        rc = llm_out_error(o, JIWA_EPROTO, 0,
                           "text_delta without a string 'text'");
    }
  } else if (llm_eq(ty, tn, "message_delta")) {
    if (llm_mp_str(mp, mplen, "delta.stop_reason", &s, &n) == 0)
      llm_out_finish(o, s, n);
    usage_of(o, mp, mplen, "usage.input_tokens", "usage.output_tokens");
  } else if (llm_eq(ty, tn, "message_stop")) {
    o->done = 1;
  } else if (llm_eq(ty, tn, "error")) {
    rc = error_of(o, mp, mplen, " in stream");
  }
  free(mp);
  return rc;
}

int anthropic_body(llm_out_t *o, const char *json, size_t len) {
  o->events++;
  char *mp = NULL;
  size_t mplen = 0;
  char jerr[160];
  int rc = llm_json(json, len, &mp, &mplen, jerr, sizeof jerr);
  if (rc)
    return llm_out_error(o, rc == JIWA_ENOMEM ? rc : JIWA_EPROTO, 0,
                         "malformed JSON response (%s)", jerr);
  const char *s;
  size_t n;
  if (llm_mp_str(mp, mplen, "type", &s, &n) == 0 && llm_eq(s, n, "error")) {
    rc = error_of(o, mp, mplen, "");
    free(mp);
    return rc;
  }
  jiwa_mp_reader_t at;
  jiwa_mp_item_t it;
  if (llm_mp_path(mp, mplen, "content", &at) != 0 ||
      jiwa_mp_next(&at, &it) != 0 || it.type != JIWA_MP_ARRAY) {
    free(mp);
    return llm_out_error(o, JIWA_EPROTO, 0, "response has no 'content' array");
  }
  for (uint32_t i = 0; i < it.v.count && rc == 0; i++) {
    const uint8_t *start = at.p;
    if (jiwa_mp_skip(&at) != 0) {
      rc = llm_out_error(o, JIWA_EPROTO, 0, "malformed content block");
      break;
    }
    size_t bl = (size_t)(at.p - start);
    if (jiwa_mp_get_str(start, bl, "type", &s, &n) == 0 &&
        llm_eq(s, n, "text") && jiwa_mp_get_str(start, bl, "text", &s, &n) == 0)
      rc = llm_out_text(o, s, n);
  }
  if (rc == 0) {
    if (llm_mp_str(mp, mplen, "model", &s, &n) == 0)
      llm_out_model(o, s, n);
    if (llm_mp_str(mp, mplen, "stop_reason", &s, &n) == 0)
      llm_out_finish(o, s, n);
    usage_of(o, mp, mplen, "usage.input_tokens", "usage.output_tokens");
    o->done = 1;
  }
  free(mp);
  return rc;
}
