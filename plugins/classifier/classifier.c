/*
 * classifier — batch classification of documents (topic, priority,
 * audience, actionability) by a primary model with a fallback model
 * (DESIGN.md §10, README.md next to this file).
 *
 * classify.run {entries: [{id?, title?, text}...], lines?: [...]} streams
 * classify.progress {done, total} and ends with {results: [...], total,
 * classified, unclassified, fallback_used}: one row per entry, in order.
 * Each entry: the primary model is asked for a JSON object, which is
 * validated (classify_parse.c); a malformed answer is asked again once
 * (saying what was wrong), a second one makes the entry unclassified with
 * the reason. A model that fails (error, timeout, breaker open) hands the
 * entry to the fallback model, which gets the same treatment.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jiwa/plugin.h>

#include "classify_parse.h"

#define JOBS_MAX 8
#define LIST_MAX 64

typedef struct cls_job cls_job_t;

typedef struct {
  cls_job_t *job;
  char id[128];
  int64_t line;
  char *title;
  char *text;
  size_t text_len;
  int model;    /* 0 primary, 1 fallback */
  int tries;    /* on the current model */
  int attempts; /* all model calls */
  int done, ok;
  cls_result_t res;
  char reason[600];
  char last_why[300];
  char primary_err[300];
} cls_entry_t;

struct cls_job {
  jiwa_msg_t *req;
  cls_entry_t *e;
  size_t n, next, ndone, inflight;
  size_t classified, fallback_used;
  uint64_t t0, last_progress;
  int pumping;
};

typedef struct {
  /* config */
  char *primary, *fallback, *system;
  int64_t model_timeout_ms, concurrency, max_entries, max_text, max_tokens;
  jiwa_cfg_raw_t topics_raw, audiences_raw;
  /* state */
  char *topics[LIST_MAX], *audiences[LIST_MAX];
  size_t ntopics, naudiences;
  cls_job_t *jobs[JOBS_MAX];
} cls_ctx_t;

static const jiwa_cfg_field_t cls_config[] = {
    {JIWA_CFG_STR, "primary", "claude", offsetof(cls_ctx_t, primary), 0, 0, 0,
     "model actor asked first"},
    {JIWA_CFG_STR, "fallback", "llama", offsetof(cls_ctx_t, fallback), 0, 0, 0,
     "model actor asked when the primary fails; \"\" = none"},
    {JIWA_CFG_STR, "system", "", offsetof(cls_ctx_t, system), 0, 0, 0,
     "instructions for the model; \"\" = the built-in ones"},
    {JIWA_CFG_INT, "model_timeout_ms", "60000",
     offsetof(cls_ctx_t, model_timeout_ms), 0, 100, 3600000,
     "deadline of each model call"},
    {JIWA_CFG_INT, "concurrency", "4", offsetof(cls_ctx_t, concurrency), 0, 1,
     64, "documents in flight at once"},
    {JIWA_CFG_INT, "max_entries", "20000", offsetof(cls_ctx_t, max_entries), 0,
     1, 1000000, "documents per classify.run"},
    {JIWA_CFG_INT, "max_text", "6000", offsetof(cls_ctx_t, max_text), 0, 100,
     200000, "bytes of a document sent to the model (cut at a character)"},
    {JIWA_CFG_INT, "max_tokens", "200", offsetof(cls_ctx_t, max_tokens), 0, 16,
     4000, "answer length bound"},
    {JIWA_CFG_RAW, "topics", NULL, offsetof(cls_ctx_t, topics_raw), 0, 0, 0,
     "allowed topics (list of strings); none = any short word"},
    {JIWA_CFG_RAW, "audiences", NULL, offsetof(cls_ctx_t, audiences_raw), 0, 0,
     0, "allowed audiences (list of strings); none = any short word"},
    {0}};

static char *dupn(const char *s, size_t n) {
  char *p = malloc(n + 1);
  if (p) {
    memcpy(p, s, n);
    p[n] = 0;
  }
  return p;
}

static size_t utf8_cut(const char *s, size_t n, size_t max) {
  if (n <= max)
    return n;
  size_t k = max;
  while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80)
    k--;
  return k;
}

/* ---- results --------------------------------------------------------------
 */

static void pack_row(jiwa_mp_writer_t *w, const cls_ctx_t *c,
                     const cls_entry_t *e) {
  int has_id = e->id[0] != 0;
  msgpack_pack_map(&w->pk, (size_t)(4 + has_id + (e->ok ? 4 : 1)));
  if (has_id)
    jiwa_mp_put_kv_str(&w->pk, "id", e->id);
  jiwa_mp_put_kv_int(&w->pk, "line", e->line);
  jiwa_mp_put_kv_str(&w->pk, "status", e->ok ? "classified" : "unclassified");
  jiwa_mp_put_kv_str(&w->pk, "model",
                     e->attempts == 0 ? ""
                                      : (e->model ? c->fallback : c->primary));
  jiwa_mp_put_kv_int(&w->pk, "attempts", e->attempts);
  if (e->ok) {
    jiwa_mp_put_kv_str(&w->pk, "topic", e->res.topic);
    jiwa_mp_put_kv_str(&w->pk, "priority", e->res.priority);
    jiwa_mp_put_kv_str(&w->pk, "audience", e->res.audience);
    jiwa_mp_put_kv_str(&w->pk, "actionability", e->res.actionability);
  } else {
    jiwa_mp_put_kv_str(&w->pk, "reason", e->reason);
  }
}

static void job_free(cls_job_t *j) {
  if (!j)
    return;
  for (size_t i = 0; i < j->n; i++) {
    free(j->e[i].title);
    free(j->e[i].text);
  }
  free(j->e);
  if (j->req)
    jiwa_msg_release(j->req);
  free(j);
}

static void job_finish(jiwa_actor_t *self, cls_ctx_t *c, cls_job_t *j) {
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 5);
  jiwa_mp_put_str(&w.pk, "results");
  msgpack_pack_array(&w.pk, j->n);
  for (size_t i = 0; i < j->n; i++)
    pack_row(&w, c, &j->e[i]);
  jiwa_mp_put_kv_int(&w.pk, "total", (int64_t)j->n);
  jiwa_mp_put_kv_int(&w.pk, "classified", (int64_t)j->classified);
  jiwa_mp_put_kv_int(&w.pk, "unclassified", (int64_t)(j->n - j->classified));
  jiwa_mp_put_kv_int(&w.pk, "fallback_used", (int64_t)j->fallback_used);
  jiwa_reply(self, j->req, "classify.done", w.sbuf.data, w.sbuf.size);
  jiwa_mp_writer_free(&w);
  jiwa_log(self, JIWA_LOG_INFO,
           "classified %zu of %zu documents (%zu unclassified, fallback used "
           "%zu times) in %.1f s",
           j->classified, j->n, j->n - j->classified, j->fallback_used,
           (double)(jiwa_now_ms() - j->t0) / 1000.0);
  for (size_t i = 0; i < JOBS_MAX; i++)
    if (c->jobs[i] == j)
      c->jobs[i] = NULL;
  job_free(j);
}

static void progress(jiwa_actor_t *self, cls_job_t *j, int force) {
  uint64_t now = jiwa_now_ms();
  if (!force && now - j->last_progress < 100)
    return;
  j->last_progress = now;
  double secs = (double)(now - j->t0) / 1000.0;
  double rate = secs > 0 ? (double)j->ndone / secs : 0;
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 5);
  jiwa_mp_put_kv_str(&w.pk, "stage", "classify");
  jiwa_mp_put_kv_int(&w.pk, "done", (int64_t)j->ndone);
  jiwa_mp_put_kv_int(&w.pk, "total", (int64_t)j->n);
  jiwa_mp_put_kv_double(&w.pk, "rate", rate);
  jiwa_mp_put_kv_double(&w.pk, "eta_s",
                        rate > 0 ? (double)(j->n - j->ndone) / rate : -1);
  jiwa_stream(self, j->req, "classify.progress", w.sbuf.data, w.sbuf.size);
  jiwa_mp_writer_free(&w);
}

/* ---- one entry
 * ------------------------------------------------------------------ */

static const char *SYSTEM =
    "You classify documents for the team of an Indonesian business "
    "assistant (visas, companies, tax, property, life in Bali). Reply with "
    "ONE JSON object and nothing else: {\"topic\": a short topic in "
    "English (one or two words, e.g. \"visa\", \"tax\", \"company\", "
    "\"property\"), \"priority\": \"low\" | \"medium\" | \"high\" | "
    "\"urgent\", \"audience\": who it is for (e.g. \"client\", \"team\", "
    "\"public\", \"management\"), \"actionability\": \"none\" | "
    "\"informational\" | \"follow_up\" | \"action_required\"}.";

static void entry_send(jiwa_actor_t *self, cls_ctx_t *c, cls_entry_t *e);
static void pump(jiwa_actor_t *self, cls_ctx_t *c, cls_job_t *j);

static void entry_done(jiwa_actor_t *self, cls_ctx_t *c, cls_entry_t *e,
                       int ok) {
  cls_job_t *j = e->job;
  e->done = 1;
  e->ok = ok;
  j->ndone++;
  j->inflight--;
  if (ok)
    j->classified++;
  jiwa_count(self, ok ? "classified" : "unclassified", 1);
  progress(self, j, j->ndone == j->n);
  if (j->pumping) /* pump() settles when its loop ends */
    return;
  if (j->ndone == j->n)
    job_finish(self, c, j);
  else
    pump(self, c, j);
}

static void on_model(jiwa_actor_t *self, void *vctx, const jiwa_msg_t *m,
                     void *ud) {
  cls_ctx_t *c = vctx;
  cls_entry_t *e = ud;
  if (jiwa_msg_kind(m) == JIWA_MSG_DELTA)
    return;
  const char *model = e->model ? c->fallback : c->primary;
  if (jiwa_msg_kind(m) == JIWA_MSG_ERROR) {
    const char *t = "";
    int code = jiwa_msg_error(m, &t);
    if (e->model == 0 && c->fallback[0]) {
      snprintf(e->primary_err, sizeof e->primary_err, "%s: %s",
               jiwa_err_name(code), t);
      e->model = 1;
      e->tries = 0;
      e->job->fallback_used++;
      jiwa_count(self, "fallbacks", 1);
      entry_send(self, c, e);
      return;
    }
    if (e->model == 1)
      snprintf(e->reason, sizeof e->reason,
               "models failed: primary '%s': %s; fallback '%s': %s: %s",
               c->primary, e->primary_err, model, jiwa_err_name(code), t);
    else
      snprintf(e->reason, sizeof e->reason, "model '%s' failed: %s: %s", model,
               jiwa_err_name(code), t);
    entry_done(self, c, e, 0);
    return;
  }
  size_t bl;
  const void *b = jiwa_msg_body(m, &bl);
  const char *s = "";
  size_t n = 0;
  jiwa_mp_get_str(b, bl, "text", &s, &n);
  cls_rules_t rules = {(const char *const *)c->topics, c->ntopics,
                       (const char *const *)c->audiences, c->naudiences};
  char why[300];
  if (cls_parse(s, n, &rules, &e->res, why, sizeof why) == 0) {
    entry_done(self, c, e, 1);
    return;
  }
  jiwa_count(self, "malformed", 1);
  if (e->tries < 2) { /* once more, saying what was wrong */
    snprintf(e->last_why, sizeof e->last_why, "%s", why);
    entry_send(self, c, e);
    return;
  }
  snprintf(e->reason, sizeof e->reason,
           "model '%s' answered malformed output twice: %s", model, why);
  entry_done(self, c, e, 0);
}

static void entry_send(jiwa_actor_t *self, cls_ctx_t *c, cls_entry_t *e) {
  const char *model = e->model ? c->fallback : c->primary;
  size_t tl = utf8_cut(e->text, e->text_len, (size_t)c->max_text);
  size_t cap = tl + (e->title ? strlen(e->title) : 0) + 800;
  char *u = malloc(cap);
  if (!u) {
    snprintf(e->reason, sizeof e->reason, "out of memory");
    entry_done(self, c, e, 0);
    return;
  }
  size_t k = 0;
  if (e->tries == 1)
    k += (size_t)snprintf(u + k, cap - k,
                          "Your previous answer was not valid (%s). Reply "
                          "with the JSON object only.\n\n",
                          e->last_why);
  if (e->title)
    k += (size_t)snprintf(u + k, cap - k, "Title: %s\n", e->title);
  k += (size_t)snprintf(u + k, cap - k, "Document:\n%.*s", (int)tl, e->text);
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 4);
  jiwa_mp_put_kv_str(&w.pk, "system", c->system[0] ? c->system : SYSTEM);
  jiwa_mp_put_str(&w.pk, "messages");
  msgpack_pack_array(&w.pk, 1);
  msgpack_pack_map(&w.pk, 2);
  jiwa_mp_put_kv_str(&w.pk, "role", "user");
  jiwa_mp_put_kv_str(&w.pk, "content", u);
  jiwa_mp_put_kv_bool(&w.pk, "stream", 0);
  jiwa_mp_put_kv_int(&w.pk, "max_tokens", c->max_tokens);
  free(u);
  e->tries++;
  e->attempts++;
  int rc = jiwa_ask(self, model, "llm.complete", w.sbuf.data, w.sbuf.size,
                    (uint32_t)c->model_timeout_ms, on_model, e);
  jiwa_mp_writer_free(&w);
  if (rc) {
    e->attempts--;
    if (e->model == 0 && c->fallback[0]) {
      snprintf(e->primary_err, sizeof e->primary_err, "%s", jiwa_strerror(rc));
      e->model = 1;
      e->tries = 0;
      e->job->fallback_used++;
      entry_send(self, c, e);
      return;
    }
    snprintf(e->reason, sizeof e->reason, "cannot ask model '%s': %s", model,
             jiwa_strerror(rc));
    entry_done(self, c, e, 0);
  }
}

static void pump(jiwa_actor_t *self, cls_ctx_t *c, cls_job_t *j) {
  j->pumping = 1;
  while (j->next < j->n && (int64_t)j->inflight < c->concurrency) {
    cls_entry_t *e = &j->e[j->next++];
    if (e->done) /* refused when read */
      continue;
    j->inflight++;
    entry_send(self, c, e);
  }
  j->pumping = 0;
  if (j->ndone == j->n)
    job_finish(self, c, j);
}

/* ---- classify.run
 * ------------------------------------------------------------ */

static int reply_err(jiwa_actor_t *self, const jiwa_msg_t *m, int code,
                     const char *fmt, ...) JIWA_PRINTF(4, 5);
static int reply_err(jiwa_actor_t *self, const jiwa_msg_t *m, int code,
                     const char *fmt, ...) {
  char text[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  int rc = jiwa_reply_error(self, m, code, text);
  return rc == JIWA_ESTATE ? 0 : rc;
}

/* One entry object → e (text copied); a bad entry becomes an unclassified
 * row with the reason, the others go on. */
static int read_entry(const uint8_t *b, size_t n, cls_entry_t *e) {
  jiwa_mp_reader_t r;
  jiwa_mp_item_t it;
  jiwa_mp_reader_init(&r, b, n);
  if (jiwa_mp_next(&r, &it) || it.type != JIWA_MP_MAP) {
    snprintf(e->reason, sizeof e->reason, "entry is not an object");
    return 0;
  }
  const char *s;
  size_t sl;
  int64_t num;
  if (jiwa_mp_get_str(b, n, "id", &s, &sl) == 0)
    snprintf(e->id, sizeof e->id, "%.*s", (int)(sl < 127 ? sl : 127), s);
  else if (jiwa_mp_get_int(b, n, "id", &num) == 0)
    snprintf(e->id, sizeof e->id, "%" PRId64, num);
  if (jiwa_mp_get_str(b, n, "title", &s, &sl) == 0 && sl > 0) {
    e->title = dupn(s, utf8_cut(s, sl, 300));
    if (!e->title)
      return JIWA_ENOMEM;
  }
  static const char *fields[] = {"text", "content", "body"};
  for (size_t i = 0; i < 3; i++)
    if (jiwa_mp_get_str(b, n, fields[i], &s, &sl) == 0 && sl > 0) {
      e->text = dupn(s, sl);
      if (!e->text)
        return JIWA_ENOMEM;
      e->text_len = sl;
      return 0;
    }
  snprintf(e->reason, sizeof e->reason,
           "entry has no text (a string field 'text', 'content' or 'body')");
  return 0;
}

static int handle_run(jiwa_actor_t *self, cls_ctx_t *c, const jiwa_msg_t *m) {
  size_t slot = JOBS_MAX;
  for (size_t i = 0; i < JOBS_MAX && slot == JOBS_MAX; i++)
    if (!c->jobs[i])
      slot = i;
  if (slot == JOBS_MAX)
    return reply_err(self, m, JIWA_EBUSY,
                     "%d classify runs are in progress; try again when one "
                     "ended",
                     JOBS_MAX);
  size_t bl;
  const void *b = jiwa_msg_body(m, &bl);
  jiwa_mp_reader_t at, lines;
  jiwa_mp_item_t it, li;
  if (jiwa_mp_map_find(b, bl, "entries", &at) || jiwa_mp_next(&at, &it) ||
      it.type != JIWA_MP_ARRAY)
    return reply_err(self, m, JIWA_EINVAL,
                     "classify.run needs an array field 'entries' (one "
                     "object per document)");
  if (it.v.count == 0)
    return reply_err(self, m, JIWA_EINVAL, "classify.run: no entries");
  if ((int64_t)it.v.count > c->max_entries)
    return reply_err(self, m, JIWA_ETOOBIG,
                     "classify.run: %u entries, at most %" PRId64
                     " per run (max_entries); split the file",
                     it.v.count, c->max_entries);
  int have_lines = jiwa_mp_map_find(b, bl, "lines", &lines) == 0 &&
                   jiwa_mp_next(&lines, &li) == 0 && li.type == JIWA_MP_ARRAY &&
                   li.v.count == it.v.count;
  cls_job_t *j = calloc(1, sizeof *j);
  if (!j || !(j->e = calloc(it.v.count, sizeof *j->e))) {
    free(j);
    return reply_err(self, m, JIWA_ENOMEM, "out of memory");
  }
  j->n = it.v.count;
  int rc = 0;
  for (size_t i = 0; i < j->n && !rc; i++) {
    cls_entry_t *e = &j->e[i];
    e->job = j;
    e->line = (int64_t)i + 1;
    if (have_lines) {
      jiwa_mp_item_t ln;
      if (jiwa_mp_next(&lines, &ln) == 0 &&
          (ln.type == JIWA_MP_UINT || ln.type == JIWA_MP_INT))
        e->line = ln.type == JIWA_MP_UINT ? (int64_t)ln.v.u : ln.v.i;
    }
    const uint8_t *s = at.p;
    if (jiwa_mp_skip(&at)) {
      rc = JIWA_EPROTO;
      break;
    }
    rc = read_entry(s, (size_t)(at.p - s), e);
    if (!rc && !e->text) {
      e->done = 1;
      j->ndone++;
    }
  }
  if (rc) {
    job_free(j);
    return reply_err(self, m, rc, "classify.run: reading the entries: %s",
                     jiwa_strerror(rc));
  }
  j->req = jiwa_msg_retain(m);
  j->t0 = jiwa_now_ms();
  c->jobs[slot] = j;
  progress(self, j, 1);
  pump(self, c, j);
  return 0;
}

static int cls_receive(jiwa_actor_t *self, void *vctx, const jiwa_msg_t *m) {
  cls_ctx_t *c = vctx;
  if (jiwa_msg_kind(m) != JIWA_MSG_ASK)
    return 0;
  if (strcmp(jiwa_msg_type(m), "classify.run") == 0)
    return handle_run(self, c, m);
  return reply_err(self, m, JIWA_ENOTSUP,
                   "classifier answers classify.run, not %s", jiwa_msg_type(m));
}

/* ---- init / fini
 * ----------------------------------------------------------------- */

static int read_list(jiwa_actor_t *self, const jiwa_cfg_raw_t *raw,
                     const char *key, char **out, size_t *n) {
  *n = 0;
  if (!raw->data)
    return 0;
  jiwa_mp_reader_t r;
  jiwa_mp_item_t it;
  jiwa_mp_reader_init(&r, raw->data, raw->len);
  if (jiwa_mp_next(&r, &it) || it.type != JIWA_MP_ARRAY ||
      it.v.count > LIST_MAX) {
    jiwa_log(self, JIWA_LOG_ERROR,
             "config '%s' must be a list of at most %d strings", key, LIST_MAX);
    return JIWA_ECONFIG;
  }
  for (uint32_t i = 0; i < it.v.count; i++) {
    jiwa_mp_item_t s;
    char buf[CLS_VALUE_MAX + 1];
    if (jiwa_mp_next(&r, &s) || s.type != JIWA_MP_STR ||
        cls_normalise(s.v.s.ptr, s.v.s.len, buf, sizeof buf) < 0) {
      jiwa_log(self, JIWA_LOG_ERROR,
               "config '%s'[%u] must be a short word or phrase", key, i + 1);
      return JIWA_ECONFIG;
    }
    out[*n] = dupn(buf, strlen(buf));
    if (!out[*n])
      return JIWA_ENOMEM;
    (*n)++;
  }
  return 0;
}

static void cls_fini(jiwa_actor_t *self, void *vctx);

static int cls_init(jiwa_actor_t *self, void *vctx) {
  cls_ctx_t *c = vctx;
  int rc = read_list(self, &c->topics_raw, "topics", c->topics, &c->ntopics);
  if (!rc)
    rc = read_list(self, &c->audiences_raw, "audiences", c->audiences,
                   &c->naudiences);
  if (rc) {
    cls_fini(self, vctx);
    return rc;
  }
  jiwa_log(self, JIWA_LOG_INFO,
           "classifier ready: primary '%s', fallback "
           "'%s', %zu topics, %zu audiences",
           c->primary, c->fallback[0] ? c->fallback : "(none)", c->ntopics,
           c->naudiences);
  return 0;
}

static void cls_fini(jiwa_actor_t *self, void *vctx) {
  (void)self;
  cls_ctx_t *c = vctx;
  for (size_t i = 0; i < JOBS_MAX; i++) {
    job_free(c->jobs[i]);
    c->jobs[i] = NULL;
  }
  for (size_t i = 0; i < c->ntopics; i++)
    free(c->topics[i]);
  for (size_t i = 0; i < c->naudiences; i++)
    free(c->audiences[i]);
  c->ntopics = c->naudiences = 0;
}

static const jiwa_plugin_desc_t cls_desc = {
    JIWA_DESC_HEADER,
    .name = "classifier",
    .version = "1.0.0",
    .description = "batch classification of documents (topic, priority, "
                   "audience, actionability) with a fallback model",
    .config = cls_config,
    .ctx_size = sizeof(cls_ctx_t),
    .init = cls_init,
    .receive = cls_receive,
    .fini = cls_fini,
};

JIWA_PLUGIN(cls_desc)
