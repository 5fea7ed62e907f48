/*
 * Unit tests for the socket client (tools/jiwa/client.c) against a fake
 * jiwad: a listening Unix socket in a private temp dir and one thread that
 * plays a script, frame by frame, including the ways a server can go wrong
 * (wrong protocol, garbage, oversized or truncated frames, silence).
 *
 * cmocka's asserts must not run on the fake's thread (they longjmp), so the
 * fake records failures in a flag that the test checks after joining it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jiwa/client.h"

/* ---- helpers ----------------------------------------------------------- */

#define assert_rc(expr, want)                                                  \
  do {                                                                         \
    int rc_ = (expr);                                                          \
    int want_ = (want);                                                        \
    if (rc_ != want_) {                                                        \
      print_error("%s\n  got %d (%s), want %d (%s)\n", #expr, rc_,             \
                  jiwa_err_name(rc_), want_, jiwa_err_name(want_));            \
      fail();                                                                  \
    }                                                                          \
  } while (0)

#define assert_contains(hay, needle)                                           \
  do {                                                                         \
    const char *h_ = (hay), *n_ = (needle);                                    \
    if (!h_ || !strstr(h_, n_))                                                \
      fail_msg("expected to find \"%s\" in \"%s\"", n_, h_ ? h_ : "(null)");   \
  } while (0)

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void make_tempdir(char *out, size_t cap) {
  const char *t = getenv("TMPDIR");
  snprintf(out, cap, "%s/jiwa-client-XXXXXX", t && *t ? t : "/tmp");
  if (!mkdtemp(out))
    fail_msg("mkdtemp: %s", strerror(errno));
}

/* A string field of a msgpack map, NUL-terminated ("" if absent). */
static const char *field(const void *body, size_t len, const char *key) {
  static char buf[4][256];
  static int slot;
  char *b = buf[slot++ & 3];
  if (jiwa_mp_get_strcpy(body, len, key, b, 256) != 0)
    b[0] = '\0';
  return b;
}

/* ---- the fake server ----------------------------------------------------- */

/* 1 if string field @p key of @p fr's body is @p want (thread-safe, unlike
 * field(), so the fake's thread uses this one). */
static int body_is(const jiwa_frame_t *fr, const char *key, const char *want) {
  const char *v;
  size_t n;
  return jiwa_mp_get_str(fr->body, fr->body_len, key, &v, &n) == 0 &&
         n == strlen(want) && memcmp(v, want, n) == 0;
}

typedef struct fake fake_t;
typedef void (*script_fn)(fake_t *f, int fd);

struct fake {
  char dir[200];
  char path[300];
  int lfd;
  pthread_t th;
  script_fn script;
  void *ud;
  sem_t go;            /* the client tells the script to continue */
  volatile int failed; /* set by the script */
  char why[256];
};

#define SRV_CHECK(f, cond)                                                     \
  do {                                                                         \
    if (!(cond)) {                                                             \
      snprintf((f)->why, sizeof(f)->why, "fake server, line %d: %s", __LINE__, \
               #cond);                                                         \
      (f)->failed = 1;                                                         \
      return;                                                                  \
    }                                                                          \
  } while (0)

static void *fake_main(void *arg) {
  fake_t *f = arg;
  int fd = accept(f->lfd, NULL, NULL);
  if (fd >= 0) {
    f->script(f, fd);
    close(fd);
  }
  return NULL;
}

static void fake_start(fake_t *f, script_fn script, void *ud) {
  memset(f, 0, sizeof *f);
  make_tempdir(f->dir, sizeof f->dir);
  snprintf(f->path, sizeof f->path, "%s/jiwad.sock", f->dir);
  f->script = script;
  f->ud = ud;
  sem_init(&f->go, 0, 0);
  f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(f->lfd >= 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  assert_true(strlen(f->path) < sizeof sa.sun_path);
  memcpy(sa.sun_path, f->path, strlen(f->path) + 1);
  assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
  assert_int_equal(listen(f->lfd, 4), 0);
  assert_int_equal(pthread_create(&f->th, NULL, fake_main, f), 0);
}

static void fake_stop(fake_t *f) {
  shutdown(f->lfd, SHUT_RDWR); /* wakes accept() if nobody came */
  pthread_join(f->th, NULL);
  close(f->lfd);
  unlink(f->path);
  rmdir(f->dir);
  sem_destroy(&f->go);
  if (f->failed)
    fail_msg("%s", f->why);
}

static int srv_write(int fd, const void *buf, size_t n) {
  const uint8_t *p = buf;
  while (n) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int srv_read(int fd, void *buf, size_t n) {
  uint8_t *p = buf;
  while (n) {
    ssize_t r = recv(fd, p, n, 0);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return -1;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

static int srv_send(int fd, uint64_t id, const char *op, const void *body,
                    size_t len) {
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  int rc = jiwa_frame_write(&w, id, op, body, len);
  if (rc == 0)
    rc = srv_write(fd, w.sbuf.data, w.sbuf.size);
  jiwa_mp_writer_free(&w);
  return rc;
}

/* Send a frame whose body is {"text": text}. */
static int srv_send_text(int fd, uint64_t id, const char *op,
                         const char *text) {
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 1);
  jiwa_mp_put_kv_str(&w.pk, "text", text);
  int rc = srv_send(fd, id, op, w.sbuf.data, w.sbuf.size);
  jiwa_mp_writer_free(&w);
  return rc;
}

static int srv_hello(int fd, int64_t proto, int64_t max_frame) {
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, max_frame ? 4 : 3);
  jiwa_mp_put_kv_int(&w.pk, "proto", proto);
  jiwa_mp_put_kv_str(&w.pk, "server", "jiwad test");
  if (max_frame)
    jiwa_mp_put_kv_int(&w.pk, "max_frame", max_frame);
  jiwa_mp_put_str(&w.pk, "ops");
  msgpack_pack_array(&w.pk, 2);
  jiwa_mp_put_str(&w.pk, "health");
  jiwa_mp_put_str(&w.pk, "chat");
  int rc = srv_send(fd, 0, "hello", w.sbuf.data, w.sbuf.size);
  jiwa_mp_writer_free(&w);
  return rc;
}

static int srv_error(int fd, uint64_t id, int code, const char *msg) {
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  int rc = jiwa_frame_write_error(&w, id, code, msg);
  if (rc == 0)
    rc = srv_write(fd, w.sbuf.data, w.sbuf.size);
  jiwa_mp_writer_free(&w);
  return rc;
}

/* One request: its parsed frame borrows *buf (free it). */
static int srv_recv(int fd, jiwa_frame_t *fr, uint8_t **buf) {
  uint8_t hdr[4];
  *buf = NULL;
  if (srv_read(fd, hdr, 4))
    return -1;
  int64_t n = jiwa_frame_header(hdr, 64u << 20);
  if (n <= 0)
    return -1;
  *buf = malloc((size_t)n);
  if (!*buf || srv_read(fd, *buf, (size_t)n))
    return -1;
  char err[128];
  return jiwa_frame_parse(*buf, (size_t)n, fr, err, sizeof err) ? -1 : 0;
}

/* Keep the connection until the client closes it. */
static void srv_wait_close(int fd) {
  char b[4096];
  while (recv(fd, b, sizeof b, 0) > 0)
    ;
}

static void send_header(int fd, uint32_t n) {
  uint8_t h[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8),
                  (uint8_t)n};
  srv_write(fd, h, 4);
}

/* ---- hello ------------------------------------------------------------- */

static void s_hello_then_wait(fake_t *f, int fd) {
  SRV_CHECK(f, srv_hello(fd, 1, 4096) == 0);
  srv_wait_close(fd);
}

static void test_hello(void **state) {
  (void)state;
  fake_t f;
  fake_start(&f, s_hello_then_wait, NULL);
  jiwa_client_t *c = NULL;
  char err[512];
  assert_rc(jiwa_client_connect(&c, f.path, 5000, err, sizeof err), 0);
  assert_non_null(c);
  size_t hl = 0;
  const void *h = jiwa_client_hello(c, &hl);
  assert_non_null(h);
  assert_string_equal(field(h, hl, "server"), "jiwad test");
  int64_t proto = 0;
  assert_rc(jiwa_mp_get_int(h, hl, "proto", &proto), 0);
  assert_int_equal(proto, JIWA_PROTO_VERSION);
  assert_int_equal(jiwa_client_max_frame(c), 4096);
  jiwa_client_close(c);
  fake_stop(&f);
}

static void s_proto2(fake_t *f, int fd) {
  SRV_CHECK(f, srv_hello(fd, 2, 0) == 0);
  srv_wait_close(fd);
}

static void test_proto_mismatch(void **state) {
  (void)state;
  fake_t f;
  fake_start(&f, s_proto2, NULL);
  jiwa_client_t *c = (jiwa_client_t *)&f; /* must be reset to NULL */
  char err[512];
  assert_rc(jiwa_client_connect(&c, f.path, 5000, err, sizeof err),
            JIWA_ENOTSUP);
  assert_null(c);
  assert_contains(err, "speaks protocol 2");
  assert_contains(err, "this client speaks protocol 1");
  assert_contains(err, "jiwad test");
  fake_stop(&f);
}

static void s_garbage(fake_t *f, int fd) {
  static const char http[] = "HTTP/1.1 400 Bad Request\r\n\r\n";
  SRV_CHECK(f, srv_write(fd, http, sizeof http - 1) == 0);
  srv_wait_close(fd);
}

static void test_not_jiwad_garbage(void **state) {
  (void)state;
  fake_t f;
  fake_start(&f, s_garbage, NULL);
  jiwa_client_t *c;
  char err[512];
  uint64_t t0 = now_ms();
  assert_rc(jiwa_client_connect(&c, f.path, 5000, err, sizeof err),
            JIWA_EPROTO);
  /* Refused on the length header alone: no waiting for 1 GB to arrive. */
  assert_true(now_ms() - t0 < 2000);
  assert_contains(err, "is not a jiwad socket");
  assert_contains(err, f.path);
  fake_stop(&f);
}

static void s_wrong_first_frame(fake_t *f, int fd) {
  SRV_CHECK(f, srv_send_text(fd, 0, "welcome", "hi") == 0);
  srv_wait_close(fd);
}

static void test_not_jiwad_first_frame(void **state) {
  (void)state;
  fake_t f;
  fake_start(&f, s_wrong_first_frame, NULL);
  jiwa_client_t *c;
  char err[512];
  assert_rc(jiwa_client_connect(&c, f.path, 5000, err, sizeof err),
            JIWA_EPROTO);
  assert_contains(err, "is not a jiwad socket");
  assert_contains(err, "'welcome'");
  fake_stop(&f);
}

static void s_refuse(fake_t *f, int fd) {
  SRV_CHECK(f, srv_error(fd, 0, JIWA_EPERM,
                         "peer uid 1000 is not allowed; add it to "
                         "socket.allow_uids") == 0);
}

static void test_refused_at_connect(void **state) {
  (void)state;
  fake_t f;
  fake_start(&f, s_refuse, NULL);
  jiwa_client_t *c;
  char err[512];
  assert_rc(jiwa_client_connect(&c, f.path, 5000, err, sizeof err), JIWA_EPERM);
  assert_contains(err, "refused the connection: EPERM: peer uid 1000");
  fake_stop(&f);
}

static void s_close_at_once(fake_t *f, int fd) {
  (void)f;
  (void)fd;
}

static void test_closed_without_hello(void **state) {
  (void)state;
  fake_t f;
  fake_start(&f, s_close_at_once, NULL);
  jiwa_client_t *c;
  char err[512];
  assert_rc(jiwa_client_connect(&c, f.path, 5000, err, sizeof err), JIWA_EIO);
  assert_contains(err, "without a hello");
  fake_stop(&f);
}

static void s_silent(fake_t *f, int fd) {
  (void)f;
  srv_wait_close(fd);
}

static void test_hello_timeout(void **state) {
  (void)state;
  fake_t f;
  fake_start(&f, s_silent, NULL);
  jiwa_client_t *c;
  char err[512];
  uint64_t t0 = now_ms();
  assert_rc(jiwa_client_connect(&c, f.path, 200, err, sizeof err),
            JIWA_ETIMEDOUT);
  uint64_t dt = now_ms() - t0;
  assert_true(dt >= 190 && dt < 3000);
  assert_contains(err, "no hello from");
  fake_stop(&f);
}

/* ---- connect failures without a server ----------------------------------- */

static void test_missing_socket(void **state) {
  (void)state;
  char dir[200], path[300], err[512];
  make_tempdir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/nope.sock", dir);
  jiwa_client_t *c;
  assert_rc(jiwa_client_connect(&c, path, 1000, err, sizeof err), JIWA_ENOENT);
  char want[400];
  snprintf(want, sizeof want, "jiwad is not running: no socket at %s", path);
  assert_string_equal(err, want);
  /* A missing directory on the way reads the same. */
  snprintf(path, sizeof path, "%s/no/such/dir.sock", dir);
  assert_rc(jiwa_client_connect(&c, path, 1000, err, sizeof err), JIWA_ENOENT);
  assert_contains(err, "jiwad is not running");
  rmdir(dir);
}

static void test_stale_socket(void **state) {
  (void)state;
  char dir[200], path[300], err[512];
  make_tempdir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/old.sock", dir);
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  assert_true(strlen(path) < sizeof sa.sun_path);
  memcpy(sa.sun_path, path, strlen(path) + 1);
  assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  close(fd); /* bound, never listened: what a killed jiwad leaves */
  jiwa_client_t *c;
  assert_rc(jiwa_client_connect(&c, path, 1000, err, sizeof err), JIWA_ENOENT);
  assert_contains(err, "jiwad is not running: nothing listens on");
  unlink(path);
  rmdir(dir);
}

static void test_not_a_socket_file(void **state) {
  (void)state;
  char dir[200], path[300], err[512];
  make_tempdir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/file", dir);
  FILE *fp = fopen(path, "w");
  assert_non_null(fp);
  fclose(fp);
  jiwa_client_t *c;
  assert_rc(jiwa_client_connect(&c, path, 1000, err, sizeof err), JIWA_EPROTO);
  assert_contains(err, "is not a jiwad socket: it is a regular file");
  assert_rc(jiwa_client_connect(&c, dir, 1000, err, sizeof err), JIWA_EPROTO);
  assert_contains(err, "it is a directory");
  unlink(path);
  rmdir(dir);
}

/* Connect as the current user; exit status 0 if refused as expected. */
static int expect_permission_denied(const char *path) {
  jiwa_client_t *c;
  char err[512];
  int rc = jiwa_client_connect(&c, path, 1000, err, sizeof err);
  if (rc != JIWA_EPERM || !strstr(err, "permission denied on")) {
    fprintf(stderr, "connect: %d %s\n", rc, err);
    return 1;
  }
  return 0;
}

static void test_permission_denied(void **state) {
  (void)state;
  char dir[200], path[300];
  make_tempdir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/jiwad.sock", dir);
  int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  assert_true(strlen(path) < sizeof sa.sun_path);
  memcpy(sa.sun_path, path, strlen(path) + 1);
  assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
  assert_int_equal(listen(lfd, 1), 0);
  assert_int_equal(chmod(path, 0), 0);
  int status = -1;
  if (geteuid() != 0) {
    status = expect_permission_denied(path);
  } else {
    /* root ignores file modes: try as nobody, in a child */
    assert_int_equal(chmod(dir, 0755), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      if (setgid(65534) != 0 || setuid(65534) != 0)
        _exit(2);
      _exit(expect_permission_denied(path));
    }
    int ws;
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 3;
  }
  close(lfd);
  unlink(path);
  rmdir(dir);
  assert_int_equal(status, 0);
}

static void test_bad_arguments(void **state) {
  (void)state;
  char err[512], longp[200];
  jiwa_client_t *c;
  assert_rc(jiwa_client_connect(&c, "", 100, err, sizeof err), JIWA_EINVAL);
  memset(longp, 'a', sizeof longp - 1);
  longp[sizeof longp - 1] = '\0';
  assert_rc(jiwa_client_connect(&c, longp, 100, err, sizeof err), JIWA_EINVAL);
  assert_contains(err, "a Unix socket path has 1 to 107 bytes");
  assert_rc(jiwa_client_connect(NULL, "/x", 100, err, sizeof err), JIWA_EINVAL);
  /* NULL error buffers are fine. */
  assert_rc(jiwa_client_connect(&c, "", 100, NULL, 0), JIWA_EINVAL);
  jiwa_client_close(NULL);
  jiwa_client_frame_free(NULL);
}

/* ---- calls --------------------------------------------------------------- */

static void s_deltas(fake_t *f, int fd) {
  jiwa_frame_t fr;
  uint8_t *buf;
  SRV_CHECK(f, srv_hello(fd, 1, 0) == 0);
  SRV_CHECK(f, srv_recv(fd, &fr, &buf) == 0);
  SRV_CHECK(f, fr.id == 1 && jiwa_frame_op_is(&fr, "chat"));
  SRV_CHECK(f, body_is(&fr, "text", "hi"));
  free(buf);
  SRV_CHECK(f, srv_send_text(fd, 1, "delta", "a") == 0);
  SRV_CHECK(f, srv_send_text(fd, 1, "delta", "b") == 0);
  SRV_CHECK(f, srv_send_text(fd, 1, "delta", "c") == 0);
  SRV_CHECK(f, srv_send_text(fd, 1, "reply", "abc") == 0);
  SRV_CHECK(f, srv_recv(fd, &fr, &buf) == 0);
  SRV_CHECK(f, fr.id == 2 && jiwa_frame_op_is(&fr, "health"));
  SRV_CHECK(f, fr.body_len == 1 && fr.body[0] == 0x80);
  free(buf);
  SRV_CHECK(f, srv_send_text(fd, 2, "reply", "ok") == 0);
  srv_wait_close(fd);
}

typedef struct {
  char text[256];
  int n;
  uint64_t id;
} deltas_t;

static void collect(const jiwa_client_frame_t *d, void *ud) {
  deltas_t *ds = ud;
  ds->n++;
  ds->id = d->id;
  strncat(ds->text, field(d->body, d->body_len, "text"),
          sizeof ds->text - strlen(ds->text) - 1);
}

static void test_call_with_deltas(void **state) {
  (void)state;
  fake_t f;
  fake_start(&f, s_deltas, NULL);
  jiwa_client_t *c;
  char err[512];
  assert_rc(jiwa_client_connect(&c, f.path, 5000, err, sizeof err), 0);
  /* The default when the hello names no max_frame: jiwad's default. */
  assert_int_equal(jiwa_client_max_frame(c), JIWA_FRAME_MAX_DEFAULT);
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 1);
  jiwa_mp_put_kv_str(&w.pk, "text", "hi");
  deltas_t ds = {{0}, 0, 0};
  jiwa_client_frame_t fin;
  assert_rc(jiwa_client_call(c, "chat", w.sbuf.data, w.sbuf.size, 5000, collect,
                             &ds, &fin, err, sizeof err),
            0);
  jiwa_mp_writer_free(&w);
  assert_int_equal(ds.n, 3);
  assert_int_equal(ds.id, 1);
  assert_string_equal(ds.text, "abc");
  assert_int_equal(fin.id, 1);
  assert_string_equal(fin.op, "reply");
  assert_string_equal(field(fin.body, fin.body_len, "text"), "abc");
  assert_rc(jiwa_client_frame_error(&fin, NULL, 0, NULL, 0), 0);
  jiwa_client_frame_free(&fin);
  assert_null(fin.body);
  jiwa_client_frame_free(&fin); /* twice is fine */
  assert_rc(jiwa_client_call(c, "health", NULL, 0, 5000, NULL, NULL, &fin, err,
                             sizeof err),
            0);
  assert_int_equal(fin.id, 2);
  assert_string_equal(field(fin.body, fin.body_len, "text"), "ok");
  jiwa_client_frame_free(&fin);
  jiwa_client_close(c);
  fake_stop(&f);
}

static void s_interleave(fake_t *f, int fd) {
  jiwa_frame_t fr;
  uint8_t *buf;
  SRV_CHECK(f, srv_hello(fd, 1, 0) == 0);
  SRV_CHECK(f, srv_recv(fd, &fr, &buf) == 0 && fr.id == 1);
  free(buf);
  SRV_CHECK(f, srv_recv(fd, &fr, &buf) == 0 && fr.id == 2);
  free(buf);
  SRV_CHECK(f, srv_send_text(fd, 2, "delta", "b1") == 0);
  SRV_CHECK(f, srv_send_text(fd, 1, "delta", "a1") == 0);
  SRV_CHECK(f, srv_send_text(fd, 1, "reply", "A") == 0);
  SRV_CHECK(f, srv_send_text(fd, 2, "delta", "b2") == 0);
  SRV_CHECK(f, srv_send_text(fd, 2, "reply", "B") == 0);
  /* then two more, answered in reverse order, read with recv() */
  SRV_CHECK(f, srv_recv(fd, &fr, &buf) == 0 && fr.id == 3);
  free(buf);
  SRV_CHECK(f, srv_recv(fd, &fr, &buf) == 0 && fr.id == 4);
  free(buf);
  SRV_CHECK(f, srv_send_text(fd, 4, "reply", "D") == 0);
  SRV_CHECK(f, srv_send_text(fd, 3, "reply", "C") == 0);
  srv_wait_close(fd);
}

static void test_interleaved(void **state) {
  (void)state;
  fake_t f;
  fake_start(&f, s_interleave, NULL);
  jiwa_client_t *c;
  char err[512];
  assert_rc(jiwa_client_connect(&c, f.path, 5000, err, sizeof err), 0);
  uint64_t a = 0, b = 0;
  assert_rc(jiwa_client_send(c, "chat", NULL, 0, 5000, &a, err, sizeof err), 0);
  assert_rc(jiwa_client_send(c, "chat", NULL, 0, 5000, &b, err, sizeof err), 0);
  assert_int_equal(a, 1);
  assert_int_equal(b, 2);
  /* B first: A's frames that arrive meanwhile are kept for later. */
  deltas_t db = {{0}, 0, 0}, da = {{0}, 0, 0};
  jiwa_client_frame_t fin;
  assert_rc(jiwa_client_wait(c, b, 5000, collect, &db, &fin, err, sizeof err),
            0);
  assert_int_equal(fin.id, 2);
  assert_string_equal(field(fin.body, fin.body_len, "text"), "B");
  assert_string_equal(db.text, "b1b2");
  jiwa_client_frame_free(&fin);
  assert_rc(jiwa_client_wait(c, a, 0, collect, &da, &fin, err, sizeof err), 0);
  assert_int_equal(fin.id, 1);
  assert_string_equal(field(fin.body, fin.body_len, "text"), "A");
  assert_string_equal(da.text, "a1");
  assert_int_equal(da.n, 1);
  jiwa_client_frame_free(&fin);

  uint64_t ic, id;
  assert_rc(jiwa_client_send(c, "chat", NULL, 0, 5000, &ic, err, sizeof err),
            0);
  assert_rc(jiwa_client_send(c, "chat", NULL, 0, 5000, &id, err, sizeof err),
            0);
  assert_int_equal(ic, 3);
  assert_int_equal(id, 4);
  jiwa_client_frame_t fr;
  assert_rc(jiwa_client_recv(c, 5000, &fr, err, sizeof err), 0);
  assert_int_equal(fr.id, 4);
  assert_string_equal(fr.op, "reply");
  jiwa_client_frame_free(&fr);
  assert_rc(jiwa_client_recv(c, 5000, &fr, err, sizeof err), 0);
  assert_int_equal(fr.id, 3);
  jiwa_client_frame_free(&fr);
  /* nothing more: recv with 0 only looks */
  assert_rc(jiwa_client_recv(c, 0, &fr, err, sizeof err), JIWA_ETIMEDOUT);
  assert_null(fr.body);
  jiwa_client_close(c);
  fake_stop(&f);
}

static void s_error_reply(fake_t *f, int fd) {
  jiwa_frame_t fr;
  uint8_t *buf;
  SRV_CHECK(f, srv_hello(fd, 1, 0) == 0);
  SRV_CHECK(f, srv_recv(fd, &fr, &buf) == 0);
  free(buf);
  SRV_CHECK(f, srv_error(fd, 1, JIWA_ENOENT,
                         "no actor 'x'\x1b[31m; see `jiwa plugins`") == 0);
  /* an error body that lacks everything */
  SRV_CHECK(f, srv_recv(fd, &fr, &buf) == 0);
  free(buf);
  SRV_CHECK(f, srv_send(fd, 2, "error", NULL, 0) == 0);
  srv_wait_close(fd);
}

static void test_error_frame(void **state) {
  (void)state;
  fake_t f;
  fake_start(&f, s_error_reply, NULL);
  jiwa_client_t *c;
  char err[512], name[32], msg[256];
  assert_rc(jiwa_client_connect(&c, f.path, 5000, err, sizeof err), 0);
  jiwa_client_frame_t fin;
  assert_rc(jiwa_client_call(c, "plugin.reload", NULL, 0, 5000, NULL, NULL,
                             &fin, err, sizeof err),
            0);
  assert_string_equal(fin.op, "error");
  assert_rc(jiwa_client_frame_error(&fin, name, sizeof name, msg, sizeof msg),
            JIWA_ENOENT);
  assert_string_equal(name, "ENOENT");
  /* the escape character cannot reach a terminal */
  assert_string_equal(msg, "no actor 'x'?[31m; see `jiwa plugins`");
  jiwa_client_frame_free(&fin);

  assert_rc(jiwa_client_call(c, "x", NULL, 0, 5000, NULL, NULL, &fin, err,
                             sizeof err),
            0);
  assert_rc(jiwa_client_frame_error(&fin, name, sizeof name, msg, sizeof msg),
            JIWA_EPROTO);
  assert_string_equal(name, "EPROTO");
  assert_string_equal(msg, jiwa_strerror(JIWA_EPROTO));
  /* small buffers truncate */
  assert_rc(jiwa_client_frame_error(&fin, name, 3, msg, 1), JIWA_EPROTO);
  assert_string_equal(name, "EP");
  assert_string_equal(msg, "");
  jiwa_client_frame_free(&fin);
  jiwa_client_close(c);
  fake_stop(&f);
}

static void s_conn_error(fake_t *f, int fd) {
  jiwa_frame_t fr;
  uint8_t *buf;
  SRV_CHECK(f, srv_hello(fd, 1, 0) == 0);
  SRV_CHECK(f, srv_recv(fd, &fr, &buf) == 0);
  free(buf);
  SRV_CHECK(f, srv_error(fd, 0, JIWA_ESHUTDOWN, "jiwad is stopping") == 0);
}

static void test_connection_error_ends_call(void **state) {
  (void)state;
  fake_t f;
  fake_start(&f, s_conn_error, NULL);
  jiwa_client_t *c;
  char err[512], name[32], msg[256];
  assert_rc(jiwa_client_connect(&c, f.path, 5000, err, sizeof err), 0);
  jiwa_client_frame_t fin;
  assert_rc(jiwa_client_call(c, "health", NULL, 0, 5000, NULL, NULL, &fin, err,
                             sizeof err),
            0);
  assert_int_equal(fin.id, 0);
  assert_rc(jiwa_client_frame_error(&fin, name, sizeof name, msg, sizeof msg),
            JIWA_ESHUTDOWN);
  assert_string_equal(msg, "jiwad is stopping");
  jiwa_client_frame_free(&fin);
  fake_stop(&f); /* the fake has closed: the next call sees it */
  assert_rc(jiwa_client_call(c, "health", NULL, 0, 5000, NULL, NULL, &fin, err,
                             sizeof err),
            JIWA_EIO);
  assert_contains(err, "closed the connection");
  /* broken is sticky */
  assert_rc(jiwa_client_send(c, "health", NULL, 0, 5000, NULL, err, sizeof err),
            JIWA_EIO);
  jiwa_client_close(c);
}

/* ---- hostile frames ------------------------------------------------------ */

static void s_oversized(fake_t *f, int fd) {
  jiwa_frame_t fr;
  uint8_t *buf;
  SRV_CHECK(f, srv_hello(fd, 1, 1024) == 0);
  SRV_CHECK(f, srv_recv(fd, &fr, &buf) == 0);
  free(buf);
  /* a 1 GiB header and a little payload in one write (the client may
   * close as soon as it has read the header) */
  static const uint8_t big[] = {0x40, 0, 0, 0, '0', '1', '2', '3', '4', '5'};
  SRV_CHECK(f, srv_write(fd, big, sizeof big) == 0);
  srv_wait_close(fd); /* the rest never comes */
}

static void test_oversized_frame(void **state) {
  (void)state;
  fake_t f;
  fake_start(&f, s_oversized, NULL);
  jiwa_client_t *c;
  char err[512];
  assert_rc(jiwa_client_connect(&c, f.path, 5000, err, sizeof err), 0);
  jiwa_client_frame_t fin;
  uint64_t t0 = now_ms();
  assert_rc(jiwa_client_call(c, "health", NULL, 0, 10000, NULL, NULL, &fin, err,
                             sizeof err),
            JIWA_ETOOBIG);
  assert_true(now_ms() - t0 < 5000);
  assert_contains(err, "1073741824 bytes, over the 1024-byte limit");
  assert_null(fin.body);
  /* the stream is out of step for good */
  assert_rc(jiwa_client_recv(c, 100, &fin, err, sizeof err), JIWA_ETOOBIG);
  assert_rc(jiwa_client_send(c, "health", NULL, 0, 100, NULL, err, sizeof err),
            JIWA_ETOOBIG);
  jiwa_client_close(c);
  fake_stop(&f);
}

static void s_truncated(fake_t *f, int fd) {
  jiwa_frame_t fr;
  uint8_t *buf;
  SRV_CHECK(f, srv_hello(fd, 1, 0) == 0);
  SRV_CHECK(f, srv_recv(fd, &fr, &buf) == 0);
  free(buf);
  send_header(fd, 100);
  SRV_CHECK(f, srv_write(fd, "\x83\xa2id\x01\xa2op", 8) == 0);
}

static void test_truncated_frame(void **state) {
  (void)state;
  fake_t f;
  fake_start(&f, s_truncated, NULL);
  jiwa_client_t *c;
  char err[512];
  assert_rc(jiwa_client_connect(&c, f.path, 5000, err, sizeof err), 0);
  jiwa_client_frame_t fin;
  assert_rc(jiwa_client_call(c, "health", NULL, 0, 5000, NULL, NULL, &fin, err,
                             sizeof err),
            JIWA_EIO);
  assert_contains(err, "in the middle of a frame (8 of 100 bytes received)");
  jiwa_client_close(c);
  fake_stop(&f);
}

static void s_malformed(fake_t *f, int fd) {
  jiwa_frame_t fr;
  uint8_t *buf;
  SRV_CHECK(f, srv_hello(fd, 1, 0) == 0);
  SRV_CHECK(f, srv_recv(fd, &fr, &buf) == 0);
  free(buf);
  /* well delimited, but {"id": "x"} is no frame */
  static const uint8_t bad[] = {0x81, 0xa2, 'i', 'd', 0xa1, 'x'};
  send_header(fd, sizeof bad);
  SRV_CHECK(f, srv_write(fd, bad, sizeof bad) == 0);
  SRV_CHECK(f, srv_send_text(fd, 1, "reply", "fine") == 0);
  srv_wait_close(fd);
}

static void test_malformed_frame_skipped(void **state) {
  (void)state;
  fake_t f;
  fake_start(&f, s_malformed, NULL);
  jiwa_client_t *c;
  char err[512];
  assert_rc(jiwa_client_connect(&c, f.path, 5000, err, sizeof err), 0);
  uint64_t id;
  assert_rc(jiwa_client_send(c, "health", NULL, 0, 5000, &id, err, sizeof err),
            0);
  jiwa_client_frame_t fr;
  assert_rc(jiwa_client_recv(c, 5000, &fr, err, sizeof err), JIWA_EPROTO);
  assert_contains(err, "malformed frame");
  assert_contains(err, "'id' must be an unsigned integer");
  /* the stream is still in step */
  assert_rc(jiwa_client_recv(c, 5000, &fr, err, sizeof err), 0);
  assert_int_equal(fr.id, id);
  assert_string_equal(field(fr.body, fr.body_len, "text"), "fine");
  jiwa_client_frame_free(&fr);
  jiwa_client_close(c);
  fake_stop(&f);
}

/* ---- timeouts ------------------------------------------------------------ */

static void s_late(fake_t *f, int fd) {
  jiwa_frame_t fr;
  uint8_t *buf;
  SRV_CHECK(f, srv_hello(fd, 1, 0) == 0);
  SRV_CHECK(f, srv_recv(fd, &fr, &buf) == 0 && fr.id == 1);
  free(buf);
  /* no answer until the client has given up and asked again */
  SRV_CHECK(f, srv_recv(fd, &fr, &buf) == 0 && fr.id == 2);
  free(buf);
  SRV_CHECK(f, srv_send_text(fd, 1, "delta", "late") == 0);
  SRV_CHECK(f, srv_send_text(fd, 1, "reply", "late") == 0);
  SRV_CHECK(f, srv_send_text(fd, 2, "reply", "two") == 0);
  srv_wait_close(fd);
}

static void test_timeout(void **state) {
  (void)state;
  fake_t f;
  fake_start(&f, s_late, NULL);
  jiwa_client_t *c;
  char err[512];
  assert_rc(jiwa_client_connect(&c, f.path, 5000, err, sizeof err), 0);
  jiwa_client_frame_t fin;
  uint64_t t0 = now_ms();
  assert_rc(jiwa_client_call(c, "chat", NULL, 0, 200, NULL, NULL, &fin, err,
                             sizeof err),
            JIWA_ETIMEDOUT);
  uint64_t dt = now_ms() - t0;
  assert_true(dt >= 190 && dt < 3000);
  assert_contains(err, "no answer from jiwad to 'chat' within 200 ms");
  /* the client is still usable, and the late answer to 1 is dropped */
  assert_rc(jiwa_client_call(c, "chat", NULL, 0, 5000, NULL, NULL, &fin, err,
                             sizeof err),
            0);
  assert_int_equal(fin.id, 2);
  assert_string_equal(field(fin.body, fin.body_len, "text"), "two");
  jiwa_client_frame_free(&fin);
  assert_rc(jiwa_client_recv(c, 100, &fin, err, sizeof err), JIWA_ETIMEDOUT);
  jiwa_client_close(c);
  fake_stop(&f);
}

static void s_split(fake_t *f, int fd) {
  jiwa_frame_t fr;
  uint8_t *buf;
  SRV_CHECK(f, srv_hello(fd, 1, 0) == 0);
  SRV_CHECK(f, srv_recv(fd, &fr, &buf) == 0);
  free(buf);
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 1);
  jiwa_mp_put_kv_str(&w.pk, "text", "split in two");
  jiwa_mp_writer_t fw;
  jiwa_mp_writer_init(&fw);
  jiwa_frame_write(&fw, 1, "reply", w.sbuf.data, w.sbuf.size);
  /* header and half the payload, then wait until the client timed out */
  size_t half = 4 + (fw.sbuf.size - 4) / 2;
  int ok = srv_write(fd, fw.sbuf.data, 2) == 0; /* half a header first */
  ok = ok && sem_wait(&f->go) == 0;
  ok = ok && srv_write(fd, fw.sbuf.data + 2, half - 2) == 0;
  ok = ok && sem_wait(&f->go) == 0;
  ok = ok && srv_write(fd, fw.sbuf.data + half, fw.sbuf.size - half) == 0;
  jiwa_mp_writer_free(&w);
  jiwa_mp_writer_free(&fw);
  SRV_CHECK(f, ok);
  srv_wait_close(fd);
}

static void test_partial_frame_survives_timeout(void **state) {
  (void)state;
  fake_t f;
  fake_start(&f, s_split, NULL);
  jiwa_client_t *c;
  char err[512];
  assert_rc(jiwa_client_connect(&c, f.path, 5000, err, sizeof err), 0);
  uint64_t id;
  assert_rc(jiwa_client_send(c, "chat", NULL, 0, 5000, &id, err, sizeof err),
            0);
  jiwa_client_frame_t fin;
  assert_rc(jiwa_client_wait(c, id, 100, NULL, NULL, &fin, err, sizeof err),
            JIWA_ETIMEDOUT);
  sem_post(&f.go);
  assert_rc(jiwa_client_wait(c, id, 100, NULL, NULL, &fin, err, sizeof err),
            JIWA_ETIMEDOUT);
  sem_post(&f.go);
  assert_rc(jiwa_client_wait(c, id, 5000, NULL, NULL, &fin, err, sizeof err),
            0);
  assert_string_equal(field(fin.body, fin.body_len, "text"), "split in two");
  jiwa_client_frame_free(&fin);
  jiwa_client_close(c);
  fake_stop(&f);
}

static void s_abandon(fake_t *f, int fd) {
  jiwa_frame_t fr;
  uint8_t *buf;
  SRV_CHECK(f, srv_hello(fd, 1, 0) == 0);
  SRV_CHECK(f, srv_recv(fd, &fr, &buf) == 0 && fr.id == 1);
  free(buf);
  SRV_CHECK(f, srv_recv(fd, &fr, &buf) == 0 && fr.id == 2);
  free(buf);
  SRV_CHECK(f, srv_send_text(fd, 1, "delta", "x") == 0);
  SRV_CHECK(f, srv_send_text(fd, 1, "reply", "x") == 0);
  SRV_CHECK(f, srv_send_text(fd, 2, "reply", "y") == 0);
  SRV_CHECK(f, srv_recv(fd, &fr, &buf) == 0 && fr.id == 3);
  free(buf);
  SRV_CHECK(f, srv_send_text(fd, 3, "delta", "late") == 0);
  SRV_CHECK(f, srv_send_text(fd, 3, "reply", "late") == 0);
  SRV_CHECK(f, srv_send_text(fd, 4, "reply", "never sent") == 0);
  srv_wait_close(fd);
}

static void test_abandon(void **state) {
  (void)state;
  fake_t f;
  fake_start(&f, s_abandon, NULL);
  jiwa_client_t *c;
  char err[512];
  assert_rc(jiwa_client_connect(&c, f.path, 5000, err, sizeof err), 0);
  assert_rc(jiwa_client_abandon(c, 1), JIWA_EINVAL); /* not sent yet */
  assert_rc(jiwa_client_abandon(c, 0), JIWA_EINVAL);
  uint64_t a, b, d;
  assert_rc(jiwa_client_send(c, "chat", NULL, 0, 5000, &a, err, sizeof err), 0);
  assert_rc(jiwa_client_send(c, "chat", NULL, 0, 5000, &b, err, sizeof err), 0);
  /* waiting for b queues a's delta and reply; abandoning a frees them */
  jiwa_client_frame_t fr;
  assert_rc(jiwa_client_wait(c, b, 5000, NULL, NULL, &fr, err, sizeof err), 0);
  assert_string_equal(field(fr.body, fr.body_len, "text"), "y");
  jiwa_client_frame_free(&fr);
  assert_rc(jiwa_client_abandon(c, a), 0);
  /* abandoned before its frames arrive: they are dropped on arrival; a
   * frame for an id never sent is handed out as it is */
  assert_rc(jiwa_client_send(c, "chat", NULL, 0, 5000, &d, err, sizeof err), 0);
  assert_rc(jiwa_client_abandon(c, d), 0);
  assert_rc(jiwa_client_abandon(c, d), 0); /* idempotent */
  assert_rc(jiwa_client_recv(c, 5000, &fr, err, sizeof err), 0);
  assert_int_equal(fr.id, 4);
  assert_string_equal(field(fr.body, fr.body_len, "text"), "never sent");
  jiwa_client_frame_free(&fr);
  assert_rc(jiwa_client_recv(c, 100, &fr, err, sizeof err), JIWA_ETIMEDOUT);
  jiwa_client_close(c);
  fake_stop(&f);
}

/* ---- sending ------------------------------------------------------------- */

static void s_one_echo(fake_t *f, int fd) {
  jiwa_frame_t fr;
  uint8_t *buf;
  SRV_CHECK(f, srv_hello(fd, 1, 256) == 0);
  SRV_CHECK(f, srv_recv(fd, &fr, &buf) == 0);
  SRV_CHECK(f, jiwa_frame_op_is(&fr, "chat"));
  SRV_CHECK(f, srv_send(fd, fr.id, "reply", fr.body, fr.body_len) == 0);
  free(buf);
  srv_wait_close(fd);
}

static void test_send_validation(void **state) {
  (void)state;
  fake_t f;
  fake_start(&f, s_one_echo, NULL);
  jiwa_client_t *c;
  char err[512];
  assert_rc(jiwa_client_connect(&c, f.path, 5000, err, sizeof err), 0);
  uint64_t id = 77;
  assert_rc(jiwa_client_send(c, "", NULL, 0, 100, &id, err, sizeof err),
            JIWA_EINVAL);
  assert_rc(jiwa_client_send(c, NULL, NULL, 0, 100, &id, err, sizeof err),
            JIWA_EINVAL);
  char longop[66];
  memset(longop, 'o', 65);
  longop[65] = '\0';
  assert_rc(jiwa_client_send(c, longop, NULL, 0, 100, &id, err, sizeof err),
            JIWA_EINVAL);
  static const uint8_t not_map[] = {0x91, 0x01};
  assert_rc(jiwa_client_send(c, "chat", not_map, sizeof not_map, 100, &id, err,
                             sizeof err),
            JIWA_EINVAL);
  assert_contains(err, "exactly one msgpack map");
  static const uint8_t trailing[] = {0x80, 0x01};
  assert_rc(jiwa_client_send(c, "chat", trailing, sizeof trailing, 100, &id,
                             err, sizeof err),
            JIWA_EINVAL);
  static const uint8_t truncated[] = {0x81, 0xa1};
  assert_rc(jiwa_client_send(c, "chat", truncated, sizeof truncated, 100, &id,
                             err, sizeof err),
            JIWA_EINVAL);
  /* 15 levels of nesting inside the body is the most a frame holds */
  uint8_t deep[2 + 15];
  deep[0] = 0x81; /* {"": [[[...]]]} */
  deep[1] = 0xa0;
  for (int i = 0; i < 15; i++)
    deep[2 + i] = i < 14 ? 0x91 : 0x90;
  assert_rc(
      jiwa_client_send(c, "chat", deep, sizeof deep, 100, &id, err, sizeof err),
      JIWA_EINVAL);
  assert_contains(err, "nested at most 15 levels");
  /* over the hello's max_frame: refused before anything is written */
  uint8_t big[300];
  big[0] = 0x81;
  big[1] = 0xa1;
  big[2] = 'k';
  big[3] = 0xda; /* str16 */
  big[4] = (uint8_t)((sizeof big - 6) >> 8);
  big[5] = (uint8_t)(sizeof big - 6);
  memset(big + 6, 'x', sizeof big - 6);
  assert_rc(
      jiwa_client_send(c, "chat", big, sizeof big, 100, &id, err, sizeof err),
      JIWA_ETOOBIG);
  assert_contains(err, "over the 256 bytes jiwad accepts");
  assert_int_equal(id, 77); /* untouched on error */
  /* and the connection is still good */
  jiwa_client_frame_t fin;
  static const uint8_t ok[] = {0x81, 0xa1, 'k', 0xa1, 'v'};
  assert_rc(jiwa_client_call(c, "chat", ok, sizeof ok, 5000, NULL, NULL, &fin,
                             err, sizeof err),
            0);
  assert_string_equal(field(fin.body, fin.body_len, "k"), "v");
  jiwa_client_frame_free(&fin);
  jiwa_client_close(c);
  fake_stop(&f);
}

#define FLOOD_FRAMES 2000
#define FLOOD_TEXT 2000

static void s_flood(fake_t *f, int fd) {
  jiwa_frame_t fr;
  uint8_t *buf;
  SRV_CHECK(f, srv_hello(fd, 1, 4 << 20) == 0);
  /* 4 MB of answers to an id the client never sent, written before the
   * server reads anything: a client that only writes would deadlock. */
  char *text = malloc(FLOOD_TEXT + 1);
  SRV_CHECK(f, text != NULL);
  memset(text, 'z', FLOOD_TEXT);
  text[FLOOD_TEXT] = '\0';
  int ok = 1;
  for (int i = 0; i < FLOOD_FRAMES && ok; i++)
    ok = srv_send_text(fd, 99, "delta", text) == 0;
  free(text);
  SRV_CHECK(f, ok);
  SRV_CHECK(f, srv_recv(fd, &fr, &buf) == 0);
  SRV_CHECK(f, fr.body_len > (1u << 20));
  free(buf);
  SRV_CHECK(f, srv_send_text(fd, fr.id, "reply", "got it") == 0);
  srv_wait_close(fd);
}

static void test_no_deadlock_when_peer_writes_first(void **state) {
  (void)state;
  fake_t f;
  fake_start(&f, s_flood, NULL);
  jiwa_client_t *c;
  char err[512];
  assert_rc(jiwa_client_connect(&c, f.path, 5000, err, sizeof err), 0);
  size_t n = (1u << 20) + 100;
  uint8_t *body = malloc(n + 16);
  assert_non_null(body);
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 1);
  jiwa_mp_put_str(&w.pk, "text");
  msgpack_pack_str(&w.pk, n);
  memset(body, 'q', n);
  msgpack_pack_str_body(&w.pk, body, n);
  free(body);
  jiwa_client_frame_t fin;
  assert_rc(jiwa_client_call(c, "chat", w.sbuf.data, w.sbuf.size, 20000, NULL,
                             NULL, &fin, err, sizeof err),
            0);
  jiwa_mp_writer_free(&w);
  assert_string_equal(field(fin.body, fin.body_len, "text"), "got it");
  jiwa_client_frame_free(&fin);
  int got = 0;
  jiwa_client_frame_t fr;
  while (jiwa_client_recv(c, 0, &fr, err, sizeof err) == 0) {
    assert_int_equal(fr.id, 99);
    got++;
    jiwa_client_frame_free(&fr);
  }
  assert_int_equal(got, FLOOD_FRAMES);
  jiwa_client_close(c);
  fake_stop(&f);
}

/* ---- msgpack → JSON ----------------------------------------------------- */

/* A tiny strict JSON checker: the output must parse as exactly one value. */
static const char *js_value(const char *p, int depth);

static const char *js_ws(const char *p) {
  while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
    p++;
  return p;
}

static const char *js_string(const char *p) {
  if (*p++ != '"')
    return NULL;
  for (;;) {
    unsigned char ch = (unsigned char)*p;
    if (ch == '"')
      return p + 1;
    if (ch < 0x20)
      return NULL;
    if (ch == '\\') {
      p++;
      if (*p == 'u') {
        for (int i = 1; i <= 4; i++)
          if (!strchr("0123456789abcdefABCDEF", p[i]) || !p[i])
            return NULL;
        p += 5;
        continue;
      }
      if (!*p || !strchr("\"\\/bfnrt", *p))
        return NULL;
    }
    p++;
  }
}

static const char *js_value(const char *p, int depth) {
  if (depth > 64)
    return NULL;
  p = js_ws(p);
  if (*p == '{' || *p == '[') {
    char close = *p == '{' ? '}' : ']';
    int obj = *p == '{';
    p = js_ws(p + 1);
    if (*p == close)
      return p + 1;
    for (;;) {
      if (obj) {
        p = js_string(js_ws(p));
        if (!p)
          return NULL;
        p = js_ws(p);
        if (*p++ != ':')
          return NULL;
      }
      p = js_value(p, depth + 1);
      if (!p)
        return NULL;
      p = js_ws(p);
      if (*p == close)
        return p + 1;
      if (*p++ != ',')
        return NULL;
    }
  }
  if (*p == '"')
    return js_string(p);
  if (!strncmp(p, "true", 4) || !strncmp(p, "null", 4))
    return p + 4;
  if (!strncmp(p, "false", 5))
    return p + 5;
  char *end;
  strtod(p, &end);
  return end == p ? NULL : end;
}

static void js_assert_valid(const char *s) {
  const char *e = js_value(s, 0);
  if (!e || *js_ws(e) != '\0')
    fail_msg("not valid JSON: %s", s);
}

/* Render the writer's bytes and compare. */
static void expect_json(jiwa_mp_writer_t *w, const char *want) {
  char *js = NULL;
  size_t n = 0;
  assert_rc(jiwa_mp_to_json(w->sbuf.data, w->sbuf.size, &js, &n), 0);
  assert_non_null(js);
  assert_int_equal(n, strlen(js));
  assert_string_equal(js, want);
  js_assert_valid(js);
  free(js);
  jiwa_mp_writer_free(w);
  jiwa_mp_writer_init(w);
}

static void expect_json_bytes(const void *b, size_t len, const char *want) {
  char *js = NULL;
  assert_rc(jiwa_mp_to_json(b, len, &js, NULL), 0);
  assert_string_equal(js, want);
  js_assert_valid(js);
  free(js);
}

static void pack_raw_str(msgpack_packer *pk, const char *s, size_t n) {
  msgpack_pack_str(pk, n);
  msgpack_pack_str_body(pk, s, n);
}

static void test_json_scalars(void **state) {
  (void)state;
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_nil(&w.pk);
  expect_json(&w, "null");
  msgpack_pack_true(&w.pk);
  expect_json(&w, "true");
  msgpack_pack_false(&w.pk);
  expect_json(&w, "false");
  msgpack_pack_uint64(&w.pk, 0);
  expect_json(&w, "0");
  msgpack_pack_int64(&w.pk, -1);
  expect_json(&w, "-1");
  msgpack_pack_int64(&w.pk, -33);
  expect_json(&w, "-33");
  msgpack_pack_int64(&w.pk, INT64_MIN);
  expect_json(&w, "-9223372036854775808");
  msgpack_pack_uint64(&w.pk, UINT64_MAX);
  expect_json(&w, "18446744073709551615");
  msgpack_pack_double(&w.pk, 1.5);
  expect_json(&w, "1.5");
  msgpack_pack_double(&w.pk, 0.1);
  expect_json(&w, "0.1");
  msgpack_pack_double(&w.pk, 1e300);
  expect_json(&w, "1e+300");
  msgpack_pack_double(&w.pk, -0.0);
  expect_json(&w, "-0");
  msgpack_pack_float(&w.pk, 0.5f);
  expect_json(&w, "0.5");
  msgpack_pack_double(&w.pk, 0.1 + 0.2); /* needs all 17 digits */
  expect_json(&w, "0.30000000000000004");
  msgpack_pack_double(&w.pk, 901709.4);
  expect_json(&w, "901709.4");
  msgpack_pack_float(&w.pk, 0.1f); /* a float32 is shown as its double */
  expect_json(&w, "0.10000000149011612");
  msgpack_pack_double(&w.pk, 5e-324);
  expect_json(&w, "4.94065645841247e-324");
  msgpack_pack_double(&w.pk, NAN);
  expect_json(&w, "null");
  msgpack_pack_double(&w.pk, INFINITY);
  expect_json(&w, "null");
  msgpack_pack_float(&w.pk, -INFINITY);
  expect_json(&w, "null");
  /* ext of any size is null */
  static const uint8_t fixext1[] = {0xd4, 0x05, 0xaa};
  expect_json_bytes(fixext1, sizeof fixext1, "null");
  static const uint8_t ext8[] = {0xc7, 0x02, 0x7f, 0x01, 0x02};
  expect_json_bytes(ext8, sizeof ext8, "null");
  jiwa_mp_writer_free(&w);
}

static void test_json_strings(void **state) {
  (void)state;
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  pack_raw_str(&w.pk, "", 0);
  expect_json(&w, "\"\"");
  pack_raw_str(&w.pk, "a\"b\\c/d", 7);
  expect_json(&w, "\"a\\\"b\\\\c/d\"");
  pack_raw_str(&w.pk, "\b\f\n\r\t", 5);
  expect_json(&w, "\"\\b\\f\\n\\r\\t\"");
  pack_raw_str(&w.pk, "\x00\x01\x1f\x7f", 4);
  expect_json(&w, "\"\\u0000\\u0001\\u001f\\u007f\"");
  /* valid UTF-8 passes as is: 2, 3 and 4 byte forms */
  pack_raw_str(&w.pk, "h\xc3\xa9llo \xe2\x82\xac \xf0\x9d\x84\x9e", 15);
  expect_json(&w, "\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9d\x84\x9e\"");
  /* invalid: one replacement per bad byte */
  pack_raw_str(&w.pk,
               "a\xff"
               "b",
               3);
  expect_json(&w, "\"a\\ufffdb\"");
  pack_raw_str(&w.pk, "\xc0\xaf", 2); /* overlong '/' */
  expect_json(&w, "\"\\ufffd\\ufffd\"");
  pack_raw_str(&w.pk, "\xed\xa0\x80", 3); /* a surrogate */
  expect_json(&w, "\"\\ufffd\\ufffd\\ufffd\"");
  pack_raw_str(&w.pk, "\xf4\x90\x80\x80", 4); /* above U+10FFFF */
  expect_json(&w, "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
  pack_raw_str(&w.pk, "x\xe2\x82", 3); /* cut at the end */
  expect_json(&w, "\"x\\ufffd\\ufffd\"");
  pack_raw_str(&w.pk, "\x80", 1); /* lone continuation */
  expect_json(&w, "\"\\ufffd\"");
  /* str8 / str16 headers decode the same */
  static const uint8_t str8[] = {0xd9, 0x03, 'a', 'b', 'c'};
  expect_json_bytes(str8, sizeof str8, "\"abc\"");
  static const uint8_t str16[] = {0xda, 0x00, 0x01, 'z'};
  expect_json_bytes(str16, sizeof str16, "\"z\"");
  jiwa_mp_writer_free(&w);
}

static void test_json_bin(void **state) {
  (void)state;
  static const struct {
    const char *in;
    size_t n;
    const char *out;
  } cases[] = {{"", 0, "\"\""},
               {"f", 1, "\"Zg==\""},
               {"fo", 2, "\"Zm8=\""},
               {"foo", 3, "\"Zm9v\""},
               {"foob", 4, "\"Zm9vYg==\""},
               {"fooba", 5, "\"Zm9vYmE=\""},
               {"foobar", 6, "\"Zm9vYmFy\""},
               {"\xff\xfe", 2, "\"//4=\""}};
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    msgpack_pack_bin(&w.pk, cases[i].n);
    msgpack_pack_bin_body(&w.pk, cases[i].in, cases[i].n);
    expect_json(&w, cases[i].out);
  }
  jiwa_mp_writer_free(&w);
}

static void test_json_containers(void **state) {
  (void)state;
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_array(&w.pk, 0);
  expect_json(&w, "[]");
  msgpack_pack_map(&w.pk, 0);
  expect_json(&w, "{}");
  msgpack_pack_array(&w.pk, 4);
  msgpack_pack_int(&w.pk, 1);
  jiwa_mp_put_str(&w.pk, "a");
  msgpack_pack_nil(&w.pk);
  msgpack_pack_map(&w.pk, 1);
  jiwa_mp_put_kv_int(&w.pk, "k", -2);
  expect_json(&w, "[1,\"a\",null,{\"k\":-2}]");
  /* keys that are not strings still make JSON object keys */
  msgpack_pack_map(&w.pk, 10);
  jiwa_mp_put_kv_int(&w.pk, "s\"", 1);
  msgpack_pack_int(&w.pk, 2);
  jiwa_mp_put_str(&w.pk, "two");
  msgpack_pack_int(&w.pk, -5);
  msgpack_pack_int(&w.pk, 0);
  msgpack_pack_true(&w.pk);
  msgpack_pack_nil(&w.pk);
  msgpack_pack_nil(&w.pk);
  msgpack_pack_int(&w.pk, 1);
  msgpack_pack_double(&w.pk, 1.5);
  msgpack_pack_int(&w.pk, 0);
  msgpack_pack_bin(&w.pk, 2);
  msgpack_pack_bin_body(&w.pk, "ab", 2);
  msgpack_pack_int(&w.pk, 1);
  msgpack_pack_array(&w.pk, 1); /* [{"x": 1}] as a key */
  msgpack_pack_map(&w.pk, 1);
  jiwa_mp_put_kv_int(&w.pk, "x", 1);
  msgpack_pack_int(&w.pk, 1);
  msgpack_pack_map(&w.pk, 0);
  msgpack_pack_int(&w.pk, 2);
  msgpack_pack_ext(&w.pk, 1, 3);
  msgpack_pack_ext_body(&w.pk, "e", 1);
  msgpack_pack_int(&w.pk, 3);
  expect_json(&w, "{\"s\\\"\":1,\"2\":\"two\",\"-5\":0,\"true\":null,"
                  "\"null\":1,\"1.5\":0,\"YWI=\":1,\"<array>\":1,"
                  "\"<map>\":2,\"<ext>\":3}");
  /* array16 / map16 headers */
  static const uint8_t arr16[] = {0xdc, 0x00, 0x02, 0xc3, 0xc2};
  expect_json_bytes(arr16, sizeof arr16, "[true,false]");
  static const uint8_t map16[] = {0xde, 0x00, 0x01, 0xa1, 'a', 0x07};
  expect_json_bytes(map16, sizeof map16, "{\"a\":7}");
  jiwa_mp_writer_free(&w);
}

static void test_json_limits_and_errors(void **state) {
  (void)state;
  char *js = (char *)"untouched";
  size_t n = 99;
  /* 16 nested arrays is the limit, 17 is refused */
  uint8_t deep[17];
  memset(deep, 0x91, sizeof deep);
  deep[15] = 0x90;
  assert_rc(jiwa_mp_to_json(deep, 16, &js, &n), 0);
  assert_string_equal(js, "[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]");
  js_assert_valid(js);
  free(js);
  deep[15] = 0x91;
  deep[16] = 0x90;
  assert_rc(jiwa_mp_to_json(deep, 17, &js, &n), JIWA_ETOOBIG);
  assert_null(js);
  assert_int_equal(n, 0);
  static const uint8_t truncated[] = {0x92, 0x01};
  assert_rc(jiwa_mp_to_json(truncated, sizeof truncated, &js, NULL),
            JIWA_EPROTO);
  static const uint8_t trailing[] = {0x01, 0x02};
  assert_rc(jiwa_mp_to_json(trailing, sizeof trailing, &js, NULL), JIWA_EPROTO);
  static const uint8_t reserved[] = {0xc1};
  assert_rc(jiwa_mp_to_json(reserved, sizeof reserved, &js, NULL), JIWA_EPROTO);
  static const uint8_t huge_count[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
  assert_rc(jiwa_mp_to_json(huge_count, sizeof huge_count, &js, NULL),
            JIWA_EPROTO);
  assert_rc(jiwa_mp_to_json(truncated, 0, &js, NULL), JIWA_EPROTO);
  assert_rc(jiwa_mp_to_json(NULL, 1, &js, NULL), JIWA_EINVAL);
  assert_rc(jiwa_mp_to_json(truncated, 1, NULL, NULL), JIWA_EINVAL);
}

/* A key that is a map of maps of strings full of quotes must not blow up:
 * container keys are named, not rendered (no escaping of escaping). */
static void test_json_output_is_linear(void **state) {
  (void)state;
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  for (int i = 0; i < 15; i++)
    msgpack_pack_map(&w.pk, 1);
  pack_raw_str(&w.pk, "\"\"\"\"", 4);
  msgpack_pack_nil(&w.pk);
  for (int i = 0; i < 14; i++)
    msgpack_pack_nil(&w.pk);
  char *js;
  size_t n;
  assert_rc(jiwa_mp_to_json(w.sbuf.data, w.sbuf.size, &js, &n), 0);
  assert_true(n < 64);
  assert_string_equal(js, "{\"<map>\":null}");
  free(js);
  jiwa_mp_writer_free(&w);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hello),
      cmocka_unit_test(test_proto_mismatch),
      cmocka_unit_test(test_not_jiwad_garbage),
      cmocka_unit_test(test_not_jiwad_first_frame),
      cmocka_unit_test(test_refused_at_connect),
      cmocka_unit_test(test_closed_without_hello),
      cmocka_unit_test(test_hello_timeout),
      cmocka_unit_test(test_missing_socket),
      cmocka_unit_test(test_stale_socket),
      cmocka_unit_test(test_not_a_socket_file),
      cmocka_unit_test(test_permission_denied),
      cmocka_unit_test(test_bad_arguments),
      cmocka_unit_test(test_call_with_deltas),
      cmocka_unit_test(test_interleaved),
      cmocka_unit_test(test_error_frame),
      cmocka_unit_test(test_connection_error_ends_call),
      cmocka_unit_test(test_oversized_frame),
      cmocka_unit_test(test_truncated_frame),
      cmocka_unit_test(test_malformed_frame_skipped),
      cmocka_unit_test(test_timeout),
      cmocka_unit_test(test_partial_frame_survives_timeout),
      cmocka_unit_test(test_abandon),
      cmocka_unit_test(test_send_validation),
      cmocka_unit_test(test_no_deadlock_when_peer_writes_first),
      cmocka_unit_test(test_json_scalars),
      cmocka_unit_test(test_json_strings),
      cmocka_unit_test(test_json_bin),
      cmocka_unit_test(test_json_containers),
      cmocka_unit_test(test_json_limits_and_errors),
      cmocka_unit_test(test_json_output_is_linear),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
