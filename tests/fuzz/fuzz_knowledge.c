/* Fuzz target for the knowledge line parser (runtime/store/
 * jiwa_knowledge.c), which reads JSONL from seed files, `rag.import`,
 * `golden.import` and the socket op knowledge.import. The input is tried as
 * one insight line, one golden line, a whole JSONL buffer of each kind, and
 * as msgpack for jiwa_knowledge_golden_from_mp. Invariants: a refusal says
 * why and leaves the output zeroed; an accepted entry keeps every rule of
 * the schema (id charset and length, lang, marker and paraphrase counts,
 * NUL-terminated strings, a meta that is one msgpack map, an embed text that
 * starts with the title); re-parsing an accepted golden entry packed back to
 * msgpack gives the same entry. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jiwa/errors.h"
#include "jiwa/mp.h"
#include "jiwa_knowledge.h"

static void check_id(const char *id) {
  size_t n = strlen(id);
  if (n == 0 || n > JIWA_KNOWLEDGE_ID_MAX)
    abort();
  for (size_t i = 0; i < n; i++)
    if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= '0' && id[i] <= '9') ||
          id[i] == '-'))
      abort();
}

static void check_lang(const char *l) {
  if (strcmp(l, "en") && strcmp(l, "id") && strcmp(l, "it"))
    abort();
}

static void check_insight(const jiwa_knowledge_insight_t *in) {
  check_id(in->id);
  check_lang(in->lang);
  if (strcmp(in->type, "insight") || in->nmarkers < 2 ||
      in->nmarkers > JIWA_KNOWLEDGE_MARKERS_MAX || !in->title[0] ||
      strlen(in->embed) != in->embed_len ||
      strncmp(in->embed, in->title, strlen(in->title)) != 0)
    abort();
  for (uint32_t i = 0; i < in->nmarkers; i++)
    if (!in->markers[i][0])
      abort();
  size_t used = 0;
  jiwa_mp_reader_t r;
  jiwa_mp_item_t it;
  jiwa_mp_reader_init(&r, in->meta, in->meta_len);
  if (jiwa_mp_scan(in->meta, in->meta_len, 2, &used) || used != in->meta_len ||
      jiwa_mp_next(&r, &it) || it.type != JIWA_MP_MAP)
    abort();
  const char *s;
  size_t sl;
  if (jiwa_mp_get_str(in->meta, in->meta_len, "lang", &s, &sl) ||
      sl != strlen(in->lang) || memcmp(s, in->lang, sl))
    abort();
}

static void check_golden(const jiwa_knowledge_golden_t *g) {
  check_id(g->id);
  check_lang(g->lang);
  if (!g->question[0] || !g->answer[0] || !g->source[0] ||
      g->nparaphrases > JIWA_KNOWLEDGE_PARAPHRASES_MAX ||
      g->ntags > JIWA_KNOWLEDGE_TAGS_MAX || g->ttl_days < 0 ||
      g->expires_ms < 0)
    abort();
  /* pack it back: the same entry comes out */
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 7);
  jiwa_mp_put_kv_str(&w.pk, "id", g->id);
  jiwa_mp_put_kv_str(&w.pk, "lang", g->lang);
  jiwa_mp_put_kv_str(&w.pk, "question", g->question);
  jiwa_mp_put_kv_str(&w.pk, "answer", g->answer);
  jiwa_mp_put_kv_str(&w.pk, "source", g->source);
  jiwa_mp_put_str(&w.pk, "paraphrases");
  msgpack_pack_array(&w.pk, g->nparaphrases);
  for (uint32_t i = 0; i < g->nparaphrases; i++)
    jiwa_mp_put_str(&w.pk, g->paraphrases[i]);
  jiwa_mp_put_str(&w.pk, "tags");
  msgpack_pack_array(&w.pk, g->ntags);
  for (uint32_t i = 0; i < g->ntags; i++)
    jiwa_mp_put_str(&w.pk, g->tags[i]);
  jiwa_knowledge_golden_t g2;
  char err[256];
  int rc = jiwa_knowledge_golden_from_mp(w.sbuf.data, w.sbuf.size, &g2, err,
                                         sizeof err);
  if (rc == 0 && (strcmp(g2.id, g->id) || strcmp(g2.question, g->question) ||
                  strcmp(g2.answer, g->answer) ||
                  g2.nparaphrases != g->nparaphrases || g2.ntags != g->ntags))
    abort();
  /* a packed entry can only be refused for its size */
  if (rc && rc != JIWA_ETOOBIG)
    abort();
  jiwa_knowledge_golden_free(&g2);
  jiwa_mp_writer_free(&w);
}

static int zeroed(const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i])
      return 0;
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *s = (const char *)data;
  char err[320];

  jiwa_knowledge_insight_t in;
  err[0] = '\0';
  int rc = jiwa_knowledge_parse_insight(s, size, &in, err, sizeof err);
  if (rc == 0)
    check_insight(&in);
  else if (rc > 0 || !err[0] || !zeroed(&in, sizeof in))
    abort();
  jiwa_knowledge_insight_free(&in);

  jiwa_knowledge_golden_t g;
  err[0] = '\0';
  rc = jiwa_knowledge_parse_golden(s, size, &g, err, sizeof err);
  if (rc == 0)
    check_golden(&g);
  else if (rc > 0 || !err[0] || !zeroed(&g, sizeof g))
    abort();
  jiwa_knowledge_golden_free(&g);

  err[0] = '\0';
  rc = jiwa_knowledge_golden_from_mp(data, size, &g, err, sizeof err);
  if (rc == 0)
    check_golden(&g);
  else if (rc > 0 || !err[0])
    abort();
  jiwa_knowledge_golden_free(&g);

  /* whole buffers: all or nothing, errors carry "name:line: " */
  jiwa_knowledge_insight_t *v = NULL;
  size_t n = 7;
  err[0] = '\0';
  rc = jiwa_knowledge_parse_insights(s, size, "f", &v, &n, err, sizeof err);
  if (rc == 0) {
    for (size_t i = 0; i < n; i++)
      check_insight(&v[i]);
    for (size_t i = 1; i < n; i++)
      if (strcmp(v[i].id, v[0].id) == 0)
        abort();
  } else if (v || n || strncmp(err, "f:", 2) != 0) {
    abort();
  }
  jiwa_knowledge_insights_free(v, n);
  jiwa_knowledge_golden_t *gv = NULL;
  rc = jiwa_knowledge_parse_goldens(s, size, "f", &gv, &n, err, sizeof err);
  if (rc == 0) {
    for (size_t i = 0; i < n; i++)
      check_golden(&gv[i]);
  } else if (gv || n || strncmp(err, "f:", 2) != 0) {
    abort();
  }
  jiwa_knowledge_goldens_free(gv, n);
  return 0;
}
