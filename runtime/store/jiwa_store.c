/*
 * The LMDB store service.
 *
 * Threads: any thread reads (MDB_NOTLS read transactions, pooled and
 * renewed); one writer thread owns every write transaction. Submitters
 * append batches to one FIFO; the writer takes everything queued (bounded
 * by batch_max_ops / batch_max_bytes), applies it in one transaction and
 * acknowledges each batch only after mdb_txn_commit returned. While one
 * commit is syncing, the next group accumulates: that is the group commit.
 *
 * Map growth: mdb_env_set_mapsize needs no transaction open in the process.
 * Readers pass through a gate (a counter under a mutex); the writer closes
 * the gate, waits for the count to drop to zero, aborts the pooled
 * (reset) read transactions, grows the map and reopens the gate.
 */
#include "jiwa_store.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "jiwa/mp.h"

#define MIB ((size_t)1 << 20)
#define POOL_MAX 32
#define LOG_ERROR 0
#define LOG_WARN 1
#define LOG_INFO 2

static const char *const db_names[JIWA_STORE_DB_COUNT] = {
    [JIWA_STORE_DB_META] = "meta",
    [JIWA_STORE_DB_KV] = "kv",
    [JIWA_STORE_DB_COLLECTIONS] = "collections",
    [JIWA_STORE_DB_VECTORS] = "vectors",
    [JIWA_STORE_DB_VINDEX] = "vindex",
    [JIWA_STORE_DB_GOLDEN] = "golden",
    [JIWA_STORE_DB_MEMORY] = "memory",
    [JIWA_STORE_DB_CONVERSATIONS] = "conversations",
    [JIWA_STORE_DB_SHADOW] = "shadow",
    [JIWA_STORE_DB_JOBS] = "jobs",
};

enum { OP_PUT, OP_DEL, OP_DELPFX };

typedef struct {
  uint8_t kind;
  uint8_t db;
  uint16_t version;
  uint32_t klen;
  size_t koff;
  size_t plen;
  size_t poff;
} op_t;

typedef struct waiter {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int done;
  int status;
  char msg[512];
} waiter_t;

struct jiwa_store_batch {
  op_t *ops;
  size_t nops, capops;
  uint8_t *buf;
  size_t blen, bcap;
  /* set at submission */
  struct jiwa_store_batch *next;
  jiwa_store_port_t *port;
  jiwa_store_done_fn cb;
  void *ud;
  waiter_t *waiter;
  int status;
  char *errmsg; /* malloc'ed on failure */
};

struct jiwa_store_port {
  jiwa_store_t *s;
  uv_async_t async;
  pthread_mutex_t mu;
  jiwa_store_batch_t *head, *tail;
  int closing;
  atomic_int refs; /* owner (until the close callback) + batches in flight */
};

struct jiwa_store_txn {
  jiwa_store_t *s;
  MDB_txn *txn;
  jiwa_store_txn_t *next;
};

struct jiwa_store {
  char *path;
  jiwa_store_config_t cfg;
  MDB_env *env;
  MDB_dbi dbi[JIWA_STORE_DB_COUNT];
  unsigned maxkey;
  dev_t dev;
  ino_t ino;

  /* reader gate + pool of reset read transactions */
  pthread_mutex_t gmu;
  pthread_cond_t gcv;
  unsigned active;
  int growing;
  jiwa_store_txn_t *pool;
  unsigned npool;

  /* write queue */
  pthread_mutex_t qmu;
  pthread_cond_t qcv;
  jiwa_store_batch_t *qhead, *qtail;
  size_t qlen;
  int stopping;
  pthread_t writer;

  atomic_int ports;
  _Atomic uint64_t commits, batches, ops, failed, grows, cleared;
  _Atomic size_t map_size;
};

/* ---- errors ----------------------------------------------------------------
 */

static _Thread_local char tl_err[512];

const char *jiwa_store_errmsg(void) {
  return tl_err;
}

static int fail(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int fail(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(tl_err, sizeof tl_err, fmt, ap);
  va_end(ap);
  return code;
}

/* Foreign LMDB / errno codes → jiwa codes, at the boundary. */
static int map_mdb(int rc) {
  switch (rc) {
  case 0:
    return 0;
  case MDB_NOTFOUND:
    return JIWA_ENOENT;
  case MDB_MAP_FULL:
  case MDB_TXN_FULL:
  case MDB_BAD_VALSIZE:
  case MDB_DBS_FULL:
    return JIWA_ETOOBIG;
  case MDB_READERS_FULL:
    return JIWA_EBUSY;
  case MDB_VERSION_MISMATCH:
  case MDB_INVALID:
    return JIWA_ENOTSUP;
  case ENOMEM:
    return JIWA_ENOMEM;
  case EACCES:
  case EPERM:
  case EROFS:
    return JIWA_EPERM;
  case ENOENT:
    return JIWA_ENOENT;
  case EEXIST:
    return JIWA_EEXIST;
  case EINVAL:
    return JIWA_EINVAL;
  default:
    return JIWA_EIO;
  }
}

static void slog(jiwa_store_t *s, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void slog(jiwa_store_t *s, int level, const char *fmt, ...) {
  if (!s->cfg.log)
    return;
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  s->cfg.log(level, line, s->cfg.log_ud);
}

/* Printable rendering of a key for messages: text as is, bytes as \xNN. */
static const char *key_show(const void *key, size_t klen, char *out,
                            size_t cap) {
  const uint8_t *k = key;
  size_t o = 0;
  for (size_t i = 0; i < klen && o + 5 < cap; i++) {
    if (o + 8 >= cap && i + 1 < klen) {
      memcpy(out + o, "...", 3);
      o += 3;
      break;
    }
    if (k[i] >= 0x20 && k[i] < 0x7f && k[i] != '\\')
      out[o++] = (char)k[i];
    else
      o += (size_t)snprintf(out + o, cap - o, "\\x%02x", k[i]);
  }
  out[o < cap ? o : cap - 1] = '\0';
  return out;
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- the envelope -----------------------------------------------------------
 */

static size_t version_size(uint32_t v) {
  return v < 128 ? 1 : 3;
}

size_t jiwa_store_value_size(uint32_t version, size_t plen) {
  return 1 + version_size(version) + plen;
}

size_t jiwa_store_value_encode(uint32_t version, const void *payload,
                               size_t plen, void *out, size_t cap) {
  if (version == 0 || version > JIWA_STORE_VERSION_MAX)
    return 0;
  size_t need = jiwa_store_value_size(version, plen);
  if (need > cap || need < plen)
    return 0;
  uint8_t *o = out;
  *o++ = 0x92; /* fixarray of 2 */
  if (version < 128) {
    *o++ = (uint8_t)version;
  } else {
    *o++ = 0xcd; /* uint16 */
    *o++ = (uint8_t)(version >> 8);
    *o++ = (uint8_t)version;
  }
  if (plen)
    memcpy(o, payload, plen);
  return need;
}

int jiwa_store_value_decode(const void *buf, size_t len,
                            jiwa_store_val_t *out) {
  jiwa_mp_reader_t r;
  jiwa_mp_item_t it;
  if (!buf && len)
    return fail(JIWA_EPROTO, "value: NULL buffer");
  jiwa_mp_reader_init(&r, buf, len);
  if (len == 0)
    return fail(JIWA_EPROTO, "value: empty");
  if (jiwa_mp_next(&r, &it) != 0)
    return fail(JIWA_EPROTO, "value: malformed envelope header");
  if (it.type != JIWA_MP_ARRAY || it.v.count != 2)
    return fail(JIWA_EPROTO, "value: not a [version, payload] array");
  if (jiwa_mp_next(&r, &it) != 0)
    return fail(JIWA_EPROTO, "value: truncated version");
  if (it.type != JIWA_MP_UINT || it.v.u == 0 || it.v.u > JIWA_STORE_VERSION_MAX)
    return fail(JIWA_EPROTO, "value: version is not an integer in 1..%u",
                JIWA_STORE_VERSION_MAX);
  uint32_t version = (uint32_t)it.v.u;
  size_t left = jiwa_mp_reader_left(&r), used = 0;
  int rc = jiwa_mp_scan(r.p, left, JIWA_MP_MAX_DEPTH - 1, &used);
  if (rc == JIWA_ETOOBIG)
    return fail(JIWA_EPROTO, "value: payload nests deeper than %d",
                JIWA_MP_MAX_DEPTH - 1);
  if (rc != 0)
    return fail(JIWA_EPROTO, "value: payload is malformed msgpack");
  if (used != left)
    return fail(JIWA_EPROTO, "value: %zu stray bytes after the payload",
                left - used);
  if (out) {
    out->version = version;
    out->data = r.p;
    out->len = left;
  }
  return 0;
}

/* ---- keys
 * --------------------------------------------------------------------- */

void jiwa_store_key_init(jiwa_store_key_t *k) {
  k->len = 0;
  k->overflow = 0;
}

void jiwa_store_key_add(jiwa_store_key_t *k, const void *p, size_t n) {
  if (k->overflow || n > sizeof k->buf - k->len) {
    k->overflow = 1;
    return;
  }
  if (n)
    memcpy(k->buf + k->len, p, n);
  k->len += n;
}

void jiwa_store_key_add_str(jiwa_store_key_t *k, const char *s) {
  jiwa_store_key_add(k, s, strlen(s) + 1);
}

void jiwa_store_key_add_u64(jiwa_store_key_t *k, uint64_t v) {
  uint8_t b[8];
  for (int i = 7; i >= 0; i--, v >>= 8)
    b[i] = (uint8_t)v;
  jiwa_store_key_add(k, b, 8);
}

void jiwa_store_key_add_u32(jiwa_store_key_t *k, uint32_t v) {
  uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8),
                  (uint8_t)v};
  jiwa_store_key_add(k, b, 4);
}

/* kv key "<ns>\0<key>" into @p k. */
static int kv_key(jiwa_store_key_t *k, const char *ns, const void *key,
                  size_t klen) {
  size_t nl = ns ? strlen(ns) : 0;
  if (nl == 0 || nl > JIWA_STORE_NS_MAX)
    return fail(JIWA_EINVAL,
                "kv: namespace must be 1..%d bytes (got %zu): use the plugin "
                "instance name",
                JIWA_STORE_NS_MAX, nl);
  jiwa_store_key_init(k);
  jiwa_store_key_add_str(k, ns);
  jiwa_store_key_add(k, key, klen);
  if (k->overflow)
    return fail(JIWA_ETOOBIG, "kv: namespace + key exceed %zu bytes",
                sizeof k->buf);
  return 0;
}

/* ---- config
 * --------------------------------------------------------------------- */

void jiwa_store_config_init(jiwa_store_config_t *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->size = sizeof *cfg;
  cfg->map_size = 64 * MIB;
  cfg->map_max = sizeof(size_t) >= 8 ? (size_t)64 << 30 : (size_t)1 << 30;
  cfg->max_readers = 126;
  cfg->batch_max_ops = 8192;
  cfg->batch_max_bytes = 32 * MIB;
  cfg->queue_max = 65536;
  cfg->reader_check_ms = 10000;
}

const char *jiwa_store_db_name(jiwa_store_db_t db) {
  return (unsigned)db < JIWA_STORE_DB_COUNT ? db_names[db] : NULL;
}

const char *jiwa_store_path(const jiwa_store_t *s) {
  return s->path;
}

/* ---- process-wide registry: one open store per environment
 * ------------------- */

typedef struct reg {
  dev_t dev;
  ino_t ino;
  struct reg *next;
} reg_t;
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static reg_t *reg_head;

static int reg_add(dev_t dev, ino_t ino) {
  pthread_mutex_lock(&reg_mu);
  for (reg_t *r = reg_head; r; r = r->next)
    if (r->dev == dev && r->ino == ino) {
      pthread_mutex_unlock(&reg_mu);
      return JIWA_EBUSY;
    }
  reg_t *r = malloc(sizeof *r);
  if (!r) {
    pthread_mutex_unlock(&reg_mu);
    return JIWA_ENOMEM;
  }
  r->dev = dev;
  r->ino = ino;
  r->next = reg_head;
  reg_head = r;
  pthread_mutex_unlock(&reg_mu);
  return 0;
}

static void reg_del(dev_t dev, ino_t ino) {
  pthread_mutex_lock(&reg_mu);
  for (reg_t **pp = &reg_head; *pp; pp = &(*pp)->next)
    if ((*pp)->dev == dev && (*pp)->ino == ino) {
      reg_t *r = *pp;
      *pp = r->next;
      free(r);
      break;
    }
  pthread_mutex_unlock(&reg_mu);
}

/* ---- reader gate
 * ------------------------------------------------------------------ */

static void gate_enter(jiwa_store_t *s) {
  pthread_mutex_lock(&s->gmu);
  while (s->growing)
    pthread_cond_wait(&s->gcv, &s->gmu);
  s->active++;
  pthread_mutex_unlock(&s->gmu);
}

static void gate_leave(jiwa_store_t *s) {
  pthread_mutex_lock(&s->gmu);
  if (--s->active == 0 && s->growing)
    pthread_cond_broadcast(&s->gcv);
  pthread_mutex_unlock(&s->gmu);
}

static void pool_flush_locked(jiwa_store_t *s) {
  while (s->pool) {
    jiwa_store_txn_t *t = s->pool;
    s->pool = t->next;
    mdb_txn_abort(t->txn);
    free(t);
  }
  s->npool = 0;
}

/* Run @p fn with no read transaction open in the process (writer only). */
static int exclusive(jiwa_store_t *s, size_t new_size) {
  pthread_mutex_lock(&s->gmu);
  s->growing = 1;
  while (s->active > 0)
    pthread_cond_wait(&s->gcv, &s->gmu);
  pool_flush_locked(s);
  int rc = mdb_env_set_mapsize(s->env, new_size);
  if (rc == 0) {
    MDB_envinfo info;
    mdb_env_info(s->env, &info);
    atomic_store(&s->map_size, info.me_mapsize);
  }
  s->growing = 0;
  pthread_cond_broadcast(&s->gcv);
  pthread_mutex_unlock(&s->gmu);
  return rc;
}

/* Another process grew the map: adopt its size (LMDB's MDB_MAP_RESIZED). */
static int adopt_size(jiwa_store_t *s) {
  int rc = exclusive(s, 0);
  if (rc)
    return fail(map_mdb(rc),
                "store %s: adopting the map size another "
                "process set failed: %s",
                s->path, mdb_strerror(rc));
  return 0;
}

/* ---- open
 * -----------------------------------------------------------------------------
 */

static int get_format(jiwa_store_t *s, MDB_txn *txn, uint32_t *fmt) {
  MDB_val k = {6, "format"}, v;
  int rc = mdb_get(txn, s->dbi[JIWA_STORE_DB_META], &k, &v);
  if (rc == MDB_NOTFOUND) {
    *fmt = 0;
    return 0;
  }
  if (rc)
    return fail(map_mdb(rc), "store %s: reading meta \"format\" failed: %s",
                s->path, mdb_strerror(rc));
  jiwa_store_val_t val;
  jiwa_mp_reader_t r;
  jiwa_mp_item_t it;
  if (jiwa_store_value_decode(v.mv_data, v.mv_size, &val) != 0)
    goto corrupt;
  jiwa_mp_reader_init(&r, val.data, val.len);
  if (jiwa_mp_next(&r, &it) != 0 || it.type != JIWA_MP_UINT || it.v.u == 0 ||
      it.v.u > UINT32_MAX)
    goto corrupt;
  *fmt = (uint32_t)it.v.u;
  return 0;
corrupt:
  return fail(JIWA_EPROTO,
              "store %s: the meta \"format\" record is corrupt, so the "
              "store's format is unknown: restore a backup (jiwa store "
              "backup) or move the directory away",
              s->path);
}

static int put_meta_uint(jiwa_store_t *s, MDB_txn *txn, const char *key,
                         uint64_t value) {
  uint8_t pay[9], env[16];
  msgpack_sbuffer sb;
  msgpack_packer pk;
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_uint64(&pk, value);
  size_t pl = sb.size <= sizeof pay ? sb.size : 0;
  memcpy(pay, sb.data, pl);
  msgpack_sbuffer_destroy(&sb);
  size_t n = jiwa_store_value_encode(1, pay, pl, env, sizeof env);
  MDB_val k = {strlen(key), (void *)key}, v = {n, env};
  return mdb_put(txn, s->dbi[JIWA_STORE_DB_META], &k, &v, 0);
}

/*
 * Migrations from format N to N+1 run in the open transaction, in order.
 * Format 0 is "no format record" (a store created before versioning or
 * never finished): nothing to convert.
 */
static int migrate(jiwa_store_t *s, MDB_txn *txn, uint32_t from) {
  (void)txn;
  for (uint32_t v = from; v < JIWA_STORE_FORMAT_VERSION; v++) {
    switch (v) {
    case 0:
      break;
    default:
      return fail(JIWA_ENOTSUP, "store %s: no migration from format %u",
                  s->path, v);
    }
  }
  return 0;
}

static int open_dbs(jiwa_store_t *s, int *created) {
  MDB_txn *txn;
  int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
  if (rc)
    return fail(map_mdb(rc),
                "store %s: cannot start the open transaction: "
                "%s",
                s->path, mdb_strerror(rc));
  uint32_t fmt = 0;
  rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &s->dbi[JIWA_STORE_DB_META]);
  if (rc) {
    rc = fail(map_mdb(rc), "store %s: cannot open database \"meta\": %s",
              s->path, mdb_strerror(rc));
    goto out;
  }
  if ((rc = get_format(s, txn, &fmt)) != 0)
    goto out;
  if (fmt > JIWA_STORE_FORMAT_VERSION) {
    rc = fail(JIWA_ENOTSUP,
              "store %s was written with store format %u, but this jiwa "
              "reads formats up to %u: run a jiwa at least as new as the "
              "one that wrote it, or restore a backup made by this version "
              "(nothing was changed)",
              s->path, fmt, JIWA_STORE_FORMAT_VERSION);
    goto out;
  }
  for (int i = 0; i < JIWA_STORE_DB_COUNT; i++) {
    if (i == JIWA_STORE_DB_META)
      continue;
    rc = mdb_dbi_open(txn, db_names[i], MDB_CREATE, &s->dbi[i]);
    if (rc) {
      rc = fail(map_mdb(rc), "store %s: cannot open database \"%s\": %s",
                s->path, db_names[i], mdb_strerror(rc));
      goto out;
    }
  }
  *created = fmt == 0;
  if (fmt < JIWA_STORE_FORMAT_VERSION) {
    if ((rc = migrate(s, txn, fmt)) != 0)
      goto out;
    rc = put_meta_uint(s, txn, "format", JIWA_STORE_FORMAT_VERSION);
    if (!rc && fmt == 0)
      rc = put_meta_uint(s, txn, "created", (uint64_t)time(NULL));
    if (rc) {
      rc = fail(map_mdb(rc),
                "store %s: writing the format record failed: "
                "%s",
                s->path, mdb_strerror(rc));
      goto out;
    }
    if (fmt != 0)
      slog(s, LOG_INFO, "store %s: migrated format %u -> %u", s->path, fmt,
           JIWA_STORE_FORMAT_VERSION);
  }
  rc = mdb_txn_commit(txn);
  txn = NULL;
  if (rc)
    rc = fail(map_mdb(rc),
              "store %s: committing the open transaction "
              "failed: %s",
              s->path, mdb_strerror(rc));
out:
  if (txn)
    mdb_txn_abort(txn);
  return rc;
}

static void *writer_main(void *arg);

static void clear_stale(jiwa_store_t *s) {
  int dead = 0;
  if (mdb_reader_check(s->env, &dead) == 0 && dead > 0) {
    atomic_fetch_add(&s->cleared, (uint64_t)dead);
    slog(s, LOG_WARN,
         "store %s: cleared %d stale reader slot(s) left by "
         "dead processes",
         s->path, dead);
  }
}

int jiwa_store_open(const jiwa_store_config_t *cfg_in, jiwa_store_t **out) {
  if (!cfg_in || !out || cfg_in->size == 0)
    return fail(JIWA_EINVAL, "store: open needs a config from "
                             "jiwa_store_config_init and an out pointer");
  jiwa_store_config_t cfg;
  jiwa_store_config_init(&cfg);
  memcpy(&cfg, cfg_in, cfg_in->size < sizeof cfg ? cfg_in->size : sizeof cfg);
  cfg.size = sizeof cfg;
  if (!cfg.path || !*cfg.path)
    return fail(JIWA_EINVAL, "store: no path: set store.path to a directory");
  if (cfg.map_size < 64 * 1024 || cfg.map_max < cfg.map_size ||
      cfg.max_readers == 0 || cfg.batch_max_ops == 0 ||
      cfg.batch_max_bytes == 0 || cfg.queue_max == 0)
    return fail(JIWA_EINVAL,
                "store %s: bad limits (map_size >= 64 KiB, map_max >= "
                "map_size, max_readers, batch_max_ops, batch_max_bytes and "
                "queue_max > 0)",
                cfg.path);
  if (cfg.reader_check_ms == 0)
    cfg.reader_check_ms = 10000;

  if (mkdir(cfg.path, 0700) != 0 && errno != EEXIST)
    return fail(map_mdb(errno), "store %s: cannot create the directory: %s",
                cfg.path, strerror(errno));
  struct stat st;
  if (stat(cfg.path, &st) != 0 || !S_ISDIR(st.st_mode))
    return fail(JIWA_EINVAL,
                "store %s: not a directory: point store.path "
                "at a directory",
                cfg.path);
  int rc = reg_add(st.st_dev, st.st_ino);
  if (rc == JIWA_EBUSY)
    return fail(rc,
                "store %s is already open in this process: share the "
                "open jiwa_store_t instead of opening it twice",
                cfg.path);
  if (rc)
    return fail(rc, "store %s: out of memory", cfg.path);

  jiwa_store_t *s = calloc(1, sizeof *s);
  char *path = strdup(cfg.path);
  if (!s || !path) {
    free(s);
    free(path);
    reg_del(st.st_dev, st.st_ino);
    return fail(JIWA_ENOMEM, "store %s: out of memory", cfg.path);
  }
  s->cfg = cfg;
  s->path = path;
  s->cfg.path = path;
  s->dev = st.st_dev;
  s->ino = st.st_ino;

  int created = 0;
  if ((rc = mdb_env_create(&s->env)) != 0) {
    rc = fail(map_mdb(rc), "store %s: mdb_env_create: %s", path,
              mdb_strerror(rc));
    goto fail_env;
  }
  mdb_env_set_maxreaders(s->env, cfg.max_readers);
  mdb_env_set_maxdbs(s->env, JIWA_STORE_DB_COUNT + 6);
  mdb_env_set_mapsize(s->env, cfg.map_size);
  rc =
      mdb_env_open(s->env, path, MDB_NOTLS | (cfg.fast ? MDB_NOSYNC : 0), 0600);
  if (rc) {
    if (rc == MDB_VERSION_MISMATCH || rc == MDB_INVALID)
      rc = fail(JIWA_ENOTSUP,
                "store %s: data.mdb is not an LMDB environment this "
                "liblmdb (%s) can read (%s): check the path, or open it "
                "with the jiwa/liblmdb that wrote it and back it up",
                path, MDB_VERSION_STRING, mdb_strerror(rc));
    else
      rc = fail(map_mdb(rc),
                "store %s: cannot open the environment: %s "
                "(check permissions and free space)",
                path, mdb_strerror(rc));
    goto fail_env;
  }
  clear_stale(s);
  s->maxkey = (unsigned)mdb_env_get_maxkeysize(s->env);
  MDB_envinfo info;
  /* A tiny initial map may not even hold the database records. */
  while ((rc = open_dbs(s, &created)) == JIWA_ETOOBIG) {
    mdb_env_info(s->env, &info);
    if (info.me_mapsize >= cfg.map_max ||
        mdb_env_set_mapsize(s->env, info.me_mapsize > cfg.map_max / 2
                                        ? cfg.map_max
                                        : info.me_mapsize * 2) != 0)
      break;
  }
  if (rc)
    goto fail_env;
  mdb_env_info(s->env, &info);
  atomic_store(&s->map_size, info.me_mapsize);

  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_mutex_init(&s->gmu, NULL);
  pthread_cond_init(&s->gcv, NULL);
  pthread_mutex_init(&s->qmu, NULL);
  pthread_cond_init(&s->qcv, &ca);
  pthread_condattr_destroy(&ca);
  if (pthread_create(&s->writer, NULL, writer_main, s) != 0) {
    rc = fail(JIWA_ENOMEM, "store %s: cannot start the writer thread", path);
    pthread_cond_destroy(&s->qcv);
    pthread_mutex_destroy(&s->qmu);
    pthread_cond_destroy(&s->gcv);
    pthread_mutex_destroy(&s->gmu);
    goto fail_env;
  }
  slog(s, LOG_INFO, "store %s: %s, format %u, map %zu MiB%s", path,
       created ? "created" : "opened", JIWA_STORE_FORMAT_VERSION,
       (size_t)info.me_mapsize / MIB, cfg.fast ? ", fast (no fsync)" : "");
  *out = s;
  return 0;

fail_env:
  if (s->env)
    mdb_env_close(s->env);
  reg_del(s->dev, s->ino);
  free(s->path);
  free(s);
  return rc;
}

int jiwa_store_close(jiwa_store_t *s) {
  if (!s)
    return 0;
  if (atomic_load(&s->ports) > 0)
    return fail(JIWA_EBUSY,
                "store %s: %d completion port(s) still open: "
                "close them before the store",
                s->path, atomic_load(&s->ports));
  pthread_mutex_lock(&s->qmu);
  s->stopping = 1;
  pthread_cond_broadcast(&s->qcv);
  pthread_mutex_unlock(&s->qmu);
  pthread_join(s->writer, NULL);
  pthread_mutex_lock(&s->gmu);
  pool_flush_locked(s);
  pthread_mutex_unlock(&s->gmu);
  mdb_env_close(s->env);
  reg_del(s->dev, s->ino);
  pthread_cond_destroy(&s->qcv);
  pthread_mutex_destroy(&s->qmu);
  pthread_cond_destroy(&s->gcv);
  pthread_mutex_destroy(&s->gmu);
  free(s->path);
  free(s);
  return 0;
}

void jiwa_store_stats(jiwa_store_t *s, jiwa_store_stats_t *o) {
  memset(o, 0, sizeof *o);
  o->commits = atomic_load(&s->commits);
  o->batches = atomic_load(&s->batches);
  o->ops = atomic_load(&s->ops);
  o->failed_batches = atomic_load(&s->failed);
  o->map_grows = atomic_load(&s->grows);
  o->readers_cleared = atomic_load(&s->cleared);
  pthread_mutex_lock(&s->qmu);
  o->queued = s->qlen;
  pthread_mutex_unlock(&s->qmu);
  o->map_size = atomic_load(&s->map_size);
  MDB_envinfo info;
  MDB_stat st;
  if (mdb_env_info(s->env, &info) == 0 && mdb_env_stat(s->env, &st) == 0)
    o->map_used = ((size_t)info.me_last_pgno + 1) * st.ms_psize;
}

/* ---- batches
 * ------------------------------------------------------------------------- */

int jiwa_store_batch_new(jiwa_store_batch_t **out) {
  if (!out)
    return fail(JIWA_EINVAL, "store: batch_new needs an out pointer");
  *out = calloc(1, sizeof **out);
  return *out ? 0 : fail(JIWA_ENOMEM, "store: out of memory for a batch");
}

void jiwa_store_batch_free(jiwa_store_batch_t *b) {
  if (!b)
    return;
  free(b->ops);
  free(b->buf);
  free(b->errmsg);
  free(b);
}

size_t jiwa_store_batch_count(const jiwa_store_batch_t *b) {
  return b ? b->nops : 0;
}

static int batch_add(jiwa_store_batch_t *b, int kind, jiwa_store_db_t db,
                     const void *key, size_t klen, uint32_t version,
                     const void *payload, size_t plen) {
  if (!b || (unsigned)db >= JIWA_STORE_DB_COUNT || (!key && klen))
    return fail(JIWA_EINVAL,
                "store: batch op needs a batch, a database "
                "(0..%d) and a key",
                JIWA_STORE_DB_COUNT - 1);
  if (klen == 0 && kind != OP_DELPFX)
    return fail(JIWA_EINVAL, "store: empty key in database \"%s\"",
                db_names[db]);
  if (kind == OP_DELPFX && klen == 0 && db == JIWA_STORE_DB_META)
    return fail(JIWA_EINVAL, "store: the meta database cannot be emptied");
  if (klen > 511)
    return fail(JIWA_ETOOBIG,
                "store: key of %zu bytes in database \"%s\" "
                "is above LMDB's 511-byte limit: hash long keys",
                klen, db_names[db]);
  if (kind == OP_PUT) {
    if (version == 0 || version > JIWA_STORE_VERSION_MAX)
      return fail(JIWA_EINVAL, "store: record version %" PRIu32 " out of 1..%u",
                  version, JIWA_STORE_VERSION_MAX);
    if (plen > JIWA_STORE_VALUE_MAX)
      return fail(JIWA_ETOOBIG,
                  "store: value of %zu bytes is above the "
                  "%u-byte limit: split it",
                  plen, JIWA_STORE_VALUE_MAX);
    size_t used = 0;
    int rc = payload ? jiwa_mp_scan(payload, plen, JIWA_MP_MAX_DEPTH - 1, &used)
                     : JIWA_EPROTO;
    if (rc != 0 || used != plen)
      return fail(JIWA_EINVAL,
                  "store: value for database \"%s\" is not "
                  "exactly one well-formed msgpack object (depth <= %d)",
                  db_names[db], JIWA_MP_MAX_DEPTH - 1);
  } else {
    plen = 0;
  }
  if (b->nops == b->capops) {
    size_t nc = b->capops ? b->capops * 2 : 8;
    op_t *n = realloc(b->ops, nc * sizeof *n);
    if (!n)
      return fail(JIWA_ENOMEM, "store: out of memory for a batch");
    b->ops = n;
    b->capops = nc;
  }
  size_t need = klen + plen;
  if (need > b->bcap - b->blen) {
    size_t nc = b->bcap ? b->bcap : 256;
    while (nc - b->blen < need)
      nc *= 2;
    uint8_t *n = realloc(b->buf, nc);
    if (!n)
      return fail(JIWA_ENOMEM, "store: out of memory for a batch");
    b->buf = n;
    b->bcap = nc;
  }
  op_t *op = &b->ops[b->nops++];
  op->kind = (uint8_t)kind;
  op->db = (uint8_t)db;
  op->version = (uint16_t)version;
  op->klen = (uint32_t)klen;
  op->koff = b->blen;
  if (klen)
    memcpy(b->buf + b->blen, key, klen);
  b->blen += klen;
  op->plen = plen;
  op->poff = b->blen;
  if (plen)
    memcpy(b->buf + b->blen, payload, plen);
  b->blen += plen;
  return 0;
}

int jiwa_store_batch_put(jiwa_store_batch_t *b, jiwa_store_db_t db,
                         const void *key, size_t klen, uint32_t version,
                         const void *payload, size_t plen) {
  return batch_add(b, OP_PUT, db, key, klen, version, payload, plen);
}

int jiwa_store_batch_del(jiwa_store_batch_t *b, jiwa_store_db_t db,
                         const void *key, size_t klen) {
  return batch_add(b, OP_DEL, db, key, klen, 0, NULL, 0);
}

int jiwa_store_batch_del_prefix(jiwa_store_batch_t *b, jiwa_store_db_t db,
                                const void *prefix, size_t plen) {
  return batch_add(b, OP_DELPFX, db, plen ? prefix : "", plen, 0, NULL, 0);
}

int jiwa_store_batch_kv_put(jiwa_store_batch_t *b, const char *ns,
                            const void *key, size_t klen, uint32_t version,
                            const void *payload, size_t plen) {
  jiwa_store_key_t k;
  int rc = kv_key(&k, ns, key, klen);
  if (rc)
    return rc;
  if (klen == 0)
    return fail(JIWA_EINVAL, "kv: empty key in namespace \"%s\"", ns);
  return batch_add(b, OP_PUT, JIWA_STORE_DB_KV, k.buf, k.len, version, payload,
                   plen);
}

int jiwa_store_batch_kv_del(jiwa_store_batch_t *b, const char *ns,
                            const void *key, size_t klen) {
  jiwa_store_key_t k;
  int rc = kv_key(&k, ns, key, klen);
  if (rc)
    return rc;
  if (klen == 0)
    return fail(JIWA_EINVAL, "kv: empty key in namespace \"%s\"", ns);
  return batch_add(b, OP_DEL, JIWA_STORE_DB_KV, k.buf, k.len, 0, NULL, 0);
}

/* ---- the writer
 * ---------------------------------------------------------------------- */

static int has_prefix(const MDB_val *k, const void *p, size_t n) {
  return k->mv_size >= n && memcmp(k->mv_data, p, n) == 0;
}

static int apply_op(jiwa_store_t *s, MDB_txn *txn, const jiwa_store_batch_t *b,
                    const op_t *op) {
  MDB_dbi dbi = s->dbi[op->db];
  MDB_val k = {op->klen, b->buf + op->koff}, v;
  int rc;
  switch (op->kind) {
  case OP_PUT:
    v.mv_size = jiwa_store_value_size(op->version, op->plen);
    v.mv_data = NULL;
    rc = mdb_put(txn, dbi, &k, &v, MDB_RESERVE);
    if (rc == 0)
      jiwa_store_value_encode(op->version, b->buf + op->poff, op->plen,
                              v.mv_data, v.mv_size);
    return rc;
  case OP_DEL:
    rc = mdb_del(txn, dbi, &k, NULL);
    return rc == MDB_NOTFOUND ? 0 : rc;
  default: {
    if (op->klen == 0)
      return mdb_drop(txn, dbi, 0);
    MDB_cursor *cur;
    if ((rc = mdb_cursor_open(txn, dbi, &cur)) != 0)
      return rc;
    /* Re-seek after each delete: simple and O(log n) per key. */
    for (;;) {
      MDB_val kk = k;
      rc = mdb_cursor_get(cur, &kk, &v, MDB_SET_RANGE);
      if (rc == MDB_NOTFOUND ||
          (rc == 0 && !has_prefix(&kk, k.mv_data, k.mv_size))) {
        rc = 0;
        break;
      }
      if (rc || (rc = mdb_cursor_del(cur, 0)) != 0)
        break;
    }
    mdb_cursor_close(cur);
    return rc;
  }
  }
}

static int grow(jiwa_store_t *s, char *msg, size_t cap) {
  size_t cur = atomic_load(&s->map_size), max = s->cfg.map_max;
  if (cur >= max) {
    snprintf(msg, cap,
             "store %s is full: the map reached store.map_max "
             "(%zu MiB); raise store.map_max or delete data",
             s->path, max / MIB);
    return JIWA_ETOOBIG;
  }
  size_t next = cur > max / 2 ? max : cur * 2;
  int rc = exclusive(s, next);
  if (rc) {
    snprintf(msg, cap,
             "store %s: growing the map to %zu MiB failed: %s "
             "(address space or disk space?)",
             s->path, next / MIB, mdb_strerror(rc));
    return map_mdb(rc);
  }
  atomic_fetch_add(&s->grows, 1);
  slog(s, LOG_INFO, "store %s: map grown %zu -> %zu MiB", s->path, cur / MIB,
       atomic_load(&s->map_size) / MIB);
  return 0;
}

/* Apply @p n batches from @p first in one transaction. MDB_TXN_FULL is
 * returned raw so the caller can split the group. */
static int commit_list(jiwa_store_t *s, jiwa_store_batch_t *first, size_t n,
                       char *msg, size_t cap) {
  for (;;) {
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc == MDB_MAP_RESIZED) {
      if ((rc = adopt_size(s)) != 0) {
        snprintf(msg, cap, "%s", tl_err);
        return rc;
      }
      continue;
    }
    if (rc) {
      snprintf(msg, cap, "store %s: cannot start a write transaction: %s",
               s->path, mdb_strerror(rc));
      return map_mdb(rc);
    }
    jiwa_store_batch_t *b = first;
    for (size_t i = 0; i < n && rc == 0; i++, b = b->next)
      for (size_t j = 0; j < b->nops && rc == 0; j++)
        rc = apply_op(s, txn, b, &b->ops[j]);
    if (rc == 0)
      rc = mdb_txn_commit(txn);
    else
      mdb_txn_abort(txn);
    if (rc == 0) {
      atomic_fetch_add(&s->commits, 1);
      return 0;
    }
    if (rc == MDB_MAP_FULL) {
      int g = grow(s, msg, cap);
      if (g == 0)
        continue;
      return g;
    }
    if (rc == MDB_TXN_FULL) {
      snprintf(msg, cap,
               "store %s: one batch dirties more pages than one "
               "LMDB transaction holds: split it into smaller batches",
               s->path);
      return MDB_TXN_FULL;
    }
    snprintf(msg, cap,
             "store %s: commit failed, nothing of the batch was "
             "written: %s (check disk space and the log)",
             s->path, mdb_strerror(rc));
    return map_mdb(rc);
  }
}

static void set_status(jiwa_store_batch_t *b, int rc, const char *msg) {
  b->status = rc;
  if (rc && !b->errmsg)
    b->errmsg = strdup(msg);
}

static void port_unref(jiwa_store_port_t *p) {
  if (atomic_fetch_sub(&p->refs, 1) == 1) {
    pthread_mutex_destroy(&p->mu);
    free(p);
  }
}

static void complete(jiwa_store_t *s, jiwa_store_batch_t *b) {
  atomic_fetch_add(&s->batches, 1);
  if (b->status)
    atomic_fetch_add(&s->failed, 1);
  else
    atomic_fetch_add(&s->ops, b->nops);
  b->next = NULL;
  if (b->waiter) {
    waiter_t *w = b->waiter;
    pthread_mutex_lock(&w->mu);
    w->status = b->status;
    snprintf(w->msg, sizeof w->msg, "%s", b->errmsg ? b->errmsg : "");
    w->done = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    jiwa_store_batch_free(b);
    return;
  }
  jiwa_store_port_t *p = b->port;
  pthread_mutex_lock(&p->mu);
  if (p->closing) {
    jiwa_store_batch_free(b);
  } else {
    if (p->tail)
      p->tail->next = b;
    else
      p->head = b;
    p->tail = b;
    /* Under the mutex: once closing is set the loop may be gone. */
    uv_async_send(&p->async);
  }
  pthread_mutex_unlock(&p->mu);
  port_unref(p);
}

static void commit_group(jiwa_store_t *s, jiwa_store_batch_t *g, size_t n) {
  char msg[512] = "";
  int rc = commit_list(s, g, n, msg, sizeof msg);
  if (rc == MDB_TXN_FULL && n > 1) {
    for (jiwa_store_batch_t *b = g; b; b = b->next) {
      msg[0] = '\0';
      int r = commit_list(s, b, 1, msg, sizeof msg);
      set_status(b, r == MDB_TXN_FULL ? JIWA_ETOOBIG : r, msg);
    }
    return;
  }
  if (rc == MDB_TXN_FULL)
    rc = JIWA_ETOOBIG;
  for (jiwa_store_batch_t *b = g; b; b = b->next)
    set_status(b, rc, msg);
}

static void *writer_main(void *arg) {
  jiwa_store_t *s = arg;
  uint64_t next_check = now_ms() + s->cfg.reader_check_ms;
  pthread_mutex_lock(&s->qmu);
  for (;;) {
    while (!s->qhead && !s->stopping) {
      uint64_t now = now_ms();
      if (now >= next_check) {
        pthread_mutex_unlock(&s->qmu);
        clear_stale(s);
        next_check = now_ms() + s->cfg.reader_check_ms;
        pthread_mutex_lock(&s->qmu);
        continue;
      }
      struct timespec ts;
      clock_gettime(CLOCK_MONOTONIC, &ts);
      uint64_t wait = next_check - now;
      ts.tv_sec += (time_t)(wait / 1000);
      ts.tv_nsec += (long)(wait % 1000) * 1000000L;
      if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
      }
      pthread_cond_timedwait(&s->qcv, &s->qmu, &ts);
    }
    if (!s->qhead)
      break; /* stopping, queue drained */
    jiwa_store_batch_t *g = s->qhead, *last = g;
    size_t n = 1, ops = g->nops, bytes = g->blen;
    while (last->next && ops + last->next->nops <= s->cfg.batch_max_ops &&
           bytes + last->next->blen <= s->cfg.batch_max_bytes) {
      last = last->next;
      ops += last->nops;
      bytes += last->blen;
      n++;
    }
    s->qhead = last->next;
    if (!s->qhead)
      s->qtail = NULL;
    last->next = NULL;
    s->qlen -= n;
    pthread_mutex_unlock(&s->qmu);

    commit_group(s, g, n);
    while (g) {
      jiwa_store_batch_t *nx = g->next;
      complete(s, g);
      g = nx;
    }
    if (now_ms() >= next_check) {
      clear_stale(s);
      next_check = now_ms() + s->cfg.reader_check_ms;
    }
    pthread_mutex_lock(&s->qmu);
  }
  pthread_mutex_unlock(&s->qmu);
  return NULL;
}

static int enqueue(jiwa_store_t *s, jiwa_store_batch_t *b) {
  pthread_mutex_lock(&s->qmu);
  if (s->stopping) {
    pthread_mutex_unlock(&s->qmu);
    return fail(JIWA_ESHUTDOWN, "store %s is closing: write refused", s->path);
  }
  if (s->qlen >= s->cfg.queue_max) {
    pthread_mutex_unlock(&s->qmu);
    return fail(JIWA_EBUSY,
                "store %s: %u batches already queued: retry "
                "later or raise store.queue_max",
                s->path, s->cfg.queue_max);
  }
  b->next = NULL;
  b->status = 0;
  if (s->qtail)
    s->qtail->next = b;
  else
    s->qhead = b;
  s->qtail = b;
  s->qlen++;
  pthread_cond_signal(&s->qcv);
  pthread_mutex_unlock(&s->qmu);
  return 0;
}

/* ---- ports
 * ---------------------------------------------------------------------------
 */

static void port_on_async(uv_async_t *h) {
  jiwa_store_port_t *p = h->data;
  pthread_mutex_lock(&p->mu);
  jiwa_store_batch_t *b = p->head;
  p->head = p->tail = NULL;
  pthread_mutex_unlock(&p->mu);
  while (b) {
    jiwa_store_batch_t *nx = b->next;
    if (!p->closing) /* a callback may close the port */
      b->cb(b->status, b->status ? b->errmsg : NULL, b->ud);
    jiwa_store_batch_free(b);
    b = nx;
  }
}

static void port_on_close(uv_handle_t *h) {
  port_unref(h->data);
}

int jiwa_store_port_open(jiwa_store_t *s, uv_loop_t *loop,
                         jiwa_store_port_t **out) {
  if (!s || !loop || !out)
    return fail(JIWA_EINVAL, "store: port_open needs a store, a loop and "
                             "an out pointer");
  jiwa_store_port_t *p = calloc(1, sizeof *p);
  if (!p)
    return fail(JIWA_ENOMEM, "store: out of memory for a port");
  p->s = s;
  atomic_init(&p->refs, 1);
  pthread_mutex_init(&p->mu, NULL);
  int rc = uv_async_init(loop, &p->async, port_on_async);
  if (rc) {
    pthread_mutex_destroy(&p->mu);
    free(p);
    return fail(JIWA_EIO, "store: uv_async_init: %s", uv_strerror(rc));
  }
  p->async.data = p;
  atomic_fetch_add(&s->ports, 1);
  *out = p;
  return 0;
}

void jiwa_store_port_close(jiwa_store_port_t *p) {
  if (!p || p->closing)
    return;
  pthread_mutex_lock(&p->mu);
  p->closing = 1;
  jiwa_store_batch_t *b = p->head;
  p->head = p->tail = NULL;
  pthread_mutex_unlock(&p->mu);
  while (b) {
    jiwa_store_batch_t *nx = b->next;
    jiwa_store_batch_free(b);
    b = nx;
  }
  atomic_fetch_sub(&p->s->ports, 1);
  uv_close((uv_handle_t *)&p->async, port_on_close);
}

int jiwa_store_submit(jiwa_store_port_t *p, jiwa_store_batch_t *b,
                      jiwa_store_done_fn cb, void *ud) {
  if (!p || !b || !cb || p->closing)
    return fail(JIWA_EINVAL, "store: submit needs an open port, a batch and "
                             "a callback");
  b->port = p;
  b->cb = cb;
  b->ud = ud;
  b->waiter = NULL;
  atomic_fetch_add(&p->refs, 1);
  int rc = enqueue(p->s, b);
  if (rc) {
    atomic_fetch_sub(&p->refs, 1);
    b->port = NULL;
  }
  return rc;
}

int jiwa_store_submit_wait(jiwa_store_t *s, jiwa_store_batch_t *b) {
  if (!s || !b) {
    jiwa_store_batch_free(b);
    return fail(JIWA_EINVAL, "store: submit_wait needs a store and a batch");
  }
  waiter_t w;
  memset(&w, 0, sizeof w);
  pthread_mutex_init(&w.mu, NULL);
  pthread_cond_init(&w.cv, NULL);
  b->port = NULL;
  b->waiter = &w;
  int rc = enqueue(s, b);
  if (rc) {
    jiwa_store_batch_free(b);
  } else {
    pthread_mutex_lock(&w.mu);
    while (!w.done)
      pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    rc = w.status;
    if (rc)
      fail(rc, "%s", w.msg);
  }
  pthread_cond_destroy(&w.cv);
  pthread_mutex_destroy(&w.mu);
  return rc;
}

int jiwa_store_put_wait(jiwa_store_t *s, jiwa_store_db_t db, const void *key,
                        size_t klen, uint32_t version, const void *payload,
                        size_t plen) {
  jiwa_store_batch_t *b;
  int rc = jiwa_store_batch_new(&b);
  if (rc)
    return rc;
  if ((rc = jiwa_store_batch_put(b, db, key, klen, version, payload, plen))) {
    jiwa_store_batch_free(b);
    return rc;
  }
  return jiwa_store_submit_wait(s, b);
}

/* ---- readers
 * -----------------------------------------------------------------------------
 */

int jiwa_store_read_begin(jiwa_store_t *s, jiwa_store_txn_t **out) {
  if (!s || !out)
    return fail(JIWA_EINVAL, "store: read_begin needs a store and an out "
                             "pointer");
  int checked = 0;
  for (;;) {
    /* gate_enter and a pool pop under one lock */
    pthread_mutex_lock(&s->gmu);
    while (s->growing)
      pthread_cond_wait(&s->gcv, &s->gmu);
    s->active++;
    jiwa_store_txn_t *t = s->pool;
    if (t) {
      s->pool = t->next;
      s->npool--;
    }
    pthread_mutex_unlock(&s->gmu);
    int rc = MDB_BAD_TXN;
    if (t) {
      rc = mdb_txn_renew(t->txn);
      if (rc) {
        mdb_txn_abort(t->txn);
        t->txn = NULL;
      }
    } else if (!(t = calloc(1, sizeof *t))) {
      gate_leave(s);
      return fail(JIWA_ENOMEM, "store: out of memory for a read txn");
    }
    if (rc)
      rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &t->txn);
    if (rc == 0) {
      t->s = s;
      t->next = NULL;
      *out = t;
      return 0;
    }
    free(t);
    gate_leave(s);
    if (rc == MDB_MAP_RESIZED) {
      if ((rc = adopt_size(s)) != 0)
        return rc;
      continue;
    }
    if (rc == MDB_READERS_FULL && !checked) {
      checked = 1;
      clear_stale(s);
      continue;
    }
    if (rc == MDB_READERS_FULL)
      return fail(JIWA_EBUSY,
                  "store %s: all %u reader slots are in use: "
                  "raise store.max_readers or end read transactions sooner",
                  s->path, s->cfg.max_readers);
    return fail(map_mdb(rc), "store %s: cannot start a read transaction: %s",
                s->path, mdb_strerror(rc));
  }
}

void jiwa_store_read_end(jiwa_store_txn_t *t) {
  if (!t)
    return;
  jiwa_store_t *s = t->s;
  mdb_txn_reset(t->txn);
  pthread_mutex_lock(&s->gmu);
  /* pooled txns keep their reader slot: leave most slots to others */
  if (s->npool < POOL_MAX && s->npool < s->cfg.max_readers / 4) {
    t->next = s->pool;
    s->pool = t;
    s->npool++;
    t = NULL;
  }
  if (--s->active == 0 && s->growing)
    pthread_cond_broadcast(&s->gcv);
  pthread_mutex_unlock(&s->gmu);
  if (t) {
    mdb_txn_abort(t->txn);
    free(t);
  }
}

static int corrupt(jiwa_store_t *s, int db, const void *key, size_t klen) {
  char why[sizeof tl_err], kb[128];
  memcpy(why, tl_err, sizeof why);
  return fail(JIWA_EPROTO,
              "store %s: database \"%s\" key \"%s\": %s; run "
              "`jiwa store check` and rewrite or delete that record",
              s->path, db_names[db], key_show(key, klen, kb, sizeof kb), why);
}

int jiwa_store_get(jiwa_store_txn_t *t, jiwa_store_db_t db, const void *key,
                   size_t klen, jiwa_store_val_t *out) {
  if (!t || (unsigned)db >= JIWA_STORE_DB_COUNT || !key || klen == 0 || !out)
    return fail(JIWA_EINVAL, "store: get needs a txn, a database, a "
                             "non-empty key and an out value");
  if (klen > t->s->maxkey)
    return fail(JIWA_ENOENT, "store: key longer than any stored key");
  MDB_val k = {klen, (void *)key}, v;
  int rc = mdb_get(t->txn, t->s->dbi[db], &k, &v);
  if (rc == MDB_NOTFOUND) {
    tl_err[0] = '\0';
    return JIWA_ENOENT;
  }
  if (rc)
    return fail(map_mdb(rc), "store %s: get in \"%s\" failed: %s", t->s->path,
                db_names[db], mdb_strerror(rc));
  if (jiwa_store_value_decode(v.mv_data, v.mv_size, out) != 0)
    return corrupt(t->s, db, key, klen);
  return 0;
}

int jiwa_store_kv_get(jiwa_store_txn_t *t, const char *ns, const void *key,
                      size_t klen, jiwa_store_val_t *out) {
  jiwa_store_key_t k;
  int rc = kv_key(&k, ns, key, klen);
  if (rc)
    return rc == JIWA_ETOOBIG ? JIWA_ENOENT : rc;
  return jiwa_store_get(t, JIWA_STORE_DB_KV, k.buf, k.len, out);
}

/* Bytewise order, shorter first on a tie: LMDB's default key order. */
static int key_cmp(const void *a, size_t al, const void *b, size_t bl) {
  int c = memcmp(a, b, al < bl ? al : bl);
  if (c)
    return c;
  return al < bl ? -1 : al > bl;
}

typedef struct {
  size_t strip; /* bytes of key prefix hidden from the callback */
  jiwa_store_scan_fn cb;
  void *ud;
} scan_ctx_t;

static int scan(jiwa_store_txn_t *t, jiwa_store_db_t db, const void *start,
                size_t slen, const void *prefix, size_t plen, const void *end,
                size_t elen, const scan_ctx_t *sc) {
  if (!t || (unsigned)db >= JIWA_STORE_DB_COUNT || !sc->cb ||
      (slen && !start) || (plen && !prefix))
    return fail(JIWA_EINVAL, "store: scan needs a txn, a database and a "
                             "callback");
  MDB_cursor *cur;
  int rc = mdb_cursor_open(t->txn, t->s->dbi[db], &cur);
  if (rc)
    return fail(map_mdb(rc), "store %s: cursor on \"%s\": %s", t->s->path,
                db_names[db], mdb_strerror(rc));
  MDB_val k = {slen, (void *)start}, v;
  rc = slen ? mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)
            : mdb_cursor_get(cur, &k, &v, MDB_FIRST);
  int out = 0;
  while (rc == 0) {
    if (plen && !has_prefix(&k, prefix, plen))
      break;
    if (end && key_cmp(k.mv_data, k.mv_size, end, elen) >= 0)
      break;
    jiwa_store_val_t val;
    if (jiwa_store_value_decode(v.mv_data, v.mv_size, &val) != 0) {
      out = corrupt(t->s, db, k.mv_data, k.mv_size);
      break;
    }
    int c = sc->cb((const uint8_t *)k.mv_data + sc->strip,
                   k.mv_size - sc->strip, &val, sc->ud);
    if (c != 0) {
      out = c < 0 ? c : 0;
      break;
    }
    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
  }
  if (rc && rc != MDB_NOTFOUND && out == 0)
    out = fail(map_mdb(rc), "store %s: scan of \"%s\" failed: %s", t->s->path,
               db_names[db], mdb_strerror(rc));
  mdb_cursor_close(cur);
  return out;
}

int jiwa_store_scan_prefix(jiwa_store_txn_t *t, jiwa_store_db_t db,
                           const void *prefix, size_t plen,
                           jiwa_store_scan_fn cb, void *ud) {
  scan_ctx_t sc = {0, cb, ud};
  return scan(t, db, prefix, plen, prefix, plen, NULL, 0, &sc);
}

int jiwa_store_scan_range(jiwa_store_txn_t *t, jiwa_store_db_t db,
                          const void *start, size_t slen, const void *end,
                          size_t elen, jiwa_store_scan_fn cb, void *ud) {
  scan_ctx_t sc = {0, cb, ud};
  return scan(t, db, start, slen, NULL, 0, end, elen, &sc);
}

int jiwa_store_kv_scan(jiwa_store_txn_t *t, const char *ns, const void *prefix,
                       size_t plen, jiwa_store_scan_fn cb, void *ud) {
  jiwa_store_key_t k;
  int rc = kv_key(&k, ns, prefix, plen);
  if (rc)
    return rc;
  scan_ctx_t sc = {strlen(ns) + 1, cb, ud};
  return scan(t, JIWA_STORE_DB_KV, k.buf, k.len, k.buf, k.len, NULL, 0, &sc);
}

int jiwa_store_val_dup(const jiwa_store_val_t *v, void **out, size_t *len) {
  if (!v || !out)
    return fail(JIWA_EINVAL, "store: val_dup needs a value and an out "
                             "pointer");
  void *p = malloc(v->len ? v->len : 1);
  if (!p)
    return fail(JIWA_ENOMEM, "store: out of memory copying %zu bytes", v->len);
  if (v->len)
    memcpy(p, v->data, v->len);
  *out = p;
  if (len)
    *len = v->len;
  return 0;
}

int jiwa_store_fetch(jiwa_store_t *s, jiwa_store_db_t db, const void *key,
                     size_t klen, uint32_t *version, void **out, size_t *len) {
  jiwa_store_txn_t *t;
  int rc = jiwa_store_read_begin(s, &t);
  if (rc)
    return rc;
  jiwa_store_val_t v;
  rc = jiwa_store_get(t, db, key, klen, &v);
  if (rc == 0) {
    rc = jiwa_store_val_dup(&v, out, len);
    if (rc == 0 && version)
      *version = v.version;
  }
  jiwa_store_read_end(t);
  return rc;
}

/* ---- maintenance
 * ---------------------------------------------------------------------- */

int jiwa_store_backup(jiwa_store_t *s, const char *path) {
  if (!s || !path || !*path)
    return fail(JIWA_EINVAL, "store: backup needs a store and a directory");
  if (mkdir(path, 0700) != 0 && errno != EEXIST)
    return fail(map_mdb(errno),
                "store backup %s: cannot create the "
                "directory: %s",
                path, strerror(errno));
  char data[4096];
  snprintf(data, sizeof data, "%s/data.mdb", path);
  if (access(data, F_OK) == 0)
    return fail(JIWA_EEXIST,
                "store backup %s: %s already exists: back up "
                "into a new or empty directory",
                path, data);
  gate_enter(s); /* no map growth while LMDB copies from the map */
  int rc = mdb_env_copy2(s->env, path, MDB_CP_COMPACT);
  gate_leave(s);
  if (rc)
    return fail(map_mdb(rc),
                "store backup %s: mdb_env_copy2 failed: %s "
                "(check permissions and free space; remove the partial "
                "data.mdb before retrying)",
                path, mdb_strerror(rc));
  slog(s, LOG_INFO, "store %s: backed up to %s", s->path, path);
  return 0;
}

static void problem(jiwa_store_report_t *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void problem(jiwa_store_report_t *r, const char *fmt, ...) {
  if (r->problems < JIWA_STORE_REPORT_PROBLEMS) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->problem[r->problems], sizeof r->problem[0], fmt, ap);
    va_end(ap);
  }
  r->problems++;
}

/* Databases whose keys are "<name>\0<rest>" with a non-empty name. */
static int key_needs_ns(int db) {
  return db == JIWA_STORE_DB_KV || db == JIWA_STORE_DB_VECTORS;
}

int jiwa_store_check(jiwa_store_t *s, jiwa_store_report_t *r) {
  if (!s || !r)
    return fail(JIWA_EINVAL, "store: check needs a store and a report");
  memset(r, 0, sizeof *r);
  jiwa_store_txn_t *t;
  int rc = jiwa_store_read_begin(s, &t);
  if (rc)
    return rc;
  uint32_t fmt = 0;
  if (get_format(s, t->txn, &fmt) != 0)
    problem(r, "meta: the \"format\" record is corrupt: restore a backup");
  else if (fmt == 0)
    problem(r, "meta: no \"format\" record: reopen the store to write it");
  else if (fmt > JIWA_STORE_FORMAT_VERSION)
    problem(r, "meta: format %u is newer than this jiwa (%u)", fmt,
            JIWA_STORE_FORMAT_VERSION);
  r->format = fmt;
  int walk_failed = 0;
  for (int db = 0; db < JIWA_STORE_DB_COUNT; db++) {
    MDB_cursor *cur;
    rc = mdb_cursor_open(t->txn, s->dbi[db], &cur);
    if (rc) {
      problem(r, "%s: cannot open a cursor: %s", db_names[db],
              mdb_strerror(rc));
      walk_failed = 1;
      continue;
    }
    MDB_val k, v;
    rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (rc == 0) {
      r->entries[db]++;
      r->bytes[db] += k.mv_size + v.mv_size;
      char kb[96];
      if (jiwa_store_value_decode(v.mv_data, v.mv_size, NULL) != 0)
        problem(r, "%s key \"%s\": %s; rewrite or delete it", db_names[db],
                key_show(k.mv_data, k.mv_size, kb, sizeof kb), tl_err);
      if (key_needs_ns(db)) {
        const uint8_t *z = memchr(k.mv_data, 0, k.mv_size);
        if (!z || z == k.mv_data ||
            z + 1 == (const uint8_t *)k.mv_data + k.mv_size)
          problem(r, "%s key \"%s\": not \"<name>\\0<key>\"", db_names[db],
                  key_show(k.mv_data, k.mv_size, kb, sizeof kb));
      }
      rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (rc != MDB_NOTFOUND) {
      problem(r,
              "%s: walk stopped after %" PRIu64 " records: %s; restore a "
              "backup",
              db_names[db], r->entries[db], mdb_strerror(rc));
      walk_failed = 1;
    }
    mdb_cursor_close(cur);
    MDB_stat st;
    if (mdb_stat(t->txn, s->dbi[db], &st) == 0 && !walk_failed &&
        st.ms_entries != r->entries[db])
      problem(r, "%s: %zu entries recorded but %" PRIu64 " walked",
              db_names[db], (size_t)st.ms_entries, r->entries[db]);
  }
  jiwa_store_read_end(t);
  if (r->problems)
    return fail(JIWA_EPROTO, "store %s: check found %" PRIu64 " problem(s)%s",
                s->path, r->problems, walk_failed ? " (walk incomplete)" : "");
  return 0;
}
