/* Dry runs of a routing policy with fake actors (see jiwa_dryrun.h). */
#include "jiwa_dryrun.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jiwa/harness.h"
#include "jiwa/plugin.h"

static const char *const default_fakes[] = {
    "golden_cache", "cultural_rag",  "memory", "claude",
    "llama",        "jiwa_enricher", "shadow", "convlog"};

const char *const *jiwa_dry_default_fakes(size_t *n) {
  *n = sizeof default_fakes / sizeof *default_fakes;
  return default_fakes;
}

struct jiwa_dry {
  jiwa_harness_t *h;
};

/* The behaviours of the request being run (one run at a time per process:
 * the fakes are built-in actors with no pointer of their own). */
static pthread_mutex_t script_mu = PTHREAD_MUTEX_INITIALIZER;
static char *script;
static size_t script_len;

/* The raw bytes of the value of @p key in map @p buf, or NULL. */
static const uint8_t *field(const void *buf, size_t len, const char *key,
                            size_t *n) {
  jiwa_mp_reader_t at;
  if (!buf || jiwa_mp_map_find(buf, len, key, &at) != 0)
    return NULL;
  const uint8_t *start = at.p;
  if (jiwa_mp_skip(&at) != 0)
    return NULL;
  *n = (size_t)(at.p - start);
  return start;
}

/* A delayed answer. The fake keeps the list: timers still pending when
 * the actor stops never fire, and fini frees what they held. */
typedef struct pending {
  jiwa_msg_t *req;
  char *beh; /* this actor's behaviour (msgpack map) or NULL */
  size_t beh_len;
  struct pending *prev, *next;
} pending_t;

typedef struct {
  pending_t *pending;
} fake_ctx_t;

static void pending_free(fake_ctx_t *c, pending_t *p) {
  if (p->prev)
    p->prev->next = p->next;
  else if (c->pending == p)
    c->pending = p->next;
  if (p->next)
    p->next->prev = p->prev;
  if (p->req)
    jiwa_msg_release(p->req);
  free(p->beh);
  free(p);
}

static void put_text(jiwa_mp_writer_t *w, const char *text, size_t n) {
  jiwa_mp_writer_init(w);
  msgpack_pack_map(&w->pk, 1);
  jiwa_mp_put_str(&w->pk, "text");
  msgpack_pack_str(&w->pk, n);
  msgpack_pack_str_body(&w->pk, text, n);
}

static int code_of(const char *s, size_t n) {
  for (int code = -1; code > -200; code--) {
    const char *name = jiwa_err_name(code);
    size_t k = strlen(name);
    if (name[0] && k <= n && memcmp(s, name, k) == 0 &&
        (k == n || s[k] == ':'))
      return code;
  }
  return JIWA_EUPSTREAM;
}

/* The default answer for a message type. */
static void answer_default(jiwa_actor_t *self, const jiwa_msg_t *m) {
  const char *type = jiwa_msg_type(m);
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  if (strcmp(type, "golden.lookup") == 0) {
    msgpack_pack_map(&w.pk, 1);
    jiwa_mp_put_kv_bool(&w.pk, "hit", 0);
  } else if (strcmp(type, "rag.query") == 0) {
    msgpack_pack_map(&w.pk, 2);
    jiwa_mp_put_kv_str(&w.pk, "context", "");
    jiwa_mp_put_str(&w.pk, "insights");
    msgpack_pack_array(&w.pk, 0);
  } else if (strcmp(type, "memory.get") == 0) {
    msgpack_pack_map(&w.pk, 1);
    jiwa_mp_put_kv_str(&w.pk, "summary", "");
  } else if (strcmp(type, "llm.complete") == 0) {
    /* quote the last user message: messages[-1].content */
    char said[64] = "";
    size_t blen, n;
    const void *b = jiwa_msg_body(m, &blen);
    const uint8_t *msgs = field(b, blen, "messages", &n);
    jiwa_mp_reader_t r;
    jiwa_mp_item_t it;
    if (msgs) {
      jiwa_mp_reader_init(&r, msgs, n);
      if (jiwa_mp_next(&r, &it) == 0 && it.type == JIWA_MP_ARRAY) {
        const uint8_t *last = NULL;
        size_t last_len = 0;
        for (uint32_t i = 0; i < it.v.count; i++) {
          const uint8_t *p = r.p;
          if (jiwa_mp_skip(&r))
            break;
          last = p;
          last_len = (size_t)(r.p - p);
        }
        const char *s;
        size_t sl;
        if (last &&
            jiwa_mp_get_str(last, last_len, "content", &s, &sl) == 0)
          snprintf(said, sizeof said, "%.*s", (int)(sl < 60 ? sl : 60), s);
      }
    }
    const char *me = jiwa_self_name(self);
    char text[160];
    int head = snprintf(text, sizeof text, "[%s] ", me);
    snprintf(text + head, sizeof text - (size_t)head, "answer to: %s", said);
    jiwa_mp_writer_t d;
    put_text(&d, text, (size_t)head);
    jiwa_stream(self, m, "llm.delta", d.sbuf.data, d.sbuf.size);
    jiwa_mp_writer_free(&d);
    put_text(&d, text + head, strlen(text + head));
    jiwa_stream(self, m, "llm.delta", d.sbuf.data, d.sbuf.size);
    jiwa_mp_writer_free(&d);
    msgpack_pack_map(&w.pk, 2);
    jiwa_mp_put_kv_str(&w.pk, "text", text);
    jiwa_mp_put_kv_str(&w.pk, "model", me);
  } else {
    msgpack_pack_map(&w.pk, 0);
  }
  jiwa_reply(self, m, "fake.reply", w.sbuf.data, w.sbuf.size);
  jiwa_mp_writer_free(&w);
}

static void answer(jiwa_actor_t *self, const jiwa_msg_t *m, const char *beh,
                   size_t beh_len) {
  if (!beh) {
    answer_default(self, m);
    return;
  }
  size_t n;
  const uint8_t *v;
  if ((v = field(beh, beh_len, "error", &n))) {
    const char *s = "EUPSTREAM: fake error";
    size_t sl = strlen(s);
    jiwa_mp_reader_t r;
    jiwa_mp_item_t it;
    jiwa_mp_reader_init(&r, v, n);
    if (jiwa_mp_next(&r, &it) == 0 && it.type == JIWA_MP_STR) {
      s = it.v.s.ptr;
      sl = it.v.s.len;
    }
    int code = code_of(s, sl);
    const char *name = jiwa_err_name(code);
    size_t k = strlen(name); /* "EUPSTREAM: text" -> the code and "text" */
    if (k + 2 <= sl && memcmp(s, name, k) == 0 && s[k] == ':') {
      s += k + 1;
      sl -= k + 1;
      while (sl && *s == ' ')
        s++, sl--;
    }
    char text[256];
    snprintf(text, sizeof text, "%.*s", (int)(sl < 250 ? sl : 250), s);
    jiwa_reply_error(self, m, code, text);
    return;
  }
  if ((v = field(beh, beh_len, "deltas", &n))) {
    jiwa_mp_reader_t r;
    jiwa_mp_item_t it;
    jiwa_mp_reader_init(&r, v, n);
    if (jiwa_mp_next(&r, &it) == 0 && it.type == JIWA_MP_ARRAY) {
      for (uint32_t i = 0; i < it.v.count; i++) {
        jiwa_mp_item_t s;
        if (jiwa_mp_next(&r, &s) != 0)
          break;
        if (s.type != JIWA_MP_STR)
          continue;
        jiwa_mp_writer_t d;
        put_text(&d, s.v.s.ptr, s.v.s.len);
        jiwa_stream(self, m, "llm.delta", d.sbuf.data, d.sbuf.size);
        jiwa_mp_writer_free(&d);
      }
    }
  }
  if ((v = field(beh, beh_len, "reply", &n)))
    jiwa_reply(self, m, "fake.reply", v, n);
  else
    answer_default(self, m);
}

static void delayed(jiwa_actor_t *self, void *ctx, void *ud) {
  pending_t *p = ud;
  answer(self, p->req, p->beh, p->beh_len);
  pending_free(ctx, p);
}

static void fake_fini(jiwa_actor_t *self, void *ctx) {
  fake_ctx_t *c = ctx;
  while (c->pending)
    pending_free(c, c->pending);
}

static int fake_receive(jiwa_actor_t *self, void *ctx, const jiwa_msg_t *m) {
  if (jiwa_msg_kind(m) != JIWA_MSG_ASK)
    return 0; /* tells are recorded by the policy's trace */
  pending_t *p = calloc(1, sizeof *p);
  if (!p)
    return jiwa_reply_error(self, m, JIWA_ENOMEM, "fake: out of memory");
  pthread_mutex_lock(&script_mu);
  size_t n;
  const uint8_t *b = field(script, script_len, jiwa_self_name(self), &n);
  if (b && (p->beh = malloc(n))) {
    memcpy(p->beh, b, n);
    p->beh_len = n;
  }
  pthread_mutex_unlock(&script_mu);
  int64_t delay = 0;
  if (p->beh)
    jiwa_mp_get_int(p->beh, p->beh_len, "delay_ms", &delay);
  fake_ctx_t *c = ctx;
  if (delay > 0 &&
      jiwa_timer_start(self, (uint64_t)delay, 0, delayed, p, NULL) == 0) {
    p->req = jiwa_msg_retain(m);
    p->next = c->pending;
    if (c->pending)
      c->pending->prev = p;
    c->pending = p;
    return 0;
  }
  answer(self, m, p->beh, p->beh_len);
  pending_free(c, p);
  return 0;
}

static const jiwa_plugin_desc_t fake_desc = {
    JIWA_DESC_HEADER,
    .name = "fake",
    .version = "1",
    .description = "a scripted stand-in for a plugin the policy calls",
    .ctx_size = sizeof(fake_ctx_t),
    .receive = fake_receive,
    .fini = fake_fini,
};

const jiwa_plugin_desc_t *jiwa_dry_fake_desc(void) { return &fake_desc; }

/* A Lua string literal for @p s. */
static void lua_quote(char *out, size_t cap, const char *s) {
  size_t k = 0;
  if (cap < 3)
    return;
  out[k++] = '"';
  for (; *s && k + 5 < cap; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      k += (size_t)snprintf(out + k, cap - k, "\\%c", c);
    else if (c < 0x20 || c == 0x7f)
      k += (size_t)snprintf(out + k, cap - k, "\\%03u", c);
    else
      out[k++] = (char)c;
  }
  out[k++] = '"';
  out[k] = 0;
}

int jiwa_dry_open(jiwa_dry_t **out, const char *policy_so,
                  const char *policy_file, const char *settings_lua,
                  const char *const *fakes, size_t nfakes, char *err,
                  size_t errlen) {
  *out = NULL;
  jiwa_dry_t *d = calloc(1, sizeof *d);
  size_t cap = 2048 + (settings_lua ? strlen(settings_lua) : 0);
  char *settings = malloc(cap);
  char *qfile = malloc(1100);
  if (!d || !settings || !qfile) {
    free(d);
    free(settings);
    free(qfile);
    snprintf(err, errlen, "out of memory");
    return JIWA_ENOMEM;
  }
  lua_quote(qfile, 1100, policy_file);
  snprintf(settings, cap, "{ file = %s, trace = true, watch_ms = 0%s%s }",
           qfile, settings_lua && *settings_lua ? ", " : "",
           settings_lua ? settings_lua : "");
  free(qfile);
  int rc = jiwa_harness_open(&d->h, policy_so, settings, err, errlen);
  free(settings);
  if (rc) {
    free(d);
    return rc;
  }
  if (nfakes == 0) {
    fakes = default_fakes;
    nfakes = sizeof default_fakes / sizeof *default_fakes;
  }
  for (size_t i = 0; i < nfakes; i++) {
    rc = jiwa_harness_add_actor(d->h, fakes[i], &fake_desc, err, errlen);
    if (rc) {
      jiwa_harness_close(d->h);
      free(d);
      return rc;
    }
  }
  *out = d;
  return 0;
}

void jiwa_dry_result_free(jiwa_dry_result_t *r) {
  if (!r)
    return;
  free(r->reply);
  for (size_t i = 0; i < r->ndeltas; i++)
    free(r->deltas[i]);
  free(r->deltas);
  free(r->delta_lens);
  memset(r, 0, sizeof *r);
}

static char *dup_bytes(const void *b, size_t n) {
  char *c = malloc(n ? n : 1);
  if (c && n)
    memcpy(c, b, n);
  return c;
}

int jiwa_dry_run(jiwa_dry_t *d, const void *req, size_t req_len,
                 const void *scr, size_t scr_len, uint32_t timeout_ms,
                 jiwa_dry_result_t *out) {
  memset(out, 0, sizeof *out);
  jiwa_mp_reader_t rd;
  jiwa_mp_item_t it;
  if (scr) {
    jiwa_mp_reader_init(&rd, scr, scr_len);
    if (jiwa_mp_next(&rd, &it) || it.type != JIWA_MP_MAP)
      return JIWA_EINVAL;
  }
  jiwa_mp_reader_init(&rd, req, req_len);
  if (jiwa_mp_next(&rd, &it) || it.type != JIWA_MP_MAP)
    return JIWA_EINVAL;
  pthread_mutex_lock(&script_mu);
  free(script);
  script = scr ? dup_bytes(scr, scr_len) : NULL;
  script_len = scr ? scr_len : 0;
  pthread_mutex_unlock(&script_mu);

  jiwa_harness_reply_t r;
  int rc = jiwa_harness_ask(d->h, "chat", req, req_len, timeout_ms, &r);
  if (rc) {
    out->err = rc;
    snprintf(out->errtext, sizeof out->errtext, "the request could not be "
                                                "asked");
    return 0;
  }
  if (r.ndeltas) {
    out->deltas = calloc(r.ndeltas, sizeof *out->deltas);
    out->delta_lens = calloc(r.ndeltas, sizeof *out->delta_lens);
    for (size_t i = 0; out->deltas && out->delta_lens && i < r.ndeltas; i++) {
      size_t n;
      const void *b = jiwa_msg_body(r.deltas[i], &n);
      if ((out->deltas[i] = dup_bytes(b, n))) {
        out->delta_lens[i] = n;
        out->ndeltas = i + 1;
      }
    }
  }
  if (jiwa_msg_kind(r.final) == JIWA_MSG_ERROR) {
    const char *text;
    out->err = jiwa_msg_error(r.final, &text);
    snprintf(out->errtext, sizeof out->errtext, "%s", text);
  } else {
    size_t n;
    const void *b = jiwa_msg_body(r.final, &n);
    out->reply = dup_bytes(b, n);
    out->reply_len = out->reply ? n : 0;
  }
  jiwa_harness_reply_free(&r);
  return 0;
}

int jiwa_dry_close(jiwa_dry_t *d) {
  if (!d)
    return 0;
  int rc = jiwa_harness_close(d->h);
  free(d);
  pthread_mutex_lock(&script_mu);
  free(script);
  script = NULL;
  script_len = 0;
  pthread_mutex_unlock(&script_mu);
  return rc;
}
