/* The local socket API (runtime/jiwa_server.c), end to end over real Unix
 * sockets: a runtime and a server started in-process, raw clients speaking
 * length-prefixed msgpack frames (include/jiwa/frame.h).
 *
 * Every test owns its temp dirs (plugins, state, a private 0700 socket
 * directory) and shuts down in the documented order: jiwa_server_close,
 * jiwa_rt_stop, jiwa_server_free, both returning 0 (no leaked handle).
 * Helper threads never call cmocka: they count failures, the main thread
 * asserts on the counts. */
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <malloc.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#include <cmocka.h>

#include "../common/jt.h"
#include "jiwa/frame.h"
#include "jiwa_rt.h"
#include "jiwa_server.h"

#define WAIT_MS 20000 /* generous: sanitizer builds on a busy machine */
#define VERSION "9.9.9-test"

/* ---- time ------------------------------------------------------------------ */

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

/* ---- SIGPIPE -------------------------------------------------------------------- */

/* Our clients write with MSG_NOSIGNAL, so a SIGPIPE here was raised by the
 * server writing to a client that had gone: fatal to a process that does
 * not ignore it (jiwad does not). Counted, so the test fails instead of the
 * whole binary dying. */
static atomic_int g_sigpipes;

static void on_sigpipe(int sig) {
  (void)sig;
  atomic_fetch_add(&g_sigpipes, 1);
}

/* ---- a raw blocking client ------------------------------------------------------ */

typedef struct {
  int fd;
  uint8_t *buf;
  size_t len, cap;
} cli_t;

/* One received frame; the payload is owned, op is a C string. */
typedef struct {
  uint64_t id;
  char op[JIWA_FRAME_OP_MAX + 1];
  uint8_t *payload;
  size_t plen;
  const uint8_t *body;
  size_t body_len;
} fr_t;

enum { R_FRAME = 1, R_EOF = 0, R_TIMEOUT = -1, R_IOERR = -2, R_BADFRAME = -3 };

static int cli_open(cli_t *c, const char *path) {
  memset(c, 0, sizeof *c);
  c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c->fd < 0)
    return -errno;
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
  if (connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0) {
    int e = -errno;
    close(c->fd);
    c->fd = -1;
    return e;
  }
  return 0;
}

static void cli_close(cli_t *c) {
  if (c->fd >= 0)
    close(c->fd);
  c->fd = -1;
  free(c->buf);
  c->buf = NULL;
  c->len = c->cap = 0;
}

/* Write all of @p p; 0 or -errno. Never asserts (usable from threads). */
static int cli_write(cli_t *c, const void *p, size_t n) {
  const uint8_t *b = p;
  while (n > 0) {
    ssize_t k = send(c->fd, b, n, MSG_NOSIGNAL);
    if (k < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    b += k;
    n -= (size_t)k;
  }
  return 0;
}

/* Append one request frame to @p out. */
static void put_frame(jiwa_mp_writer_t *out, uint64_t id, const char *op,
                      const jiwa_mp_writer_t *body) {
  int rc = jiwa_frame_write(out, id, op, body ? body->sbuf.data : NULL,
                            body ? body->sbuf.size : 0);
  if (rc) {
    fprintf(stderr, "jiwa_frame_write(%s) failed: %s\n", op,
            jiwa_err_name(rc));
    abort();
  }
}

static int cli_send(cli_t *c, uint64_t id, const char *op,
                    const jiwa_mp_writer_t *body) {
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  put_frame(&w, id, op, body);
  int rc = cli_write(c, w.sbuf.data, w.sbuf.size);
  jiwa_mp_writer_free(&w);
  return rc;
}

static void fr_free(fr_t *f) {
  free(f->payload);
  memset(f, 0, sizeof *f);
}

/* Take one whole frame out of the buffer if there is one: R_FRAME, 0 (need
 * more) or R_BADFRAME. */
static int take_frame(cli_t *c, fr_t *f) {
  if (c->len < JIWA_FRAME_HDR)
    return 0;
  int64_t n = jiwa_frame_header(c->buf, 64u << 20);
  if (n < 0)
    return R_BADFRAME;
  if (c->len - JIWA_FRAME_HDR < (size_t)n)
    return 0;
  memset(f, 0, sizeof *f);
  f->payload = malloc((size_t)n);
  if (!f->payload)
    return R_BADFRAME;
  memcpy(f->payload, c->buf + JIWA_FRAME_HDR, (size_t)n);
  f->plen = (size_t)n;
  memmove(c->buf, c->buf + JIWA_FRAME_HDR + n,
          c->len - JIWA_FRAME_HDR - (size_t)n);
  c->len -= JIWA_FRAME_HDR + (size_t)n;
  jiwa_frame_t pf;
  char err[200];
  if (jiwa_frame_parse(f->payload, f->plen, &pf, err, sizeof err) != 0) {
    fprintf(stderr, "the server sent a bad frame: %s\n", err);
    fr_free(f);
    return R_BADFRAME;
  }
  f->id = pf.id;
  memcpy(f->op, pf.op, pf.op_len);
  f->op[pf.op_len] = '\0';
  f->body = pf.body;
  f->body_len = pf.body_len;
  return R_FRAME;
}

/* Read the next frame, waiting at most @p timeout_ms. Never asserts. */
static int cli_recv(cli_t *c, fr_t *f, int timeout_ms) {
  uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
  for (;;) {
    int rc = take_frame(c, f);
    if (rc != 0)
      return rc;
    uint64_t t = now_ms();
    if (t >= deadline)
      return R_TIMEOUT;
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    int pr = poll(&p, 1, (int)(deadline - t));
    if (pr < 0 && errno == EINTR)
      continue;
    if (pr < 0)
      return R_IOERR;
    if (pr == 0)
      return R_TIMEOUT;
    if (c->cap - c->len < 65536) {
      size_t cap = c->cap ? c->cap * 2 : 131072;
      uint8_t *nb = realloc(c->buf, cap);
      if (!nb)
        return R_IOERR;
      c->buf = nb;
      c->cap = cap;
    }
    ssize_t k = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
    if (k < 0 && errno == EINTR)
      continue;
    if (k < 0)
      return errno == ECONNRESET ? R_EOF : R_IOERR;
    if (k == 0)
      return c->len ? R_BADFRAME : R_EOF;
    c->len += (size_t)k;
  }
}

static const char *recv_what(int rc) {
  switch (rc) {
  case R_FRAME:
    return "a frame";
  case R_EOF:
    return "EOF";
  case R_TIMEOUT:
    return "a timeout";
  case R_IOERR:
    return "an I/O error";
  default:
    return "a malformed frame";
  }
}

/* Main thread: the next frame must arrive. */
static void recv_ok(cli_t *c, fr_t *f) {
  int rc = cli_recv(c, f, WAIT_MS);
  if (rc != R_FRAME)
    fail_msg("expected a frame, got %s", recv_what(rc));
}

/* Main thread: the server must close the connection (nothing else). */
static void expect_eof(cli_t *c) {
  fr_t f;
  int rc = cli_recv(c, &f, WAIT_MS);
  if (rc == R_FRAME) {
    fail_msg("expected EOF, got a frame id %llu op %s",
             (unsigned long long)f.id, f.op);
  }
  if (rc != R_EOF)
    fail_msg("expected EOF, got %s", recv_what(rc));
}

/* ---- frame bodies -------------------------------------------------------------- */

static int fr_int(const fr_t *f, const char *key, int64_t *v) {
  return jiwa_mp_get_int(f->body, f->body_len, key, v);
}

/* String field into @p dst (NUL-terminated, "" when absent). */
static int fr_str(const fr_t *f, const char *key, char *dst, size_t cap) {
  return jiwa_mp_get_strcpy(f->body, f->body_len, key, dst, cap);
}

static int64_t must_int(const fr_t *f, const char *key) {
  int64_t v = 0;
  int rc = fr_int(f, key, &v);
  if (rc)
    fail_msg("frame id %llu op %s: integer field '%s': %s",
             (unsigned long long)f->id, f->op, key, jiwa_err_name(rc));
  return v;
}

static void expect_reply(const fr_t *f, uint64_t id) {
  if (strcmp(f->op, "reply") != 0 || f->id != id) {
    char msg[600] = "";
    fr_str(f, "message", msg, sizeof msg);
    fail_msg("expected reply id %llu, got %s id %llu (%s)",
             (unsigned long long)id, f->op, (unsigned long long)f->id, msg);
  }
}

/* An error frame with this id, code, name and a message containing
 * @p needle. */
static void expect_error(const fr_t *f, uint64_t id, int code,
                         const char *needle) {
  assert_string_equal(f->op, "error");
  assert_int_equal(f->id, id);
  int64_t got = must_int(f, "code");
  if (got != code)
    fail_msg("expected error %s, got %s", jiwa_err_name(code),
             jiwa_err_name((int)got));
  char name[32], msg[700];
  assert_int_equal(fr_str(f, "name", name, sizeof name), 0);
  assert_string_equal(name, jiwa_err_name(code));
  assert_int_equal(fr_str(f, "message", msg, sizeof msg), 0);
  jt_assert_contains(msg, needle);
}

/* Send one request and return the next frame (for ops without deltas). */
static void call(cli_t *c, uint64_t id, const char *op,
                 const jiwa_mp_writer_t *body, fr_t *f) {
  assert_int_equal(cli_send(c, id, op, body), 0);
  recv_ok(c, f);
}

static void body_chat(jiwa_mp_writer_t *w, const char *text, int stream) {
  jiwa_mp_writer_init(w);
  msgpack_pack_map(&w->pk, stream ? 2 : 1);
  jiwa_mp_put_kv_str(&w->pk, "text", text);
  if (stream)
    jiwa_mp_put_kv_bool(&w->pk, "stream", 1);
}

/* ---- the fixture --------------------------------------------------------------- */

typedef struct {
  uint32_t idle_timeout_ms; /* 0 = default */
  uint32_t max_connections; /* 0 = default */
  uint32_t max_frame;       /* 0 = default */
  int64_t allow_uid;        /* 0 = none; else socket.allow_uids = {it} */
  int64_t echo_delay_ms;
} fx_opts_t;

typedef struct {
  char plugins[512], state[512], sockdir[512], path[600];
  jiwa_rt_t *rt;
  jiwa_server_t *srv;
  jiwa_server_opts_t so;
  int64_t allow[1];
} fx_t;

static void put_plugin(fx_t *fx, const char *name) {
  char from[600], to[700];
  jt_plugin_path(from, sizeof from, "JIWA_PLUGIN_OUT", name);
  snprintf(to, sizeof to, "%s/%s.so", fx->plugins, name);
  if (jt_copy(from, to) != 0)
    fail_msg("cannot copy %s to %s (is JIWA_PLUGIN_OUT set?)", from, to);
}

static int fx_setup(void **state) {
  const fx_opts_t *fo = *state;
  fx_t *fx = calloc(1, sizeof *fx);
  assert_non_null(fx);
  jt_tempdir(fx->plugins, sizeof fx->plugins, "sock-plugins");
  jt_tempdir(fx->state, sizeof fx->state, "sock-state");
  jt_tempdir(fx->sockdir, sizeof fx->sockdir, "sock"); /* 0700 */
  snprintf(fx->path, sizeof fx->path, "%s/jiwad.sock", fx->sockdir);
  put_plugin(fx, "echo");
  put_plugin(fx, "template");

  jiwa_rt_opts_t o;
  jiwa_rt_opts_default(&o);
  o.workers = 2;
  o.plugin_dir = fx->plugins;
  o.state_dir = fx->state;
  o.backoff_min_ms = 10;
  o.backoff_max_ms = 50;
  o.drain_timeout_ms = 5000;
  jt_logs_capture();
  atomic_store(&g_sigpipes, 0);
  assert_int_equal(jiwa_rt_new(&fx->rt, &o), 0);
  char err[512] = "";
  jiwa_mp_writer_t cfg;
  jiwa_mp_writer_init(&cfg);
  msgpack_pack_map(&cfg.pk, fo && fo->echo_delay_ms ? 1 : 0);
  if (fo && fo->echo_delay_ms)
    jiwa_mp_put_kv_int(&cfg.pk, "delay_ms", fo->echo_delay_ms);
  int rc = jiwa_rt_spawn_plugin(fx->rt, "echo", "echo", -1, cfg.sbuf.data,
                                cfg.sbuf.size, err, sizeof err);
  jiwa_mp_writer_free(&cfg);
  if (rc)
    fail_msg("spawning echo: %s: %s", jiwa_err_name(rc), err);

  jiwa_server_opts_default(&fx->so);
  fx->so.path = fx->path;
  fx->so.version = VERSION;
  if (fo && fo->idle_timeout_ms)
    fx->so.idle_timeout_ms = fo->idle_timeout_ms;
  if (fo && fo->max_connections)
    fx->so.max_connections = fo->max_connections;
  if (fo && fo->max_frame)
    fx->so.max_frame = fo->max_frame;
  if (fo && fo->allow_uid) {
    /* others need search permission on the directory, nothing more */
    assert_int_equal(chmod(fx->sockdir, 0711), 0);
    fx->allow[0] = fo->allow_uid;
    fx->so.allow_uids = fx->allow;
    fx->so.n_allow_uids = 1;
  }
  rc = jiwa_server_start(&fx->srv, fx->rt, &fx->so, err, sizeof err);
  if (rc)
    fail_msg("jiwa_server_start: %s: %s", jiwa_err_name(rc), err);
  *state = fx;
  return 0;
}

static int fx_teardown(void **state) {
  fx_t *fx = *state;
  /* the documented order: clients, then actors (finals), then the loop */
  jiwa_server_close(fx->srv);
  assert_int_equal(jiwa_rt_stop(fx->rt), 0);
  assert_int_equal(jiwa_server_free(fx->srv), 0);
  jiwa_rt_free(fx->rt);
  jiwa_log_set_sink(NULL, NULL);
  /* the socket file is gone */
  struct stat st;
  int gone = lstat(fx->path, &st) != 0 && errno == ENOENT;
  jt_rmtree(fx->plugins);
  jt_rmtree(fx->state);
  jt_rmtree(fx->sockdir);
  char path[600];
  snprintf(path, sizeof path, "%s", fx->path);
  free(fx);
  if (!gone)
    fail_msg("socket file %s still exists after jiwa_server_free", path);
  int pipes = atomic_load(&g_sigpipes);
  if (pipes)
    fail_msg("the server raised SIGPIPE %d time(s) writing to a client that "
             "had closed; a process that does not ignore SIGPIPE (jiwad) "
             "dies of it",
             pipes);
  return 0;
}

/* Connect and consume the hello. */
static void open_ok(fx_t *fx, cli_t *c) {
  int rc = cli_open(c, fx->path);
  if (rc)
    fail_msg("connect %s: %s", fx->path, strerror(-rc));
  fr_t f;
  recv_ok(c, &f);
  assert_string_equal(f.op, "hello");
  assert_int_equal(f.id, 0);
  fr_free(&f);
}

/* The server's counter @p key, read with the stats op on @p c. */
static int64_t server_stat(cli_t *c, uint64_t id, const char *key) {
  fr_t f;
  call(c, id, "stats", NULL, &f);
  expect_reply(&f, id);
  jiwa_mp_reader_t at;
  assert_int_equal(jiwa_mp_map_find(f.body, f.body_len, "server", &at), 0);
  int64_t v = -1;
  int rc = jiwa_mp_get_int(at.p, jiwa_mp_reader_left(&at), key, &v);
  if (rc)
    fail_msg("stats.server.%s: %s", key, jiwa_err_name(rc));
  fr_free(&f);
  return v;
}

/* Poll the counter until it satisfies @p want_at_least (or equals @p eq when
 * @p exact), within WAIT_MS; returns the last value. */
static int64_t wait_stat(cli_t *c, uint64_t *id, const char *key, int64_t v,
                         int exact) {
  uint64_t deadline = now_ms() + WAIT_MS;
  int64_t got;
  for (;;) {
    got = server_stat(c, (*id)++, key);
    if (exact ? got == v : got >= v)
      return got;
    if (now_ms() > deadline)
      return got;
    sleep_ms(10);
  }
}

/* Open a connection, send @p n raw bytes, and expect a connection-level
 * error @p code whose message contains @p msg, then EOF. */
static void raw_then_fatal(fx_t *fx, const void *bytes, size_t n, int code,
                           const char *msg) {
  cli_t c;
  open_ok(fx, &c);
  assert_int_equal(cli_write(&c, bytes, n), 0);
  fr_t f;
  recv_ok(&c, &f);
  expect_error(&f, 0, code, msg);
  fr_free(&f);
  expect_eof(&c);
  cli_close(&c);
}

static void health_ok(cli_t *c, uint64_t id) {
  fr_t f;
  call(c, id, "health", NULL, &f);
  expect_reply(&f, id);
  char status[32];
  assert_int_equal(fr_str(&f, "status", status, sizeof status), 0);
  assert_string_equal(status, "ok");
  fr_free(&f);
}

/* ---- hello and one round trip per op ------------------------------------------- */

static void test_hello(void **state) {
  fx_t *fx = *state;
  cli_t c;
  assert_int_equal(cli_open(&c, fx->path), 0);
  fr_t f;
  recv_ok(&c, &f);
  assert_string_equal(f.op, "hello");
  assert_int_equal(f.id, 0);
  assert_int_equal(must_int(&f, "proto"), JIWA_PROTO_VERSION);
  assert_int_equal(must_int(&f, "max_frame"), JIWA_FRAME_MAX_DEFAULT);
  char server[64];
  assert_int_equal(fr_str(&f, "server", server, sizeof server), 0);
  assert_string_equal(server, "jiwad " VERSION);
  /* ops: every op, in order */
  static const char *const want[] = {
      "health",        "stats",         "plugin.list",     "plugin.load",
      "plugin.reload", "plugin.unload", "chat",            "policy.reload",
      "policy.show",   "golden.*",      "knowledge.*",     "memory.*",
      "shadow.*",      "conversations.*", "job.*",         "clusters.*",
      "classify.*",    "store.check",   "store.backup"};
  jiwa_mp_reader_t at;
  assert_int_equal(jiwa_mp_map_find(f.body, f.body_len, "ops", &at), 0);
  jiwa_mp_item_t it;
  assert_int_equal(jiwa_mp_next(&at, &it), 0);
  assert_int_equal(it.type, JIWA_MP_ARRAY);
  assert_int_equal(it.v.count, sizeof want / sizeof *want);
  for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
    jiwa_mp_item_t s;
    assert_int_equal(jiwa_mp_next(&at, &s), 0);
    assert_int_equal(s.type, JIWA_MP_STR);
    char op[65];
    snprintf(op, sizeof op, "%.*s", (int)s.v.s.len, s.v.s.ptr);
    assert_string_equal(op, want[i]);
  }
  fr_free(&f);
  /* nothing else comes unasked */
  assert_int_equal(cli_recv(&c, &f, 100), R_TIMEOUT);
  cli_close(&c);
}

static void test_health_stats_list(void **state) {
  fx_t *fx = *state;
  cli_t c;
  open_ok(fx, &c);
  fr_t f;
  call(&c, 1, "health", NULL, &f);
  expect_reply(&f, 1);
  char s[64];
  assert_int_equal(fr_str(&f, "status", s, sizeof s), 0);
  assert_string_equal(s, "ok");
  assert_int_equal(fr_str(&f, "version", s, sizeof s), 0);
  assert_string_equal(s, VERSION);
  assert_int_equal(must_int(&f, "proto"), JIWA_PROTO_VERSION);
  assert_int_equal(must_int(&f, "workers"), 2);
  assert_int_equal(must_int(&f, "actors"), 1);
  assert_true(must_int(&f, "uptime_ms") >= 0);
  fr_free(&f);

  call(&c, 2, "stats", NULL, &f);
  expect_reply(&f, 2);
  jiwa_mp_reader_t at;
  assert_int_equal(jiwa_mp_map_find(f.body, f.body_len, "runtime", &at), 0);
  assert_int_equal(jiwa_mp_map_find(f.body, f.body_len, "server", &at), 0);
  static const char *const keys[] = {
      "connections", "connections_total", "peers_rejected",
      "busy_rejected", "frames_in",        "frames_out",
      "bad_frames",  "backpressure_pauses", "idle_timeouts"};
  const uint8_t *srv = at.p;
  size_t srvlen = jiwa_mp_reader_left(&at);
  for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
    int64_t v = -1;
    int rc = jiwa_mp_get_int(srv, srvlen, keys[i], &v);
    if (rc)
      fail_msg("stats.server.%s: %s", keys[i], jiwa_err_name(rc));
    assert_true(v >= 0);
  }
  int64_t v;
  assert_int_equal(jiwa_mp_get_int(srv, srvlen, "connections", &v), 0);
  assert_int_equal(v, 1);
  assert_int_equal(jiwa_mp_get_int(srv, srvlen, "frames_in", &v), 0);
  assert_int_equal(v, 2); /* health, stats */
  assert_int_equal(jiwa_mp_map_find(srv, srvlen, "requests", &at), 0);
  fr_free(&f);

  call(&c, 3, "plugin.list", NULL, &f);
  expect_reply(&f, 3);
  assert_int_equal(jiwa_mp_map_find(f.body, f.body_len, "actors", &at), 0);
  jiwa_mp_item_t it;
  assert_int_equal(jiwa_mp_next(&at, &it), 0);
  assert_int_equal(it.type, JIWA_MP_ARRAY);
  assert_int_equal(it.v.count, 1);
  const uint8_t *a0 = at.p;
  assert_int_equal(jiwa_mp_skip(&at), 0);
  size_t a0len = (size_t)(at.p - a0);
  assert_int_equal(jiwa_mp_get_strcpy(a0, a0len, "name", s, sizeof s), 0);
  assert_string_equal(s, "echo");
  assert_int_equal(jiwa_mp_get_strcpy(a0, a0len, "plugin", s, sizeof s), 0);
  assert_string_equal(s, "echo");
  assert_int_equal(jiwa_mp_get_strcpy(a0, a0len, "state", s, sizeof s), 0);
  assert_string_equal(s, "running");
  fr_free(&f);
  cli_close(&c);
}

/* Find actor @p name in a plugin.list reply; its generation or -1. */
static int64_t listed_generation(cli_t *c, uint64_t id, const char *name) {
  fr_t f;
  call(c, id, "plugin.list", NULL, &f);
  expect_reply(&f, id);
  jiwa_mp_reader_t at;
  assert_int_equal(jiwa_mp_map_find(f.body, f.body_len, "actors", &at), 0);
  jiwa_mp_item_t it;
  assert_int_equal(jiwa_mp_next(&at, &it), 0);
  assert_int_equal(it.type, JIWA_MP_ARRAY);
  int64_t gen = -1;
  for (uint32_t i = 0; i < it.v.count; i++) {
    const uint8_t *p = at.p;
    assert_int_equal(jiwa_mp_skip(&at), 0);
    size_t n = (size_t)(at.p - p);
    char nm[64];
    if (jiwa_mp_get_strcpy(p, n, "name", nm, sizeof nm) == 0 &&
        strcmp(nm, name) == 0)
      assert_int_equal(jiwa_mp_get_int(p, n, "generation", &gen), 0);
  }
  fr_free(&f);
  return gen;
}

static void test_plugin_ops(void **state) {
  fx_t *fx = *state;
  cli_t c;
  open_ok(fx, &c);
  uint64_t id = 1;
  fr_t f;
  char s[128];

  /* load template with a config */
  jiwa_mp_writer_t b;
  jiwa_mp_writer_init(&b);
  msgpack_pack_map(&b.pk, 4);
  jiwa_mp_put_kv_str(&b.pk, "name", "tpl");
  jiwa_mp_put_kv_str(&b.pk, "plugin", "template");
  jiwa_mp_put_kv_int(&b.pk, "worker", 1);
  jiwa_mp_put_str(&b.pk, "config");
  msgpack_pack_map(&b.pk, 1);
  jiwa_mp_put_kv_str(&b.pk, "prefix", "selamat pagi");
  call(&c, id, "plugin.load", &b, &f);
  jiwa_mp_writer_free(&b);
  expect_reply(&f, id++);
  assert_int_equal(fr_str(&f, "name", s, sizeof s), 0);
  assert_string_equal(s, "tpl");
  assert_int_equal(fr_str(&f, "plugin", s, sizeof s), 0);
  assert_string_equal(s, "template");
  assert_int_equal(fr_str(&f, "version", s, sizeof s), 0);
  assert_string_equal(s, "1.0.0");
  assert_int_equal(fr_str(&f, "state", s, sizeof s), 0);
  assert_string_equal(s, "running");
  assert_int_equal(must_int(&f, "worker"), 1);
  int64_t gen0 = must_int(&f, "generation");
  fr_free(&f);
  assert_int_equal(listed_generation(&c, id++, "tpl"), gen0);

  /* the same name again: refused, the first keeps running */
  jiwa_mp_writer_init(&b);
  msgpack_pack_map(&b.pk, 2);
  jiwa_mp_put_kv_str(&b.pk, "name", "tpl");
  jiwa_mp_put_kv_str(&b.pk, "plugin", "template");
  call(&c, id, "plugin.load", &b, &f);
  jiwa_mp_writer_free(&b);
  expect_error(&f, id++, JIWA_EEXIST, "tpl");
  fr_free(&f);

  /* a plugin that is not there */
  jiwa_mp_writer_init(&b);
  msgpack_pack_map(&b.pk, 2);
  jiwa_mp_put_kv_str(&b.pk, "name", "hantu");
  jiwa_mp_put_kv_str(&b.pk, "plugin", "ghost");
  call(&c, id, "plugin.load", &b, &f);
  jiwa_mp_writer_free(&b);
  expect_error(&f, id++, JIWA_ENOENT, "plugin 'ghost' not found");
  fr_free(&f);

  /* a config the plugin does not accept */
  jiwa_mp_writer_init(&b);
  msgpack_pack_map(&b.pk, 3);
  jiwa_mp_put_kv_str(&b.pk, "name", "tpl2");
  jiwa_mp_put_kv_str(&b.pk, "plugin", "template");
  jiwa_mp_put_str(&b.pk, "config");
  msgpack_pack_map(&b.pk, 1);
  jiwa_mp_put_kv_int(&b.pk, "no_such_setting", 1);
  call(&c, id, "plugin.load", &b, &f);
  jiwa_mp_writer_free(&b);
  expect_error(&f, id++, JIWA_ECONFIG, "no_such_setting");
  fr_free(&f);

  /* a second echo, round robin */
  jiwa_mp_writer_init(&b);
  msgpack_pack_map(&b.pk, 2);
  jiwa_mp_put_kv_str(&b.pk, "name", "echo2");
  jiwa_mp_put_kv_str(&b.pk, "plugin", "echo");
  call(&c, id, "plugin.load", &b, &f);
  jiwa_mp_writer_free(&b);
  expect_reply(&f, id++);
  fr_free(&f);

  /* reload: a new generation of the same version */
  jt_body_str(&b, "name", "tpl");
  call(&c, id, "plugin.reload", &b, &f);
  jiwa_mp_writer_free(&b);
  expect_reply(&f, id++);
  assert_int_equal(fr_str(&f, "name", s, sizeof s), 0);
  assert_string_equal(s, "tpl");
  int64_t gen1 = must_int(&f, "generation");
  if (gen1 <= gen0)
    fail_msg("generation after reload %lld, before %lld", (long long)gen1,
             (long long)gen0);
  fr_free(&f);
  jt_body_str(&b, "name", "echo");
  call(&c, id, "plugin.reload", &b, &f);
  jiwa_mp_writer_free(&b);
  expect_reply(&f, id++);
  fr_free(&f);
  /* chat still answered by the reloaded echo */
  body_chat(&b, "lagi", 0);
  call(&c, id, "chat", &b, &f);
  jiwa_mp_writer_free(&b);
  expect_reply(&f, id++);
  assert_int_equal(fr_str(&f, "text", s, sizeof s), 0);
  assert_string_equal(s, "halo, lagi");
  fr_free(&f);

  /* reload / unload of unknown names */
  jt_body_str(&b, "name", "nobody");
  call(&c, id, "plugin.reload", &b, &f);
  expect_error(&f, id++, JIWA_ENOENT, "plugin.reload: no actor named 'nobody'");
  fr_free(&f);
  call(&c, id, "plugin.unload", &b, &f);
  jiwa_mp_writer_free(&b);
  expect_error(&f, id++, JIWA_ENOENT, "nobody");
  fr_free(&f);

  /* unload: gone from the list, its name free again */
  jt_body_str(&b, "name", "tpl");
  call(&c, id, "plugin.unload", &b, &f);
  expect_reply(&f, id++);
  assert_int_equal(fr_str(&f, "name", s, sizeof s), 0);
  assert_string_equal(s, "tpl");
  fr_free(&f);
  assert_int_equal(listed_generation(&c, id++, "tpl"), -1);
  call(&c, id, "plugin.reload", &b, &f);
  jiwa_mp_writer_free(&b);
  expect_error(&f, id++, JIWA_ENOENT, "no actor named 'tpl'");
  fr_free(&f);
  jiwa_mp_writer_init(&b);
  msgpack_pack_map(&b.pk, 2);
  jiwa_mp_put_kv_str(&b.pk, "name", "tpl");
  jiwa_mp_put_kv_str(&b.pk, "plugin", "template");
  call(&c, id, "plugin.load", &b, &f);
  jiwa_mp_writer_free(&b);
  expect_reply(&f, id++);
  fr_free(&f);

  health_ok(&c, id++);

  /* without its actor the chat route answers ENOENT, saying which */
  jt_body_str(&b, "name", "echo");
  call(&c, id, "plugin.unload", &b, &f);
  jiwa_mp_writer_free(&b);
  expect_reply(&f, id++);
  fr_free(&f);
  body_chat(&b, "ada orang?", 0);
  call(&c, id, "chat", &b, &f);
  jiwa_mp_writer_free(&b);
  expect_error(&f, id++, JIWA_ENOENT,
               "chat: the chat route's actor 'echo' does not exist; check "
               "chat.actor in the config");
  fr_free(&f);
  /* the routed requests went through the requests histogram */
  fr_t st;
  call(&c, id, "stats", NULL, &st);
  expect_reply(&st, id++);
  jiwa_mp_reader_t at;
  assert_int_equal(jiwa_mp_map_find(st.body, st.body_len, "server", &at), 0);
  assert_int_equal(jiwa_mp_map_find(at.p, jiwa_mp_reader_left(&at),
                                    "requests", &at),
                   0);
  int64_t count = 0;
  assert_int_equal(
      jiwa_mp_get_int(at.p, jiwa_mp_reader_left(&at), "count", &count), 0);
  assert_true(count >= 8);
  fr_free(&st);
  cli_close(&c);
}

/* plugin.load's worker must name an existing worker: out of range is an
 * error, not silently another worker (an int64 truncated to int). */
static void test_load_worker_out_of_range(void **state) {
  fx_t *fx = *state;
  cli_t c;
  open_ok(fx, &c);
  static const int64_t bad[] = {2, 99, 4294967297LL, 2147483648LL,
                                INT64_MAX};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    jiwa_mp_writer_t b;
    jiwa_mp_writer_init(&b);
    msgpack_pack_map(&b.pk, 3);
    jiwa_mp_put_kv_str(&b.pk, "name", "tpl");
    jiwa_mp_put_kv_str(&b.pk, "plugin", "template");
    jiwa_mp_put_kv_int(&b.pk, "worker", bad[i]);
    fr_t f;
    call(&c, i + 1, "plugin.load", &b, &f);
    jiwa_mp_writer_free(&b);
    if (strcmp(f.op, "error") != 0) {
      int64_t w = -1;
      fr_int(&f, "worker", &w);
      char op[JIWA_FRAME_OP_MAX + 1];
      snprintf(op, sizeof op, "%s", f.op);
      fr_free(&f);
      cli_close(&c);
      fail_msg("plugin.load with worker %lld: got %s (placed on worker "
               "%lld), want an error (there are 2 workers)",
               (long long)bad[i], op, (long long)w);
    }
    char msg[400];
    assert_int_equal(fr_str(&f, "message", msg, sizeof msg), 0);
    jt_assert_contains(msg, "worker");
    fr_free(&f);
  }
  assert_int_equal(listed_generation(&c, 100, "tpl"), -1);
  cli_close(&c);
}

/* ---- chat ------------------------------------------------------------------------- */

static void test_chat(void **state) {
  fx_t *fx = *state;
  cli_t c;
  open_ok(fx, &c);
  fr_t f;
  char s[256];
  jiwa_mp_writer_t b;
  body_chat(&b, "apa kabar", 0);
  call(&c, 1, "chat", &b, &f);
  jiwa_mp_writer_free(&b);
  expect_reply(&f, 1);
  assert_int_equal(fr_str(&f, "text", s, sizeof s), 0);
  assert_string_equal(s, "halo, apa kabar");
  assert_int_equal(must_int(&f, "served"), 1);
  fr_free(&f);

  /* with user and session */
  jiwa_mp_writer_init(&b);
  msgpack_pack_map(&b.pk, 3);
  jiwa_mp_put_kv_str(&b.pk, "text", "baik");
  jiwa_mp_put_kv_str(&b.pk, "user", "budi");
  jiwa_mp_put_kv_str(&b.pk, "session", "s-1");
  call(&c, 2, "chat", &b, &f);
  jiwa_mp_writer_free(&b);
  expect_reply(&f, 2);
  assert_int_equal(fr_str(&f, "text", s, sizeof s), 0);
  assert_string_equal(s, "halo, baik");
  assert_int_equal(must_int(&f, "served"), 2);
  fr_free(&f);

  /* stream: false is a plain reply */
  jiwa_mp_writer_init(&b);
  msgpack_pack_map(&b.pk, 2);
  jiwa_mp_put_kv_str(&b.pk, "text", "x y");
  jiwa_mp_put_kv_bool(&b.pk, "stream", 0);
  call(&c, 3, "chat", &b, &f);
  jiwa_mp_writer_free(&b);
  expect_reply(&f, 3);
  fr_free(&f);

  /* the largest text accepted, then one byte more */
  char *big = malloc(65537);
  memset(big, 'a', 65536);
  big[65536] = '\0';
  body_chat(&b, big, 0);
  call(&c, 4, "chat", &b, &f);
  jiwa_mp_writer_free(&b);
  expect_reply(&f, 4);
  fr_free(&f);
  big[65536] = 'a';
  jiwa_mp_writer_init(&b);
  msgpack_pack_map(&b.pk, 1);
  jiwa_mp_put_str(&b.pk, "text");
  msgpack_pack_str(&b.pk, 65537);
  msgpack_pack_str_body(&b.pk, big, 65537);
  call(&c, 5, "chat", &b, &f);
  jiwa_mp_writer_free(&b);
  expect_error(&f, 5, JIWA_EINVAL,
               "chat: field 'text' must be a string of 1 to 65536 bytes");
  fr_free(&f);
  free(big);
  cli_close(&c);
}

/* The chat fields beyond text: lang, explain, attrs (a map of at most
 * 4 KiB); wrong ones are named. */
static void test_chat_fields(void **state) {
  fx_t *fx = *state;
  cli_t c;
  open_ok(fx, &c);
  fr_t f;
  jiwa_mp_writer_t b;
  jiwa_mp_writer_init(&b);
  msgpack_pack_map(&b.pk, 4);
  jiwa_mp_put_kv_str(&b.pk, "text", "halo");
  jiwa_mp_put_kv_str(&b.pk, "lang", "id");
  jiwa_mp_put_kv_bool(&b.pk, "explain", 1);
  jiwa_mp_put_str(&b.pk, "attrs");
  msgpack_pack_map(&b.pk, 1);
  jiwa_mp_put_kv_bool(&b.pk, "team", 1);
  call(&c, 1, "chat", &b, &f);
  jiwa_mp_writer_free(&b);
  expect_reply(&f, 1);
  fr_free(&f);

  jiwa_mp_writer_init(&b);
  msgpack_pack_map(&b.pk, 2);
  jiwa_mp_put_kv_str(&b.pk, "text", "halo");
  jiwa_mp_put_kv_str(&b.pk, "attrs", "team");
  call(&c, 2, "chat", &b, &f);
  jiwa_mp_writer_free(&b);
  expect_error(&f, 2, JIWA_EINVAL, "field 'attrs' must be a map");
  fr_free(&f);

  jiwa_mp_writer_init(&b);
  msgpack_pack_map(&b.pk, 2);
  jiwa_mp_put_kv_str(&b.pk, "text", "halo");
  jiwa_mp_put_kv_str(&b.pk, "lang", "indonesian-of-bali-x");
  call(&c, 3, "chat", &b, &f);
  jiwa_mp_writer_free(&b);
  expect_error(&f, 3, JIWA_EINVAL, "field 'lang' must be a string of 2 to 16");
  fr_free(&f);

  jiwa_mp_writer_init(&b);
  msgpack_pack_map(&b.pk, 2);
  jiwa_mp_put_kv_str(&b.pk, "text", "halo");
  jiwa_mp_put_kv_str(&b.pk, "explain", "yes");
  call(&c, 4, "chat", &b, &f);
  jiwa_mp_writer_free(&b);
  expect_error(&f, 4, JIWA_EINVAL, "field 'explain' must be a boolean");
  fr_free(&f);
  cli_close(&c);
}

/* Ops served by plugins go to the actor their prefix names, body
 * unchanged; without that actor the error says which one to add. */
static void test_forwarded_ops(void **state) {
  fx_t *fx = *state;
  cli_t c;
  open_ok(fx, &c);
  fr_t f;
  jiwa_mp_writer_t b;
  body_chat(&b, "list", 0);
  call(&c, 1, "golden.list", &b, &f);
  expect_error(&f, 1, JIWA_ENOENT,
               "golden.list is served by the actor 'golden_cache', which is "
               "not running");
  fr_free(&f);
  char err[512];
  assert_int_equal(jiwa_rt_spawn_plugin(fx->rt, "golden_cache", "echo", -1,
                                        NULL, 0, err, sizeof err),
                   0);
  call(&c, 2, "golden.list", &b, &f);
  expect_reply(&f, 2);
  char s[128];
  assert_int_equal(fr_str(&f, "text", s, sizeof s), 0);
  jt_assert_contains(s, "list");
  fr_free(&f);
  call(&c, 3, "golden.LIST", &b, &f);
  expect_error(&f, 3, JIWA_EINVAL, "op names are made of a-z");
  fr_free(&f);
  jiwa_mp_writer_free(&b);
  cli_close(&c);
}

static void test_chat_stream(void **state) {
  fx_t *fx = *state;
  cli_t c;
  open_ok(fx, &c);
  jiwa_mp_writer_t b;
  body_chat(&b, "satu dua tiga empat", 1);
  assert_int_equal(cli_send(&c, 9, "chat", &b), 0);
  jiwa_mp_writer_free(&b);
  /* then a health right behind it on the same connection */
  assert_int_equal(cli_send(&c, 10, "health", NULL), 0);
  static const char *const want[] = {"halo, ", "satu ", "dua ", "tiga ",
                                     "empat"};
  size_t ndelta = 0;
  int finals = 0, health = 0;
  char joined[256] = "";
  while (finals == 0 || health == 0) {
    fr_t f;
    recv_ok(&c, &f);
    char s[256];
    if (f.id == 10) {
      expect_reply(&f, 10);
      health++;
    } else if (strcmp(f.op, "delta") == 0) {
      assert_int_equal(f.id, 9);
      assert_int_equal(finals, 0); /* no delta after the final */
      assert_true(ndelta < sizeof want / sizeof *want);
      assert_int_equal(fr_str(&f, "text", s, sizeof s), 0);
      assert_string_equal(s, want[ndelta]);
      strcat(joined, s);
      ndelta++;
    } else {
      expect_reply(&f, 9);
      assert_int_equal(fr_str(&f, "text", s, sizeof s), 0);
      assert_string_equal(s, "halo, satu dua tiga empat");
      assert_string_equal(s, joined);
      assert_true(must_int(&f, "served") >= 1);
      finals++;
    }
    fr_free(&f);
  }
  assert_int_equal(ndelta, sizeof want / sizeof *want);
  assert_int_equal(finals, 1);
  /* exactly one final: nothing more for id 9 */
  fr_t f;
  assert_int_equal(cli_recv(&c, &f, 200), R_TIMEOUT);
  cli_close(&c);
}

/* 100 chats (every third one streamed) written before reading anything:
 * each id gets its deltas in order and then exactly one final. */
static void test_concurrent_on_one_connection(void **state) {
  fx_t *fx = *state;
  cli_t c;
  open_ok(fx, &c);
  enum { N = 100 };
  jiwa_mp_writer_t all;
  jiwa_mp_writer_init(&all);
  for (int i = 1; i <= N; i++) {
    char text[64];
    snprintf(text, sizeof text, "pesan nomor %d", i);
    jiwa_mp_writer_t b;
    body_chat(&b, text, i % 3 == 0);
    put_frame(&all, (uint64_t)i, "chat", &b);
    jiwa_mp_writer_free(&b);
  }
  assert_int_equal(cli_write(&c, all.sbuf.data, all.sbuf.size), 0);
  jiwa_mp_writer_free(&all);

  int finals[N + 1] = {0};
  char joined[N + 1][128];
  memset(joined, 0, sizeof joined);
  int done = 0;
  while (done < N) {
    fr_t f;
    recv_ok(&c, &f);
    if (f.id < 1 || f.id > N)
      fail_msg("frame with unexpected id %llu op %s",
               (unsigned long long)f.id, f.op);
    int i = (int)f.id;
    char s[128], want[128];
    snprintf(want, sizeof want, "halo, pesan nomor %d", i);
    if (finals[i])
      fail_msg("id %d: frame %s after its final", i, f.op);
    assert_int_equal(fr_str(&f, "text", s, sizeof s), 0);
    if (strcmp(f.op, "delta") == 0) {
      assert_true(i % 3 == 0);
      strcat(joined[i], s);
      jt_assert_contains(want, joined[i]); /* a prefix, in order */
    } else {
      expect_reply(&f, (uint64_t)i);
      assert_string_equal(s, want);
      if (i % 3 == 0)
        assert_string_equal(joined[i], want);
      finals[i] = 1;
      done++;
    }
    fr_free(&f);
  }
  for (int i = 1; i <= N; i++)
    assert_int_equal(finals[i], 1);
  fr_t f;
  assert_int_equal(cli_recv(&c, &f, 200), R_TIMEOUT);
  cli_close(&c);
}

/* ---- errors --------------------------------------------------------------------------- */

/* @p body_fn packs one request body; the answer is error @p code with
 * @p needle in its message, and the connection keeps working. */
static void bad_request(cli_t *c, uint64_t *id, const char *op,
                        const jiwa_mp_writer_t *b, int code,
                        const char *needle) {
  fr_t f;
  call(c, *id, op, b, &f);
  expect_error(&f, *id, code, needle);
  fr_free(&f);
  (*id)++;
  health_ok(c, (*id)++);
}

static void test_request_errors(void **state) {
  fx_t *fx = *state;
  cli_t c;
  open_ok(fx, &c);
  uint64_t id = 1;
  jiwa_mp_writer_t b;

  bad_request(&c, &id, "nope", NULL, JIWA_ENOTSUP,
              "unknown op 'nope'; ops are: health, stats, plugin.list, "
              "plugin.load, plugin.reload, plugin.unload, chat, policy.reload, "
              "policy.show, and those served by plugins: golden.*");
  /* an op of the maximum length is still just unknown */
  char longop[JIWA_FRAME_OP_MAX + 1];
  memset(longop, 'o', JIWA_FRAME_OP_MAX);
  longop[JIWA_FRAME_OP_MAX] = '\0';
  bad_request(&c, &id, longop, NULL, JIWA_ENOTSUP, "unknown op 'ooo");

  /* chat */
  bad_request(&c, &id, "chat", NULL, JIWA_EINVAL,
              "chat: field 'text' is missing; send {\"text\": \"...\"}");
  jiwa_mp_writer_init(&b);
  msgpack_pack_map(&b.pk, 1);
  jiwa_mp_put_kv_int(&b.pk, "text", 42);
  bad_request(&c, &id, "chat", &b, JIWA_EINVAL,
              "chat: field 'text' must be a string of 1 to 65536 bytes");
  jiwa_mp_writer_free(&b);
  jt_body_str(&b, "text", "");
  bad_request(&c, &id, "chat", &b, JIWA_EINVAL,
              "chat: field 'text' must be a string of 1 to 65536 bytes");
  jiwa_mp_writer_free(&b);
  jiwa_mp_writer_init(&b);
  msgpack_pack_map(&b.pk, 2);
  jiwa_mp_put_kv_str(&b.pk, "text", "hai");
  jiwa_mp_put_kv_int(&b.pk, "user", 7);
  bad_request(&c, &id, "chat", &b, JIWA_EINVAL,
              "chat: field 'user' must be a string of 1 to 128 bytes");
  jiwa_mp_writer_free(&b);
  jiwa_mp_writer_init(&b);
  msgpack_pack_map(&b.pk, 2);
  jiwa_mp_put_kv_str(&b.pk, "text", "hai");
  char longsess[130];
  memset(longsess, 's', 129);
  longsess[129] = '\0';
  jiwa_mp_put_kv_str(&b.pk, "session", longsess);
  bad_request(&c, &id, "chat", &b, JIWA_EINVAL,
              "chat: field 'session' must be a string of 1 to 128 bytes");
  jiwa_mp_writer_free(&b);
  jiwa_mp_writer_init(&b);
  msgpack_pack_map(&b.pk, 2);
  jiwa_mp_put_kv_str(&b.pk, "text", "hai");
  jiwa_mp_put_kv_str(&b.pk, "stream", "yes");
  bad_request(&c, &id, "chat", &b, JIWA_EINVAL,
              "chat: field 'stream' must be a boolean");
  jiwa_mp_writer_free(&b);

  /* plugin.* */
  bad_request(&c, &id, "plugin.reload", NULL, JIWA_EINVAL,
              "plugin.reload: field 'name' is missing; names are 1-63 "
              "characters of a-z, 0-9, '_' and '-'");
  jiwa_mp_writer_init(&b);
  msgpack_pack_map(&b.pk, 1);
  jiwa_mp_put_kv_int(&b.pk, "name", 1);
  bad_request(&c, &id, "plugin.unload", &b, JIWA_EINVAL,
              "plugin.unload: field 'name' must be a string");
  jiwa_mp_writer_free(&b);
  jt_body_str(&b, "name", "Bad Name!");
  bad_request(&c, &id, "plugin.reload", &b, JIWA_EINVAL,
              "plugin.reload: field 'name' is not a valid name");
  jiwa_mp_writer_free(&b);
  char longname[80];
  memset(longname, 'n', 79);
  longname[79] = '\0';
  jt_body_str(&b, "name", longname);
  bad_request(&c, &id, "plugin.reload", &b, JIWA_EINVAL,
              "field 'name' is not a valid name");
  jiwa_mp_writer_free(&b);
  jt_body_str(&b, "name", "x");
  bad_request(&c, &id, "plugin.load", &b, JIWA_EINVAL,
              "plugin.load: field 'plugin' is missing");
  jiwa_mp_writer_free(&b);
  jiwa_mp_writer_init(&b);
  msgpack_pack_map(&b.pk, 3);
  jiwa_mp_put_kv_str(&b.pk, "name", "x");
  jiwa_mp_put_kv_str(&b.pk, "plugin", "echo");
  jiwa_mp_put_kv_str(&b.pk, "worker", "0");
  bad_request(&c, &id, "plugin.load", &b, JIWA_EINVAL,
              "plugin.load: field 'worker' must be an integer");
  jiwa_mp_writer_free(&b);
  jiwa_mp_writer_init(&b);
  msgpack_pack_map(&b.pk, 3);
  jiwa_mp_put_kv_str(&b.pk, "name", "x");
  jiwa_mp_put_kv_str(&b.pk, "plugin", "echo");
  jiwa_mp_put_kv_int(&b.pk, "config", 3);
  bad_request(&c, &id, "plugin.load", &b, JIWA_EINVAL,
              "plugin.load: field 'config' must be a map of the plugin's "
              "settings (see jiwad --plugin-help echo)");
  jiwa_mp_writer_free(&b);

  /* id 0 is the server's */
  fr_t f;
  call(&c, 0, "health", NULL, &f);
  expect_error(&f, 0, JIWA_EINVAL,
               "request id 0 is reserved for the server; number requests "
               "from 1");
  fr_free(&f);
  health_ok(&c, id++);
  /* ids are per request, not increasing: an old id is fine once done */
  health_ok(&c, 1);
  health_ok(&c, UINT64_MAX);
  cli_close(&c);
}

/* An unknown op is named in the error, but its bytes are the client's:
 * control bytes and invalid UTF-8 must not come back raw in the message
 * string (clients print it, or decode it as UTF-8). */
static void test_unknown_op_shown_safely(void **state) {
  fx_t *fx = *state;
  cli_t c;
  open_ok(fx, &c);
  fr_t f;
  call(&c, 1, "bad\nop\x1b[2J\xff", NULL, &f);
  assert_string_equal(f.op, "error");
  char msg[600];
  assert_int_equal(fr_str(&f, "message", msg, sizeof msg), 0);
  fr_free(&f);
  health_ok(&c, 2);
  cli_close(&c);
  jt_assert_contains(msg, "unknown op '");
  for (const char *p = msg; *p; p++)
    if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
      fail_msg("message has raw byte 0x%02x at %d: the op is echoed "
               "unescaped",
               (unsigned char)*p, (int)(p - msg));
}

/* A second request with the id of one still in flight is refused; the
 * first still gets its (one) reply. Needs a slow echo. */
static void test_duplicate_id(void **state) {
  fx_t *fx = *state;
  cli_t c;
  open_ok(fx, &c);
  jiwa_mp_writer_t b, two;
  body_chat(&b, "pertama", 0);
  jiwa_mp_writer_init(&two);
  put_frame(&two, 7, "chat", &b);
  jiwa_mp_writer_free(&b);
  body_chat(&b, "kedua", 0);
  put_frame(&two, 7, "chat", &b);
  jiwa_mp_writer_free(&b);
  assert_int_equal(cli_write(&c, two.sbuf.data, two.sbuf.size), 0);
  jiwa_mp_writer_free(&two);

  /* the refusal comes at once, before the slow reply */
  fr_t f;
  recv_ok(&c, &f);
  assert_string_equal(f.op, "error");
  /* The refusal carries id 0: id 7 must keep exactly one final, the
   * reply of the request that is really in flight. */
  assert_int_equal(f.id, 0);
  expect_error(&f, f.id, JIWA_EINVAL,
               "request id 7 is already in flight on this connection; use a "
               "new id per request");
  fr_free(&f);
  recv_ok(&c, &f);
  expect_reply(&f, 7);
  char s[64];
  assert_int_equal(fr_str(&f, "text", s, sizeof s), 0);
  assert_string_equal(s, "halo, pertama");
  fr_free(&f);
  /* done, so 7 may be used again */
  body_chat(&b, "ketiga", 0);
  call(&c, 7, "chat", &b, &f);
  jiwa_mp_writer_free(&b);
  expect_reply(&f, 7);
  assert_int_equal(fr_str(&f, "text", s, sizeof s), 0);
  assert_string_equal(s, "halo, ketiga");
  fr_free(&f);
  assert_int_equal(cli_recv(&c, &f, 200), R_TIMEOUT);
  cli_close(&c);
}

/* Write a raw frame: 4-byte length + @p payload. */
/* A client that half-closes after its request still gets the answer (the
 * echo actor here is slow), then EOF. */
static void test_half_close_gets_replies(void **state) {
  fx_t *fx = *state;
  cli_t c;
  open_ok(fx, &c);
  jiwa_mp_writer_t b;
  body_chat(&b, "sampai jumpa", 0);
  assert_int_equal(cli_send(&c, 3, "chat", &b), 0);
  jiwa_mp_writer_free(&b);
  assert_int_equal(shutdown(c.fd, SHUT_WR), 0);
  fr_t f;
  recv_ok(&c, &f);
  expect_reply(&f, 3);
  char s[64];
  assert_int_equal(fr_str(&f, "text", s, sizeof s), 0);
  assert_string_equal(s, "halo, sampai jumpa");
  fr_free(&f);
  expect_eof(&c);
  cli_close(&c);
}

static void send_raw_frame(cli_t *c, const void *payload, size_t n) {
  uint8_t *p = malloc(n + 4);
  assert_non_null(p);
  p[0] = (uint8_t)(n >> 24);
  p[1] = (uint8_t)(n >> 16);
  p[2] = (uint8_t)(n >> 8);
  p[3] = (uint8_t)n;
  memcpy(p + 4, payload, n);
  assert_int_equal(cli_write(c, p, n + 4), 0);
  free(p);
}

/* A payload that is not a frame: EPROTO on id 0, the connection stays. */
static void bad_frame(cli_t *c, uint64_t *id, const void *payload, size_t n,
                      const char *needle) {
  send_raw_frame(c, payload, n);
  fr_t f;
  recv_ok(c, &f);
  expect_error(&f, 0, JIWA_EPROTO, needle);
  fr_free(&f);
  health_ok(c, (*id)++);
}

static void test_garbage_frames(void **state) {
  fx_t *fx = *state;
  cli_t c;
  open_ok(fx, &c);
  uint64_t id = 1;
#define BAD(lit, needle) bad_frame(&c, &id, lit, sizeof(lit) - 1, needle)
  BAD("\xc1\xc1\xc1", "frame: not well-formed msgpack");
  BAD("GET / HTTP/1.1\r\n\r\n",
      "frame: 17 byte(s) after the map; a frame holds exactly one map");
  BAD("\x93\x01\x02\x03", "frame: expected a map {id, op, body}");
  BAD("\x82\xa2id\x01\xa2op", "frame: not well-formed msgpack");
  BAD("\x81\xa2id\x01", "frame: field 'op' missing");
  BAD("\x81\xa2op\xa6health", "frame: field 'id' missing");
  BAD("\x82\xa2id\xff\xa2op\xa6health",
      "frame: 'id' must be an unsigned integer");
  BAD("\x82\xa2id\x01\xa2op\xa0",
      "frame: 'op' must be a string of 1 to 64 bytes");
  BAD("\x83\xa2id\x01\xa2op\xa6health\xa4"
      "body\x01",
      "frame: 'body' must be a map");
  BAD("\x83\xa2id\x01\xa2op\xa6health\xa4"
      "evil\x01",
      "frame: unknown field 'evil'; a frame has id, op and body");
  BAD("\x82\x01\x01\xa2op\xa6health",
      "frame: keys must be strings (id, op, body)");
#undef BAD
  /* random bytes */
  uint8_t junk[512];
  uint32_t x = 0x6a697761;
  for (size_t i = 0; i < sizeof junk; i++) {
    x = x * 1103515245u + 12345u;
    junk[i] = (uint8_t)(x >> 16);
  }
  junk[0] = 0xc1; /* never a valid start */
  bad_frame(&c, &id, junk, sizeof junk, "frame:");
  /* a body of nil is an empty body */
  fr_t f;
  static const char nil_body[] = "\x83\xa2id\x05\xa2op\xa6health\xa4"
                                 "body\xc0";
  send_raw_frame(&c, nil_body, sizeof nil_body - 1);
  recv_ok(&c, &f);
  expect_reply(&f, 5);
  fr_free(&f);
  /* stats counted every bad frame */
  assert_int_equal(server_stat(&c, 100, "bad_frames"), 12);
  cli_close(&c);
}

/* Containers nested 40 deep: refused by the one decoder, connection stays. */
static void test_deep_body(void **state) {
  fx_t *fx = *state;
  cli_t c;
  open_ok(fx, &c);
  jiwa_mp_writer_t b;
  jiwa_mp_writer_init(&b);
  for (int i = 0; i < 40; i++) {
    msgpack_pack_map(&b.pk, 1);
    jiwa_mp_put_str(&b.pk, "k");
  }
  msgpack_pack_nil(&b.pk);
  fr_t f;
  call(&c, 1, "chat", &b, &f);
  jiwa_mp_writer_free(&b);
  expect_error(&f, 0, JIWA_EPROTO, "frame: nested deeper than 16 levels");
  fr_free(&f);
  /* the deepest body a frame may carry (frame map + 15) is fine */
  jiwa_mp_writer_init(&b);
  msgpack_pack_map(&b.pk, 2);
  jiwa_mp_put_kv_str(&b.pk, "text", "dalam");
  jiwa_mp_put_str(&b.pk, "extra");
  for (int i = 0; i < 14; i++) /* frame 1 + body 1 + 14 = 16 */
    msgpack_pack_array(&b.pk, 1);
  msgpack_pack_nil(&b.pk);
  call(&c, 2, "chat", &b, &f);
  jiwa_mp_writer_free(&b);
  expect_reply(&f, 2);
  fr_free(&f);
  health_ok(&c, 3);
  cli_close(&c);
}

/* A client that sends half a frame and leaves: nobody else notices. */
static void test_truncated_then_close(void **state) {
  fx_t *fx = *state;
  cli_t other, bad;
  open_ok(fx, &other);
  health_ok(&other, 1);
  open_ok(fx, &bad);
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  put_frame(&w, 1, "health", NULL);
  assert_int_equal(cli_write(&bad, w.sbuf.data, w.sbuf.size - 3), 0);
  jiwa_mp_writer_free(&w);
  /* and a header promising far more than comes */
  cli_t bad2;
  open_ok(fx, &bad2);
  assert_int_equal(cli_write(&bad2, "\x00\x01\x00\x00\x82\xa2", 6), 0);
  sleep_ms(50);
  cli_close(&bad);
  cli_close(&bad2);
  health_ok(&other, 2);
  uint64_t id = 3;
  assert_int_equal(wait_stat(&other, &id, "connections", 1, 1), 1);
  cli_t fresh;
  open_ok(fx, &fresh);
  health_ok(&fresh, 1);
  health_ok(&other, id++);
  cli_close(&fresh);
  cli_close(&other);
}

static void test_oversized_and_zero_header(void **state) {
  fx_t *fx = *state;
  cli_t c;
  open_ok(fx, &c);
  /* max_frame + 1 */
  uint32_t n = JIWA_FRAME_MAX_DEFAULT + 1;
  uint8_t h[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8),
                  (uint8_t)n};
  assert_int_equal(cli_write(&c, h, 4), 0);
  fr_t f;
  recv_ok(&c, &f);
  expect_error(&f, 0, JIWA_ETOOBIG,
               "frame of 4194305 bytes exceeds the limit of 4194304 "
               "(socket.max_frame); closing");
  fr_free(&f);
  expect_eof(&c);
  cli_close(&c);

  /* the largest header: 0xffffffff */
  raw_then_fatal(fx, "\xff\xff\xff\xff", 4, JIWA_ETOOBIG,
                 "frame of 4294967295 bytes exceeds");

  /* a zero-length frame is fatal too (message says so) */
  raw_then_fatal(fx, "\0\0\0\0", 4, JIWA_EPROTO,
                 "frame of length 0; closing");

  /* exactly max_frame is read whole (and then refused as a bad frame) */
  open_ok(fx, &c);
  uint8_t *big = calloc(1, JIWA_FRAME_MAX_DEFAULT);
  assert_non_null(big);
  send_raw_frame(&c, big, JIWA_FRAME_MAX_DEFAULT);
  free(big);
  recv_ok(&c, &f);
  expect_error(&f, 0, JIWA_EPROTO, "frame: 4194303 byte(s) after the map");
  fr_free(&f);
  health_ok(&c, 1);
  assert_int_equal(server_stat(&c, 2, "bad_frames"), 4);
  cli_close(&c);
}

/* A chat request of exactly max_frame bytes (1024 here) whose text is one
 * word: the request fits, the echoed reply ("halo, " + text + served) does
 * not. */
static void chat_of_payload(jiwa_mp_writer_t *frame, uint64_t id,
                            uint32_t payload, int stream) {
  for (size_t tl = payload; tl > 0; tl--) {
    char *text = malloc(tl + 1);
    memset(text, 'w', tl);
    text[tl] = '\0';
    jiwa_mp_writer_t b;
    body_chat(&b, text, stream);
    free(text);
    jiwa_mp_writer_init(frame);
    put_frame(frame, id, "chat", &b);
    jiwa_mp_writer_free(&b);
    if (frame->sbuf.size - JIWA_FRAME_HDR == payload)
      return;
    jiwa_mp_writer_free(frame);
  }
  fail_msg("no chat frame of exactly %u bytes", payload);
}

/* max_frame bounds replies too: a reply that would exceed it becomes an
 * ETOOBIG final, streamed or not, and the connection stays. */
static void test_reply_over_max_frame(void **state) {
  fx_t *fx = *state;
  cli_t c;
  assert_int_equal(cli_open(&c, fx->path), 0);
  fr_t f;
  recv_ok(&c, &f);
  assert_string_equal(f.op, "hello");
  assert_int_equal(must_int(&f, "max_frame"), 1024);
  fr_free(&f);

  jiwa_mp_writer_t w;
  chat_of_payload(&w, 1, 1024, 0);
  assert_int_equal(cli_write(&c, w.sbuf.data, w.sbuf.size), 0);
  jiwa_mp_writer_free(&w);
  recv_ok(&c, &f);
  expect_error(&f, 1, JIWA_ETOOBIG, "exceeds max_frame (1024 bytes)");
  fr_free(&f);
  health_ok(&c, 2);

  /* streamed: the deltas fit, the final does not; still one final */
  chat_of_payload(&w, 3, 1024, 1);
  assert_int_equal(cli_write(&c, w.sbuf.data, w.sbuf.size), 0);
  jiwa_mp_writer_free(&w);
  int deltas = 0;
  for (;;) {
    recv_ok(&c, &f);
    assert_int_equal(f.id, 3);
    if (strcmp(f.op, "delta") != 0)
      break;
    deltas++;
    fr_free(&f);
  }
  assert_int_equal(deltas, 2); /* "halo, " and the word */
  expect_error(&f, 3, JIWA_ETOOBIG, "max_frame");
  fr_free(&f);
  assert_int_equal(cli_recv(&c, &f, 200), R_TIMEOUT);
  health_ok(&c, 4);

  /* and a request over it is still fatal */
  chat_of_payload(&w, 5, 1025, 0);
  assert_int_equal(cli_write(&c, w.sbuf.data, w.sbuf.size), 0);
  jiwa_mp_writer_free(&w);
  recv_ok(&c, &f);
  expect_error(&f, 0, JIWA_ETOOBIG,
               "frame of 1025 bytes exceeds the limit of 1024");
  fr_free(&f);
  expect_eof(&c);
  cli_close(&c);
}

/* ---- peers ------------------------------------------------------------------------------ */

/* Child side of the uid tests: only syscalls and the allocation-free frame
 * parser (we forked a multi-threaded process). Exit codes say what failed;
 * the error message or the frame op goes to @p report_fd. */
enum {
  CH_OK = 0,
  CH_SETUID = 10,
  CH_CAPS,
  CH_CONNECT,
  CH_EACCES,
  CH_NOFRAME,
  CH_WRONG,
  CH_NOTEOF,
};

static ssize_t read_full(int fd, void *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, WAIT_MS) <= 0)
      return -1;
    ssize_t k = read(fd, (char *)buf + got, n - got);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      return (ssize_t)got;
    got += (size_t)k;
  }
  return (ssize_t)got;
}

/* Read one frame into @p payload; 0 or CH_NOFRAME. */
static int child_read(int fd, uint8_t *payload, size_t cap, jiwa_frame_t *f) {
  uint8_t h[4];
  if (read_full(fd, h, 4) != 4)
    return CH_NOFRAME;
  int64_t n = jiwa_frame_header(h, (uint32_t)cap);
  if (n < 0 || read_full(fd, payload, (size_t)n) != n)
    return CH_NOFRAME;
  char err[200];
  if (jiwa_frame_parse(payload, (size_t)n, f, err, sizeof err) != 0)
    return CH_NOFRAME;
  return 0;
}

/* As uid/gid 65534: with @p dac_override (KEEPCAPS, then CAP_DAC_OVERRIDE
 * raised in the effective set with the raw capset syscall) the 0700
 * directory can be traversed. @p allowed: expect hello and a health reply;
 * otherwise EPERM on id 0 and then EOF. */
static int child_other_uid(const char *path, int report_fd, int dac_override,
                           int allowed) {
  if ((dac_override && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) ||
      setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
    return CH_SETUID;
  if (dac_override) {
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    if (syscall(SYS_capget, &hdr, data) != 0)
      return CH_CAPS;
    data[CAP_TO_INDEX(CAP_DAC_OVERRIDE)].effective |=
        CAP_TO_MASK(CAP_DAC_OVERRIDE);
    if (syscall(SYS_capset, &hdr, data) != 0)
      return CH_CAPS;
  }
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  size_t pl = strlen(path);
  if (fd < 0 || pl >= sizeof a.sun_path)
    return CH_CONNECT;
  memcpy(a.sun_path, path, pl + 1);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
    return errno == EACCES ? CH_EACCES : CH_CONNECT;
  uint8_t payload[4096];
  jiwa_frame_t f;
  if (child_read(fd, payload, sizeof payload, &f))
    return CH_NOFRAME;
  char msg[400] = "";
  if (jiwa_mp_get_strcpy(f.body, f.body_len, "message", msg, sizeof msg))
    snprintf(msg, sizeof msg, "%.*s", (int)f.op_len, f.op);
  if (write(report_fd, msg, strlen(msg)) < 0)
    return CH_WRONG;
  if (allowed) {
    if (f.id != 0 || !jiwa_frame_op_is(&f, "hello"))
      return CH_WRONG;
    static const char health[] = "\x82\xa2id\x01\xa2op\xa6health";
    uint8_t req[4 + sizeof health - 1] = {0, 0, 0, sizeof health - 1};
    memcpy(req + 4, health, sizeof health - 1);
    if (write(fd, req, sizeof req) != (ssize_t)sizeof req)
      return CH_WRONG;
    if (child_read(fd, payload, sizeof payload, &f))
      return CH_NOFRAME;
    if (f.id != 1 || !jiwa_frame_op_is(&f, "reply"))
      return CH_WRONG;
    close(fd);
    return CH_OK;
  }
  int64_t code = 0;
  jiwa_mp_get_int(f.body, f.body_len, "code", &code);
  if (f.id != 0 || !jiwa_frame_op_is(&f, "error") || code != JIWA_EPERM)
    return CH_WRONG;
  /* then the server closes */
  uint8_t one;
  if (read_full(fd, &one, 1) != 0)
    return CH_NOTEOF;
  close(fd);
  return CH_OK;
}

/* Run the child; its report in @p msg. Skips when uids cannot be switched
 * here. */
static void run_as_other_uid(fx_t *fx, int dac_override, int allowed,
                             char *msg, size_t cap) {
  if (geteuid() != 0) {
    print_message("skipped: needs root to switch to uid 65534 (run ctest "
                  "as root to cover it)\n");
    skip();
  }
  int pfd[2];
  assert_int_equal(pipe(pfd), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(pfd[0]);
    _exit(child_other_uid(fx->path, pfd[1], dac_override, allowed));
  }
  close(pfd[1]);
  ssize_t k = read_full(pfd[0], msg, cap - 1);
  msg[k > 0 ? k : 0] = '\0';
  close(pfd[0]);
  int st = 0;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  assert_true(WIFEXITED(st));
  int rc = WEXITSTATUS(st);
  if (rc == CH_SETUID || rc == CH_CAPS) {
    print_message("skipped: cannot switch uid or capabilities here (child "
                  "exit %d)\n",
                  rc);
    skip();
  }
  if (rc == CH_EACCES && !dac_override) {
    print_message("skipped: uid 65534 cannot reach %s (is TMPDIR private?)\n",
                  fx->path);
    skip();
  }
  if (rc != CH_OK)
    fail_msg("uid-65534 child failed with %d (got \"%s\")", rc, msg);
}

/* A peer with another uid: EPERM on id 0, then EOF. */
static void test_other_uid_rejected(void **state) {
  fx_t *fx = *state;
  char msg[512];
  run_as_other_uid(fx, 1, 0, msg, sizeof msg);
  jt_assert_contains(msg, "uid 65534 may not use jiwad (it runs as uid 0); "
                          "add it to socket.allow_uids in the config");
  cli_t c;
  open_ok(fx, &c);
  assert_int_equal(server_stat(&c, 1, "peers_rejected"), 1);
  assert_true(jt_logs_have("refused a client: uid 65534"));
  cli_close(&c);
}

/* socket.allow_uids = {65534}: the directory is 0711, the socket open to
 * connect; that uid, with no capabilities at all, is served. */
static void test_allowed_uid_served(void **state) {
  fx_t *fx = *state;
  struct stat st;
  assert_int_equal(stat(fx->sockdir, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0711);
  char msg[512];
  run_as_other_uid(fx, 0, 1, msg, sizeof msg);
  assert_string_equal(msg, "hello");
  cli_t c;
  open_ok(fx, &c);
  assert_int_equal(server_stat(&c, 1, "peers_rejected"), 0);
  assert_int_equal(server_stat(&c, 2, "connections_total"), 2);
  cli_close(&c);
}

/* 1,000 connections open at once; each gets its hello and a health reply. */
static void test_thousand_connections(void **state) {
  fx_t *fx = *state;
  enum { N = 1000 };
  cli_t *cs = calloc(N, sizeof *cs);
  assert_non_null(cs);
  for (int i = 0; i < N; i++) {
    int rc = cli_open(&cs[i], fx->path);
    if (rc)
      fail_msg("connection %d: %s", i, strerror(-rc));
  }
  for (int i = 0; i < N; i++) {
    fr_t f;
    recv_ok(&cs[i], &f);
    assert_string_equal(f.op, "hello");
    fr_free(&f);
  }
  for (int i = 0; i < N; i++)
    assert_int_equal(cli_send(&cs[i], (uint64_t)i + 1, "health", NULL), 0);
  for (int i = 0; i < N; i++) {
    fr_t f;
    recv_ok(&cs[i], &f);
    expect_reply(&f, (uint64_t)i + 1);
    fr_free(&f);
  }
  assert_int_equal(server_stat(&cs[0], 5000, "connections"), N);
  assert_int_equal(server_stat(&cs[1], 5000, "connections_total"), N);
  for (int i = 1; i < N; i++)
    cli_close(&cs[i]);
  uint64_t id = 6000;
  assert_int_equal(wait_stat(&cs[0], &id, "connections", 1, 1), 1);
  cli_close(&cs[0]);
  free(cs);
}

/* ---- backpressure ---------------------------------------------------------------------- */

typedef struct {
  cli_t *c;
  int n;
  size_t text_len;
  atomic_int failed;
} bp_writer_t;

/* All requests in one write: the kernel hands the server 64 KiB reads at
 * arbitrary offsets, so it nearly always holds part of the next frame. */
static void *bp_write(void *arg) {
  bp_writer_t *bw = arg;
  char *text = malloc(bw->text_len + 1);
  jiwa_mp_writer_t all;
  jiwa_mp_writer_init(&all);
  for (int i = 1; i <= bw->n; i++) {
    memset(text, 'a' + i % 26, bw->text_len);
    text[bw->text_len] = '\0';
    jiwa_mp_writer_t b;
    body_chat(&b, text, 0);
    put_frame(&all, (uint64_t)i, "chat", &b);
    jiwa_mp_writer_free(&b);
  }
  free(text);
  if (cli_write(bw->c, all.sbuf.data, all.sbuf.size) != 0)
    atomic_fetch_add(&bw->failed, 1);
  jiwa_mp_writer_free(&all);
  return NULL;
}

/* A client that writes many large requests and reads nothing makes the
 * server stop reading it; once it reads, every final arrives. */
static void test_backpressure(void **state) {
  fx_t *fx = *state;
  cli_t slow, mon;
  open_ok(fx, &slow);
  open_ok(fx, &mon);
  bp_writer_t bw = {.c = &slow, .n = 200, .text_len = 48 * 1024};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, bp_write, &bw), 0);
  uint64_t id = 1;
  int64_t pauses = wait_stat(&mon, &id, "backpressure_pauses", 1, 0);
  if (pauses < 1)
    fail_msg("backpressure_pauses stayed %lld", (long long)pauses);
  int *finals = calloc((size_t)bw.n + 1, sizeof *finals);
  int done = 0;
  while (done < bw.n) {
    fr_t f;
    recv_ok(&slow, &f);
    if (f.id < 1 || f.id > (uint64_t)bw.n)
      fail_msg("unexpected id %llu", (unsigned long long)f.id);
    expect_reply(&f, f.id);
    if (finals[f.id]++)
      fail_msg("id %llu: a second final", (unsigned long long)f.id);
    const char *t;
    size_t tl;
    assert_int_equal(jiwa_mp_get_str(f.body, f.body_len, "text", &t, &tl),
                     0);
    assert_int_equal(tl, strlen("halo, ") + bw.text_len);
    assert_int_equal(t[tl - 1], 'a' + (int)(f.id % 26));
    fr_free(&f);
    done++;
  }
  assert_int_equal(pthread_join(th, NULL), 0);
  assert_int_equal(atomic_load(&bw.failed), 0);
  free(finals);
  health_ok(&slow, (uint64_t)bw.n + 1);
  cli_close(&slow);
  cli_close(&mon);
}

/* ---- idle timeout / max connections ----------------------------------------------------- */

static void test_partial_frame_times_out(void **state) {
  fx_t *fx = *state;
  cli_t c, idle;
  open_ok(fx, &c);
  open_ok(fx, &idle); /* idle without a partial frame: left alone */
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  put_frame(&w, 1, "health", NULL);
  assert_int_equal(cli_write(&c, w.sbuf.data, w.sbuf.size - 2), 0);
  jiwa_mp_writer_free(&w);
  fr_t f;
  recv_ok(&c, &f);
  expect_error(&f, 0, JIWA_ETIMEDOUT,
               "frame incomplete after 200 ms (socket.idle_timeout_ms); "
               "closing");
  fr_free(&f);
  expect_eof(&c);
  cli_close(&c);
  /* a header alone (4 bytes of a frame) also counts as started */
  raw_then_fatal(fx, "\0\0\0\x10", 4, JIWA_ETIMEDOUT,
                 "frame incomplete after 200 ms");
  /* and 2 bytes of a header */
  raw_then_fatal(fx, "\0\0", 2, JIWA_ETIMEDOUT,
                 "frame incomplete after 200 ms");
  health_ok(&idle, 1);
  assert_int_equal(server_stat(&idle, 2, "idle_timeouts"), 3);
  /* a frame completed in time, in pieces, is fine */
  jiwa_mp_writer_init(&w);
  put_frame(&w, 3, "health", NULL);
  assert_int_equal(cli_write(&idle, w.sbuf.data, 3), 0);
  sleep_ms(50);
  assert_int_equal(cli_write(&idle, w.sbuf.data + 3, w.sbuf.size - 3), 0);
  jiwa_mp_writer_free(&w);
  recv_ok(&idle, &f);
  expect_reply(&f, 3);
  fr_free(&f);
  cli_close(&idle);
}

static void test_max_connections(void **state) {
  fx_t *fx = *state;
  cli_t a, b, c;
  open_ok(fx, &a);
  open_ok(fx, &b);
  assert_int_equal(cli_open(&c, fx->path), 0);
  fr_t f;
  recv_ok(&c, &f);
  expect_error(&f, 0, JIWA_EBUSY,
               "too many connections (socket.max_connections); try again "
               "later");
  fr_free(&f);
  expect_eof(&c);
  cli_close(&c);
  health_ok(&a, 1);
  health_ok(&b, 1);
  uint64_t id = 2;
  assert_int_equal(wait_stat(&a, &id, "connections", 2, 1), 2);
  assert_int_equal(server_stat(&a, id++, "busy_rejected"), 1);
  /* a slot freed is a slot taken */
  cli_close(&b);
  assert_int_equal(wait_stat(&a, &id, "connections", 1, 1), 1);
  open_ok(fx, &c);
  health_ok(&c, 1);
  cli_close(&c);
  cli_close(&a);
}

/* A client that pipelines requests and leaves without reading the replies:
 * the server writes to a closed socket (EPIPE) and must survive it. */
static void test_client_gone_with_replies_pending(void **state) {
  fx_t *fx = *state;
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  for (int i = 1; i <= 3000; i++)
    put_frame(&w, (uint64_t)i, "health", NULL);
  for (int round = 0; round < 10; round++) {
    cli_t c;
    assert_int_equal(cli_open(&c, fx->path), 0);
    (void)cli_write(&c, w.sbuf.data, w.sbuf.size); /* may see EPIPE */
    cli_close(&c);
  }
  jiwa_mp_writer_free(&w);
  cli_t c;
  open_ok(fx, &c);
  health_ok(&c, 1);
  cli_close(&c);
  int pipes = atomic_exchange(&g_sigpipes, 0);
  if (pipes)
    fail_msg("the server raised SIGPIPE %d time(s) writing to clients that "
             "had closed: jiwad (which does not ignore SIGPIPE) dies of it",
             pipes);
}

/* Frames that each complete quickly are never "incomplete", even when the
 * next one has always started already (idle_timeout_ms 200): the timeout
 * is about one frame, not about the buffer never running empty. */
static void test_pipelined_frames_not_timed_out(void **state) {
  fx_t *fx = *state;
  cli_t c;
  open_ok(fx, &c);
  enum { N = 120 }; /* one write per 5 ms: 600 ms, 3x the timeout */
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  size_t *ends = calloc(N + 1, sizeof *ends);
  for (int i = 1; i <= N; i++) {
    put_frame(&w, (uint64_t)i, "health", NULL);
    ends[i] = w.sbuf.size;
  }
  /* each write: the rest of frame i and the first byte of frame i+1 */
  size_t off = 0;
  int replies = 0, errors = 0;
  char first_error[300] = "";
  for (int i = 1; i <= N && !errors; i++) {
    size_t end = i < N ? ends[i] + 1 : ends[i];
    if (cli_write(&c, w.sbuf.data + off, end - off) != 0)
      break;
    off = end;
    fr_t f;
    while (cli_recv(&c, &f, 5) == R_FRAME) {
      if (strcmp(f.op, "reply") == 0) {
        replies++;
      } else if (!errors++) {
        fr_str(&f, "message", first_error, sizeof first_error);
      }
      fr_free(&f);
    }
  }
  while (replies < N && !errors) {
    fr_t f;
    int rc = cli_recv(&c, &f, WAIT_MS);
    if (rc != R_FRAME)
      break;
    if (strcmp(f.op, "reply") == 0)
      replies++;
    else if (!errors++)
      fr_str(&f, "message", first_error, sizeof first_error);
    fr_free(&f);
  }
  jiwa_mp_writer_free(&w);
  free(ends);
  cli_close(&c);
  if (errors)
    fail_msg("after %d of %d replies: error \"%s\"", replies, N,
             first_error);
  assert_int_equal(replies, N);
}

/* A reader paused by backpressure holds half a frame the server stopped
 * reading: that is the server waiting, not the client being slow to send,
 * so no ETIMEDOUT (idle_timeout_ms 200, the reader sleeps 600 ms). */
static void test_backpressure_pause_is_not_idle(void **state) {
  fx_t *fx = *state;
  cli_t slow, mon;
  open_ok(fx, &slow);
  open_ok(fx, &mon);
  bp_writer_t bw = {.c = &slow, .n = 120, .text_len = 48 * 1024};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, bp_write, &bw), 0);
  uint64_t id = 1;
  int64_t pauses = wait_stat(&mon, &id, "backpressure_pauses", 1, 0);
  sleep_ms(600);
  int done = 0, rc = R_FRAME;
  char err[300] = "";
  while (done < bw.n && !err[0]) {
    fr_t f;
    rc = cli_recv(&slow, &f, WAIT_MS);
    if (rc != R_FRAME)
      break;
    if (strcmp(f.op, "reply") == 0)
      done++;
    else
      fr_str(&f, "message", err, sizeof err);
    fr_free(&f);
    if (done % 30 == 0)
      sleep_ms(600); /* and stall again, for the next pause */
  }
  shutdown(slow.fd, SHUT_RDWR); /* unblocks the writer on failure */
  assert_int_equal(pthread_join(th, NULL), 0);
  int64_t timeouts = server_stat(&mon, id++, "idle_timeouts");
  cli_close(&slow);
  cli_close(&mon);
  if (pauses < 1)
    fail_msg("backpressure_pauses stayed %lld", (long long)pauses);
  if (err[0] || done != bw.n)
    fail_msg("after %d of %d finals: %s \"%s\" (idle_timeouts %lld)", done,
             bw.n, err[0] ? "error" : recv_what(rc), err,
             (long long)timeouts);
  assert_int_equal(timeouts, 0);
}

#if defined(__SANITIZE_ADDRESS__)
#define JT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define JT_ASAN 1
#endif
#endif

/* A client that pipelines small requests and reads nothing holds about
 * out_queue_max (1 MiB) of replies in the server, not many times that:
 * the heap in use grows by a few MiB at most. */
static void test_queued_replies_memory_bounded(void **state) {
  fx_t *fx = *state;
#ifdef JT_ASAN
  (void)fx;
  print_message("skipped: heap accounting (mallinfo2) is not glibc's under "
                "ASan\n");
  skip();
#else
  cli_t c, mon;
  open_ok(fx, &mon);
  open_ok(fx, &c);
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  for (int i = 1; i <= 20000; i++)
    put_frame(&w, (uint64_t)i, "health", NULL);
  struct mallinfo2 m0 = mallinfo2();
  /* non-blocking: never wait on a server that stopped reading us */
  int fl = fcntl(c.fd, F_GETFL);
  assert_int_equal(fcntl(c.fd, F_SETFL, fl | O_NONBLOCK), 0);
  size_t off = 0;
  uint64_t deadline = now_ms() + 2000;
  while (off < w.sbuf.size && now_ms() < deadline) {
    ssize_t k =
        send(c.fd, w.sbuf.data + off, w.sbuf.size - off, MSG_NOSIGNAL);
    if (k > 0)
      off += (size_t)k;
    else
      sleep_ms(5);
  }
  sleep_ms(300); /* let it answer what it read */
  health_ok(&mon, 1);
  struct mallinfo2 m1 = mallinfo2();
  double grew = ((double)m1.uordblks - (double)m0.uordblks) / 1048576.0;
  jiwa_mp_writer_free(&w);
  cli_close(&c);
  cli_close(&mon);
  double limit = 4.0 * (double)fx->so.out_queue_max / 1048576.0 + 4.0;
  if (grew > limit)
    fail_msg("one client that reads nothing made the heap grow by %.1f MiB "
             "(%zu request bytes sent; out_queue_max %zu KiB, limit %.0f "
             "MiB): each queued reply holds more than its frame's bytes",
             grew, off, fx->so.out_queue_max / 1024, limit);
#endif
}

/* ---- reload under load --------------------------------------------------------------------- */

typedef struct {
  const char *path;
  int idx;
  int min_chats;
  atomic_int *stop;
  int sent, ok, failed;
  char first_error[300];
} loader_t;

static void note_failure(loader_t *l, const char *fmt, ...) {
  l->failed++;
  if (l->first_error[0])
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(l->first_error, sizeof l->first_error, fmt, ap);
  va_end(ap);
}

/* Chats with up to WINDOW in flight until told to stop (and at least
 * min_chats). */
static void *chat_loader(void *arg) {
  loader_t *l = arg;
  enum { WINDOW = 16 };
  cli_t c;
  if (cli_open(&c, l->path) != 0) {
    note_failure(l, "connect failed");
    return NULL;
  }
  fr_t f;
  if (cli_recv(&c, &f, WAIT_MS) != R_FRAME) {
    note_failure(l, "no hello");
    cli_close(&c);
    return NULL;
  }
  fr_free(&f);
  int inflight = 0;
  uint64_t next = 1;
  for (;;) {
    int more = (l->sent < l->min_chats || !atomic_load(l->stop)) &&
               l->sent < 200000;
    while (more && inflight < WINDOW) {
      char text[64];
      snprintf(text, sizeof text, "c%d-%llu", l->idx,
               (unsigned long long)next);
      jiwa_mp_writer_t b;
      body_chat(&b, text, 0);
      int rc = cli_send(&c, next, "chat", &b);
      jiwa_mp_writer_free(&b);
      if (rc) {
        note_failure(l, "send: %s", strerror(-rc));
        cli_close(&c);
        return NULL;
      }
      next++;
      l->sent++;
      inflight++;
      more = (l->sent < l->min_chats || !atomic_load(l->stop)) &&
             l->sent < 200000;
    }
    if (inflight == 0)
      break;
    int rc = cli_recv(&c, &f, WAIT_MS);
    if (rc != R_FRAME) {
      note_failure(l, "recv: %s", recv_what(rc));
      break;
    }
    inflight--;
    char want[80], got[80] = "", msg[300] = "";
    snprintf(want, sizeof want, "halo, c%d-%llu", l->idx,
             (unsigned long long)f.id);
    if (strcmp(f.op, "reply") != 0) {
      fr_str(&f, "message", msg, sizeof msg);
      note_failure(l, "id %llu: %s: %s", (unsigned long long)f.id, f.op, msg);
    } else if (fr_str(&f, "text", got, sizeof got) != 0 ||
               strcmp(got, want) != 0) {
      note_failure(l, "id %llu: text \"%s\", want \"%s\"",
                   (unsigned long long)f.id, got, want);
    } else {
      l->ok++;
    }
    fr_free(&f);
  }
  cli_close(&c);
  return NULL;
}

static void test_reload_under_load(void **state) {
  fx_t *fx = *state;
  enum { THREADS = 4, MIN_CHATS = 600, RELOADS = 25 };
  atomic_int stop = 0;
  loader_t ls[THREADS];
  pthread_t th[THREADS];
  memset(ls, 0, sizeof ls);
  for (int i = 0; i < THREADS; i++) {
    ls[i].path = fx->path;
    ls[i].idx = i;
    ls[i].min_chats = MIN_CHATS;
    ls[i].stop = &stop;
    assert_int_equal(pthread_create(&th[i], NULL, chat_loader, &ls[i]), 0);
  }
  cli_t c;
  open_ok(fx, &c);
  uint64_t id = 1;
  int64_t gen0 = listed_generation(&c, id++, "echo");
  for (int r = 0; r < RELOADS; r++) {
    jiwa_mp_writer_t b;
    jt_body_str(&b, "name", "echo");
    fr_t f;
    call(&c, id, "plugin.reload", &b, &f);
    jiwa_mp_writer_free(&b);
    expect_reply(&f, id++);
    fr_free(&f);
    sleep_ms(5);
  }
  atomic_store(&stop, 1);
  int sent = 0, ok = 0, failed = 0;
  for (int i = 0; i < THREADS; i++) {
    assert_int_equal(pthread_join(th[i], NULL), 0);
    if (ls[i].failed)
      print_message("loader %d: %d failed, first: %s\n", i, ls[i].failed,
                    ls[i].first_error);
    sent += ls[i].sent;
    ok += ls[i].ok;
    failed += ls[i].failed;
  }
  print_message("reload under load: %d chats over %d connections, %d "
                "reloads\n",
                sent, THREADS, RELOADS);
  assert_int_equal(failed, 0);
  assert_int_equal(ok, sent);
  assert_true(sent >= THREADS * MIN_CHATS);
  assert_int_equal(listed_generation(&c, id++, "echo"), gen0 + RELOADS);
  health_ok(&c, id++);
  cli_close(&c);
}

/* ---- shutdown ------------------------------------------------------------------------------ */

/* Requests still in flight at shutdown: teardown returns 0 from both
 * jiwa_rt_stop and jiwa_server_free (slow echo fixture). */
static void test_shutdown_with_requests_in_flight(void **state) {
  fx_t *fx = *state;
  cli_t c;
  open_ok(fx, &c);
  for (uint64_t i = 1; i <= 20; i++) {
    jiwa_mp_writer_t b;
    body_chat(&b, "nanti", i % 2 == 0);
    assert_int_equal(cli_send(&c, i, "chat", &b), 0);
    jiwa_mp_writer_free(&b);
  }
  /* a plugin.load on the thread pool too */
  jiwa_mp_writer_t b;
  jiwa_mp_writer_init(&b);
  msgpack_pack_map(&b.pk, 2);
  jiwa_mp_put_kv_str(&b.pk, "name", "tpl");
  jiwa_mp_put_kv_str(&b.pk, "plugin", "template");
  assert_int_equal(cli_send(&c, 21, "plugin.load", &b), 0);
  jiwa_mp_writer_free(&b);
  uint64_t id = 22;
  (void)wait_stat(&c, &id, "frames_in", 22, 0);
  /* the client stays connected; the server closes it (a final that was
   * already on its way may still come first) */
  jiwa_server_close(fx->srv);
  for (;;) {
    fr_t f;
    int rc = cli_recv(&c, &f, WAIT_MS);
    if (rc == R_EOF)
      break;
    if (rc != R_FRAME)
      fail_msg("expected frames then EOF, got %s", recv_what(rc));
    if (f.id < 1 || f.id > 22)
      fail_msg("unexpected frame id %llu op %s", (unsigned long long)f.id,
               f.op);
    fr_free(&f);
  }
  cli_close(&c);
  /* teardown: jiwa_rt_stop, jiwa_server_free == 0 */
}

/* ---- main ------------------------------------------------------------------------------------ */

static fx_opts_t o_default = {0};
static fx_opts_t o_slow = {.echo_delay_ms = 300};
static fx_opts_t o_idle = {.idle_timeout_ms = 200};
static fx_opts_t o_max2 = {.max_connections = 2};
static fx_opts_t o_small = {.max_frame = 1024};
static fx_opts_t o_allow = {.allow_uid = 65534};

#define T(fn, o)                                                               \
  cmocka_unit_test_prestate_setup_teardown(fn, fx_setup, fx_teardown, &o)

int main(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigpipe;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGPIPE, &sa, NULL);
  const struct CMUnitTest tests[] = {
      T(test_hello, o_default),
      T(test_health_stats_list, o_default),
      T(test_plugin_ops, o_default),
      T(test_load_worker_out_of_range, o_default),
      T(test_chat, o_default),
      T(test_chat_stream, o_default),
      T(test_chat_fields, o_default),
      T(test_forwarded_ops, o_default),
      T(test_concurrent_on_one_connection, o_default),
      T(test_request_errors, o_default),
      T(test_unknown_op_shown_safely, o_default),
      T(test_duplicate_id, o_slow),
      T(test_half_close_gets_replies, o_slow),
      T(test_garbage_frames, o_default),
      T(test_deep_body, o_default),
      T(test_truncated_then_close, o_default),
      T(test_oversized_and_zero_header, o_default),
      T(test_reply_over_max_frame, o_small),
      T(test_other_uid_rejected, o_default),
      T(test_allowed_uid_served, o_allow),
      T(test_thousand_connections, o_default),
      T(test_backpressure, o_default),
      T(test_partial_frame_times_out, o_idle),
      T(test_max_connections, o_max2),
      T(test_client_gone_with_replies_pending, o_default),
      T(test_pipelined_frames_not_timed_out, o_idle),
      T(test_backpressure_pause_is_not_idle, o_idle),
      T(test_queued_replies_memory_bounded, o_default),
      T(test_reload_under_load, o_default),
      T(test_shutdown_with_requests_in_flight, o_slow),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
