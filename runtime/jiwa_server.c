/* The local socket API. One thread, one uv loop: accept, read, split into
 * frames, dispatch ops; replies produced on worker loops come back through
 * an inbox (mutex + list + uv_async) and are written here. */
#include "jiwa_server.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "jiwa/frame.h"
#include "jiwa_config.h"
#include "jiwa_store.h"
#include "jiwa_log.h"
#include "jiwa_metrics.h"
#include "jiwa_msg.h"
#include "jiwa_rt_int.h"

#define CHAT_TEXT_MAX 65536
#define CHAT_FIELD_MAX 128
#define CHAT_ATTRS_MAX 4096
#define READ_CHUNK 65536
/* Requests one connection may have in flight; past it, reading pauses. */
#define CONN_INFLIGHT_MAX 1024

static const char *const ops_list[] = {
    "health",          "stats",       "plugin.list", "plugin.load",
    "plugin.reload",   "plugin.unload", "chat",      "policy.reload",
    "policy.show",     "golden.*",    "knowledge.*", "memory.*",
    "shadow.*",        "conversations.*", "job.*",   "clusters.*",
    "classify.*",      "store.check", "store.backup", NULL};

typedef struct conn conn_t;

/* Something for the server loop: a frame to write, and whether it is the
 * final one of request @p req. */
typedef struct item {
  struct item *next;
  conn_t *c;
  struct req *req; /* set on finals: the request is done */
  char *data;
  size_t len;
} item_t;

typedef struct req {
  conn_t *c;
  uint64_t id;
  uint64_t t0_us;
  int oversized; /* a delta was too big: the final becomes ETOOBIG */
  struct req *prev, *next; /* in c->reqs */
  /* for plugin.load/unload work */
  uv_work_t work;
  char name[64], plugin[64];
  int64_t worker;
  void *config; /* plugin.load: settings; store.check: the report */
  size_t config_len;
  char *name_long; /* store.backup: the path */
  int rc;
  char err[512];
} req_t;

struct conn {
  uv_pipe_t pipe;
  jiwa_server_t *s;
  int refs; /* 1 while open + 1 per request in flight (server loop only) */
  int closing;
  int close_after_write;
  int eof; /* the client half-closed: answer what is in flight, then close */
  uint8_t *buf;
  size_t len, cap;
  uv_timer_t idle;
  int idle_running;
  size_t out_bytes;
  int paused;
  uid_t uid;
  req_t *reqs;
  size_t nreqs;
  conn_t *prev, *next;
};

typedef struct {
  uv_write_t w;
  conn_t *c;
  char *data;
  size_t len;
} wreq_t;

struct jiwa_server {
  jiwa_rt_t *rt;
  jiwa_server_opts_t o;
  char path[108];
  char *chat_actor, *chat_type, *version;
  /* chat.actor split at commas: chat requests are spread round-robin */
  char *routes[JIWA_SERVER_MAX_ROUTES];
  size_t nroutes, next_route;
  int64_t allow[16];
  size_t nallow;
  uv_loop_t loop;
  uv_thread_t thread;
  uv_pipe_t listener;
  uv_async_t async;
  pthread_mutex_t mu;
  item_t *head, *tail;
  int closed_inbox;
  atomic_int closing, finishing;
  int listener_open;
  conn_t *conns;
  size_t nconns;
  uint64_t started_ms;
  /* counters, read by stats from any thread */
  _Atomic uint64_t connections_total, peers_rejected, busy_rejected,
      frames_in, frames_out, bad_frames, backpressure_pauses, idle_timeouts;
  _Atomic uint64_t nconns_a;
  jiwa_hist_t requests;
};

void jiwa_server_opts_default(jiwa_server_opts_t *o) {
  memset(o, 0, sizeof *o);
  o->path = "state/jiwad.sock";
  o->max_connections = 1024;
  o->max_frame = JIWA_FRAME_MAX_DEFAULT;
  o->idle_timeout_ms = 10000;
  o->out_queue_max = 1u << 20;
  o->request_timeout_ms = 120000;
  o->chat_actor = "echo";
  o->chat_type = "chat";
  o->version = "0.1.0";
}

/* ---- writing ------------------------------------------------------------- */

static void conn_close(conn_t *c);
static void conn_unref(conn_t *c);
static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf);
static void on_alloc(uv_handle_t *h, size_t want, uv_buf_t *buf);

static void conn_idle_arm(conn_t *c);

/* After the client's EOF: close once every request is answered and
 * written. */
static void conn_finish_if_idle(conn_t *c) {
  if (c->eof && !c->closing && c->nreqs == 0 && c->out_bytes == 0)
    conn_close(c);
}

/* Read again once the client has drained its replies and has room for
 * more requests in flight. */
static void conn_resume_if_ready(conn_t *c) {
  if (c->paused && !c->closing && !c->close_after_write && !c->eof &&
      c->out_bytes <= c->s->o.out_queue_max / 2 &&
      c->nreqs < CONN_INFLIGHT_MAX) {
    c->paused = 0;
    uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
    conn_idle_arm(c);
  }
}

static void on_written(uv_write_t *w, int status) {
  wreq_t *wr = (wreq_t *)w;
  conn_t *c = wr->c;
  c->out_bytes -= wr->len;
  free(wr->data);
  free(wr);
  if (status < 0 && !c->closing) {
    conn_close(c);
  } else if (!c->closing && c->close_after_write && c->out_bytes == 0) {
    conn_close(c);
  } else {
    conn_resume_if_ready(c);
    conn_finish_if_idle(c);
  }
  conn_unref(c);
}

/* Stop reading from @p c (backpressure). A partial frame may not time out
 * while we are the ones not reading it. */
static void conn_pause(conn_t *c) {
  c->paused = 1;
  uv_read_stop((uv_stream_t *)&c->pipe);
  if (c->idle_running) {
    c->idle_running = 0;
    uv_timer_stop(&c->idle);
  }
  atomic_fetch_add(&c->s->backpressure_pauses, 1);
}

/* Queue @p data (ownership taken) for @p c. */
static void conn_write(conn_t *c, char *data, size_t len) {
  if (c->closing) {
    free(data);
    return;
  }
  wreq_t *wr = malloc(sizeof *wr);
  if (!wr) {
    free(data);
    conn_close(c);
    return;
  }
  wr->c = c;
  wr->data = data;
  wr->len = len;
  uv_buf_t b = uv_buf_init(data, (unsigned)len);
  if (uv_write(&wr->w, (uv_stream_t *)&c->pipe, &b, 1, on_written) != 0) {
    free(data);
    free(wr);
    conn_close(c);
    return;
  }
  c->refs++;
  c->out_bytes += len;
  atomic_fetch_add_explicit(&c->s->frames_out, 1, memory_order_relaxed);
  /* Backpressure: a client that does not read its replies stops being
   * read from, so it cannot make us queue without bound. */
  if (!c->paused && c->out_bytes > c->s->o.out_queue_max)
    conn_pause(c);
}

/* The writer's buffer, trimmed to its size: msgpack's sbuffer starts at
 * 8 KiB, and a queued reply must cost its bytes, not its buffer. */
static char *take_exact(jiwa_mp_writer_t *w) {
  char *p = w->sbuf.size ? realloc(w->sbuf.data, w->sbuf.size) : NULL;
  return p ? p : w->sbuf.data;
}

/* Build frame @p op for @p id into @p w. max_frame bounds both directions:
 * a reply that would exceed it becomes an ETOOBIG error, and a frame that
 * cannot be built becomes an error too, so a request always gets a final. */
static int build_frame(jiwa_mp_writer_t *w, uint32_t max_frame, uint64_t id,
                       const char *op, const void *body, size_t len) {
  jiwa_mp_writer_init(w);
  int rc = jiwa_frame_write(w, id, op, body, len);
  if (rc == 0 && w->sbuf.size - JIWA_FRAME_HDR <= max_frame)
    return 0;
  char msg[200];
  if (rc == 0)
    snprintf(msg, sizeof msg,
             "the %s of %zu bytes exceeds max_frame (%u bytes); ask for less "
             "or raise socket.max_frame",
             op, w->sbuf.size - JIWA_FRAME_HDR, max_frame);
  else
    snprintf(msg, sizeof msg, "the %s could not be encoded: %s", op,
             jiwa_strerror(rc));
  jiwa_mp_writer_free(w);
  jiwa_mp_writer_init(w);
  rc = rc ? rc : JIWA_ETOOBIG;
  jiwa_frame_write_error(w, id, rc, msg);
  return rc;
}

static void write_frame(conn_t *c, uint64_t id, const char *op,
                        const void *body, size_t len) {
  jiwa_mp_writer_t w;
  build_frame(&w, c->s->o.max_frame, id, op, body, len);
  conn_write(c, take_exact(&w), w.sbuf.size); /* now the write's buffer */
}

static void write_error(conn_t *c, uint64_t id, int code, const char *fmt,
                        ...) JIWA_PRINTF(4, 5);
static void write_error(conn_t *c, uint64_t id, int code, const char *fmt,
                        ...) {
  char msg[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  if (jiwa_frame_write_error(&w, id, code, msg) == 0)
    conn_write(c, take_exact(&w), w.sbuf.size);
  else
    jiwa_mp_writer_free(&w);
}

/* ---- connection lifetime --------------------------------------------------- */

static void conn_free_if_done(conn_t *c) {
  if (c->refs > 0)
    return;
  free(c->buf);
  free(c);
}

static void conn_unref(conn_t *c) {
  c->refs--;
  conn_free_if_done(c);
}

static void on_idle_closed(uv_handle_t *h) { conn_unref(h->data); }

static void on_pipe_closed(uv_handle_t *h) {
  conn_t *c = h->data;
  uv_close((uv_handle_t *)&c->idle, on_idle_closed);
}

static void conn_close(conn_t *c) {
  if (c->closing)
    return;
  c->closing = 1;
  jiwa_server_t *s = c->s;
  if (c->prev)
    c->prev->next = c->next;
  else
    s->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  s->nconns--;
  atomic_store(&s->nconns_a, s->nconns);
  uv_timer_stop(&c->idle);
  uv_close((uv_handle_t *)&c->pipe, on_pipe_closed);
}

/* Send a connection-level error, then close once it is written. */
static void conn_fail(conn_t *c, int code, const char *msg) {
  uv_read_stop((uv_stream_t *)&c->pipe);
  c->close_after_write = 1;
  write_error(c, 0, code, "%s", msg);
  if (c->out_bytes == 0)
    conn_close(c);
}

static req_t *req_new(conn_t *c, uint64_t id) {
  req_t *r = calloc(1, sizeof *r);
  if (!r)
    return NULL;
  r->c = c;
  r->id = id;
  r->t0_us = jiwa__now_us();
  r->next = c->reqs;
  if (c->reqs)
    c->reqs->prev = r;
  c->reqs = r;
  c->refs++;
  c->nreqs++;
  return r;
}

static void req_done(req_t *r) {
  conn_t *c = r->c;
  if (r->prev)
    r->prev->next = r->next;
  else
    c->reqs = r->next;
  if (r->next)
    r->next->prev = r->prev;
  jiwa_hist_add(&c->s->requests, jiwa__now_us() - r->t0_us);
  free(r->config);
  free(r->name_long);
  free(r);
  c->nreqs--;
  conn_resume_if_ready(c);
  conn_finish_if_idle(c);
  conn_unref(c);
}

static int id_in_flight(conn_t *c, uint64_t id) {
  for (req_t *r = c->reqs; r; r = r->next)
    if (r->id == id)
      return 1;
  return 0;
}

/* ---- the inbox: frames from other threads ------------------------------------ */

/* Any thread: hand a built frame (ownership taken) to the server loop. */
static void post(jiwa_server_t *s, conn_t *c, req_t *final_of, char *data,
                 size_t len) {
  item_t *it = malloc(sizeof *it);
  if (!it) {
    /* Never lose a final: its request would leak. Spin until memory. */
    while (!(it = malloc(sizeof *it)))
      usleep(1000);
  }
  it->c = c;
  it->req = final_of;
  it->data = data;
  it->len = len;
  it->next = NULL;
  pthread_mutex_lock(&s->mu);
  int was_empty = s->head == NULL;
  if (s->tail)
    s->tail->next = it;
  else
    s->head = it;
  s->tail = it;
  if (was_empty && !s->closed_inbox)
    uv_async_send(&s->async);
  pthread_mutex_unlock(&s->mu);
}

static void post_frame(req_t *r, const char *op, const void *body, size_t len,
                       int final) {
  jiwa_mp_writer_t w;
  if (build_frame(&w, r->c->s->o.max_frame, r->id, op, body, len) && !final) {
    /* An oversized delta cannot end the request early (more parts and the
     * final are still coming): drop it and turn the final into the error. */
    jiwa_mp_writer_free(&w);
    r->oversized = 1;
    return;
  }
  if (final && r->oversized) {
    jiwa_mp_writer_free(&w);
    jiwa_mp_writer_init(&w);
    jiwa_frame_write_error(&w, r->id, JIWA_ETOOBIG,
                           "a streamed part exceeded max_frame and was "
                           "dropped; raise socket.max_frame");
  }
  post(r->c->s, r->c, final ? r : NULL, take_exact(&w), w.sbuf.size);
}

static void post_error(req_t *r, int code, const char *msg) {
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  jiwa_frame_write_error(&w, r->id, code, msg);
  post(r->c->s, r->c, r, take_exact(&w), w.sbuf.size);
}

static void finish_server(jiwa_server_t *s);

static void on_async(uv_async_t *h) {
  jiwa_server_t *s = h->data;
  pthread_mutex_lock(&s->mu);
  item_t *it = s->head;
  s->head = s->tail = NULL;
  pthread_mutex_unlock(&s->mu);
  while (it) {
    item_t *next = it->next;
    conn_t *c = it->c;
    if (it->data && !c->closing)
      conn_write(c, it->data, it->len);
    else
      free(it->data);
    if (it->req)
      req_done(it->req);
    free(it);
    it = next;
  }
  if (atomic_load(&s->closing) && s->listener_open) {
    s->listener_open = 0;
    uv_close((uv_handle_t *)&s->listener, NULL);
    while (s->conns)
      conn_close(s->conns);
    unlink(s->path);
  }
  if (atomic_load(&s->finishing))
    finish_server(s);
}

/* ---- ops ----------------------------------------------------------------------- */

static void reply_now(conn_t *c, uint64_t id, jiwa_mp_writer_t *body) {
  write_frame(c, id, "reply", body->sbuf.data, body->sbuf.size);
  jiwa_mp_writer_free(body);
}

static void op_health(conn_t *c, uint64_t id) {
  jiwa_server_t *s = c->s;
  /* down = actors not running, from the runtime's own list */
  jiwa_mp_writer_t l;
  jiwa_mp_writer_init(&l);
  jiwa_rt_list(s->rt, &l.pk);
  jiwa_mp_reader_t r;
  jiwa_mp_item_t it;
  jiwa_mp_reader_init(&r, l.sbuf.data, l.sbuf.size);
  uint32_t n = 0;
  char down[32][64];
  uint32_t ndown = 0;
  if (jiwa_mp_next(&r, &it) == 0 && it.type == JIWA_MP_ARRAY)
    n = it.v.count;
  for (uint32_t i = 0; i < n; i++) {
    const uint8_t *start = r.p;
    if (jiwa_mp_skip(&r))
      break;
    size_t len = (size_t)(r.p - start);
    const char *st, *nm;
    size_t stl, nml;
    if (jiwa_mp_get_str(start, len, "state", &st, &stl) == 0 &&
        !(stl == 7 && memcmp(st, "running", 7) == 0) && ndown < 32 &&
        jiwa_mp_get_str(start, len, "name", &nm, &nml) == 0 && nml < 64) {
      memcpy(down[ndown], nm, nml);
      down[ndown++][nml] = '\0';
    }
  }
  jiwa_mp_writer_free(&l);
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 7);
  jiwa_mp_put_kv_str(&w.pk, "status", ndown ? "degraded" : "ok");
  jiwa_mp_put_kv_str(&w.pk, "version", s->version);
  jiwa_mp_put_kv_int(&w.pk, "proto", JIWA_PROTO_VERSION);
  jiwa_mp_put_kv_int(&w.pk, "uptime_ms",
                     (int64_t)(jiwa__now_us() / 1000 - s->started_ms));
  jiwa_mp_put_kv_int(&w.pk, "workers", jiwa_rt_workers(s->rt));
  jiwa_mp_put_kv_int(&w.pk, "actors", n);
  jiwa_mp_put_str(&w.pk, "down");
  msgpack_pack_array(&w.pk, ndown);
  for (uint32_t i = 0; i < ndown; i++)
    jiwa_mp_put_str(&w.pk, down[i]);
  reply_now(c, id, &w);
}

static void op_stats(conn_t *c, uint64_t id) {
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 2);
  jiwa_mp_put_str(&w.pk, "runtime");
  jiwa_rt_stats(c->s->rt, &w.pk);
  jiwa_mp_put_str(&w.pk, "server");
  jiwa_server_stats(c->s, &w.pk);
  reply_now(c, id, &w);
}

static void op_list(conn_t *c, uint64_t id) {
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 1);
  jiwa_mp_put_str(&w.pk, "actors");
  jiwa_rt_list(c->s->rt, &w.pk);
  reply_now(c, id, &w);
}

/* Fetch a required name-like string field; writes the error itself. */
static int need_name(conn_t *c, uint64_t id, const char *op,
                     const jiwa_frame_t *f, const char *key, char *dst) {
  int rc = jiwa_mp_get_strcpy(f->body, f->body_len, key, dst, 64);
  if (rc || !jiwa_conf_name_valid(dst)) {
    write_error(c, id, JIWA_EINVAL,
                "%s: field '%s' %s; names are 1-63 characters of a-z, 0-9, "
                "'_' and '-'",
                op, key,
                rc == JIWA_ENOENT ? "is missing"
                : rc == JIWA_EINVAL ? "must be a string"
                                    : "is not a valid name");
    return -1;
  }
  return 0;
}

/* Reply body {name, plugin, version, generation} for actor @p name. */
static void describe_actor(jiwa_server_t *s, const char *name,
                           jiwa_mp_writer_t *w) {
  jiwa_mp_writer_t l;
  jiwa_mp_writer_init(&l);
  jiwa_rt_list(s->rt, &l.pk);
  jiwa_mp_reader_t r;
  jiwa_mp_item_t it;
  jiwa_mp_reader_init(&r, l.sbuf.data, l.sbuf.size);
  jiwa_mp_writer_init(w);
  int found = 0;
  if (jiwa_mp_next(&r, &it) == 0 && it.type == JIWA_MP_ARRAY)
    for (uint32_t i = 0; i < it.v.count && !found; i++) {
      const uint8_t *start = r.p;
      if (jiwa_mp_skip(&r))
        break;
      size_t len = (size_t)(r.p - start);
      const char *nm;
      size_t nml;
      if (jiwa_mp_get_str(start, len, "name", &nm, &nml) == 0 &&
          nml == strlen(name) && memcmp(nm, name, nml) == 0) {
        msgpack_sbuffer_write(&w->sbuf, (const char *)start, len);
        found = 1;
      }
    }
  if (!found) {
    msgpack_pack_map(&w->pk, 1);
    jiwa_mp_put_kv_str(&w->pk, "name", name);
  }
  jiwa_mp_writer_free(&l);
}

static void reload_done(int rc, const char *err, void *ud) {
  req_t *r = ud;
  if (rc) {
    post_error(r, rc, err);
    return;
  }
  jiwa_mp_writer_t w;
  describe_actor(r->c->s, r->name, &w);
  post_frame(r, "reply", w.sbuf.data, w.sbuf.size, 1);
  jiwa_mp_writer_free(&w);
}

static void op_reload(conn_t *c, uint64_t id, const jiwa_frame_t *f) {
  char name[64];
  if (need_name(c, id, "plugin.reload", f, "name", name))
    return;
  req_t *r = req_new(c, id);
  if (!r) {
    write_error(c, id, JIWA_ENOMEM, "out of memory");
    return;
  }
  snprintf(r->name, sizeof r->name, "%s", name);
  int rc = jiwa_rt_reload(c->s->rt, name, reload_done, r);
  if (rc) {
    write_error(c, id, rc,
                rc == JIWA_ENOENT ? "plugin.reload: no actor named '%s'; see "
                                    "`jiwa plugins`"
                : rc == JIWA_ENOTSUP
                    ? "plugin.reload: '%s' is built into jiwad and cannot be "
                      "reloaded"
                    : "plugin.reload: '%s' cannot be reloaded now",
                name);
    req_done(r);
  }
}

/* plugin.load / plugin.unload block until the worker has run init/drain:
 * they run on the thread pool, not on the server loop. */
static void load_work(uv_work_t *w) {
  req_t *r = w->data;
  r->rc = jiwa_rt_spawn_plugin(r->c->s->rt, r->name, r->plugin, (int)r->worker,
                               r->config, r->config_len, r->err,
                               sizeof r->err);
}

static void unload_work(uv_work_t *w) {
  req_t *r = w->data;
  r->rc = jiwa_rt_unload(r->c->s->rt, r->name, r->err, sizeof r->err);
}

static void blocking_done(uv_work_t *w, int status) {
  req_t *r = w->data;
  conn_t *c = r->c;
  if (r->rc && r->rc != JIWA_EPLUGIN) {
    write_error(c, r->id, r->rc, "%s", r->err);
  } else if (r->rc == JIWA_EPLUGIN) {
    write_error(c, r->id, r->rc,
                "%s (the actor exists and is retried with backoff; fix it and "
                "`jiwa plugin reload %s`)",
                r->err, r->name);
  } else {
    jiwa_mp_writer_t b;
    describe_actor(c->s, r->name, &b);
    reply_now(c, r->id, &b);
  }
  req_done(r);
}

/* store.check / store.backup: the daemon's LMDB store, on the thread pool
 * (a check walks every record; a backup copies the whole environment). */
static void store_check_work(uv_work_t *w) {
  req_t *r = w->data;
  jiwa_store_t *st = jiwa_rt_store(r->c->s->rt);
  r->rc = jiwa_store_check(st, r->config);
}

static void store_backup_work(uv_work_t *w) {
  req_t *r = w->data;
  jiwa_store_t *st = jiwa_rt_store(r->c->s->rt);
  r->rc = jiwa_store_backup(st, r->name_long);
  if (r->rc)
    snprintf(r->err, sizeof r->err, "store.backup to %s failed: %s%s",
             r->name_long, jiwa_strerror(r->rc),
             r->rc == JIWA_EEXIST
                 ? " (a store is already there: choose a new directory)"
                 : "");
}

static void store_done(uv_work_t *w, int status) {
  req_t *r = w->data;
  conn_t *c = r->c;
  jiwa_mp_writer_t b;
  jiwa_mp_writer_init(&b);
  if (r->config) { /* check: the report, problems or not */
    const jiwa_store_report_t *rep = r->config;
    msgpack_pack_map(&b.pk, 4);
    jiwa_mp_put_kv_str(&b.pk, "status", rep->problems ? "problems" : "ok");
    jiwa_mp_put_kv_int(&b.pk, "format", rep->format);
    jiwa_mp_put_str(&b.pk, "records");
    msgpack_pack_map(&b.pk, JIWA_STORE_DB_COUNT);
    for (int db = 0; db < JIWA_STORE_DB_COUNT; db++)
      jiwa_mp_put_kv_int(&b.pk, jiwa_store_db_name((jiwa_store_db_t)db),
                         (int64_t)rep->entries[db]);
    jiwa_mp_put_str(&b.pk, "problems");
    uint64_t n = rep->problems < JIWA_STORE_REPORT_PROBLEMS
                     ? rep->problems
                     : JIWA_STORE_REPORT_PROBLEMS;
    msgpack_pack_array(&b.pk, (size_t)n);
    for (uint64_t i = 0; i < n; i++)
      jiwa_mp_put_str(&b.pk, rep->problem[i]);
    if (r->rc && r->rc != JIWA_EPROTO) {
      jiwa_mp_writer_free(&b);
      write_error(c, r->id, r->rc, "store.check could not walk the store: %s",
                  jiwa_strerror(r->rc));
      req_done(r);
      return;
    }
  } else if (r->rc) {
    jiwa_mp_writer_free(&b);
    write_error(c, r->id, r->rc, "%s", r->err);
    req_done(r);
    return;
  } else {
    msgpack_pack_map(&b.pk, 1);
    jiwa_mp_put_kv_str(&b.pk, "path", r->name_long);
  }
  reply_now(c, r->id, &b);
  req_done(r);
}

static void op_store(conn_t *c, uint64_t id, const jiwa_frame_t *f,
                     int backup) {
  if (!jiwa_rt_store(c->s->rt)) {
    write_error(c, id, JIWA_ENOENT,
                "this jiwad runs without a store (no `store` section)");
    return;
  }
  const char *path = NULL;
  size_t pl = 0;
  if (backup && (jiwa_mp_get_str(f->body, f->body_len, "path", &path, &pl) ||
                 pl == 0 || pl >= PATH_MAX || path[0] != '/' ||
                 memchr(path, 0, pl))) {
    write_error(c, id, JIWA_EINVAL,
                "store.backup: field 'path' must be an absolute directory "
                "path");
    return;
  }
  req_t *r = req_new(c, id);
  if (!r || (backup && !(r->name_long = strndup(path, pl))) ||
      (!backup && !(r->config = calloc(1, sizeof(jiwa_store_report_t))))) {
    if (r)
      req_done(r);
    write_error(c, id, JIWA_ENOMEM, "out of memory");
    return;
  }
  r->work.data = r;
  if (uv_queue_work(&c->s->loop, &r->work,
                    backup ? store_backup_work : store_check_work,
                    store_done)) {
    write_error(c, id, JIWA_EIO, "store: could not be queued");
    req_done(r);
  }
}

static void op_load(conn_t *c, uint64_t id, const jiwa_frame_t *f,
                    int unload) {
  const char *op = unload ? "plugin.unload" : "plugin.load";
  char name[64], plugin[64] = "";
  if (need_name(c, id, op, f, "name", name))
    return;
  if (!unload && need_name(c, id, op, f, "plugin", plugin))
    return;
  int64_t worker = -1;
  int rc = jiwa_mp_get_int(f->body, f->body_len, "worker", &worker);
  if ((rc && rc != JIWA_ENOENT) || worker < -1 ||
      worker >= jiwa_rt_workers(c->s->rt)) {
    write_error(c, id, JIWA_EINVAL,
                "%s: field 'worker' must be an integer from -1 (automatic) "
                "to %d",
                op, jiwa_rt_workers(c->s->rt) - 1);
    return;
  }
  jiwa_mp_reader_t at;
  const uint8_t *cfg = NULL;
  size_t cfglen = 0;
  rc = jiwa_mp_map_find(f->body, f->body_len, "config", &at);
  if (rc == 0) {
    jiwa_mp_reader_t peek = at;
    jiwa_mp_item_t it;
    const uint8_t *start = at.p;
    if (jiwa_mp_next(&peek, &it) || it.type != JIWA_MP_MAP ||
        jiwa_mp_skip(&at)) {
      write_error(c, id, JIWA_EINVAL,
                  "%s: field 'config' must be a map of the plugin's settings "
                  "(see jiwad --plugin-help %s)",
                  op, plugin);
      return;
    }
    cfg = start;
    cfglen = (size_t)(at.p - start);
  }
  req_t *r = req_new(c, id);
  if (!r || (cfglen && !(r->config = malloc(cfglen)))) {
    write_error(c, id, JIWA_ENOMEM, "out of memory");
    if (r)
      req_done(r);
    return;
  }
  snprintf(r->name, sizeof r->name, "%s", name);
  snprintf(r->plugin, sizeof r->plugin, "%s", plugin);
  r->worker = worker;
  if (cfglen) {
    memcpy(r->config, cfg, cfglen);
    r->config_len = cfglen;
  }
  r->work.data = r;
  if (uv_queue_work(&c->s->loop, &r->work, unload ? unload_work : load_work,
                    blocking_done)) {
    write_error(c, id, JIWA_EIO, "%s: could not be queued", op);
    req_done(r);
  }
}

static void chat_fn(const jiwa_msg_t *m, void *ud) {
  req_t *r = ud;
  switch (m->kind) {
  case JIWA_MSG_DELTA:
    post_frame(r, "delta", m->body, m->body_len, 0);
    break;
  case JIWA_MSG_ERROR:
    post_error(r, m->err, m->errtext);
    break;
  default:
    post_frame(r, "reply", m->body, m->body_len, 1);
  }
}

/* Optional string field of at most @p max bytes; -1 (error written) if
 * present but wrong. */
static int opt_str(conn_t *c, uint64_t id, const jiwa_frame_t *f,
                   const char *key, size_t min, size_t max, const char **s,
                   size_t *n) {
  *s = NULL;
  *n = 0;
  int rc = jiwa_mp_get_str(f->body, f->body_len, key, s, n);
  if (rc == JIWA_ENOENT)
    return 0;
  if (rc || *n < min || *n > max) {
    write_error(c, id, JIWA_EINVAL,
                "chat: field '%s' must be a string of %zu to %zu bytes", key,
                min, max);
    return -1;
  }
  return 0;
}

/* Optional map field `attrs` (user attributes for the policy, e.g.
 * {team = true}): a bounded, well-formed msgpack map or -1 (error written). */
static int opt_attrs(conn_t *c, uint64_t id, const jiwa_frame_t *f,
                     const void **p, size_t *n) {
  *p = NULL;
  *n = 0;
  jiwa_mp_reader_t at, peek;
  jiwa_mp_item_t it;
  int rc = jiwa_mp_map_find(f->body, f->body_len, "attrs", &at);
  if (rc == JIWA_ENOENT)
    return 0;
  const uint8_t *start = at.p;
  peek = at;
  if (rc || jiwa_mp_next(&peek, &it) || it.type != JIWA_MP_MAP ||
      jiwa_mp_skip(&at) || (size_t)(at.p - start) > CHAT_ATTRS_MAX) {
    write_error(c, id, JIWA_EINVAL,
                "chat: field 'attrs' must be a map of at most %d bytes "
                "(user attributes such as {\"team\": true})",
                CHAT_ATTRS_MAX);
    return -1;
  }
  *p = start;
  *n = (size_t)(at.p - start);
  return 0;
}

static void put_str_n(msgpack_packer *pk, const char *k, const char *v,
                      size_t n) {
  jiwa_mp_put_str(pk, k);
  msgpack_pack_str(pk, n);
  msgpack_pack_str_body(pk, v ? v : "", n);
}

static void op_chat(conn_t *c, uint64_t id, const jiwa_frame_t *f) {
  const char *text, *user, *session, *lang;
  size_t tl, ul, sl, ll, al;
  const void *attrs;
  int stream = 0, explain = 0;
  if (opt_str(c, id, f, "text", 1, CHAT_TEXT_MAX, &text, &tl) ||
      opt_str(c, id, f, "user", 1, CHAT_FIELD_MAX, &user, &ul) ||
      opt_str(c, id, f, "session", 1, CHAT_FIELD_MAX, &session, &sl) ||
      opt_str(c, id, f, "lang", 2, 16, &lang, &ll) ||
      opt_attrs(c, id, f, &attrs, &al))
    return;
  if (!text) {
    write_error(c, id, JIWA_EINVAL,
                "chat: field 'text' is missing; send {\"text\": \"...\"}");
    return;
  }
  int rc = jiwa_mp_get_bool(f->body, f->body_len, "stream", &stream);
  if (rc && rc != JIWA_ENOENT) {
    write_error(c, id, JIWA_EINVAL, "chat: field 'stream' must be a boolean");
    return;
  }
  rc = jiwa_mp_get_bool(f->body, f->body_len, "explain", &explain);
  if (rc && rc != JIWA_ENOENT) {
    write_error(c, id, JIWA_EINVAL,
                "chat: field 'explain' must be a boolean");
    return;
  }
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 5 + (lang != NULL) + (attrs != NULL));
  put_str_n(&w.pk, "text", text, tl);
  put_str_n(&w.pk, "user", user, ul);
  put_str_n(&w.pk, "session", session, sl);
  jiwa_mp_put_kv_bool(&w.pk, "stream", stream);
  jiwa_mp_put_kv_bool(&w.pk, "explain", explain);
  if (lang)
    put_str_n(&w.pk, "lang", lang, ll);
  if (attrs) {
    jiwa_mp_put_str(&w.pk, "attrs");
    msgpack_sbuffer_write(&w.sbuf, attrs, al); /* already a whole map */
  }
  req_t *r = req_new(c, id);
  if (!r) {
    jiwa_mp_writer_free(&w);
    write_error(c, id, JIWA_ENOMEM, "out of memory");
    return;
  }
  jiwa_server_t *s = c->s;
  const char *to = s->routes[s->next_route++ % s->nroutes];
  rc = jiwa_rt_ask(s->rt, to, s->chat_type, w.sbuf.data, w.sbuf.size,
                   s->o.request_timeout_ms, chat_fn, r);
  jiwa_mp_writer_free(&w);
  if (rc) {
    write_error(c, id, rc,
                rc == JIWA_ENOENT
                    ? "chat: the chat route's actor '%s' does not exist; "
                      "check chat.actor in the config"
                    : "chat: could not be routed to '%s'",
                to);
    req_done(r);
  }
}

/* policy.reload / policy.show: asked of the chat route's actors, which are
 * the policy engine when one is configured (plugins/policy). A reload goes
 * to every router (each owns its Lua state) and succeeds only if all of
 * them took the new script; the first error is the answer. */
typedef struct {
  req_t *r;
  pthread_mutex_t mu;
  size_t left;
  int err;
  char errtext[512];
  char *reply;
  size_t reply_len;
} fan_t;

/* Record one router's answer (an error when @p err != 0); the last one
 * posts the final frame and frees the fan. */
static void fan_note(fan_t *fan, int err, const char *text, const void *body,
                     size_t len) {
  pthread_mutex_lock(&fan->mu);
  if (err && !fan->err) {
    fan->err = err;
    snprintf(fan->errtext, sizeof fan->errtext, "%s", text ? text : "");
  } else if (!err && !fan->reply && (fan->reply = malloc(len ? len : 1))) {
    memcpy(fan->reply, body, len);
    fan->reply_len = len;
  }
  int last = --fan->left == 0;
  pthread_mutex_unlock(&fan->mu);
  if (!last)
    return;
  if (fan->err)
    post_error(fan->r, fan->err, fan->errtext);
  else if (fan->reply)
    post_frame(fan->r, "reply", fan->reply, fan->reply_len, 1);
  else
    post_error(fan->r, JIWA_ENOMEM, "out of memory");
  pthread_mutex_destroy(&fan->mu);
  free(fan->reply);
  free(fan);
}

static void fan_fn(const jiwa_msg_t *m, void *ud) {
  if (m->kind == JIWA_MSG_DELTA)
    return;
  if (m->kind == JIWA_MSG_ERROR)
    fan_note(ud, m->err ? m->err : JIWA_EIO, m->errtext, NULL, 0);
  else
    fan_note(ud, 0, NULL, m->body, m->body_len);
}

static void op_policy(conn_t *c, uint64_t id, const char *type) {
  jiwa_server_t *s = c->s;
  size_t n = strcmp(type, "policy.reload") == 0 ? s->nroutes : 1;
  req_t *r = req_new(c, id);
  fan_t *fan = r ? calloc(1, sizeof *fan) : NULL;
  if (!fan) {
    if (r)
      req_done(r);
    write_error(c, id, JIWA_ENOMEM, "out of memory");
    return;
  }
  fan->r = r;
  pthread_mutex_init(&fan->mu, NULL);
  fan->left = n;
  for (size_t i = 0; i < n; i++) {
    int rc = jiwa_rt_ask(s->rt, s->routes[i], type, NULL, 0,
                         s->o.request_timeout_ms, fan_fn, fan);
    if (rc) {
      char text[300];
      snprintf(text, sizeof text,
               "%s: the chat route's actor '%s' is not available; check "
               "chat.actor in the config",
               type, s->routes[i]);
      fan_note(fan, rc, text, NULL, 0);
    }
  }
}

/* Ops served by plugins: the op's prefix names the actor that answers it,
 * and the frame body goes to that actor unchanged, as a message whose type
 * is the op ("golden.add" → actor golden_cache, type "golden.add"). Deltas
 * (progress) and the final come back as frames. */
static const struct {
  const char *prefix;
  const char *actor;
} forwards[] = {
    {"golden.", "golden_cache"},   {"knowledge.", "knowledge"},
    {"memory.", "memory"},         {"shadow.", "shadow"},
    {"conversations.", "convlog"}, {"job.", "nightly"},
    {"clusters.", "nightly"},      {"classify.", "classifier"},
};

static const char *forward_actor(const jiwa_frame_t *f) {
  for (size_t i = 0; i < sizeof forwards / sizeof *forwards; i++) {
    size_t n = strlen(forwards[i].prefix);
    if (f->op_len > n && memcmp(f->op, forwards[i].prefix, n) == 0)
      return forwards[i].actor;
  }
  return NULL;
}

static void op_forward(conn_t *c, uint64_t id, const jiwa_frame_t *f,
                       const char *actor) {
  char type[JIWA_FRAME_OP_MAX + 1];
  size_t n = f->op_len;
  for (size_t i = 0; i < n; i++) {
    char ch = f->op[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' ||
          ch == '_' || ch == '-')) {
      write_error(c, id, JIWA_EINVAL,
                  "op names are made of a-z, 0-9, '.', '_' and '-'");
      return;
    }
    type[i] = ch;
  }
  type[n] = '\0';
  req_t *r = req_new(c, id);
  if (!r) {
    write_error(c, id, JIWA_ENOMEM, "out of memory");
    return;
  }
  jiwa_server_t *s = c->s;
  int rc = jiwa_rt_ask(s->rt, actor, type, f->body, f->body_len,
                       s->o.request_timeout_ms, chat_fn, r);
  if (rc) {
    write_error(c, id, rc,
                rc == JIWA_ENOENT
                    ? "%s is served by the actor '%s', which is not running; "
                      "add it to `actors` in the config (see README)"
                    : "%s: could not be routed to the actor '%s'",
                type, actor);
    req_done(r);
  }
}

static void dispatch(conn_t *c, const jiwa_frame_t *f) {
  uint64_t id = f->id;
  if (id == 0) {
    write_error(c, 0, JIWA_EINVAL,
                "request id 0 is reserved for the server; number requests "
                "from 1");
    return;
  }
  if (id_in_flight(c, id)) {
    /* id 0: the request in flight under this id keeps its single final */
    write_error(c, 0, JIWA_EINVAL,
                "request id %llu is already in flight on this connection; "
                "use a new id per request",
                (unsigned long long)id);
    return;
  }
  if (jiwa_frame_op_is(f, "health"))
    op_health(c, id);
  else if (jiwa_frame_op_is(f, "stats"))
    op_stats(c, id);
  else if (jiwa_frame_op_is(f, "plugin.list"))
    op_list(c, id);
  else if (jiwa_frame_op_is(f, "plugin.reload"))
    op_reload(c, id, f);
  else if (jiwa_frame_op_is(f, "plugin.load"))
    op_load(c, id, f, 0);
  else if (jiwa_frame_op_is(f, "plugin.unload"))
    op_load(c, id, f, 1);
  else if (jiwa_frame_op_is(f, "chat"))
    op_chat(c, id, f);
  else if (jiwa_frame_op_is(f, "policy.reload"))
    op_policy(c, id, "policy.reload");
  else if (jiwa_frame_op_is(f, "policy.show"))
    op_policy(c, id, "policy.show");
  else if (jiwa_frame_op_is(f, "store.check"))
    op_store(c, id, f, 0);
  else if (jiwa_frame_op_is(f, "store.backup"))
    op_store(c, id, f, 1);
  else if (forward_actor(f))
    op_forward(c, id, f, forward_actor(f));
  else {
    char op[JIWA_FRAME_OP_MAX + 1];
    size_t n = f->op_len;
    for (size_t i = 0; i < n; i++) /* never echo control bytes back */
      op[i] = f->op[i] >= 0x20 && f->op[i] < 0x7f ? f->op[i] : '?';
    op[n] = '\0';
    write_error(c, id, JIWA_ENOTSUP,
                "unknown op '%s'; ops are: health, stats, plugin.list, "
                "plugin.load, plugin.reload, plugin.unload, chat, "
                "policy.reload, policy.show, and those served by plugins: "
                "golden.*, knowledge.*, memory.*, shadow.*, "
                "conversations.*, job.*, clusters.*, classify.*; "
                "store.check, store.backup",
                op);
  }
}

/* ---- reading ----------------------------------------------------------------- */

static void on_idle(uv_timer_t *t) {
  conn_t *c = t->data;
  c->idle_running = 0;
  if (c->close_after_write || c->closing)
    return;
  atomic_fetch_add(&c->s->idle_timeouts, 1);
  char msg[160];
  snprintf(msg, sizeof msg,
           "frame incomplete after %u ms (socket.idle_timeout_ms); closing",
           c->s->o.idle_timeout_ms);
  conn_fail(c, JIWA_ETIMEDOUT, msg);
}

static void on_alloc(uv_handle_t *h, size_t want, uv_buf_t *buf) {
  conn_t *c = h->data;
  /* Grow with what arrives, never with what a header declares: a 4-byte
   * header alone must not cost max_frame bytes. */
  if (c->cap - c->len < READ_CHUNK) {
    size_t cap = c->cap ? c->cap : READ_CHUNK;
    while (cap - c->len < READ_CHUNK)
      cap *= 2;
    uint8_t *p = realloc(c->buf, cap);
    if (!p) {
      buf->base = NULL;
      buf->len = 0;
      return;
    }
    c->buf = p;
    c->cap = cap;
  }
  buf->base = (char *)c->buf + c->len;
  buf->len = READ_CHUNK;
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf) {
  conn_t *c = st->data;
  jiwa_server_t *s = c->s;
  if (n == UV_EOF && !c->closing) {
    /* A half-close is a polite goodbye: replies still owed are sent. */
    c->eof = 1;
    uv_read_stop(st);
    if (c->idle_running) {
      c->idle_running = 0;
      uv_timer_stop(&c->idle);
    }
    conn_finish_if_idle(c);
    return;
  }
  if (n < 0) {
    conn_close(c);
    return;
  }
  c->len += (size_t)n;
  size_t off = 0;
  while (!c->closing && !c->close_after_write && c->len - off >= JIWA_FRAME_HDR) {
    int64_t fl = jiwa_frame_header(c->buf + off, s->o.max_frame);
    if (fl < 0) {
      char msg[200];
      uint32_t declared = (uint32_t)c->buf[off] << 24 |
                          (uint32_t)c->buf[off + 1] << 16 |
                          (uint32_t)c->buf[off + 2] << 8 | c->buf[off + 3];
      if (fl == JIWA_ETOOBIG)
        snprintf(msg, sizeof msg,
                 "frame of %u bytes exceeds the limit of %u "
                 "(socket.max_frame); closing",
                 declared, s->o.max_frame);
      else
        snprintf(msg, sizeof msg, "frame of length 0; closing");
      atomic_fetch_add(&s->bad_frames, 1);
      conn_fail(c, (int)fl, msg);
      break;
    }
    if (c->len - off - JIWA_FRAME_HDR < (size_t)fl)
      break; /* partial */
    const uint8_t *payload = c->buf + off + JIWA_FRAME_HDR;
    off += JIWA_FRAME_HDR + (size_t)fl;
    atomic_fetch_add_explicit(&s->frames_in, 1, memory_order_relaxed);
    jiwa_frame_t f;
    char err[200];
    if (jiwa_frame_parse(payload, (size_t)fl, &f, err, sizeof err)) {
      atomic_fetch_add(&s->bad_frames, 1);
      write_error(c, 0, JIWA_EPROTO, "%s", err);
      continue;
    }
    dispatch(c, &f);
  }
  if (c->closing)
    return;
  if (off) {
    memmove(c->buf, c->buf + off, c->len - off);
    c->len -= off;
    /* a frame completed: the slow-sender clock restarts for the next */
    if (c->idle_running) {
      c->idle_running = 0;
      uv_timer_stop(&c->idle);
    }
  }
  if (!c->paused && c->nreqs >= CONN_INFLIGHT_MAX)
    conn_pause(c);
  /* Shrink a buffer a large frame left behind. */
  if (c->len == 0 && c->cap > 4 * READ_CHUNK) {
    free(c->buf);
    c->buf = NULL;
    c->cap = 0;
  }
  conn_idle_arm(c);
}

/* Run the slow-sender clock while a partial frame waits and we read. */
static void conn_idle_arm(conn_t *c) {
  if (c->len > 0 && !c->paused && !c->idle_running && !c->closing) {
    c->idle_running = 1;
    uv_timer_start(&c->idle, on_idle, c->s->o.idle_timeout_ms, 0);
  } else if (c->len == 0 && c->idle_running) {
    c->idle_running = 0;
    uv_timer_stop(&c->idle);
  }
}

/* ---- accepting -------------------------------------------------------------------- */

static int peer_allowed(jiwa_server_t *s, int fd, uid_t *uid) {
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
    return 0;
  *uid = cred.uid;
  if (cred.uid == geteuid())
    return 1;
  for (size_t i = 0; i < s->nallow; i++)
    if ((int64_t)cred.uid == s->allow[i])
      return 1;
  return 0;
}

static void on_connection(uv_stream_t *l, int status) {
  jiwa_server_t *s = l->data;
  if (status < 0)
    return;
  conn_t *c = calloc(1, sizeof *c);
  if (!c)
    return;
  c->s = s;
  c->refs = 1;
  uv_pipe_init(&s->loop, &c->pipe, 0);
  c->pipe.data = c;
  uv_timer_init(&s->loop, &c->idle);
  c->idle.data = c;
  c->next = s->conns;
  if (s->conns)
    s->conns->prev = c;
  s->conns = c;
  s->nconns++;
  atomic_store(&s->nconns_a, s->nconns);
  if (uv_accept(l, (uv_stream_t *)&c->pipe) != 0) {
    conn_close(c);
    return;
  }
  atomic_fetch_add(&s->connections_total, 1);
  uv_os_fd_t fd;
  uv_fileno((uv_handle_t *)&c->pipe, &fd);
  if (!peer_allowed(s, fd, &c->uid)) {
    atomic_fetch_add(&s->peers_rejected, 1);
    char msg[200];
    snprintf(msg, sizeof msg,
             "uid %u may not use jiwad (it runs as uid %u); add it to "
             "socket.allow_uids in the config",
             (unsigned)c->uid, (unsigned)geteuid());
    jiwa_logf(JIWA_LOG_WARN, "socket", "refused a client: %s", msg);
    conn_fail(c, JIWA_EPERM, msg);
    return;
  }
  if (s->nconns > s->o.max_connections) {
    atomic_fetch_add(&s->busy_rejected, 1);
    conn_fail(c, JIWA_EBUSY,
              "too many connections (socket.max_connections); try again "
              "later");
    return;
  }
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 4);
  jiwa_mp_put_kv_int(&w.pk, "proto", JIWA_PROTO_VERSION);
  char server[64];
  snprintf(server, sizeof server, "jiwad %s", s->version);
  jiwa_mp_put_kv_str(&w.pk, "server", server);
  jiwa_mp_put_kv_int(&w.pk, "max_frame", s->o.max_frame);
  jiwa_mp_put_str(&w.pk, "ops");
  msgpack_pack_array(&w.pk, sizeof ops_list / sizeof *ops_list - 1);
  for (const char *const *op = ops_list; *op; op++)
    jiwa_mp_put_str(&w.pk, *op);
  write_frame(c, 0, "hello", w.sbuf.data, w.sbuf.size);
  jiwa_mp_writer_free(&w);
  uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
}

/* ---- lifecycle -------------------------------------------------------------------- */

/* The socket's directory must be ours alone: then nobody else can connect
 * before we check, and no chmod after bind is needed. */
static int prepare_path(jiwa_server_t *s, char *err, size_t errlen) {
  char dirbuf[sizeof s->path];
  snprintf(dirbuf, sizeof dirbuf, "%s", s->path);
  char *dir = dirname(dirbuf);
  /* With allow_uids, others need search permission on the directory to
   * reach the socket (never read or write: they cannot list or replace
   * entries); SO_PEERCRED then decides who is served. */
  mode_t want = s->nallow ? 0711 : 0700;
  if (mkdir(dir, want) != 0 && errno != EEXIST) {
    snprintf(err, errlen, "cannot create the socket directory %s: %s", dir,
             strerror(errno));
    return JIWA_EIO;
  }
  struct stat st;
  if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
    snprintf(err, errlen, "socket directory %s is not a directory", dir);
    return JIWA_EIO;
  }
  if (st.st_uid != geteuid() || (st.st_mode & (s->nallow ? 066 : 077))) {
    snprintf(err, errlen,
             "socket directory %s must be private: owned by uid %u with mode "
             "%03o (it is uid %u, mode %03o); run chmod %03o %s",
             dir, (unsigned)geteuid(), (unsigned)want, (unsigned)st.st_uid,
             (unsigned)(st.st_mode & 0777), (unsigned)want, dir);
    return JIWA_EPERM;
  }
  if (lstat(s->path, &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      snprintf(err, errlen,
               "%s exists and is not a socket; move it away or choose "
               "another socket.path",
               s->path);
      return JIWA_EEXIST;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", s->path);
    int live = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0)
      close(fd);
    if (live) {
      snprintf(err, errlen,
               "another jiwad is already serving on %s; stop it or choose "
               "another socket.path",
               s->path);
      return JIWA_EEXIST;
    }
    unlink(s->path); /* stale: left by a daemon that died */
  }
  return 0;
}

static void server_main(void *arg) {
  jiwa_server_t *s = arg;
  uv_run(&s->loop, UV_RUN_DEFAULT);
}

/* chat.actor is one actor name or several separated by commas. The names
 * point into s->chat_actor, which is cut in place. */
static int split_routes(jiwa_server_t *s, char *err, size_t errlen) {
  if (!s->chat_actor || !s->chat_type || !s->version)
    return snprintf(err, errlen, "out of memory"), -1;
  for (char *p = s->chat_actor, *save = NULL, *tok;
       (tok = strtok_r(p, ",", &save)); p = NULL) {
    while (*tok == ' ')
      tok++;
    for (size_t n = strlen(tok); n && tok[n - 1] == ' ';)
      tok[--n] = 0;
    if (s->nroutes == JIWA_SERVER_MAX_ROUTES) {
      snprintf(err, errlen,
               "chat.actor names more than %d actors; use at most one per "
               "worker",
               JIWA_SERVER_MAX_ROUTES);
      return -1;
    }
    s->routes[s->nroutes++] = tok;
  }
  if (s->nroutes == 0) {
    snprintf(err, errlen,
             "chat.actor is empty; name the actor that answers chat "
             "requests (or several, separated by commas)");
    return -1;
  }
  return 0;
}

int jiwa_server_start(jiwa_server_t **out, jiwa_rt_t *rt,
                      const jiwa_server_opts_t *o, char *err, size_t errlen) {
  *out = NULL;
  if (!o->path || strlen(o->path) >= sizeof((jiwa_server_t *)0)->path) {
    snprintf(err, errlen, "socket path missing or longer than 107 bytes");
    return JIWA_EINVAL;
  }
  jiwa_server_t *s = calloc(1, sizeof *s);
  if (!s)
    return JIWA_ENOMEM;
  s->rt = rt;
  s->o = *o;
  snprintf(s->path, sizeof s->path, "%s", o->path);
  s->chat_actor = strdup(o->chat_actor ? o->chat_actor : "echo");
  s->chat_type = strdup(o->chat_type ? o->chat_type : "chat");
  s->version = strdup(o->version ? o->version : "?");
  if (split_routes(s, err, errlen)) {
    free(s->chat_actor);
    free(s->chat_type);
    free(s->version);
    free(s);
    return JIWA_EINVAL;
  }
  for (size_t i = 0; i < o->n_allow_uids && i < 16; i++)
    s->allow[s->nallow++] = o->allow_uids[i];
  s->started_ms = jiwa__now_us() / 1000;
  /* A client that hangs up must cost an EPIPE, not the daemon. */
  signal(SIGPIPE, SIG_IGN);
  pthread_mutex_init(&s->mu, NULL);
  int rc = prepare_path(s, err, errlen);
  if (rc)
    goto fail;
  /* 1000 clients need 1000 descriptors: take what the hard limit allows. */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  uv_loop_init(&s->loop);
  uv_async_init(&s->loop, &s->async, on_async);
  s->async.data = s;
  uv_pipe_init(&s->loop, &s->listener, 0);
  s->listener.data = s;
  /* The socket file's mode is set by bind through the umask (no chmod
   * after bind): owner-only, or connectable by all when other uids are
   * allowed — the directory and SO_PEERCRED guard it either way. */
  mode_t old_mask = umask(s->nallow ? 0 : 0077);
  int e = uv_pipe_bind(&s->listener, s->path);
  umask(old_mask);
  if (e == 0)
    e = uv_listen((uv_stream_t *)&s->listener, 511, on_connection);
  if (e) {
    snprintf(err, errlen, "cannot listen on %s: %s", s->path, uv_strerror(e));
    uv_close((uv_handle_t *)&s->listener, NULL);
    uv_close((uv_handle_t *)&s->async, NULL);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    uv_loop_close(&s->loop);
    rc = JIWA_EIO;
    goto fail;
  }
  s->listener_open = 1;
  uv_thread_create(&s->thread, server_main, s);
  jiwa_logf(JIWA_LOG_INFO, "socket", "listening on %s", s->path);
  *out = s;
  return 0;
fail:
  pthread_mutex_destroy(&s->mu);
  free(s->chat_actor);
  free(s->chat_type);
  free(s->version);
  free(s);
  return rc;
}

void jiwa_server_close(jiwa_server_t *s) {
  if (!s)
    return;
  atomic_store(&s->closing, 1);
  pthread_mutex_lock(&s->mu);
  if (!s->closed_inbox)
    uv_async_send(&s->async);
  pthread_mutex_unlock(&s->mu);
}

/* On the server loop, once closing: leave when every request is done. */
static void finish_server(jiwa_server_t *s) {
  if (s->conns || s->listener_open)
    return;
  /* Requests of closed connections still hold their conn until their
   * final arrives; jiwa_rt_stop has delivered those by now. */
  pthread_mutex_lock(&s->mu);
  int empty = s->head == NULL;
  if (empty)
    s->closed_inbox = 1;
  pthread_mutex_unlock(&s->mu);
  if (empty && !uv_is_closing((uv_handle_t *)&s->async))
    uv_close((uv_handle_t *)&s->async, NULL);
}

int jiwa_server_free(jiwa_server_t *s) {
  if (!s)
    return 0;
  jiwa_server_close(s);
  atomic_store(&s->finishing, 1);
  pthread_mutex_lock(&s->mu);
  if (!s->closed_inbox)
    uv_async_send(&s->async);
  pthread_mutex_unlock(&s->mu);
  uv_thread_join(&s->thread);
  int rc = uv_loop_close(&s->loop) ? JIWA_EBUSY : 0;
  /* anything posted after the inbox closed (nothing should be) */
  for (item_t *it = s->head; it;) {
    item_t *next = it->next;
    free(it->data);
    free(it);
    it = next;
  }
  pthread_mutex_destroy(&s->mu);
  free(s->chat_actor);
  free(s->chat_type);
  free(s->version);
  free(s);
  return rc;
}

int jiwa_server_stats(jiwa_server_t *s, msgpack_packer *pk) {
  int rc = msgpack_pack_map(pk, 10);
#define CTR(name, field)                                                       \
  rc |= jiwa_mp_put_kv_int(pk, name, (int64_t)atomic_load(&s->field))
  CTR("connections", nconns_a);
  CTR("connections_total", connections_total);
  CTR("peers_rejected", peers_rejected);
  CTR("busy_rejected", busy_rejected);
  CTR("frames_in", frames_in);
  CTR("frames_out", frames_out);
  CTR("bad_frames", bad_frames);
  CTR("backpressure_pauses", backpressure_pauses);
  CTR("idle_timeouts", idle_timeouts);
#undef CTR
  rc |= jiwa_mp_put_str(pk, "requests");
  rc |= jiwa_hist_pack(&s->requests, pk);
  return rc ? JIWA_ENOMEM : 0;
}
