/*
 * Stand-in for libFuzzer when the project is built without -DJIWA_FUZZ=ON
 * (e.g. with gcc, under ctest). It links with any file that defines
 * LLVMFuzzerTestOneInput and:
 *
 *   1. replays every regular file in CORPUS_DIR (sorted by name, so runs are
 *      reproducible; a missing directory simply means no files), then
 *   2. runs ITERATIONS deterministic mutations of those entries.
 *
 * Usage: fuzz_x CORPUS_DIR [ITERATIONS]
 *   JIWA_FUZZ_ITERS  overrides ITERATIONS (default 20000)
 *   JIWA_FUZZ_SEED   overrides the PRNG seed
 *
 * It is a regression net, not a coverage-guided fuzzer: it gives ctest and
 * the sanitizer build a few seconds of cheap hostile input on every run. If
 * an input crashes, it is written to ./crash-<name>-<iteration> so it can be
 * replayed by passing that file as CORPUS_DIR.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional in a target, exactly as with libFuzzer. */
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);
/* Present only when linked with a sanitizer runtime. */
__attribute__((weak)) void __sanitizer_set_death_callback(void (*cb)(void));

#define DEFAULT_ITERS 20000
#define DEFAULT_SEED UINT64_C(0x6a697761) /* "jiwa" */
#define MAX_FILE (1u << 20)               /* corpus files are truncated */
#define MAX_MUTANT 4096                   /* mutants stay small and fast */

typedef struct {
  uint8_t *data;
  size_t size;
  char *path;
} entry_t;

typedef struct {
  entry_t *v;
  size_t n, cap;
} corpus_t;

/* What is running now, for the crash dump. */
static const char *g_name = "fuzz";
static const uint8_t *g_cur;
static size_t g_cur_size;
static long g_iter = -1; /* -1 while replaying the corpus */
static const char *g_cur_file;

/* ---- crash dump (runs in a signal handler: only write/open/close) -------- */

static size_t cstrlen(const char *s) {
  size_t n = 0;
  while (s[n])
    n++;
  return n;
}

static void put(int fd, const char *s) {
  ssize_t r = write(fd, s, cstrlen(s));
  (void)r;
}

/* Append @p s to @p buf (capacity @p cap), always NUL-terminated. */
static void append(char *buf, size_t cap, const char *s) {
  size_t n = cstrlen(buf);
  while (*s && n + 1 < cap)
    buf[n++] = *s++;
  buf[n] = '\0';
}

static void fmt_ulong(char *buf, size_t cap, unsigned long v) {
  char tmp[24];
  size_t n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v && n < sizeof tmp);
  size_t i = 0;
  while (n && i + 1 < cap)
    buf[i++] = tmp[--n];
  buf[i] = '\0';
}

static void dump_current(void) {
  static volatile sig_atomic_t dumped;
  if (dumped || !g_cur)
    return;
  dumped = 1;
  if (g_iter < 0) {
    put(2, "\nfuzz driver: crashed on corpus file ");
    put(2, g_cur_file ? g_cur_file : "?");
    put(2, "\n");
    return;
  }
  char path[256], num[24];
  fmt_ulong(num, sizeof num, (unsigned long)g_iter);
  path[0] = '\0';
  append(path, sizeof path, "crash-");
  append(path, sizeof path, g_name);
  append(path, sizeof path, "-");
  append(path, sizeof path, num);
  put(2, "\nfuzz driver: crashed on mutation ");
  put(2, num);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd >= 0) {
    size_t off = 0;
    while (off < g_cur_size) {
      ssize_t w = write(fd, g_cur + off, g_cur_size - off);
      if (w <= 0)
        break;
      off += (size_t)w;
    }
    close(fd);
    put(2, ", input saved to ");
    put(2, path);
  }
  put(2, "\n");
}

static void on_signal(int sig) {
  dump_current();
  signal(sig, SIG_DFL);
  raise(sig);
}

static void install_crash_hooks(void) {
  static const int sigs[] = {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL};
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
    signal(sigs[i], on_signal);
  /* ASan reports and exits without raising a signal. */
  if (__sanitizer_set_death_callback)
    __sanitizer_set_death_callback(dump_current);
}

/* ---- corpus ---------------------------------------------------------------
 */

static void corpus_add(corpus_t *c, uint8_t *data, size_t size,
                       const char *path) {
  if (c->n == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 64;
    entry_t *v = realloc(c->v, cap * sizeof *v);
    if (!v) {
      fprintf(stderr, "%s: out of memory\n", g_name);
      exit(2);
    }
    c->v = v;
    c->cap = cap;
  }
  c->v[c->n].data = data;
  c->v[c->n].size = size;
  c->v[c->n].path = strdup(path);
  c->n++;
}

static int read_file(const char *path, uint8_t **data, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return -1;
  uint8_t *buf = malloc(MAX_FILE);
  if (!buf) {
    fclose(f);
    return -1;
  }
  size_t n = fread(buf, 1, MAX_FILE, f);
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    free(buf);
    return -1;
  }
  /* Shrink to the exact size so over-reads hit ASan's redzone. */
  uint8_t *exact = malloc(n ? n : 1);
  if (!exact) {
    free(buf);
    return -1;
  }
  memcpy(exact, buf, n);
  free(buf);
  *data = exact;
  *size = n;
  return 0;
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Load CORPUS_DIR; a single file is accepted too so a saved crash can be
 * replayed directly. Returns the number of files read.
 */
static size_t load_corpus(const char *path, corpus_t *c) {
  struct stat st;
  if (stat(path, &st) != 0)
    return 0; /* a missing corpus is an empty corpus */
  if (S_ISREG(st.st_mode)) {
    uint8_t *d;
    size_t n;
    if (read_file(path, &d, &n) == 0) {
      corpus_add(c, d, n, path);
      return 1;
    }
    return 0;
  }
  DIR *dir = opendir(path);
  if (!dir)
    return 0;
  char **names = NULL;
  size_t nnames = 0, cap = 0;
  struct dirent *de;
  while ((de = readdir(dir)) != NULL) {
    if (de->d_name[0] == '.')
      continue;
    if (nnames == cap) {
      cap = cap ? cap * 2 : 64;
      char **nv = realloc(names, cap * sizeof *nv);
      if (!nv)
        break;
      names = nv;
    }
    names[nnames] = strdup(de->d_name);
    if (names[nnames])
      nnames++;
  }
  closedir(dir);
  qsort(names, nnames, sizeof *names, cmp_names);

  size_t loaded = 0;
  for (size_t i = 0; i < nnames; i++) {
    size_t plen = strlen(path) + strlen(names[i]) + 2;
    char *full = malloc(plen);
    if (full) {
      snprintf(full, plen, "%s/%s", path, names[i]);
      uint8_t *d;
      size_t n;
      if (stat(full, &st) == 0 && S_ISREG(st.st_mode) &&
          read_file(full, &d, &n) == 0) {
        corpus_add(c, d, n, full);
        loaded++;
      }
      free(full);
    }
    free(names[i]);
  }
  free(names);
  return loaded;
}

/* ---- deterministic mutations ------------------------------------------------
 */

static uint64_t rng_state;

static uint64_t rnd(void) { /* splitmix64: tiny, seedable, good enough */
  uint64_t z = (rng_state += UINT64_C(0x9e3779b97f4a7c15));
  z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
  return z ^ (z >> 31);
}

static size_t below(size_t n) { return n ? (size_t)(rnd() % n) : 0; }

/* Bytes that mean something to msgpack parsers: limits and container tags. */
static const uint8_t interesting[] = {0xff, 0x00, 0x7f, 0x80, 0xc1,
                                      0xdc, 0xdd, 0xde, 0xdf};

static void insert_at(uint8_t *buf, size_t *n, size_t pos, uint8_t v) {
  if (*n >= MAX_MUTANT)
    return;
  memmove(buf + pos + 1, buf + pos, *n - pos);
  buf[pos] = v;
  (*n)++;
}

static void mutate_once(uint8_t *buf, size_t *n, const corpus_t *c) {
  switch (below(10)) {
  case 0: /* flip one bit */
    if (*n)
      buf[below(*n)] ^= (uint8_t)(1u << below(8));
    break;
  case 1: /* random byte */
    if (*n)
      buf[below(*n)] = (uint8_t)rnd();
    break;
  case 2: /* interesting byte, overwritten */
    if (*n)
      buf[below(*n)] = interesting[below(sizeof interesting)];
    break;
  case 3: /* interesting byte, inserted */
    insert_at(buf, n, below(*n + 1), interesting[below(sizeof interesting)]);
    break;
  case 4: /* random byte, inserted */
    insert_at(buf, n, below(*n + 1), (uint8_t)rnd());
    break;
  case 5: { /* delete a short run */
    if (!*n)
      break;
    size_t pos = below(*n);
    size_t len = 1 + below(*n - pos < 8 ? *n - pos : 8);
    memmove(buf + pos, buf + pos + len, *n - pos - len);
    *n -= len;
    break;
  }
  case 6: /* truncate to a random length, 0 included */
    *n = below(*n + 1);
    break;
  case 7: { /* splice: keep a prefix, append the tail of another entry */
    if (!c->n)
      break;
    const entry_t *o = &c->v[below(c->n)];
    size_t keep = below(*n + 1);
    size_t from = below(o->size + 1);
    size_t len = o->size - from;
    if (keep + len > MAX_MUTANT)
      len = MAX_MUTANT - keep;
    memcpy(buf + keep, o->data + from, len);
    *n = keep + len;
    break;
  }
  case 8: { /* big-endian length/count fields full of 0xff or 0x00 */
    if (*n < 2)
      break;
    size_t pos = below(*n - 1);
    size_t len = 1 + below(*n - pos < 4 ? *n - pos : 4);
    memset(buf + pos, below(2) ? 0xff : 0x00, len);
    break;
  }
  default: { /* duplicate a chunk in place (grows nesting and repetition) */
    if (!*n)
      break;
    size_t pos = below(*n);
    size_t len = 1 + below(*n - pos < 16 ? *n - pos : 16);
    if (*n + len > MAX_MUTANT)
      break;
    memmove(buf + pos + len, buf + pos, *n - pos);
    *n += len;
    break;
  }
  }
}

static int run_one(const uint8_t *data, size_t size) {
  /* An exact-size copy: the target must not read past `size`. */
  uint8_t *copy = malloc(size ? size : 1);
  if (!copy) {
    fprintf(stderr, "%s: out of memory\n", g_name);
    exit(2);
  }
  if (size)
    memcpy(copy, data, size);
  g_cur = copy;
  g_cur_size = size;
  int rc = LLVMFuzzerTestOneInput(copy, size);
  g_cur = NULL;
  free(copy);
  /* libFuzzer allows 0 and -1 ("do not add to corpus"); anything else is a
   * bug in the target. */
  return rc == 0 || rc == -1 ? 0 : 1;
}

static long env_long(const char *name, long dflt) {
  const char *s = getenv(name);
  if (!s || !*s)
    return dflt;
  char *end;
  errno = 0;
  long v = strtol(s, &end, 0);
  if (errno || *end || v < 0) {
    fprintf(stderr, "%s: ignoring bad %s=%s\n", g_name, name, s);
    return dflt;
  }
  return v;
}

static uint64_t env_seed(void) {
  const char *s = getenv("JIWA_FUZZ_SEED");
  if (!s || !*s)
    return DEFAULT_SEED;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 0);
  if (errno || *end) {
    fprintf(stderr, "%s: ignoring bad JIWA_FUZZ_SEED=%s\n", g_name, s);
    return DEFAULT_SEED;
  }
  return (uint64_t)v;
}

int main(int argc, char **argv) {
  if (argc > 0 && argv[0]) {
    const char *slash = strrchr(argv[0], '/');
    g_name = slash ? slash + 1 : argv[0];
  }
  if (LLVMFuzzerInitialize)
    LLVMFuzzerInitialize(&argc, &argv);
  if (argc < 2 || argc > 3) {
    fprintf(stderr, "usage: %s CORPUS_DIR [ITERATIONS]\n", g_name);
    return 2;
  }
  long iters = DEFAULT_ITERS;
  if (argc == 3) {
    char *end;
    errno = 0;
    iters = strtol(argv[2], &end, 10);
    if (errno || *end || iters < 0) {
      fprintf(stderr, "%s: bad ITERATIONS '%s'\n", g_name, argv[2]);
      return 2;
    }
  }
  iters = env_long("JIWA_FUZZ_ITERS", iters);
  rng_state = env_seed();
  install_crash_hooks();

  corpus_t c = {0};
  size_t files = load_corpus(argv[1], &c);
  unsigned long failures = 0;

  for (size_t i = 0; i < c.n; i++) {
    g_cur_file = c.v[i].path;
    failures += (unsigned long)run_one(c.v[i].data, c.v[i].size);
  }

  uint8_t *buf = malloc(MAX_MUTANT);
  if (!buf) {
    fprintf(stderr, "%s: out of memory\n", g_name);
    return 2;
  }
  for (long it = 0; it < iters; it++) {
    size_t n = 0;
    /* Mostly mutate real entries; sometimes start from nothing. */
    if (c.n && below(16) != 0) {
      const entry_t *e = &c.v[below(c.n)];
      n = e->size < MAX_MUTANT ? e->size : MAX_MUTANT;
      memcpy(buf, e->data, n);
    } else {
      n = below(64);
      for (size_t k = 0; k < n; k++)
        buf[k] =
            below(4) ? (uint8_t)rnd() : interesting[below(sizeof interesting)];
    }
    size_t rounds = 1 + below(4);
    for (size_t r = 0; r < rounds; r++)
      mutate_once(buf, &n, &c);
    g_iter = it;
    failures += (unsigned long)run_one(buf, n);
  }
  g_iter = -1;

  printf("%s: %zu corpus files, %ld mutations, %lu failures\n", g_name, files,
         iters, failures);
  free(buf);
  for (size_t i = 0; i < c.n; i++) {
    free(c.v[i].data);
    free(c.v[i].path);
  }
  free(c.v);
  return failures ? 1 : 0;
}
