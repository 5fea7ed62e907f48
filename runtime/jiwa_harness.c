#include "jiwa/harness.h"

#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jiwa_coll.h"
#include "jiwa_config.h"
#include "jiwa_msg.h"
#include "jiwa_rt.h"
#include "jiwa_rt_int.h"
#include "jiwa_store.h"

struct jiwa_harness {
  jiwa_rt_t *rt;
  char state[PATH_MAX];
};

static int rm_one(const char *p, const struct stat *st, int flag,
                  struct FTW *f) {
  (void)st;
  (void)flag;
  (void)f;
  return remove(p);
}

/* The private state dir: plugin copies (already unlinked) and the store. */
static void rm_rf_plugins(const char *state) {
  nftw(state, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* The harness's private store: <state>/store, no fsync (a test's data). */
static int harness_store(jiwa_harness_t *h, char *err, size_t errlen) {
  char path[PATH_MAX + 16];
  snprintf(path, sizeof path, "%s/store", h->state);
  jiwa_store_config_t cfg;
  jiwa_store_config_init(&cfg);
  cfg.path = path;
  cfg.fast = 1;
  cfg.map_size = (size_t)8 << 20;
  jiwa_store_t *s;
  int rc = jiwa_store_open(&cfg, &s);
  if (rc) {
    snprintf(err, errlen, "harness store %s: %s", path, jiwa_store_errmsg());
    return rc;
  }
  rc = jiwa_rt_set_store(h->rt, s);
  if (rc)
    jiwa_store_close(s);
  return rc;
}

int jiwa_harness_open(jiwa_harness_t **out, const char *so_path,
                      const char *settings_lua, char *err, size_t errlen) {
  *out = NULL;
  char dirbuf[PATH_MAX], basebuf[PATH_MAX];
  snprintf(dirbuf, sizeof dirbuf, "%s", so_path);
  snprintf(basebuf, sizeof basebuf, "%s", so_path);
  char *dir = dirname(dirbuf), *base = basename(basebuf);
  size_t bl = strlen(base);
  if (bl < 4 || strcmp(base + bl - 3, ".so") != 0) {
    snprintf(err, errlen, "%s: a plugin file name ends in .so", so_path);
    return JIWA_EINVAL;
  }
  base[bl - 3] = '\0';

  void *mp = NULL;
  size_t mplen = 0;
  int rc = 0;
  if (settings_lua &&
      (rc = jiwa_conf_table_to_mp(settings_lua, "harness settings", &mp,
                                  &mplen, err, errlen)))
    return rc;

  jiwa_harness_t *h = calloc(1, sizeof *h);
  if (!h) {
    free(mp);
    return JIWA_ENOMEM;
  }
  const char *tmp = getenv("TMPDIR");
  snprintf(h->state, sizeof h->state, "%s/jiwa-harness-XXXXXX",
           tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(h->state)) {
    snprintf(err, errlen, "cannot create a temp dir in %s",
             tmp ? tmp : "/tmp");
    free(h);
    free(mp);
    return JIWA_EIO;
  }
  jiwa_rt_opts_t o;
  jiwa_rt_opts_default(&o);
  o.workers = 1;
  o.plugin_dir = dir;
  o.state_dir = h->state;
  o.drain_timeout_ms = 5000;
  o.backoff_min_ms = 10;
  o.backoff_max_ms = 200;
  rc = jiwa_rt_new(&h->rt, &o);
  if (rc == 0)
    rc = harness_store(h, err, errlen);
  if (rc == 0)
    rc = jiwa_rt_spawn_plugin(h->rt, "plugin", base, 0, mp, mplen, err,
                              errlen);
  free(mp);
  if (rc) {
    jiwa_harness_close(h);
    return rc;
  }
  *out = h;
  return 0;
}

typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int done;
  jiwa_harness_reply_t *r;
} collect_t;

static void collect(const jiwa_msg_t *m, void *ud) {
  collect_t *c = ud;
  pthread_mutex_lock(&c->mu);
  if (m->kind == JIWA_MSG_DELTA) {
    jiwa_msg_t **d = realloc(c->r->deltas, (c->r->ndeltas + 1) * sizeof *d);
    if (d) {
      c->r->deltas = d;
      d[c->r->ndeltas++] = jiwa__msg_retain(m);
    }
  } else {
    c->r->final = jiwa__msg_retain(m);
    c->done = 1;
    pthread_cond_signal(&c->cv);
  }
  pthread_mutex_unlock(&c->mu);
}

int jiwa_harness_ask(jiwa_harness_t *h, const char *type, const void *body,
                     size_t len, uint32_t timeout_ms,
                     jiwa_harness_reply_t *out) {
  memset(out, 0, sizeof *out);
  collect_t c = {.done = 0, .r = out};
  pthread_mutex_init(&c.mu, NULL);
  pthread_cond_init(&c.cv, NULL);
  int rc = jiwa_rt_ask(h->rt, "plugin", type, body, len, timeout_ms, collect,
                       &c);
  if (rc == 0) {
    pthread_mutex_lock(&c.mu);
    while (!c.done)
      pthread_cond_wait(&c.cv, &c.mu);
    pthread_mutex_unlock(&c.mu);
  }
  pthread_mutex_destroy(&c.mu);
  pthread_cond_destroy(&c.cv);
  return rc;
}

int jiwa_harness_tell(jiwa_harness_t *h, const char *type, const void *body,
                      size_t len) {
  return jiwa_rt_tell(h->rt, "plugin", type, body, len);
}

int jiwa_harness_reload(jiwa_harness_t *h, char *err, size_t errlen) {
  return jiwa_rt_reload_sync(h->rt, "plugin", err, errlen);
}

int jiwa_harness_add_actor(jiwa_harness_t *h, const char *name,
                           const jiwa_plugin_desc_t *desc, char *err,
                           size_t errlen) {
  return jiwa_rt_spawn_native(h->rt, name, desc, 0, NULL, 0, err, errlen);
}

int jiwa_harness_add_collection(jiwa_harness_t *h, const char *name,
                                const char *embedder, uint32_t dim, char *err,
                                size_t errlen) {
  jiwa_embed_t *e = NULL;
  jiwa_coll_t *c = NULL;
  const jiwa_coll_embedder_kind_t *k =
      jiwa_coll_embedder_find(embedder ? embedder : "hash");
  int rc = jiwa_coll_embedder_new(embedder ? embedder : "hash", dim, &e);
  if (rc == 0) {
    jiwa_coll_def_t d;
    jiwa_coll_def_init(&d);
    d.embedder = e;
    d.own_embedder = 1;
    d.embed_blocking = k ? k->blocking : 0;
    rc = jiwa_coll_open(jiwa_rt_store(h->rt), name, &d, &c);
    if (rc)
      jiwa_embed_destroy(e);
  }
  if (rc) {
    snprintf(err, errlen, "%s", jiwa_coll_errmsg());
    return rc;
  }
  rc = jiwa_rt_add_coll(h->rt, c);
  if (rc) {
    jiwa_coll_close(c);
    snprintf(err, errlen, "collection '%s': %s", name, jiwa_strerror(rc));
  }
  return rc;
}

struct jiwa_store *jiwa_harness_store(jiwa_harness_t *h) {
  return jiwa_rt_store(h->rt);
}

struct jiwa_coll *jiwa_harness_collection(jiwa_harness_t *h,
                                          const char *name) {
  return jiwa_rt_coll(h->rt, name);
}

int jiwa_harness_http_stats(jiwa_harness_t *h, jiwa_http_stats_t *out) {
  return jiwa__rt_http_stats(h->rt, out);
}

void jiwa_harness_reply_free(jiwa_harness_reply_t *r) {
  jiwa__msg_release(r->final);
  for (size_t i = 0; i < r->ndeltas; i++)
    jiwa__msg_release(r->deltas[i]);
  free(r->deltas);
  memset(r, 0, sizeof *r);
}

int jiwa_harness_close(jiwa_harness_t *h) {
  if (!h)
    return 0;
  int rc = jiwa_rt_stop(h->rt);
  jiwa_rt_free(h->rt);
  rm_rf_plugins(h->state);
  free(h);
  return rc;
}
