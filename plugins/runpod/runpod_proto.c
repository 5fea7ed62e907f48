/*
 * runpod_proto — RunPod's native serverless API (see runpod_proto.h).
 * Workers shape their output as they like; the vLLM worker's shape comes
 * first, then the common alternatives.
 */
#include "runpod_proto.h"

#include <stdlib.h>
#include <string.h>

int runpod_build(const llm_build_t *b, int prompt_form, char **json,
                 size_t *len) {
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  int has_t = b->temperature >= 0;
  msgpack_pack_map(&w.pk, 1);
  jiwa_mp_put_str(&w.pk, "input");
  msgpack_pack_map(&w.pk, 2);
  int rc = 0;
  if (prompt_form) {
    char *prompt = NULL;
    if ((rc = llm_prompt_build(b->system, b->req, &prompt, NULL)) != 0) {
      jiwa_mp_writer_free(&w);
      return rc;
    }
    jiwa_mp_put_kv_str(&w.pk, "prompt", prompt);
    free(prompt);
  } else {
    jiwa_mp_put_str(&w.pk, "messages");
    llm_pack_messages(&w.pk, b->req, b->system);
  }
  jiwa_mp_put_str(&w.pk, "sampling_params");
  msgpack_pack_map(&w.pk, 1 + has_t);
  jiwa_mp_put_kv_int(&w.pk, "max_tokens", b->max_tokens);
  if (has_t)
    jiwa_mp_put_kv_double(&w.pk, "temperature", b->temperature);
  rc = llm_writer_json(&w, json, len);
  jiwa_mp_writer_free(&w);
  return rc;
}

/* Concatenate a string array (the vLLM worker's tokens). */
static int tokens_of(llm_out_t *o, jiwa_mp_reader_t at) {
  jiwa_mp_item_t it;
  if (jiwa_mp_next(&at, &it) != 0 || it.type != JIWA_MP_ARRAY)
    return llm_out_error(o, JIWA_EPROTO, 0, "output tokens are not an array");
  for (uint32_t i = 0; i < it.v.count; i++) {
    jiwa_mp_item_t s;
    if (jiwa_mp_next(&at, &s) != 0)
      return llm_out_error(o, JIWA_EPROTO, 0, "malformed output tokens");
    if (s.type != JIWA_MP_STR)
      return llm_out_error(o, JIWA_EPROTO, 0,
                           "output tokens hold a non-string");
    int rc = llm_out_text(o, s.v.s.ptr, s.v.s.len);
    if (rc)
      return rc;
  }
  return 0;
}

/* One output item (a map) or a plain string at @p item. */
static int output_of(llm_out_t *o, const char *item, size_t ilen) {
  jiwa_mp_reader_t at;
  jiwa_mp_item_t it;
  jiwa_mp_reader_init(&at, item, ilen);
  if (jiwa_mp_next(&at, &it) != 0)
    return llm_out_error(o, JIWA_EPROTO, 0, "malformed output");
  if (it.type == JIWA_MP_STR)
    return llm_out_text(o, it.v.s.ptr, it.v.s.len);
  if (it.type != JIWA_MP_MAP)
    return llm_out_error(o, JIWA_EPROTO, 0, "output is neither text nor a map");
  const char *s;
  size_t n;
  int64_t v;
  int rc;
  if (llm_mp_path(item, ilen, "choices.0.tokens", &at) == 0)
    rc = tokens_of(o, at);
  else if (llm_mp_str(item, ilen, "choices.0.text", &s, &n) == 0 ||
           llm_mp_str(item, ilen, "choices.0.message.content", &s, &n) == 0 ||
           llm_mp_str(item, ilen, "text", &s, &n) == 0 ||
           llm_mp_str(item, ilen, "generated_text", &s, &n) == 0)
    rc = llm_out_text(o, s, n);
  else
    return llm_out_error(o, JIWA_EPROTO, 0,
                         "output has no text (choices[0].tokens, "
                         "choices[0].text, text)");
  if (rc)
    return rc;
  if (llm_mp_int(item, ilen, "usage.input", &v) == 0 ||
      llm_mp_int(item, ilen, "usage.prompt_tokens", &v) == 0)
    o->input_tokens = v < 0 ? 0 : v;
  if (llm_mp_int(item, ilen, "usage.output", &v) == 0 ||
      llm_mp_int(item, ilen, "usage.completion_tokens", &v) == 0)
    o->output_tokens = v < 0 ? 0 : v;
  if (llm_mp_str(item, ilen, "choices.0.finish_reason", &s, &n) == 0)
    llm_out_finish(o, s, n);
  if (llm_mp_str(item, ilen, "model", &s, &n) == 0)
    llm_out_model(o, s, n);
  return 0;
}

int runpod_body(llm_out_t *o, const char *json, size_t len) {
  o->events++;
  char *mp = NULL;
  size_t mplen = 0;
  char jerr[160];
  int rc = llm_json(json, len, &mp, &mplen, jerr, sizeof jerr);
  if (rc)
    return llm_out_error(o, rc == JIWA_ENOMEM ? rc : JIWA_EPROTO, 0,
                         "malformed JSON job status (%s)", jerr);
  const char *st = "", *s;
  size_t stn = 0, n;
  int has_status = llm_mp_str(mp, mplen, "status", &st, &stn) == 0;
  if (llm_mp_str(mp, mplen, "id", &s, &n) == 0)
    llm_printable(s, n, o->job, sizeof o->job);
  if (has_status &&
      (llm_eq(st, stn, "IN_QUEUE") || llm_eq(st, stn, "IN_PROGRESS"))) {
    if (!o->job[0])
      rc = llm_out_error(o, JIWA_EPROTO, 0, "job status %.*s without an id",
                         (int)stn, st);
    else
      o->pending = 1;
  } else if (has_status && (llm_eq(st, stn, "FAILED") ||
                            llm_eq(st, stn, "CANCELLED") ||
                            llm_eq(st, stn, "TIMED_OUT"))) {
    const char *e = "";
    size_t en = 0;
    if (llm_mp_str(mp, mplen, "error", &e, &en) != 0)
      llm_mp_str(mp, mplen, "output.error", &e, &en);
    rc = llm_out_error(o,
                       llm_eq(st, stn, "TIMED_OUT") ? JIWA_ETIMEDOUT
                                                    : JIWA_EUPSTREAM,
                       0, "job %.*s%s%.*s", (int)stn, st, en ? ": " : "",
                       (int)en, e);
  } else if ((!has_status || llm_eq(st, stn, "COMPLETED")) &&
             llm_mp_path(mp, mplen, "output", NULL) == 0) {
    jiwa_mp_reader_t at;
    jiwa_mp_item_t it;
    llm_mp_path(mp, mplen, "output", &at);
    jiwa_mp_reader_t peek = at;
    if (jiwa_mp_next(&peek, &it) != 0) {
      rc = llm_out_error(o, JIWA_EPROTO, 0, "malformed output");
    } else if (it.type == JIWA_MP_ARRAY) {
      if (it.v.count == 0)
        rc = llm_out_error(o, JIWA_EPROTO, 0, "output is an empty array");
      else
        rc = output_of(o, (const char *)peek.p, jiwa_mp_reader_left(&peek));
    } else {
      rc = output_of(o, (const char *)at.p, jiwa_mp_reader_left(&at));
    }
    if (rc == 0) {
      if (!o->finish[0])
        llm_out_finish(o, "stop", 4);
      o->done = 1;
    }
  } else if (llm_mp_str(mp, mplen, "error", &s, &n) == 0) {
    rc = llm_out_error(o, JIWA_EUPSTREAM, 0, "upstream error: %.*s", (int)n, s);
  } else {
    rc = llm_out_error(o, JIWA_EPROTO, 0,
                       "job status '%.*s' with no output", (int)stn, st);
  }
  free(mp);
  return rc;
}
