/* Small helpers shared by the tests: temp dirs, file copies, log capture,
 * message bodies. Header-only so every test stays one file. */
#ifndef JIWA_TEST_JT_H
#define JIWA_TEST_JT_H

#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jiwa/mp.h"
#include "jiwa_log.h"

/* A fresh private directory under $TMPDIR; removed with jt_rmtree. */
static inline void jt_tempdir(char *out, size_t cap, const char *tag) {
  const char *t = getenv("TMPDIR");
  snprintf(out, cap, "%s/jiwa-%s-XXXXXX", t && *t ? t : "/tmp", tag);
  if (!mkdtemp(out)) {
    perror("mkdtemp");
    abort();
  }
}

static inline int jt__rm(const char *p, const struct stat *st, int flag,
                         struct FTW *f) {
  (void)st;
  (void)flag;
  (void)f;
  return remove(p);
}

static inline void jt_rmtree(const char *dir) {
  nftw(dir, jt__rm, 16, FTW_DEPTH | FTW_PHYS);
}

/* Copy @p src to @p dst atomically (temp file + rename), mode 0755. */
static inline int jt_copy(const char *src, const char *dst) {
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp%ld", dst, (long)getpid());
  int in = open(src, O_RDONLY), out = -1, rc = -1;
  if (in < 0)
    return -1;
  out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0755);
  if (out >= 0) {
    char buf[65536];
    ssize_t n;
    rc = 0;
    while ((n = read(in, buf, sizeof buf)) > 0)
      if (write(out, buf, (size_t)n) != n)
        rc = -1;
    close(out);
    fchmod(out, 0755);
    chmod(tmp, 0755);
    if (rc == 0)
      rc = rename(tmp, dst);
  }
  close(in);
  return rc;
}

/* Path of a built plugin: $JIWA_PLUGIN_OUT/<name>.so or test plugins. */
static inline void jt_plugin_path(char *out, size_t cap, const char *env,
                                  const char *name) {
  const char *d = getenv(env);
  snprintf(out, cap, "%s/%s.so", d ? d : ".", name);
}

/* ---- log capture -------------------------------------------------------- */
typedef struct {
  pthread_mutex_t mu;
  char buf[65536];
  size_t len;
} jt_logcap_t;

static jt_logcap_t jt_logs = {PTHREAD_MUTEX_INITIALIZER, {0}, 0};

static inline void jt__sink(int level, const char *line, void *ud) {
  (void)level;
  (void)ud;
  pthread_mutex_lock(&jt_logs.mu);
  size_t n = strlen(line);
  if (jt_logs.len + n + 2 < sizeof jt_logs.buf) {
    memcpy(jt_logs.buf + jt_logs.len, line, n);
    jt_logs.len += n;
    jt_logs.buf[jt_logs.len++] = '\n';
    jt_logs.buf[jt_logs.len] = '\0';
  }
  pthread_mutex_unlock(&jt_logs.mu);
}

static inline void jt_logs_capture(void) {
  pthread_mutex_lock(&jt_logs.mu);
  jt_logs.len = 0;
  jt_logs.buf[0] = '\0';
  pthread_mutex_unlock(&jt_logs.mu);
  jiwa_log_set_sink(jt__sink, NULL);
}

/* 1 if the captured logs contain @p needle. */
static inline int jt_logs_have(const char *needle) {
  pthread_mutex_lock(&jt_logs.mu);
  int found = strstr(jt_logs.buf, needle) != NULL;
  pthread_mutex_unlock(&jt_logs.mu);
  return found;
}

/* Fails the test printing both the needle and the haystack. */
#define jt_assert_contains(hay, needle)                                        \
  do {                                                                         \
    const char *h_ = (hay), *n_ = (needle);                                    \
    if (!h_ || !strstr(h_, n_))                                                \
      fail_msg("expected to find \"%s\" in \"%s\"", n_, h_ ? h_ : "(null)");  \
  } while (0)

/* ---- bodies --------------------------------------------------------------- */

/* {"key": "val"} in @p w (initialised here; free it). */
static inline void jt_body_str(jiwa_mp_writer_t *w, const char *key,
                               const char *val) {
  jiwa_mp_writer_init(w);
  msgpack_pack_map(&w->pk, 1);
  jiwa_mp_put_kv_str(&w->pk, key, val);
}

#endif
