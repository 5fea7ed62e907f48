/* Scripts (what the next matching requests get), the request log, stats,
 * and the /_mock/ control endpoints that manage them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jiwa/json.h"
#include "mockllm.h"

#define MAX_ENTRIES 10000
#define MAX_COUNTERS 1024
#define MAX_LINE (1u << 20)

typedef struct entry {
  struct entry *next;
  int route;
  char *match, *reply, *fault_str;
  mock_fault_t fault;
  long times;     /* -1 = until cleared */
  unsigned fails; /* fail_times used so far */
} entry_t;

static entry_t *entries, **entries_tail = &entries;
static size_t nentries;
/* The reply of the last entry that expired, handed out by resolve. */
static char *expired_reply;

/* fail_times of X-Mock-Fault headers: counted per (route, exact value). */
typedef struct counter {
  struct counter *next;
  int route;
  char *spec;
  unsigned fails;
} counter_t;
static counter_t *counters;
static size_t ncounters;

static struct {
  uint64_t requests[MOCK_ROUTE_COUNT];
  uint64_t faults[MF_COUNT_];
  uint64_t connections, bad_requests;
} stats;

typedef struct record {
  struct record *next;
  size_t len;
  char data[]; /* one msgpack map */
} record_t;
static record_t *records, **records_tail = &records;
static size_t nrecords, record_bytes;
static uint64_t record_seq;

static char *dupn(const char *s, size_t n) {
  char *p = malloc(n + 1);
  if (p) {
    memcpy(p, s, n);
    p[n] = '\0';
  }
  return p;
}

/* ---- entries
 * ----------------------------------------------------------------- */
static void entry_free(entry_t *e) {
  free(e->match);
  free(e->reply);
  free(e->fault_str);
  free(e);
}

static void counters_clear(void) {
  while (counters) {
    counter_t *c = counters;
    counters = c->next;
    free(c->spec);
    free(c);
  }
  ncounters = 0;
}

void mock_script_clear(void) {
  while (entries) {
    entry_t *e = entries;
    entries = e->next;
    entry_free(e);
  }
  entries_tail = &entries;
  nentries = 0;
  free(expired_reply);
  expired_reply = NULL;
  counters_clear();
}

static int opt_str(const void *b, size_t n, const char *key, char **out,
                   char *err, size_t errlen) {
  const char *s;
  size_t sl;
  int rc = jiwa_mp_get_str(b, n, key, &s, &sl);
  if (rc == JIWA_ENOENT)
    return 0;
  if (rc) {
    snprintf(err, errlen, "'%s' must be a string", key);
    return JIWA_EINVAL;
  }
  if (!(*out = dupn(s, sl)))
    return JIWA_ENOMEM;
  return 0;
}

/* One entry from a msgpack map; appended on success. */
static int entry_add(const void *b, size_t n, char *err, size_t errlen) {
  jiwa_mp_reader_t r;
  jiwa_mp_item_t it;
  jiwa_mp_reader_init(&r, b, n);
  if (jiwa_mp_next(&r, &it) || it.type != JIWA_MP_MAP) {
    snprintf(err, errlen, "a script entry must be a JSON object");
    return JIWA_EINVAL;
  }
  /* refuse unknown keys: a typo would otherwise silently match everything */
  for (uint32_t i = 0; i < it.v.count; i++) {
    jiwa_mp_item_t k;
    if (jiwa_mp_next(&r, &k) || jiwa_mp_skip(&r))
      return JIWA_EINVAL;
    static const char *const known[] = {"route", "match", "reply", "fault",
                                        "times"};
    int ok = 0;
    for (size_t j = 0; k.type == JIWA_MP_STR && j < 5; j++)
      ok |= strlen(known[j]) == k.v.s.len &&
            !memcmp(known[j], k.v.s.ptr, k.v.s.len);
    if (!ok) {
      snprintf(err, errlen,
               "unknown key in a script entry (known: route, "
               "match, reply, fault, times)");
      return JIWA_EINVAL;
    }
  }
  if (nentries >= MAX_ENTRIES) {
    snprintf(err, errlen, "more than %d script entries", MAX_ENTRIES);
    return JIWA_ETOOBIG;
  }
  entry_t *e = calloc(1, sizeof *e);
  if (!e)
    return JIWA_ENOMEM;
  e->times = -1;
  e->route = MOCK_ROUTE_ALL;
  int rc = 0;
  const char *s;
  size_t sl;
  rc = jiwa_mp_get_str(b, n, "route", &s, &sl);
  if (rc == 0) {
    e->route = mock_route_parse(s, sl);
    if (e->route < 0) {
      snprintf(err, errlen,
               "'route' must be one of anthropic, openai, "
               "runpod, hf, embeddings, *");
      rc = JIWA_EINVAL;
      goto fail;
    }
  } else if (rc != JIWA_ENOENT) {
    snprintf(err, errlen, "'route' must be a string");
    goto fail;
  }
  if ((rc = opt_str(b, n, "match", &e->match, err, errlen)) ||
      (rc = opt_str(b, n, "reply", &e->reply, err, errlen)) ||
      (rc = opt_str(b, n, "fault", &e->fault_str, err, errlen)))
    goto fail;
  if (e->fault_str) {
    char ferr[256];
    if ((rc = mock_fault_parse(e->fault_str, strlen(e->fault_str), &e->fault,
                               ferr, sizeof ferr))) {
      snprintf(err, errlen, "'fault': %s", ferr);
      goto fail;
    }
  }
  int64_t t;
  rc = jiwa_mp_get_int(b, n, "times", &t);
  if (rc == 0) {
    if (t < 1 || t > 1000000000) {
      snprintf(err, errlen, "'times' must be an integer >= 1");
      rc = JIWA_EINVAL;
      goto fail;
    }
    e->times = (long)t;
  } else if (rc != JIWA_ENOENT) {
    snprintf(err, errlen, "'times' must be an integer >= 1");
    goto fail;
  }
  if (!e->reply && !e->fault_str) {
    snprintf(err, errlen, "a script entry needs 'reply' or 'fault'");
    rc = JIWA_EINVAL;
    goto fail;
  }
  *entries_tail = e;
  entries_tail = &e->next;
  nentries++;
  return 0;
fail:
  entry_free(e);
  return rc ? rc : JIWA_EINVAL;
}

int mock_script_add_json(const char *json, size_t len, char *err,
                         size_t errlen) {
  char *mp = NULL;
  size_t mplen = 0;
  jiwa_json_error_t je;
  jiwa_json_limits_t lim = {.max_input = MOCK_MAX_BODY};
  int rc = jiwa_json_to_mp(json, len, &lim, &mp, &mplen, &je);
  if (rc) {
    if (rc == JIWA_ENOMEM)
      snprintf(err, errlen, "out of memory");
    else
      snprintf(err, errlen, "invalid JSON at line %u column %u: %s", je.line,
               je.column, je.msg);
    return rc == JIWA_ENOMEM ? rc : JIWA_EINVAL;
  }
  jiwa_mp_reader_t r;
  jiwa_mp_item_t it;
  jiwa_mp_reader_init(&r, mp, mplen);
  jiwa_mp_next(&r, &it);
  if (it.type == JIWA_MP_ARRAY) {
    for (uint32_t i = 0; i < it.v.count && rc == 0; i++) {
      const uint8_t *st = r.p;
      if (jiwa_mp_skip(&r)) {
        rc = JIWA_EINVAL;
        break;
      }
      char e2[300];
      rc = entry_add(st, (size_t)(r.p - st), e2, sizeof e2);
      if (rc)
        snprintf(err, errlen, "entry %u: %s", i, e2);
    }
  } else {
    rc = entry_add(mp, mplen, err, errlen);
  }
  free(mp);
  return rc;
}

int mock_script_load(const char *path, char *err, size_t errlen) {
  FILE *f = fopen(path, "r");
  if (!f) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return JIWA_EIO;
  }
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  unsigned lineno = 0;
  int rc = 0;
  while (rc == 0 && (n = getline(&line, &cap, f)) >= 0) {
    lineno++;
    if ((size_t)n > MAX_LINE) {
      snprintf(err, errlen, "%s:%u: line longer than 1 MiB", path, lineno);
      rc = JIWA_ETOOBIG;
      break;
    }
    size_t i = 0;
    while (i < (size_t)n && (line[i] == ' ' || line[i] == '\t' ||
                             line[i] == '\r' || line[i] == '\n'))
      i++;
    if (i == (size_t)n || line[i] == '#')
      continue; /* blank lines and # comments */
    char e2[300];
    rc = mock_script_add_json(line, (size_t)n, e2, sizeof e2);
    if (rc)
      snprintf(err, errlen, "%s:%u: %s", path, lineno, e2);
  }
  free(line);
  fclose(f);
  return rc;
}

int mock_script_resolve(int route, const char *user, const char *hdr,
                        size_t hdrlen, mock_fault_t *f, const char **reply,
                        char *err, size_t errlen) {
  memset(f, 0, sizeof *f);
  *reply = NULL;
  mock_fault_t hf;
  if (hdr && mock_fault_parse(hdr, hdrlen, &hf, err, errlen))
    return JIWA_EINVAL;
  entry_t **pp = &entries, *e = NULL;
  for (; *pp; pp = &(*pp)->next) {
    entry_t *x = *pp;
    if ((x->route == route || x->route == MOCK_ROUTE_ALL) &&
        (!x->match || strstr(user, x->match))) {
      e = x;
      break;
    }
  }
  unsigned *fails = NULL;
  if (e) {
    *f = e->fault;
    *reply = e->reply;
    fails = &e->fails;
  }
  if (hdr) {
    mock_fault_merge(f, &hf);
    if (hf.set & MF_FAIL_TIMES) { /* the header's own counter */
      counter_t *c = counters;
      while (c && !(c->route == route && strlen(c->spec) == hdrlen &&
                    !memcmp(c->spec, hdr, hdrlen)))
        c = c->next;
      if (!c && ncounters < MAX_COUNTERS && (c = calloc(1, sizeof *c))) {
        if (!(c->spec = dupn(hdr, hdrlen))) {
          free(c);
          c = NULL;
        } else {
          c->route = route;
          c->next = counters;
          counters = c;
          ncounters++;
        }
      }
      fails = c ? &c->fails : NULL;
    }
  }
  if (f->set & MF_FAIL_TIMES) {
    if (fails && *fails < f->fail_times) {
      (*fails)++;
      if (!(f->set & (MF_STATUS | MF_REFUSE | MF_SILENCE | MF_STALL |
                      MF_RESET_AFTER | MF_MALFORMED | MF_ERROR_AFTER))) {
        f->set |= MF_STATUS;
        f->status = 500;
      }
    } else {
      memset(f, 0, sizeof *f); /* the run is over: succeed */
    }
  }
  if (e && e->times > 0 && --e->times == 0) {
    /* expired: the reply/fault were copied or are used at once by the
     * caller, so hand the strings over before freeing the entry */
    free(expired_reply);
    expired_reply = e->reply;
    e->reply = NULL;
    *reply = expired_reply;
    for (pp = &entries; *pp != e; pp = &(*pp)->next)
      ;
    *pp = e->next;
    if (entries_tail == &e->next)
      entries_tail = pp;
    nentries--;
    entry_free(e);
  }
  return 0;
}

/* ---- stats ------------------------------------------------------------------
 */
void mock_stats_fault(const mock_fault_t *f) {
  for (int i = 0; i < MF_COUNT_; i++)
    if (f->set & (1u << i))
      stats.faults[i]++;
}
void mock_stats_request(int route) {
  if (route >= 0 && route < MOCK_ROUTE_COUNT)
    stats.requests[route]++;
}
void mock_stats_bad_request(void) {
  stats.bad_requests++;
}
void mock_stats_connection(void) {
  stats.connections++;
}

/* ---- request log
 * -------------------------------------------------------------- */
static void put_hdr(msgpack_packer *pk, const mock_http_req_t *req,
                    const char *key, const char *name) {
  size_t vl;
  const char *v = mock_http_header(req, name, &vl);
  jiwa_mp_put_str(pk, key);
  if (!v) {
    msgpack_pack_nil(pk);
    return;
  }
  msgpack_pack_str(pk, vl);
  msgpack_pack_str_body(pk, v, vl);
}

static void record_drop_oldest(void) {
  record_t *r = records;
  records = r->next;
  if (!records)
    records_tail = &records;
  record_bytes -= r->len;
  nrecords--;
  free(r);
}

void mock_record(int route, const char *method, size_t mlen, const char *target,
                 size_t tlen, const mock_http_req_t *req, const char *body,
                 size_t blen) {
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_packer *pk = &w.pk;
  const char *q = memchr(target, '?', tlen);
  size_t plen = q ? (size_t)(q - target) : tlen;
  const char *auth = "none";
  size_t al;
  const char *av = mock_http_header(req, "authorization", &al);
  if (mock_http_header(req, "x-api-key", NULL))
    auth = "x-api-key";
  else if (av && al >= 7 && !strncasecmp(av, "Bearer ", 7))
    auth = "bearer";
  else if (av)
    auth = "authorization";
  msgpack_pack_map(pk, 8);
  jiwa_mp_put_kv_int(pk, "seq", (int64_t)++record_seq);
  jiwa_mp_put_kv_str(pk, "route", mock_route_name(route));
  jiwa_mp_put_str(pk, "method");
  msgpack_pack_str(pk, mlen);
  msgpack_pack_str_body(pk, method, mlen);
  jiwa_mp_put_str(pk, "path");
  msgpack_pack_str(pk, plen);
  msgpack_pack_str_body(pk, target, plen);
  jiwa_mp_put_kv_str(pk, "auth", auth);
  put_hdr(pk, req, "anthropic_version", "anthropic-version");
  put_hdr(pk, req, "fault", "x-mock-fault");
  jiwa_mp_put_str(pk, "body");
  /* the parsed body; a body that is not JSON is kept as a string */
  char *mp = NULL;
  size_t mplen = 0;
  if (blen == 0) {
    msgpack_pack_nil(pk);
  } else if (jiwa_json_to_mp(body, blen, NULL, &mp, &mplen, NULL) == 0 &&
             jiwa_mp_scan(mp, mplen, JIWA_MP_MAX_DEPTH, NULL) == 0) {
    msgpack_sbuffer_write(&w.sbuf, mp, mplen);
  } else {
    msgpack_pack_str(pk, blen);
    msgpack_pack_str_body(pk, body, blen);
  }
  free(mp);
  record_t *r = malloc(sizeof *r + w.sbuf.size);
  if (r) {
    r->next = NULL;
    r->len = w.sbuf.size;
    memcpy(r->data, w.sbuf.data, w.sbuf.size);
    *records_tail = r;
    records_tail = &r->next;
    nrecords++;
    record_bytes += r->len;
    while (records != r && (nrecords > MOCK_MAX_RECORDS ||
                            record_bytes > MOCK_MAX_RECORD_BYTES))
      record_drop_oldest();
  }
  jiwa_mp_writer_free(&w);
}

void mock_records_free(void) {
  while (records)
    record_drop_oldest();
}

/* ---- control endpoints
 * ---------------------------------------------------------- */
static void ok_body(mock_buf_t *out, const char *extra_key, int64_t v) {
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, extra_key ? 2 : 1);
  jiwa_mp_put_kv_bool(&w.pk, "ok", 1);
  if (extra_key)
    jiwa_mp_put_kv_int(&w.pk, extra_key, v);
  mock_json_render(&w, out);
  jiwa_mp_writer_free(&w);
}

static void err_body(mock_buf_t *out, const char *type, const char *msg) {
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 1);
  jiwa_mp_put_str(&w.pk, "error");
  msgpack_pack_map(&w.pk, 2);
  jiwa_mp_put_kv_str(&w.pk, "type", type);
  jiwa_mp_put_kv_str(&w.pk, "message", msg);
  mock_json_render(&w, out);
  jiwa_mp_writer_free(&w);
}

static void stats_body(mock_buf_t *out) {
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_packer *pk = &w.pk;
  msgpack_pack_map(pk, 4);
  jiwa_mp_put_str(pk, "requests");
  msgpack_pack_map(pk, MOCK_ROUTE_COUNT);
  for (int i = 0; i < MOCK_ROUTE_COUNT; i++)
    jiwa_mp_put_kv_int(pk, mock_route_name(i), (int64_t)stats.requests[i]);
  jiwa_mp_put_str(pk, "faults");
  msgpack_pack_map(pk, MF_COUNT_);
  for (int i = 0; i < MF_COUNT_; i++)
    jiwa_mp_put_kv_int(pk, mock_fault_name(i), (int64_t)stats.faults[i]);
  jiwa_mp_put_kv_int(pk, "connections", (int64_t)stats.connections);
  jiwa_mp_put_kv_int(pk, "bad_requests", (int64_t)stats.bad_requests);
  mock_json_render(&w, out);
  jiwa_mp_writer_free(&w);
}

static void script_body(mock_buf_t *out) {
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_packer *pk = &w.pk;
  msgpack_pack_array(pk, (uint32_t)nentries);
  for (entry_t *e = entries; e; e = e->next) {
    msgpack_pack_map(pk, 5);
    jiwa_mp_put_kv_str(pk, "route", mock_route_name(e->route));
    jiwa_mp_put_kv_str(pk, "match", e->match);
    jiwa_mp_put_kv_str(pk, "reply", e->reply);
    jiwa_mp_put_kv_str(pk, "fault", e->fault_str);
    jiwa_mp_put_str(pk, "times_left");
    if (e->times < 0)
      msgpack_pack_nil(pk);
    else
      msgpack_pack_int64(pk, e->times);
  }
  mock_json_render(&w, out);
  jiwa_mp_writer_free(&w);
}

static void requests_body(mock_buf_t *out) {
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_array(&w.pk, (uint32_t)nrecords);
  for (record_t *r = records; r; r = r->next)
    msgpack_sbuffer_write(&w.sbuf, r->data, r->len);
  mock_json_render(&w, out);
  jiwa_mp_writer_free(&w);
}

static int meq(const char *m, size_t n, const char *lit) {
  return strlen(lit) == n && memcmp(m, lit, n) == 0;
}

int mock_control(const char *method, size_t mlen, const char *path, size_t plen,
                 const char *body, size_t blen, int *status, mock_buf_t *out) {
  if (plen < 7 || memcmp(path, "/_mock/", 7) != 0)
    return JIWA_ENOENT;
  const char *what = path + 7;
  size_t wl = plen - 7;
  int get = meq(method, mlen, "GET"), del = meq(method, mlen, "DELETE"),
      post = meq(method, mlen, "POST");
  *status = 200;
  if (meq(what, wl, "script")) {
    if (post) {
      char err[512];
      int rc = mock_script_add_json(body, blen, err, sizeof err);
      if (rc) {
        *status = rc == JIWA_ENOMEM ? 500 : 400;
        err_body(out, "invalid_script", err);
      } else {
        ok_body(out, "entries", (int64_t)nentries);
      }
    } else if (del) {
      mock_script_clear();
      ok_body(out, NULL, 0);
    } else if (get) {
      script_body(out);
    } else {
      goto bad_method;
    }
  } else if (meq(what, wl, "requests")) {
    if (get)
      requests_body(out);
    else if (del) {
      mock_records_free();
      ok_body(out, NULL, 0);
    } else
      goto bad_method;
  } else if (meq(what, wl, "stats")) {
    if (get)
      stats_body(out);
    else if (del) {
      memset(&stats, 0, sizeof stats);
      ok_body(out, NULL, 0);
    } else
      goto bad_method;
  } else if (meq(what, wl, "reset")) {
    if (!post)
      goto bad_method;
    mock_script_clear();
    mock_records_free();
    mock_runpod_clear();
    memset(&stats, 0, sizeof stats);
    ok_body(out, NULL, 0);
  } else if (meq(what, wl, "health")) {
    if (!get)
      goto bad_method;
    jiwa_mp_writer_t w;
    jiwa_mp_writer_init(&w);
    msgpack_pack_map(&w.pk, 2);
    jiwa_mp_put_kv_bool(&w.pk, "ok", 1);
    jiwa_mp_put_kv_str(&w.pk, "mock",
                       "mockllm: OFFLINE stand-in, no real model");
    mock_json_render(&w, out);
    jiwa_mp_writer_free(&w);
  } else {
    *status = 404;
    err_body(out, "not_found",
             "unknown control endpoint (script, requests, stats, reset, "
             "health)");
  }
  return 0;
bad_method:
  *status = 405;
  err_body(out, "method_not_allowed", "method not allowed on this endpoint");
  return 0;
}
