/*
 * convlog — the conversation log (issue 8; README.md next to this file).
 *
 * Every chat the policy tells (`conversation.record`) becomes one record,
 * kept off the hot path: the tell is parsed into a bounded record and put
 * in a memory buffer; a timer (or a full batch) writes the buffer through
 * jiwa_kv_put, so the store's writer commits many records per transaction
 * and the router never waits.
 *
 * Keys (this actor's kv namespace):
 *   "c:" + 16 hex time_ms + 8 hex seq   -> the record (msgpack map)
 *   "u:" + 2 hex len + user + same 24   -> nil (per-user index)
 * Time order is key order, so exports, the nightly query and the retention
 * purge are prefix scans (conv_util.h); a user's records are found through
 * the index (export --user, forget).
 *
 * Reads (export, query, forget, purge) first write the buffer and wait for
 * every write made before them ("tickets": kv writes of one actor complete
 * in submission order), then run in slices of at most 200 records per loop
 * turn, so a long export never holds the worker.
 */
#include <jiwa/plugin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conv_record.h"
#include "conv_util.h"

#define BATCH_ROWS 200    /* records per streamed delta */
#define SLICE_KEYS 2000   /* keys per slice of forget/purge */
#define IMPORT_MAX 100000 /* entries per import */
#define IMPORT_CHUNK 1000 /* records written per import step */

/* ---- context ------------------------------------------------------------------ */

/* A record waiting to be written (live) or imported. */
typedef struct {
  char key[2 + CONVK_DIGITS];
  char ukey[4 + CONVK_USER_MAX + CONVK_DIGITS];
  size_t uklen; /* 0: no index (no user) */
  char *val;
  size_t vlen;
  int stage; /* 1: the record is written, its index key not yet */
} pend_t;

typedef enum { OP_EXPORT, OP_FORGET, OP_PURGE, OP_IMPORT, OP_FLUSH } opkind_t;

typedef struct op op_t;
struct op {
  opkind_t kind;
  jiwa_msg_t *msg;
  convk_range_t range;
  int by_user;
  int64_t limit, count, cutoff;
  jiwa_mp_writer_t prev; /* export: the held batch (sent when the next
                            one is known, so the last goes in the final) */
  uint32_t prev_n;
  int prev_live;
  /* forget/purge: keys still to delete; import: records to write */
  char **keys;
  size_t *klens;
  size_t nkeys, kpos, kcap;
  pend_t *recs;
  size_t nrecs, rpos;
  unsigned ignored;
  uint64_t ticket; /* run again once this many writes completed */
  int errors, last_err, rolling_back;
  int timer_armed;
  uint64_t timer;
  op_t *next;
};

typedef struct {
  /* config */
  int64_t retention_days;
  int64_t purge_every_ms;
  int64_t flush_ms;
  int64_t batch_max;
  int64_t max_pending;
  /* state */
  pend_t *buf;
  size_t nbuf, bufcap;
  int flush_armed;
  uint64_t flush_timer, purge_timer;
  uint32_t seq;
  uint64_t submitted, completed;
  uint64_t recorded, written, dropped, write_errors, purged, imported,
      forgotten, busy_retries;
  op_t *ops;
} cl_ctx_t;

static const jiwa_cfg_field_t cl_config[] = {
    {JIWA_CFG_INT, "retention_days", "365", offsetof(cl_ctx_t, retention_days),
     0, 0, 36500, "records older than this are purged; 0 = keep forever"},
    {JIWA_CFG_INT, "purge_every_ms", "3600000",
     offsetof(cl_ctx_t, purge_every_ms), 0, 1000, 86400000,
     "how often the retention purge runs"},
    {JIWA_CFG_INT, "flush_ms", "200", offsetof(cl_ctx_t, flush_ms), 0, 1,
     60000, "records are written at most this long after they arrive"},
    {JIWA_CFG_INT, "batch_max", "256", offsetof(cl_ctx_t, batch_max), 0, 1,
     10000, "a buffer this full is written at once"},
    {JIWA_CFG_INT, "max_pending", "20000", offsetof(cl_ctx_t, max_pending), 0,
     16, 1000000,
     "records held while the store is busy; beyond, new ones are dropped "
     "(counted)"},
    {0}};

static void pend_free(pend_t *p) {
  free(p->val);
  p->val = NULL;
}

/* ---- writes ---------------------------------------------------------------------- */

static void op_kick(jiwa_actor_t *self, cl_ctx_t *c, op_t *op, uint64_t delay);

/* The ud of a live record's index write (counted apart from records). */
static op_t index_tag;

static void wr_done(jiwa_actor_t *self, void *vctx, int status, void *ud) {
  cl_ctx_t *c = vctx;
  op_t *op = ud;
  int index = op == &index_tag;
  if (index)
    op = NULL;
  c->completed++;
  if (status != 0) {
    c->write_errors++;
    if (op) {
      op->errors++;
      op->last_err = status;
    } else {
      jiwa_log(self, JIWA_LOG_WARN, "convlog: a record write failed: %s",
               jiwa_strerror(status));
    }
  } else if (!op && !index) {
    c->written++;
  }
  for (op_t *o = c->ops; o; o = o->next)
    if (!o->timer_armed && o->ticket && c->completed >= o->ticket)
      op_kick(self, c, o, 0);
}

static int wr_put(jiwa_actor_t *self, cl_ctx_t *c, const void *k, size_t kl,
                  const void *v, size_t vl, op_t *op) {
  int rc = jiwa_kv_put(self, k, kl, v, vl, wr_done, op);
  if (rc == 0)
    c->submitted++;
  return rc;
}

static int wr_del(jiwa_actor_t *self, cl_ctx_t *c, const void *k, size_t kl,
                  op_t *op) {
  int rc = jiwa_kv_del(self, k, kl, wr_done, op);
  if (rc == 0)
    c->submitted++;
  return rc;
}

static void flush_fire(jiwa_actor_t *self, void *vctx, void *ud);

static void flush_arm(jiwa_actor_t *self, cl_ctx_t *c, uint64_t delay) {
  if (c->flush_armed || !c->nbuf)
    return;
  if (jiwa_timer_start(self, delay, 0, flush_fire, NULL, &c->flush_timer) ==
      0)
    c->flush_armed = 1;
}

/* Write one pending record and its index key. 0 when both are accepted
 * (or failed for good: counted), JIWA_EBUSY to try again later. */
static int pend_write(jiwa_actor_t *self, cl_ctx_t *c, pend_t *p, op_t *op) {
  static const char nil = (char)0xc0;
  int rc;
  if (p->stage == 0) {
    rc = wr_put(self, c, p->key, sizeof p->key, p->val, p->vlen, op);
    if (rc == JIWA_EBUSY)
      return rc;
    if (rc) {
      c->write_errors++;
      if (op) {
        op->errors++;
        op->last_err = rc;
      }
      return 0;
    }
    p->stage = 1;
  }
  if (p->uklen) {
    rc = wr_put(self, c, p->ukey, p->uklen, &nil, 1, op ? op : &index_tag);
    if (rc == JIWA_EBUSY)
      return rc;
    if (rc) {
      c->write_errors++;
      if (op) {
        op->errors++;
        op->last_err = rc;
      }
    }
  }
  p->stage = 2;
  return 0;
}

/* Write the buffer; what the store refuses for now (EBUSY) stays. */
static void flush_now(jiwa_actor_t *self, cl_ctx_t *c) {
  size_t i = 0;
  for (; i < c->nbuf; i++) {
    pend_t *p = &c->buf[i];
    if (pend_write(self, c, p, NULL) == JIWA_EBUSY)
      break;
    pend_free(p);
  }
  if (i > 0) {
    memmove(c->buf, c->buf + i, (c->nbuf - i) * sizeof *c->buf);
    c->nbuf -= i;
  }
  if (c->nbuf) {
    c->busy_retries++;
    flush_arm(self, c, 50);
  }
}

static void flush_fire(jiwa_actor_t *self, void *vctx, void *ud) {
  (void)ud;
  cl_ctx_t *c = vctx;
  c->flush_armed = 0;
  flush_now(self, c);
}

/* ---- recording -------------------------------------------------------------------- */

/* Encode @p r into a pending entry (keys from its time, @p seq). */
static int pend_make(const rec_t *r, uint32_t seq, pend_t *p) {
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  rec_pack(r, &w.pk);
  p->stage = 0;
  char d[CONVK_DIGITS];
  convk_digits24(r->time_ms, seq, d);
  memcpy(p->key, "c:", 2);
  memcpy(p->key + 2, d, CONVK_DIGITS);
  p->uklen = convk_user_base(r->user.p, r->user.set ? r->user.n : 0, p->ukey);
  if (p->uklen) {
    memcpy(p->ukey + p->uklen, d, CONVK_DIGITS);
    p->uklen += CONVK_DIGITS;
  }
  p->val = malloc(w.sbuf.size ? w.sbuf.size : 1);
  if (!p->val) {
    jiwa_mp_writer_free(&w);
    return JIWA_ENOMEM;
  }
  memcpy(p->val, w.sbuf.data, w.sbuf.size);
  p->vlen = w.sbuf.size;
  jiwa_mp_writer_free(&w);
  return 0;
}

static int record(jiwa_actor_t *self, cl_ctx_t *c, const jiwa_msg_t *m) {
  size_t len;
  const void *b = jiwa_msg_body(m, &len);
  rec_t r;
  char err[160];
  if (rec_parse(b, len, 0, &r, err, sizeof err) != 0) {
    jiwa_count(self, "bad_records", 1);
    return convk_reply_err(self, m, JIWA_EINVAL, "convlog: body must be a map");
  }
  if (!r.has_time)
    r.time_ms = convk_wall_ms();
  if ((int64_t)c->nbuf >= c->max_pending) {
    c->dropped++;
    jiwa_count(self, "dropped", 1);
    return convk_reply_err(self, m, JIWA_EBUSY,
                           "convlog: the store is behind; record dropped");
  }
  if (c->nbuf == c->bufcap) {
    size_t ncap = c->bufcap ? c->bufcap * 2 : 256;
    pend_t *nb = realloc(c->buf, ncap * sizeof *nb);
    if (!nb) {
      c->dropped++;
      return convk_reply_err(self, m, JIWA_ENOMEM, "convlog: out of memory");
    }
    c->buf = nb;
    c->bufcap = ncap;
  }
  if (pend_make(&r, c->seq++, &c->buf[c->nbuf]) != 0) {
    c->dropped++;
    return convk_reply_err(self, m, JIWA_ENOMEM, "convlog: out of memory");
  }
  c->nbuf++;
  c->recorded++;
  jiwa_count(self, "recorded", 1);
  if ((int64_t)c->nbuf >= c->batch_max)
    flush_now(self, c);
  else
    flush_arm(self, c, (uint64_t)c->flush_ms);
  if (jiwa_msg_kind(m) == JIWA_MSG_ASK) {
    jiwa_mp_writer_t w;
    jiwa_mp_writer_init(&w);
    msgpack_pack_map(&w.pk, 1);
    jiwa_mp_put_kv_bool(&w.pk, "queued", 1);
    return convk_reply_w(self, m, "conversation.recorded", &w);
  }
  return 0;
}

/* ---- operations (export, query, forget, purge, import) ---------------------------------- */

static void op_free(op_t *op) {
  if (op->msg)
    jiwa_msg_release(op->msg);
  if (op->prev_live)
    jiwa_mp_writer_free(&op->prev);
  for (size_t i = 0; i < op->nkeys; i++)
    free(op->keys[i]);
  free(op->keys);
  free(op->klens);
  for (size_t i = 0; i < op->nrecs; i++)
    pend_free(&op->recs[i]);
  free(op->recs);
  free(op);
}

static void op_remove(cl_ctx_t *c, op_t *op) {
  for (op_t **pp = &c->ops; *pp; pp = &(*pp)->next)
    if (*pp == op) {
      *pp = op->next;
      break;
    }
  op_free(op);
}

static void op_step(jiwa_actor_t *self, cl_ctx_t *c, op_t *op);

static void op_fire(jiwa_actor_t *self, void *vctx, void *ud) {
  cl_ctx_t *c = vctx;
  op_t *op = ud;
  op->timer_armed = 0;
  op_step(self, c, op);
}

static void op_kick(jiwa_actor_t *self, cl_ctx_t *c, op_t *op,
                    uint64_t delay) {
  (void)c;
  if (op->timer_armed)
    return;
  if (jiwa_timer_start(self, delay, 0, op_fire, op, &op->timer) == 0)
    op->timer_armed = 1;
}

/* Wait for every write made so far, then step again. */
static void op_wait(jiwa_actor_t *self, cl_ctx_t *c, op_t *op) {
  op->ticket = c->submitted;
  if (c->completed >= op->ticket)
    op_kick(self, c, op, 0);
}

static void op_finish_err(jiwa_actor_t *self, cl_ctx_t *c, op_t *op, int code,
                          const char *text) {
  convk_reply_err(self, op->msg, code, text);
  op_remove(c, op);
}

static int key_push(op_t *op, const char *k, size_t kl) {
  if (op->nkeys == op->kcap) {
    size_t ncap = op->kcap ? op->kcap * 2 : 256;
    char **nk = realloc(op->keys, ncap * sizeof *nk);
    if (!nk)
      return JIWA_ENOMEM;
    op->keys = nk;
    size_t *nl = realloc(op->klens, ncap * sizeof *nl);
    if (!nl)
      return JIWA_ENOMEM;
    op->klens = nl;
    op->kcap = ncap;
  }
  char *d = malloc(kl);
  if (!d)
    return JIWA_ENOMEM;
  memcpy(d, k, kl);
  op->keys[op->nkeys] = d;
  op->klens[op->nkeys++] = kl;
  return 0;
}

static void keys_clear(op_t *op) {
  for (size_t i = 0; i < op->nkeys; i++)
    free(op->keys[i]);
  op->nkeys = op->kpos = 0;
}

/* Delete the collected keys; 1 when all were accepted, 0 to retry later. */
static int keys_delete(jiwa_actor_t *self, cl_ctx_t *c, op_t *op) {
  for (; op->kpos < op->nkeys; op->kpos++) {
    int rc = wr_del(self, c, op->keys[op->kpos], op->klens[op->kpos], op);
    if (rc == JIWA_EBUSY)
      return 0;
    if (rc) {
      op->errors++;
      op->last_err = rc;
    }
  }
  keys_clear(op);
  return 1;
}

/* export / query: the current batch */
typedef struct {
  jiwa_actor_t *self;
  op_t *op;
  jiwa_mp_writer_t rows;
  uint32_t n;
  /* by user: the digits of the index keys, then read one by one */
  char (*digits)[CONVK_DIGITS];
  uint32_t nd;
} batch_t;

static int exp_item(const char *key, size_t klen, const char *digits,
                    const void *val, size_t vlen, void *ud) {
  (void)key;
  (void)klen;
  batch_t *b = ud;
  if (b->op->by_user) {
    memcpy(b->digits[b->nd++], digits, CONVK_DIGITS);
  } else {
    b->rows.pk.callback(b->rows.pk.data, val, vlen);
    b->n++;
  }
  return 0;
}

static void send_rows(jiwa_actor_t *self, op_t *op, const char *data,
                      size_t len, uint32_t n, int final) {
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, final ? 2 : 1);
  jiwa_mp_put_str(&w.pk, "records");
  msgpack_pack_array(&w.pk, n);
  if (len)
    w.pk.callback(w.pk.data, data, len);
  if (final) {
    jiwa_mp_put_kv_int(&w.pk, "count", op->count);
    jiwa_reply(self, op->msg, "conversations.records", w.sbuf.data,
               w.sbuf.size);
  } else {
    jiwa_stream(self, op->msg, "conversations.delta", w.sbuf.data,
                w.sbuf.size);
  }
  jiwa_mp_writer_free(&w);
}

static void step_export(jiwa_actor_t *self, cl_ctx_t *c, op_t *op) {
  batch_t b = {self, op, {{0}, {0}}, 0, NULL, 0};
  jiwa_mp_writer_init(&b.rows);
  uint32_t want = BATCH_ROWS;
  if (op->limit > 0 && op->count + want > op->limit)
    want = (uint32_t)(op->limit - op->count);
  int rc = 0;
  if (want > 0) {
    if (op->by_user) {
      b.digits = malloc(want * sizeof *b.digits);
      if (!b.digits) {
        jiwa_mp_writer_free(&b.rows);
        op_finish_err(self, c, op, JIWA_ENOMEM, "convlog: out of memory");
        return;
      }
    }
    rc = convk_range_scan(self, &op->range, want, exp_item, &b);
    for (uint32_t i = 0; rc >= 0 && i < b.nd; i++) {
      char key[2 + CONVK_DIGITS] = "c:";
      memcpy(key + 2, b.digits[i], CONVK_DIGITS);
      void *v = NULL;
      size_t vl = 0;
      if (jiwa_kv_get(self, key, sizeof key, &v, &vl) == 0) {
        b.rows.pk.callback(b.rows.pk.data, v, vl);
        b.n++;
      }
      jiwa_kv_free(v);
    }
    free(b.digits);
  }
  if (rc < 0) {
    jiwa_mp_writer_free(&b.rows);
    op_finish_err(self, c, op, rc, "convlog: reading the log failed");
    return;
  }
  op->count += b.n;
  int done = op->range.done || want == 0 ||
             (op->limit > 0 && op->count >= op->limit);
  /* the held batch goes out as a delta when more rows follow it */
  if (op->prev_live && (b.n > 0 || !done)) {
    if (op->prev_n)
      send_rows(self, op, op->prev.sbuf.data, op->prev.sbuf.size, op->prev_n,
                0);
    jiwa_mp_writer_free(&op->prev);
    op->prev_live = 0;
  }
  if (b.n > 0 || !op->prev_live) {
    op->prev = b.rows;
    op->prev_n = b.n;
    op->prev_live = 1;
  } else {
    jiwa_mp_writer_free(&b.rows);
  }
  if (done) {
    send_rows(self, op, op->prev.sbuf.data, op->prev.sbuf.size, op->prev_n, 1);
    op_remove(c, op);
    return;
  }
  op_kick(self, c, op, 0);
}

/* forget: the index gives the record keys */
static int forget_item(const char *key, size_t klen, const char *digits,
                       const void *val, size_t vlen, void *ud) {
  (void)val;
  (void)vlen;
  op_t *op = ud;
  char ck[2 + CONVK_DIGITS] = "c:";
  memcpy(ck + 2, digits, CONVK_DIGITS);
  if (key_push(op, ck, sizeof ck) || key_push(op, key, klen))
    return JIWA_ENOMEM;
  op->count++;
  return 0;
}

/* purge: records older than the cutoff, and their index keys */
static int purge_item(const char *key, size_t klen, const char *digits,
                      const void *val, size_t vlen, void *ud) {
  op_t *op = ud;
  if (convk_digits_time(digits) >= op->cutoff)
    return 1;
  if (key_push(op, key, klen))
    return JIWA_ENOMEM;
  const char *u;
  size_t ul;
  char ub[CONVK_BASE_MAX + CONVK_DIGITS];
  if (jiwa_mp_get_str(val, vlen, "user", &u, &ul) == 0) {
    size_t bl = convk_user_base(u, ul, ub);
    if (bl) {
      memcpy(ub + bl, digits, CONVK_DIGITS);
      if (key_push(op, ub, bl + CONVK_DIGITS))
        return JIWA_ENOMEM;
    }
  }
  op->count++;
  return 0;
}

static void reply_count(jiwa_actor_t *self, op_t *op, const char *type,
                        const char *field) {
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 1);
  jiwa_mp_put_kv_int(&w.pk, field, op->count);
  if (op->msg && jiwa_msg_kind(op->msg) == JIWA_MSG_ASK)
    jiwa_reply(self, op->msg, type, w.sbuf.data, w.sbuf.size);
  jiwa_mp_writer_free(&w);
}

static void step_delete(jiwa_actor_t *self, cl_ctx_t *c, op_t *op) {
  if (op->kpos < op->nkeys) { /* a retry after EBUSY */
    if (!keys_delete(self, c, op)) {
      op_kick(self, c, op, 20);
      return;
    }
    op_wait(self, c, op);
    return;
  }
  if (op->range.done) {
    if (op->errors) {
      char t[160];
      snprintf(t, sizeof t, "convlog: %d delete(s) failed (%s); run it again",
               op->errors, jiwa_strerror(op->last_err));
      op_finish_err(self, c, op, JIWA_EIO, t);
      return;
    }
    if (op->kind == OP_FLUSH) {
      reply_count(self, op, "conversations.flushed", "flushed");
    } else if (op->kind == OP_FORGET) {
      c->forgotten += (uint64_t)op->count;
      reply_count(self, op, "conversations.forgotten", "deleted");
    } else {
      c->purged += (uint64_t)op->count;
      if (op->count)
        jiwa_log(self, JIWA_LOG_INFO, "convlog: purged %lld record(s)",
                 (long long)op->count);
      reply_count(self, op, "conversations.purged", "purged");
    }
    op_remove(c, op);
    return;
  }
  int rc = convk_range_scan(self, &op->range, SLICE_KEYS,
                            op->kind == OP_FORGET ? forget_item : purge_item,
                            op);
  if (rc < 0) {
    op_finish_err(self, c, op, rc, "convlog: reading the log failed");
    return;
  }
  if (!keys_delete(self, c, op)) {
    op_kick(self, c, op, 20);
    return;
  }
  op_wait(self, c, op);
}

static void send_progress(jiwa_actor_t *self, op_t *op, size_t done,
                          size_t total) {
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 3);
  jiwa_mp_put_kv_int(&w.pk, "done", (int64_t)done);
  jiwa_mp_put_kv_int(&w.pk, "total", (int64_t)total);
  jiwa_mp_put_kv_str(&w.pk, "stage", "import");
  jiwa_stream(self, op->msg, "conversations.progress", w.sbuf.data,
              w.sbuf.size);
  jiwa_mp_writer_free(&w);
}

static void step_import(jiwa_actor_t *self, cl_ctx_t *c, op_t *op) {
  if (op->rolling_back) {
    if (op->kpos < op->nkeys && !keys_delete(self, c, op)) {
      op_kick(self, c, op, 20);
      return;
    }
    if (op->rolling_back == 1) {
      op->rolling_back = 2;
      op_wait(self, c, op);
      return;
    }
    char t[200];
    snprintf(t, sizeof t,
             "convlog: the store refused the import (%s); what was written "
             "has been removed, nothing is imported",
             jiwa_strerror(op->last_err));
    op_finish_err(self, c, op, JIWA_EIO, t);
    return;
  }
  if (op->errors) { /* roll back everything written so far */
    keys_clear(op);
    for (size_t i = 0; i < op->rpos; i++) {
      if (key_push(op, op->recs[i].key, sizeof op->recs[i].key) ||
          (op->recs[i].uklen &&
           key_push(op, op->recs[i].ukey, op->recs[i].uklen)))
        break;
    }
    op->errors = 0;
    op->rolling_back = 1;
    op_kick(self, c, op, 0);
    return;
  }
  if (op->rpos >= op->nrecs) {
    c->imported += op->nrecs;
    jiwa_mp_writer_t w;
    jiwa_mp_writer_init(&w);
    msgpack_pack_map(&w.pk, 2);
    jiwa_mp_put_kv_int(&w.pk, "imported", (int64_t)op->nrecs);
    jiwa_mp_put_kv_int(&w.pk, "ignored_fields", op->ignored);
    jiwa_reply(self, op->msg, "conversations.imported", w.sbuf.data,
               w.sbuf.size);
    jiwa_mp_writer_free(&w);
    op_remove(c, op);
    return;
  }
  size_t end = op->rpos + IMPORT_CHUNK;
  if (end > op->nrecs)
    end = op->nrecs;
  while (op->rpos < end) {
    if (pend_write(self, c, &op->recs[op->rpos], op) == JIWA_EBUSY)
      break;
    op->rpos++;
  }
  if (op->rpos < end && !op->errors) { /* the writer is busy: later */
    op_kick(self, c, op, 20);
    return;
  }
  send_progress(self, op, op->rpos, op->nrecs);
  op_wait(self, c, op);
}

static void op_step(jiwa_actor_t *self, cl_ctx_t *c, op_t *op) {
  op->ticket = 0;
  switch (op->kind) {
  case OP_EXPORT:
    step_export(self, c, op);
    break;
  case OP_FORGET:
  case OP_PURGE:
  case OP_FLUSH:
    step_delete(self, c, op);
    break;
  case OP_IMPORT:
    step_import(self, c, op);
    break;
  }
}

static op_t *op_new(cl_ctx_t *c, opkind_t kind, const jiwa_msg_t *m) {
  op_t *op = calloc(1, sizeof *op);
  if (!op)
    return NULL;
  op->kind = kind;
  if (m)
    op->msg = jiwa_msg_retain(m);
  op->next = c->ops;
  c->ops = op;
  return op;
}

/* Start @p op after the buffer is written and committed. */
static void op_start(jiwa_actor_t *self, cl_ctx_t *c, op_t *op) {
  flush_now(self, c);
  op_wait(self, c, op);
}

static int get_int_opt(const jiwa_msg_t *m, const char *k, int64_t *v,
                       int64_t def) {
  int rc = jiwa_msg_get_int(m, k, v);
  if (rc == JIWA_ENOENT) {
    *v = def;
    return 0;
  }
  if (rc == 0)
    return 0;
  size_t len;
  const void *b = jiwa_msg_body(m, &len);
  jiwa_mp_reader_t at;
  jiwa_mp_item_t it;
  if (jiwa_mp_map_find(b, len, k, &at) == 0 && jiwa_mp_next(&at, &it) == 0 &&
      it.type == JIWA_MP_NIL) {
    *v = def;
    return 0;
  }
  return rc;
}

static int start_export(jiwa_actor_t *self, cl_ctx_t *c, const jiwa_msg_t *m,
                        int query) {
  int64_t now = convk_wall_ms(), days, since, until, limit;
  if (get_int_opt(m, "days", &days, 0) || days < 0 ||
      get_int_opt(m, "since_ms", &since, -1) ||
      get_int_opt(m, "until_ms", &until, INT64_MAX / 4) ||
      get_int_opt(m, "limit", &limit, 0) || limit < 0)
    return convk_reply_err(self, m, JIWA_EINVAL,
                           "convlog: days, since_ms, until_ms and limit must "
                           "be whole numbers (days, limit >= 0)");
  if (query && since < 0)
    return convk_reply_err(self, m, JIWA_EINVAL,
                           "convlog: conversations.query needs since_ms");
  if (since < 0)
    since = days > 0 && days < now / 86400000 ? now - days * 86400000 : 0;
  char base[CONVK_BASE_MAX];
  size_t blen = 2;
  int by_user = 0;
  const char *u;
  size_t ul;
  int rc = jiwa_msg_get_str(m, "user", &u, &ul);
  if (rc == 0 && ul > 0) {
    blen = convk_user_base(u, ul, base);
    if (!blen)
      return convk_reply_err(self, m, JIWA_EINVAL,
                             "convlog: user must be 1..255 bytes");
    by_user = 1;
  } else if (rc != 0 && rc != JIWA_ENOENT) {
    return convk_reply_err(self, m, JIWA_EINVAL,
                           "convlog: user must be a string");
  } else {
    memcpy(base, "c:", 2);
  }
  op_t *op = op_new(c, OP_EXPORT, m);
  if (!op)
    return convk_reply_err(self, m, JIWA_ENOMEM, "convlog: out of memory");
  convk_range_init(&op->range, base, blen, since, until);
  op->by_user = by_user;
  op->limit = limit;
  op_start(self, c, op);
  return 0;
}

static int start_forget(jiwa_actor_t *self, cl_ctx_t *c, const jiwa_msg_t *m) {
  const char *u;
  size_t ul;
  char base[CONVK_BASE_MAX];
  size_t blen;
  if (jiwa_msg_get_str(m, "user", &u, &ul) != 0 ||
      !(blen = convk_user_base(u, ul, base)))
    return convk_reply_err(self, m, JIWA_EINVAL,
                           "convlog: conversations.forget needs user (1..255 "
                           "bytes)");
  /* records of this user still in the buffer never reach the store */
  size_t k = 0;
  for (size_t i = 0; i < c->nbuf; i++) {
    pend_t *p = &c->buf[i];
    if (p->uklen == blen + CONVK_DIGITS && memcmp(p->ukey, base, blen) == 0) {
      pend_free(p);
      continue;
    }
    c->buf[k++] = *p;
  }
  c->nbuf = k;
  op_t *op = op_new(c, OP_FORGET, m);
  if (!op)
    return convk_reply_err(self, m, JIWA_ENOMEM, "convlog: out of memory");
  convk_range_init(&op->range, base, blen, 0, INT64_MAX / 4);
  op_start(self, c, op);
  return 0;
}

static void start_purge(jiwa_actor_t *self, cl_ctx_t *c, const jiwa_msg_t *m) {
  for (op_t *o = c->ops; o; o = o->next)
    if (o->kind == OP_PURGE && !o->msg && !m)
      return; /* the timer's purge is still running */
  op_t *op = op_new(c, OP_PURGE, m);
  if (!op) {
    convk_reply_err(self, m, JIWA_ENOMEM, "convlog: out of memory");
    return;
  }
  op->cutoff = c->retention_days > 0
                   ? convk_wall_ms() - c->retention_days * 86400000
                   : 0;
  convk_range_init(&op->range, "c:", 2, 0, INT64_MAX / 4);
  if (op->cutoff <= 0)
    op->range.done = 1;
  op_start(self, c, op);
}

static void purge_fire(jiwa_actor_t *self, void *vctx, void *ud) {
  (void)ud;
  start_purge(self, vctx, NULL);
}

static int start_import(jiwa_actor_t *self, cl_ctx_t *c, const jiwa_msg_t *m) {
  size_t len;
  const void *b = jiwa_msg_body(m, &len);
  jiwa_mp_reader_t at, lines;
  jiwa_mp_item_t it, li;
  if (jiwa_mp_map_find(b, len, "entries", &at) != 0 ||
      jiwa_mp_next(&at, &it) != 0 || it.type != JIWA_MP_ARRAY)
    return convk_reply_err(self, m, JIWA_EINVAL,
                           "convlog: conversations.import needs entries (a "
                           "list of records)");
  if (it.v.count == 0)
    return convk_reply_err(self, m, JIWA_EINVAL, "convlog: no entries");
  if (it.v.count > IMPORT_MAX) {
    char t[160];
    snprintf(t, sizeof t,
             "convlog: %u entries in one import; at most %d — split the file",
             it.v.count, IMPORT_MAX);
    return convk_reply_err(self, m, JIWA_ETOOBIG, t);
  }
  int have_lines = jiwa_mp_map_find(b, len, "lines", &lines) == 0 &&
                   jiwa_mp_next(&lines, &li) == 0 &&
                   li.type == JIWA_MP_ARRAY && li.v.count == it.v.count;
  op_t *op = op_new(c, OP_IMPORT, m);
  if (!op || !(op->recs = calloc(it.v.count, sizeof *op->recs))) {
    if (op)
      op_remove(c, op);
    return convk_reply_err(self, m, JIWA_ENOMEM, "convlog: out of memory");
  }
  /* validate every entry first; report up to 20 bad lines */
  char report[2048];
  size_t rl = 0;
  unsigned bad = 0;
  for (uint32_t i = 0; i < it.v.count; i++) {
    uint64_t lineno = i + 1;
    if (have_lines) {
      jiwa_mp_item_t ln;
      if (jiwa_mp_next(&lines, &ln) == 0 && ln.type == JIWA_MP_UINT)
        lineno = ln.v.u;
    }
    const uint8_t *e = at.p;
    if (jiwa_mp_skip(&at) != 0) {
      op_remove(c, op);
      return convk_reply_err(self, m, JIWA_EPROTO,
                             "convlog: malformed entries");
    }
    rec_t r;
    char err[200];
    int rc = rec_parse(e, (size_t)(at.p - e), 1, &r, err, sizeof err);
    if (rc == 0) {
      op->ignored += r.ignored;
      if (!r.source.set) {
        r.source.p = "import";
        r.source.n = 6;
        r.source.set = 1;
      }
      uint32_t seq = convk_fnv(2166136261u, r.user.p, r.user.n);
      seq = convk_fnv(seq, &r.time_ms, sizeof r.time_ms);
      seq = convk_fnv(seq, r.text.p, r.text.n);
      if (r.answer.set)
        seq = convk_fnv(seq, r.answer.p, r.answer.n);
      if (pend_make(&r, seq, &op->recs[op->nrecs]) != 0) {
        op_remove(c, op);
        return convk_reply_err(self, m, JIWA_ENOMEM, "convlog: out of memory");
      }
      op->nrecs++;
    } else {
      bad++;
      if (bad <= 20 && rl < sizeof report)
        rl += (size_t)snprintf(report + rl, sizeof report - rl, "%sline %llu: %s",
                               bad > 1 ? "; " : "", (unsigned long long)lineno,
                               err);
    }
  }
  if (bad) {
    char t[2200];
    snprintf(t, sizeof t, "convlog: %u bad entr%s, nothing imported: %s%s",
             bad, bad == 1 ? "y" : "ies", report, bad > 20 ? "; ..." : "");
    op_finish_err(self, c, op, JIWA_EINVAL, t);
    return 0;
  }
  op_start(self, c, op);
  return 0;
}

static int reply_stats(jiwa_actor_t *self, cl_ctx_t *c, const jiwa_msg_t *m) {
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 11);
  jiwa_mp_put_kv_int(&w.pk, "recorded", (int64_t)c->recorded);
  jiwa_mp_put_kv_int(&w.pk, "written", (int64_t)c->written);
  jiwa_mp_put_kv_int(&w.pk, "pending", (int64_t)c->nbuf);
  jiwa_mp_put_kv_int(&w.pk, "dropped", (int64_t)c->dropped);
  jiwa_mp_put_kv_int(&w.pk, "write_errors", (int64_t)c->write_errors);
  jiwa_mp_put_kv_int(&w.pk, "busy_retries", (int64_t)c->busy_retries);
  jiwa_mp_put_kv_int(&w.pk, "purged", (int64_t)c->purged);
  jiwa_mp_put_kv_int(&w.pk, "imported", (int64_t)c->imported);
  jiwa_mp_put_kv_int(&w.pk, "forgotten", (int64_t)c->forgotten);
  jiwa_mp_put_kv_int(&w.pk, "retention_days", c->retention_days);
  jiwa_mp_put_kv_int(&w.pk, "writes_in_flight",
                     (int64_t)(c->submitted - c->completed));
  return convk_reply_w(self, m, "conversations.stats", &w);
}

/* ---- plugin ----------------------------------------------------------------------------- */

static int cl_init(jiwa_actor_t *self, void *vctx) {
  cl_ctx_t *c = vctx;
  /* sequence numbers start at a time-derived value: two runs of the actor
   * within one millisecond do not reuse a key */
  c->seq = (uint32_t)(convk_wall_ms() * 7919u);
  if (c->retention_days > 0)
    jiwa_timer_start(self, (uint64_t)c->purge_every_ms,
                     (uint64_t)c->purge_every_ms, purge_fire, NULL,
                     &c->purge_timer);
  return 0;
}

static int cl_receive(jiwa_actor_t *self, void *vctx, const jiwa_msg_t *m) {
  cl_ctx_t *c = vctx;
  jiwa_msg_kind_t kind = jiwa_msg_kind(m);
  if (kind != JIWA_MSG_TELL && kind != JIWA_MSG_ASK)
    return 0;
  const char *t = jiwa_msg_type(m);
  if (strcmp(t, "conversation.record") == 0)
    return record(self, c, m);
  if (kind != JIWA_MSG_ASK)
    return 0;
  if (strcmp(t, "conversations.export") == 0)
    return start_export(self, c, m, 0);
  if (strcmp(t, "conversations.query") == 0)
    return start_export(self, c, m, 1);
  if (strcmp(t, "conversations.import") == 0)
    return start_import(self, c, m);
  if (strcmp(t, "conversations.forget") == 0)
    return start_forget(self, c, m);
  if (strcmp(t, "conversations.purge") == 0) {
    start_purge(self, c, m);
    return 0;
  }
  if (strcmp(t, "conversations.stats") == 0)
    return reply_stats(self, c, m);
  if (strcmp(t, "conversations.flush") == 0) {
    op_t *op = op_new(c, OP_FLUSH, m);
    if (!op)
      return convk_reply_err(self, m, JIWA_ENOMEM, "convlog: out of memory");
    op->range.done = 1; /* nothing to delete: replies once all is written */
    op_start(self, c, op);
    return 0;
  }
  return convk_reply_err(self, m, JIWA_ENOTSUP,
                         "convlog answers conversation.record and "
                         "conversations.export|query|import|forget|purge|"
                         "stats|flush");
}

static void cl_drain(jiwa_actor_t *self, void *vctx) {
  cl_ctx_t *c = vctx;
  if (c->purge_timer)
    jiwa_timer_stop(self, c->purge_timer);
  c->purge_timer = 0;
  flush_now(self, c);
}

static void cl_fini(jiwa_actor_t *self, void *vctx) {
  cl_ctx_t *c = vctx;
  if (c->nbuf)
    jiwa_log(self, JIWA_LOG_WARN, "convlog: %zu record(s) not written at stop",
             c->nbuf);
  for (size_t i = 0; i < c->nbuf; i++)
    pend_free(&c->buf[i]);
  free(c->buf);
  while (c->ops) {
    op_t *op = c->ops;
    c->ops = op->next;
    if (op->msg && jiwa_msg_kind(op->msg) == JIWA_MSG_ASK)
      jiwa_reply_error(self, op->msg, JIWA_ECANCELED,
                       "convlog: stopped before the operation finished");
    op_free(op);
  }
}

static const jiwa_plugin_desc_t cl_desc = {
    JIWA_DESC_HEADER,
    .name = "convlog",
    .version = "1.0.0",
    .description = "conversation log: every chat recorded off the hot path; "
                   "export, query, import, forget, retention",
    .config = cl_config,
    .ctx_size = sizeof(cl_ctx_t),
    .init = cl_init,
    .receive = cl_receive,
    .drain = cl_drain,
    .fini = cl_fini,
};

JIWA_PLUGIN(cl_desc)
