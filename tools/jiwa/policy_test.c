/*
 * `jiwa policy test FILE --requests REQS.jsonl`: run a routing policy
 * against recorded requests with fake actors (runtime/policy/
 * jiwa_dryrun.h) and print, per request, the calls it made in order, what
 * it sent (the context it built) and what came back, and its reply — so
 * that someone editing a policy sees what it would do before reloading it.
 * With --check, each line's "expect" is compared and a mismatch fails.
 * Also the renderer of `jiwa chat --explain`.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "jiwa/errors.h"
#include "jiwa/json.h"
#include "jiwa/mp.h"
#include "jiwa_dryrun.h"
#include "jiwa_log.h"

#define REQS_MAX ((size_t)64 << 20)
#define FAKES_MAX 64

/* The bytes of the value of @p key in map @p buf (NULL when absent). */
static const uint8_t *value_of(const void *buf, size_t len, const char *key,
                               size_t *n) {
  jiwa_mp_reader_t at;
  if (!buf || jiwa_mp_map_find(buf, len, key, &at) != 0)
    return NULL;
  const uint8_t *p = at.p;
  if (jiwa_mp_skip(&at) != 0)
    return NULL;
  *n = (size_t)(at.p - p);
  return p;
}

static char *json_of(const void *mp, size_t len) {
  char *js = NULL;
  if (jiwa_mp_to_json(mp, len, &js, NULL) != 0)
    return strdup("<unprintable>");
  return js;
}

/* One line of JSON, cut at @p max bytes with "..." (full: not cut). */
static void print_json_line(FILE *out, const char *label, const void *mp,
                            size_t len, int full) {
  char *js = json_of(mp, len);
  if (!js)
    return;
  size_t n = strlen(js), max = 200;
  if (!full && n > max) {
    while (max > 0 && ((unsigned char)js[max] & 0xc0) == 0x80)
      max--; /* never cut a character in two */
    fprintf(out, "       %s %.*s...\n", label, (int)max, js);
  } else {
    fprintf(out, "       %s %s\n", label, js);
  }
  free(js);
}

static void get_s(const void *m, size_t n, const char *k, char *out,
                  size_t cap) {
  if (jiwa_mp_get_strcpy(m, n, k, out, cap) != 0 && cap)
    out[0] = 0;
}

/* The story of a chat in five lines, from the steps of known types:
 * language, golden cache, insights, memory, model. */
static void print_summary(FILE *out, const void *reply, size_t len,
                          const uint8_t *steps, size_t sn) {
  char lang[17] = "";
  get_s(reply, len, "lang", lang, sizeof lang);
  if (lang[0])
    fprintf(out, "  language  %s\n", lang);
  jiwa_mp_reader_t r;
  jiwa_mp_item_t it;
  jiwa_mp_reader_init(&r, steps, sn);
  if (jiwa_mp_next(&r, &it) != 0 || it.type != JIWA_MP_ARRAY)
    return;
  for (uint32_t i = 0; i < it.v.count; i++) {
    const uint8_t *s = r.p;
    if (jiwa_mp_skip(&r) != 0)
      return;
    size_t n = (size_t)(r.p - s), gn = 0;
    char type[64], actor[64], err[200];
    double ms = 0, score = 0;
    int ok = 0, hit = 0;
    int64_t deltas = 0;
    get_s(s, n, "type", type, sizeof type);
    get_s(s, n, "actor", actor, sizeof actor);
    get_s(s, n, "error", err, sizeof err);
    jiwa_mp_get_double(s, n, "ms", &ms);
    jiwa_mp_get_bool(s, n, "ok", &ok);
    jiwa_mp_get_int(s, n, "deltas", &deltas);
    const uint8_t *got = value_of(s, n, "got", &gn);
    if (strcmp(type, "golden.lookup") == 0) {
      char id[128] = "", match[16] = "";
      if (got) {
        jiwa_mp_get_bool(got, gn, "hit", &hit);
        jiwa_mp_get_double(got, gn, "score", &score);
        get_s(got, gn, "id", id, sizeof id);
        get_s(got, gn, "match", match, sizeof match);
      }
      if (!ok)
        fprintf(out, "  golden    not asked (%s)\n", err);
      else if (hit)
        fprintf(out, "  golden    hit %s, score %.2f, %s match (%.2f ms): no "
                     "model call\n",
                id, score, match, ms);
      else
        fprintf(out, "  golden    miss (%.2f ms)\n", ms);
    } else if (strcmp(type, "rag.query") == 0) {
      fprintf(out, "  insights  ");
      size_t in;
      const uint8_t *ins = got ? value_of(got, gn, "insights", &in) : NULL;
      jiwa_mp_reader_t ir;
      jiwa_mp_item_t ia;
      int shown = 0;
      if (ins) {
        jiwa_mp_reader_init(&ir, ins, in);
        if (jiwa_mp_next(&ir, &ia) == 0 && ia.type == JIWA_MP_ARRAY)
          for (uint32_t k = 0; k < ia.v.count; k++) {
            const uint8_t *e = ir.p;
            if (jiwa_mp_skip(&ir) != 0)
              break;
            char iid[128] = "";
            double sc = 0;
            get_s(e, (size_t)(ir.p - e), "id", iid, sizeof iid);
            jiwa_mp_get_double(e, (size_t)(ir.p - e), "score", &sc);
            fprintf(out, "%s%s %.2f", shown++ ? ", " : "", iid, sc);
          }
      }
      if (!ok)
        fprintf(out, "none (%s)", err);
      else if (!shown)
        fprintf(out, "none needed");
      fprintf(out, " (%.2f ms)\n", ms);
    } else if (strcmp(type, "memory.get") == 0) {
      char sum[160] = "";
      if (got)
        get_s(got, gn, "summary", sum, sizeof sum);
      fprintf(out, "  memory    %s%s%s (%.2f ms)\n",
              !ok ? "none: " : sum[0] ? "\"" : "nothing known yet",
              !ok ? err : sum, ok && sum[0] ? "\"" : "", ms);
    } else if (strcmp(type, "llm.complete") == 0 &&
               strcmp(actor, "") != 0) {
      if (ok)
        fprintf(out, "  model     %s answered in %.2f ms, %lld streamed "
                     "part(s)\n",
                actor, ms, (long long)deltas);
      else
        fprintf(out, "  model     %s failed in %.2f ms: %s\n", actor, ms,
                err);
    }
  }
}

void cli_print_trace(FILE *out, const void *reply, size_t len, int bodies) {
  int full = bodies > 0;
  size_t tn;
  const uint8_t *t = value_of(reply, len, "trace", &tn);
  if (!t)
    return;
  char policy[256], fallback[600];
  double ms = 0;
  get_s(t, tn, "policy", policy, sizeof policy);
  get_s(t, tn, "fallback", fallback, sizeof fallback);
  jiwa_mp_get_double(t, tn, "ms", &ms);
  fprintf(out, "explain: policy %s, %.2f ms\n", policy, ms);
  size_t sn0;
  const uint8_t *steps0 = value_of(t, tn, "steps", &sn0);
  if (steps0)
    print_summary(out, reply, len, steps0, sn0);
  fprintf(out, "  calls:\n");
  size_t sn;
  const uint8_t *steps = value_of(t, tn, "steps", &sn);
  jiwa_mp_reader_t r;
  jiwa_mp_item_t it;
  if (steps) {
    jiwa_mp_reader_init(&r, steps, sn);
    if (jiwa_mp_next(&r, &it) == 0 && it.type == JIWA_MP_ARRAY) {
      for (uint32_t i = 0; i < it.v.count; i++) {
        const uint8_t *s = r.p;
        if (jiwa_mp_skip(&r) != 0)
          break;
        size_t n = (size_t)(r.p - s);
        char op[16], actor[64], type[64], err[256];
        double sms = 0;
        int ok = 0;
        int64_t deltas = 0;
        get_s(s, n, "op", op, sizeof op);
        get_s(s, n, "actor", actor, sizeof actor);
        get_s(s, n, "type", type, sizeof type);
        get_s(s, n, "error", err, sizeof err);
        jiwa_mp_get_double(s, n, "ms", &sms);
        jiwa_mp_get_bool(s, n, "ok", &ok);
        jiwa_mp_get_int(s, n, "deltas", &deltas);
        if (strcmp(op, "log") == 0) {
          size_t ln;
          const uint8_t *txt = value_of(s, n, "sent", &ln);
          char *js = txt ? json_of(txt, ln) : NULL;
          fprintf(out, "  %2u. log %s %s\n", i + 1, type, js ? js : "");
          free(js);
          continue;
        }
        fprintf(out, "  %2u. %-4s %s %s", i + 1, op, actor, type);
        if (strcmp(op, "tell") != 0)
          fprintf(out, "  %.2f ms", sms);
        if (deltas)
          fprintf(out, "  %lld deltas", (long long)deltas);
        fprintf(out, "  %s\n", ok ? "ok" : err);
        size_t bn;
        const uint8_t *b = bodies >= 0 ? value_of(s, n, "sent", &bn) : NULL;
        if (b) {
          const char *ctx;
          size_t cl;
          if (jiwa_mp_get_str(b, bn, "context", &ctx, &cl) == 0 && cl > 0 &&
              strcmp(op, "llm") == 0) {
            size_t show = full || cl < 400 ? cl : 400;
            fputs("       context: ", out);
            for (size_t c = 0; c < show; c++) /* one context line per line */
              if (ctx[c] == '\n')
                fputs("\n                ", out);
              else
                fputc(ctx[c], out);
            fputs(show < cl ? "...\n" : "\n", out);
          }
          print_json_line(out, "sent", b, bn, full);
        }
        if (bodies >= 0 && (b = value_of(s, n, "got", &bn)))
          print_json_line(out, "got ", b, bn, full);
      }
    }
  }
  if (fallback[0])
    fprintf(out, "  the policy failed (%s); the fallback route answered\n",
            fallback);
}

/* ---- the requests file --------------------------------------------------- */

typedef struct {
  unsigned line;
  char *mp; /* the parsed line */
  size_t len;
} entry_t;

static int read_file(const char *path, char **out, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return -1;
  size_t cap = 1 << 16, len = 0;
  char *b = malloc(cap);
  while (b) {
    size_t got = fread(b + len, 1, cap - len, f);
    len += got;
    if (got == 0)
      break;
    if (len == cap) {
      if (cap >= REQS_MAX) {
        free(b);
        b = NULL;
        errno = EFBIG;
        break;
      }
      char *nb = realloc(b, cap * 2);
      if (!nb) {
        free(b);
        b = NULL;
        break;
      }
      b = nb;
      cap *= 2;
    }
  }
  fclose(f);
  if (!b)
    return -1;
  *out = b;
  *n = len;
  return 0;
}

/* Parse every non-blank line that does not start with '#'. */
static int parse_requests(const char *path, entry_t **out, size_t *nout) {
  char *text;
  size_t len;
  if (read_file(path, &text, &len) != 0) {
    fprintf(stderr, "jiwa: cannot read %s: %s\n", path,
            errno == EFBIG ? "larger than 64 MiB" : strerror(errno));
    return -1;
  }
  entry_t *e = NULL;
  size_t n = 0, cap = 0;
  unsigned line = 0;
  int bad = 0;
  for (size_t i = 0; i < len;) {
    size_t j = i;
    while (j < len && text[j] != '\n')
      j++;
    line++;
    size_t k = i;
    while (k < j && (text[k] == ' ' || text[k] == '\t' || text[k] == '\r'))
      k++;
    if (k < j && text[k] != '#') {
      jiwa_json_error_t jerr;
      char *mp;
      size_t mlen;
      int rc = jiwa_json_to_mp(text + i, j - i, NULL, &mp, &mlen, &jerr);
      jiwa_mp_reader_t r;
      jiwa_mp_item_t it;
      if (rc == 0) {
        jiwa_mp_reader_init(&r, mp, mlen);
        if (jiwa_mp_next(&r, &it) != 0 || it.type != JIWA_MP_MAP) {
          free(mp);
          fprintf(stderr,
                  "%s:%u: each line must be a JSON object: {\"request\": "
                  "{\"text\": ...}, \"fakes\": {...}, \"expect\": {...}}\n",
                  path, line);
          bad++;
          rc = 1;
        }
      } else {
        fprintf(stderr, "%s:%u:%u: %s\n", path, line, jerr.column, jerr.msg);
        bad++;
      }
      if (rc == 0) {
        if (n == cap) {
          cap = cap ? cap * 2 : 16;
          entry_t *ne = realloc(e, cap * sizeof *e);
          if (!ne) {
            free(mp);
            bad++;
            break;
          }
          e = ne;
        }
        e[n++] = (entry_t){line, mp, mlen};
      }
    }
    i = j + 1;
  }
  free(text);
  if (bad) {
    for (size_t i = 0; i < n; i++)
      free(e[i].mp);
    free(e);
    fprintf(stderr, "jiwa: %d bad line(s) in %s; nothing was run\n", bad,
            path);
    return -1;
  }
  *out = e;
  *nout = n;
  return 0;
}

/* Add the keys of the map @p fakes to @p names (deduplicated). */
static void collect_fakes(const uint8_t *fakes, size_t n, char **names,
                          size_t *nnames) {
  jiwa_mp_reader_t r;
  jiwa_mp_item_t it, k;
  jiwa_mp_reader_init(&r, fakes, n);
  if (jiwa_mp_next(&r, &it) != 0 || it.type != JIWA_MP_MAP)
    return;
  for (uint32_t i = 0; i < it.v.count; i++) {
    if (jiwa_mp_next(&r, &k) != 0 || jiwa_mp_skip(&r) != 0)
      return;
    if (k.type != JIWA_MP_STR || k.v.s.len == 0 || k.v.s.len > 63)
      continue;
    int seen = 0;
    for (size_t j = 0; j < *nnames && !seen; j++)
      seen = strlen(names[j]) == k.v.s.len &&
             memcmp(names[j], k.v.s.ptr, k.v.s.len) == 0;
    if (!seen && *nnames < FAKES_MAX)
      names[(*nnames)++] = strndup(k.v.s.ptr, k.v.s.len);
  }
}

/* ---- checks ------------------------------------------------------------------ */

/* "actor type" of every step but logs, in order, as a JSON-ish list. */
static void calls_of(const void *reply, size_t len, char *out, size_t cap) {
  out[0] = 0;
  size_t tn, sn, k = 0;
  const uint8_t *t = value_of(reply, len, "trace", &tn);
  const uint8_t *steps = t ? value_of(t, tn, "steps", &sn) : NULL;
  if (!steps)
    return;
  jiwa_mp_reader_t r;
  jiwa_mp_item_t it;
  jiwa_mp_reader_init(&r, steps, sn);
  if (jiwa_mp_next(&r, &it) != 0 || it.type != JIWA_MP_ARRAY)
    return;
  for (uint32_t i = 0; i < it.v.count; i++) {
    const uint8_t *s = r.p;
    if (jiwa_mp_skip(&r) != 0)
      return;
    size_t n = (size_t)(r.p - s);
    char op[16], actor[64], type[64];
    get_s(s, n, "op", op, sizeof op);
    get_s(s, n, "actor", actor, sizeof actor);
    get_s(s, n, "type", type, sizeof type);
    if (strcmp(op, "log") == 0)
      continue;
    k += (size_t)snprintf(out + k, k < cap ? cap - k : 0, "%s\"%s %s\"",
                          k ? ", " : "", actor, type);
    if (k >= cap)
      return;
  }
}

/* Does any llm step's sent context contain @p needle? */
static int context_has(const void *reply, size_t len, const char *needle,
                       size_t nl) {
  size_t tn, sn;
  const uint8_t *t = value_of(reply, len, "trace", &tn);
  const uint8_t *steps = t ? value_of(t, tn, "steps", &sn) : NULL;
  if (!steps)
    return 0;
  jiwa_mp_reader_t r;
  jiwa_mp_item_t it;
  jiwa_mp_reader_init(&r, steps, sn);
  if (jiwa_mp_next(&r, &it) != 0 || it.type != JIWA_MP_ARRAY)
    return 0;
  for (uint32_t i = 0; i < it.v.count; i++) {
    const uint8_t *s = r.p;
    if (jiwa_mp_skip(&r) != 0)
      return 0;
    size_t n = (size_t)(r.p - s), bn, cl;
    const uint8_t *b = value_of(s, n, "sent", &bn);
    const char *c;
    if (b && jiwa_mp_get_str(b, bn, "context", &c, &cl) == 0 &&
        memmem(c, cl, needle, nl))
      return 1;
  }
  return 0;
}

/* Compare one request's outcome with its "expect"; print each mismatch.
 * Returns the number of mismatches. */
static int check(const char *path, unsigned line, const uint8_t *exp,
                 size_t en, const jiwa_dry_result_t *res) {
  int bad = 0;
  size_t n;
  const uint8_t *v;
  char want[2048], got[2048];
  if ((v = value_of(exp, en, "error", &n))) {
    const char *name = jiwa_err_name(res->err);
    jiwa_mp_reader_t r;
    jiwa_mp_item_t it;
    jiwa_mp_reader_init(&r, v, n);
    if (jiwa_mp_next(&r, &it) == 0 && it.type == JIWA_MP_STR &&
        (strlen(name) != it.v.s.len ||
         memcmp(name, it.v.s.ptr, it.v.s.len) != 0)) {
      printf("  FAIL %s:%u: expected error %.*s, got %s\n", path, line,
             (int)it.v.s.len, it.v.s.ptr, res->err ? name : "a reply");
      bad++;
    }
  } else if (res->err) {
    printf("  FAIL %s:%u: the request failed: %s: %s\n", path, line,
           jiwa_err_name(res->err), res->errtext);
    return 1;
  }
  if ((v = value_of(exp, en, "calls", &n))) {
    jiwa_mp_reader_t r;
    jiwa_mp_item_t it, s;
    size_t k = 0;
    want[0] = 0;
    jiwa_mp_reader_init(&r, v, n);
    if (jiwa_mp_next(&r, &it) == 0 && it.type == JIWA_MP_ARRAY)
      for (uint32_t i = 0; i < it.v.count && jiwa_mp_next(&r, &s) == 0; i++)
        if (s.type == JIWA_MP_STR && k < sizeof want)
          k += (size_t)snprintf(want + k, sizeof want - k, "%s\"%.*s\"",
                                k ? ", " : "", (int)s.v.s.len, s.v.s.ptr);
    calls_of(res->reply, res->reply_len, got, sizeof got);
    if (strcmp(want, got) != 0) {
      printf("  FAIL %s:%u: calls\n       expected [%s]\n       got      "
             "[%s]\n",
             path, line, want, got);
      bad++;
    }
  }
  if ((v = value_of(exp, en, "reply", &n))) {
    jiwa_mp_reader_t r;
    jiwa_mp_item_t it, k;
    jiwa_mp_reader_init(&r, v, n);
    if (jiwa_mp_next(&r, &it) == 0 && it.type == JIWA_MP_MAP) {
      for (uint32_t i = 0; i < it.v.count; i++) {
        if (jiwa_mp_next(&r, &k) != 0 || k.type != JIWA_MP_STR)
          break;
        const uint8_t *wv = r.p;
        if (jiwa_mp_skip(&r) != 0)
          break;
        char key[128];
        snprintf(key, sizeof key, "%.*s", (int)k.v.s.len, k.v.s.ptr);
        char *wj = json_of(wv, (size_t)(r.p - wv));
        size_t gn;
        const uint8_t *gv = value_of(res->reply, res->reply_len, key, &gn);
        char *gj = gv ? json_of(gv, gn) : strdup("(absent)");
        if (!wj || !gj || strcmp(wj, gj) != 0) {
          printf("  FAIL %s:%u: reply.%s: expected %s, got %s\n", path, line,
                 key, wj ? wj : "?", gj ? gj : "?");
          bad++;
        }
        free(wj);
        free(gj);
      }
    }
  }
  if ((v = value_of(exp, en, "context_contains", &n))) {
    jiwa_mp_reader_t r;
    jiwa_mp_item_t it;
    jiwa_mp_reader_init(&r, v, n);
    if (jiwa_mp_next(&r, &it) == 0 && it.type == JIWA_MP_STR &&
        !context_has(res->reply, res->reply_len, it.v.s.ptr, it.v.s.len)) {
      printf("  FAIL %s:%u: no model call had \"%.*s\" in its context\n",
             path, line, (int)it.v.s.len, it.v.s.ptr);
      bad++;
    }
  }
  int64_t deltas;
  if (jiwa_mp_get_int(exp, en, "deltas", &deltas) == 0 &&
      (size_t)deltas != res->ndeltas) {
    printf("  FAIL %s:%u: expected %lld streamed parts, got %zu\n", path,
           line, (long long)deltas, res->ndeltas);
    bad++;
  }
  int fb;
  if (jiwa_mp_get_bool(exp, en, "fallback", &fb) == 0) {
    size_t tn, fn;
    const uint8_t *t = value_of(res->reply, res->reply_len, "trace", &tn);
    int had = t && value_of(t, tn, "fallback", &fn) != NULL;
    if (had != fb) {
      printf("  FAIL %s:%u: expected the fallback route %s\n", path, line,
             fb ? "to answer" : "not to answer");
      bad++;
    }
  }
  return bad;
}

/* ---- the command -------------------------------------------------------------- */

static void plugin_so(const cli_policy_test_t *t, char *out, size_t cap) {
  if (t->plugin_dir) {
    snprintf(out, cap, "%s/policy.so", t->plugin_dir);
    return;
  }
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) {
    snprintf(out, cap, "plugins/policy.so");
    return;
  }
  exe[n] = 0;
  char *slash = strrchr(exe, '/');
  if (slash)
    *slash = 0;
  snprintf(out, cap, "%s/plugins/policy.so", exe);
}

int cli_policy_test(const cli_policy_test_t *t) {
  char file[PATH_MAX];
  if (!realpath(t->file, file)) {
    fprintf(stderr, "jiwa: cannot read the policy %s: %s\n", t->file,
            strerror(errno));
    return 2;
  }
  entry_t *e;
  size_t n;
  if (parse_requests(t->requests, &e, &n) != 0)
    return 2;
  char *names[FAKES_MAX];
  size_t nnames = 0;
  size_t ndef;
  const char *const *defaults = jiwa_dry_default_fakes(&ndef);
  for (size_t i = 0; i < ndef; i++)
    names[nnames++] = strdup(defaults[i]);
  for (size_t i = 0; i < n; i++) {
    size_t fn;
    const uint8_t *f = value_of(e[i].mp, e[i].len, "fakes", &fn);
    if (f)
      collect_fakes(f, fn, names, &nnames);
  }
  char so[PATH_MAX + 32], err[1024];
  plugin_so(t, so, sizeof so);
  char *settings = NULL;
  if (t->vars) {
    size_t sl = strlen(t->vars) + 16;
    settings = malloc(sl);
    if (settings)
      snprintf(settings, sl, "vars = %s", t->vars);
  }
  jiwa_log_setup(JIWA_LOG_WARN, 0); /* the trace tells the story */
  jiwa_dry_t *d;
  int rc = jiwa_dry_open(&d, so, file, settings, (const char *const *)names,
                         nnames, err, sizeof err);
  free(settings);
  for (size_t i = 0; i < nnames; i++)
    free(names[i]);
  if (rc) {
    fprintf(stderr, "jiwa: the policy did not load: %s\n", err);
    for (size_t i = 0; i < n; i++)
      free(e[i].mp);
    free(e);
    return 1;
  }
  int failed = 0, checked = 0;
  for (size_t i = 0; i < n; i++) {
    size_t rn, fn = 0, en = 0;
    const uint8_t *req = value_of(e[i].mp, e[i].len, "request", &rn);
    if (!req) { /* a bare request line */
      req = (const uint8_t *)e[i].mp;
      rn = e[i].len;
    }
    const uint8_t *fakes = value_of(e[i].mp, e[i].len, "fakes", &fn);
    const uint8_t *exp = value_of(e[i].mp, e[i].len, "expect", &en);
    jiwa_dry_result_t res;
    if (jiwa_dry_run(d, req, rn, fakes, fakes ? fn : 0, 30000, &res) != 0) {
      printf("%s:%u: \"request\" and \"fakes\" must be objects\n",
             t->requests, e[i].line);
      failed++;
      continue;
    }
    if (t->json) {
      char *js = res.reply ? json_of(res.reply, res.reply_len) : NULL;
      printf("{\"line\":%u,\"error\":\"%s\",\"reply\":%s}\n", e[i].line,
             res.err ? jiwa_err_name(res.err) : "", js ? js : "null");
      free(js);
    } else {
      char text[120] = "";
      get_s(req, rn, "text", text, sizeof text);
      printf("── %s:%u: \"%s\"\n", t->requests, e[i].line, text);
      if (res.reply)
        cli_print_trace(stdout, res.reply, res.reply_len, 0);
      if (res.ndeltas)
        printf("  streamed %zu part(s) to the client\n", res.ndeltas);
      if (res.err) {
        printf("  → error %s: %s\n", jiwa_err_name(res.err), res.errtext);
      } else {
        /* the reply without its trace */
        char *js = json_of(res.reply, res.reply_len);
        char *tr = js ? strstr(js, ",\"trace\":") : NULL;
        if (tr)
          strcpy(tr, "}");
        printf("  → reply %s\n", js ? js : "?");
        free(js);
      }
    }
    if (t->check && exp) {
      checked++;
      int bad = check(t->requests, e[i].line, exp, en, &res);
      if (bad)
        failed++;
      else if (!t->json)
        printf("  ok\n");
    }
    jiwa_dry_result_free(&res);
  }
  for (size_t i = 0; i < n; i++)
    free(e[i].mp);
  free(e);
  int leak = jiwa_dry_close(d);
  if (!t->json && t->check)
    printf("%zu request(s), %d checked, %d failed\n", n, checked, failed);
  else if (!t->json)
    printf("%zu request(s)\n", n);
  if (leak)
    fprintf(stderr, "jiwa: the runtime closed with handles still open\n");
  return failed || leak ? 1 : 0;
}
