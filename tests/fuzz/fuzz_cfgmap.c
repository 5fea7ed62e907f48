/*
 * Fuzz jiwa_cfgmap_apply: arbitrary bytes as the settings map, against a
 * schema with every field type, then jiwa_cfgmap_free.
 *
 * Beyond "no crash, no leak" (the sanitizers' job) it checks the promises
 * callers rely on: a success honours every range and type, a failure leaves
 * nothing allocated, and the secret's value never reaches an error message.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jiwa_cfgmap.h"

#define SECRET_VAR "JIWA_FUZZ_TOKEN"
#define SECRET_VAL "fuzz-secret-value-9f8e7d"

typedef struct {
  char *name;
  int64_t count;
  int enabled;
  double ratio;
  char *token;
  char *key;
  jiwa_cfg_raw_t extra;
  int64_t big;
  int64_t port;
} fctx_t;

static const jiwa_cfg_field_t schema[] = {
    {JIWA_CFG_STR, "name", "hello", offsetof(fctx_t, name), 0, 0, 0, "name"},
    {JIWA_CFG_INT, "count", "5", offsetof(fctx_t, count), 0, 1, 100, "n"},
    {JIWA_CFG_BOOL, "enabled", "false", offsetof(fctx_t, enabled), 0, 0, 0,
     "flag"},
    {JIWA_CFG_DOUBLE, "ratio", "0.5", offsetof(fctx_t, ratio), 0, 0, 1,
     "ratio"},
    {JIWA_CFG_SECRET_ENV, "token_env", SECRET_VAR, offsetof(fctx_t, token), 0,
     0, 0, "optional secret"},
    {JIWA_CFG_SECRET_ENV, "key_env", NULL, offsetof(fctx_t, key),
     JIWA_CFG_REQUIRED, 0, 0, "required secret"},
    {JIWA_CFG_RAW, "extra", NULL, offsetof(fctx_t, extra), 0, 0, 0, "raw"},
    {JIWA_CFG_INT, "big", NULL, offsetof(fctx_t, big), 0, 0, 0, "no range"},
    {JIWA_CFG_INT, "port", NULL, offsetof(fctx_t, port), JIWA_CFG_REQUIRED, 1,
     65535, "required"},
    {0}};

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  setenv(SECRET_VAR, SECRET_VAL, 1);
  return 0;
}

static void check(int ok, const char *what, const char *err) {
  if (ok)
    return;
  fprintf(stderr, "fuzz_cfgmap: %s (err: %s)\n", what, err);
  abort();
}

static void run(const uint8_t *data, size_t size, size_t errlen) {
  fctx_t c;
  char err[512];
  memset(&c, 0, sizeof c);
  memset(err, 'X', sizeof err);

  int rc = jiwa_cfgmap_apply(schema, data, size, &c, "fuzz", err, errlen);
  if (errlen)
    check(memchr(err, '\0', errlen) != NULL, "err not terminated", "");
  if (rc == 0) {
    check(c.name != NULL, "name unset", err);
    check(c.count >= 1 && c.count <= 100, "count out of range", err);
    check(c.enabled == 0 || c.enabled == 1, "bool not 0/1", err);
    check(c.ratio >= 0 && c.ratio <= 1, "ratio out of range", err);
    check(c.port >= 1 && c.port <= 65535, "port out of range", err);
    check(c.key != NULL, "required secret unset", err);
    check(c.extra.data == NULL || c.extra.len > 0, "empty raw", err);
    if (c.extra.data)
      check(jiwa_mp_scan(c.extra.data, c.extra.len, JIWA_MP_MAX_DEPTH, NULL) ==
                0,
            "raw not one msgpack value", err);
    (void)strlen(c.name); /* must be terminated: ASan checks the read */
  } else {
    check(rc == JIWA_ECONFIG || rc == JIWA_ENOMEM, "unexpected code", err);
    check(c.name == NULL && c.token == NULL && c.key == NULL &&
              c.extra.data == NULL,
          "allocation left behind on error", err);
    /* An input that spells the secret out may see it echoed (say, as an
     * unknown key); that is the input's text, not a leak. The echo escapes
     * bytes as \xNN, so "\x1f" + "uzz-secret..." from the input reads as
     * the secret too: what must not come from the input is the secret
     * without its first character. */
    if (errlen >= sizeof err &&
        !memmem(data, size, &SECRET_VAL[1], sizeof SECRET_VAL - 2))
      check(strstr(err, SECRET_VAL) == NULL, "secret in error", err);
  }
  jiwa_cfgmap_free(schema, &c);
  check(c.name == NULL && c.token == NULL && c.key == NULL &&
            c.extra.data == NULL && c.extra.len == 0,
        "free left a pointer", "");
  jiwa_cfgmap_free(schema, &c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int ready;
  if (!ready) {
    /* libFuzzer calls Initialize; a driver that does not still works. */
    setenv(SECRET_VAR, SECRET_VAL, 1);
    ready = 1;
  }
  run(data, size, 512);
  /* Tiny buffers too: truncation must stay in bounds and terminated. */
  run(data, size, size ? 1 + data[0] % 24 : 0);
  return 0;
}
