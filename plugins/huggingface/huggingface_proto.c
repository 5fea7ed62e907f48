/*
 * huggingface_proto — TGI and the Inference API (see huggingface_proto.h).
 */
#include "huggingface_proto.h"

#include <stdlib.h>
#include <string.h>

int hf_build(const llm_build_t *b, int with_stream_field, char **json,
             size_t *len) {
  char *prompt = NULL;
  int rc = llm_prompt_build(b->system, b->req, &prompt, NULL);
  if (rc)
    return rc;
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  /* TGI refuses temperature 0: leave sampling to its default then */
  int has_t = b->temperature > 0;
  msgpack_pack_map(&w.pk, 2 + (with_stream_field != 0));
  jiwa_mp_put_kv_str(&w.pk, "inputs", prompt);
  jiwa_mp_put_str(&w.pk, "parameters");
  msgpack_pack_map(&w.pk, 3 + has_t);
  jiwa_mp_put_kv_int(&w.pk, "max_new_tokens", b->max_tokens);
  if (has_t)
    jiwa_mp_put_kv_double(&w.pk, "temperature", b->temperature);
  jiwa_mp_put_kv_bool(&w.pk, "return_full_text", 0);
  jiwa_mp_put_kv_bool(&w.pk, "details", 1);
  if (with_stream_field)
    jiwa_mp_put_kv_bool(&w.pk, "stream", b->stream);
  free(prompt);
  rc = llm_writer_json(&w, json, len);
  jiwa_mp_writer_free(&w);
  return rc;
}

static int error_of(llm_out_t *o, const char *mp, size_t mplen,
                    const char *where) {
  const char *m = "", *t = "";
  size_t mn = 0, tn = 0;
  llm_mp_str(mp, mplen, "error", &m, &mn);
  llm_mp_str(mp, mplen, "error_type", &t, &tn);
  return llm_out_error(o, JIWA_EUPSTREAM, llm_eq(t, tn, "overloaded"),
                       "upstream error%s: %.*s%s%.*s", where, (int)mn, m,
                       tn ? " " : "", (int)tn, t);
}

static void details_of(llm_out_t *o, const char *mp, size_t mplen,
                       const char *prefix) {
  char path[64];
  const char *s;
  size_t n;
  int64_t v;
  snprintf(path, sizeof path, "%sdetails.finish_reason", prefix);
  if (llm_mp_str(mp, mplen, path, &s, &n) == 0)
    llm_out_finish(o, s, n);
  snprintf(path, sizeof path, "%sdetails.generated_tokens", prefix);
  if (llm_mp_int(mp, mplen, path, &v) == 0 && v >= 0)
    o->output_tokens = v;
}

int hf_event(llm_out_t *o, const char *event, const char *data, size_t len) {
  o->events++;
  if (llm_eq(data, len, "[DONE]")) { /* the HF router's OpenAI-style end */
    o->done = 1;
    return 0;
  }
  char *mp = NULL;
  size_t mplen = 0;
  char jerr[160];
  int rc = llm_json(data, len, &mp, &mplen, jerr, sizeof jerr);
  if (rc)
    return llm_out_error(o, rc == JIWA_ENOMEM ? rc : JIWA_EPROTO, 0,
                         "malformed JSON in a token event (%s)", jerr);
  if (llm_mp_path(mp, mplen, "error", NULL) == 0) {
    rc = error_of(o, mp, mplen, " in stream");
    free(mp);
    return rc;
  }
  const char *s;
  size_t n;
  jiwa_mp_reader_t at;
  jiwa_mp_item_t it;
  int special = 0;
  if (llm_mp_path(mp, mplen, "token.special", &at) == 0 &&
      jiwa_mp_next(&at, &it) == 0 && it.type == JIWA_MP_BOOL)
    special = it.v.b;
  if (!special && llm_mp_str(mp, mplen, "token.text", &s, &n) == 0)
    rc = llm_out_text(o, s, n);
  if (rc == 0 && llm_mp_type(mp, mplen, "generated_text") == JIWA_MP_STR) {
    details_of(o, mp, mplen, "");
    if (!o->finish[0])
      llm_out_finish(o, "stop", 4);
    o->done = 1;
  }
  free(mp);
  return rc;
}

int hf_body(llm_out_t *o, const char *json, size_t len) {
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
  const char *prefix = "";
  if (llm_mp_type(mp, mplen, "0") == JIWA_MP_MAP)
    prefix = "0.";
  char path[32];
  snprintf(path, sizeof path, "%sgenerated_text", prefix);
  if (llm_mp_str(mp, mplen, path, &s, &n) == 0) {
    rc = llm_out_text(o, s, n);
    if (rc == 0) {
      details_of(o, mp, mplen, prefix);
      if (!o->finish[0])
        llm_out_finish(o, "stop", 4);
      o->done = 1;
    }
  } else if (llm_mp_path(mp, mplen, "error", NULL) == 0) {
    rc = error_of(o, mp, mplen, "");
  } else {
    rc = llm_out_error(o, JIWA_EPROTO, 0, "response has no generated_text");
  }
  free(mp);
  return rc;
}
