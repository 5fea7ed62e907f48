/* Tests for the declarative config maps (runtime/jiwa_cfgmap.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jiwa_cfgmap.h"

#define assert_contains(hay, needle)                                           \
  do {                                                                         \
    const char *h_ = (hay), *n_ = (needle);                                    \
    if (!h_ || !strstr(h_, n_))                                                \
      fail_msg("expected \"%s\" in \"%s\"", n_, h_ ? h_ : "(null)");           \
  } while (0)

#define assert_not_contains(hay, needle)                                       \
  do {                                                                         \
    const char *h_ = (hay), *n_ = (needle);                                    \
    if (h_ && strstr(h_, n_))                                                  \
      fail_msg("did not expect \"%s\" in \"%s\"", n_, h_);                     \
  } while (0)

#define SECRET_VAR "JIWA_TEST_CFGMAP_SECRET"
#define SECRET_VAL "sk-test-0123456789abcdef-TOPSECRET"
#define UNSET_VAR "JIWA_TEST_CFGMAP_UNSET"

typedef struct {
  char *s;
  int64_t i;
  int b;
  double d;
  char *secret;
  jiwa_cfg_raw_t raw;
  int64_t nodef;
} ctx_t;

static const jiwa_cfg_field_t schema[] = {
    {JIWA_CFG_STR, "name", "hello", offsetof(ctx_t, s), 0, 0, 0, "a name"},
    {JIWA_CFG_INT, "count", "30", offsetof(ctx_t, i), 0, 1, 100, "a count"},
    {JIWA_CFG_BOOL, "enabled", "true", offsetof(ctx_t, b), 0, 0, 0, "on?"},
    {JIWA_CFG_DOUBLE, "ratio", "0.7", offsetof(ctx_t, d), 0, 0, 1, "ratio"},
    {JIWA_CFG_SECRET_ENV, "token_env", UNSET_VAR, offsetof(ctx_t, secret), 0, 0,
     0, "variable holding the token"},
    {JIWA_CFG_RAW, "extra", NULL, offsetof(ctx_t, raw), 0, 0, 0, "anything"},
    {JIWA_CFG_INT, "nodef", NULL, offsetof(ctx_t, nodef), 0, 0, 0, "no def"},
    {0}};

/* Same shapes, but the secret is required and has no default. */
static const jiwa_cfg_field_t schema_req[] = {
    {JIWA_CFG_STR, "name", "hello", offsetof(ctx_t, s), 0, 0, 0, "a name"},
    {JIWA_CFG_SECRET_ENV, "token_env", NULL, offsetof(ctx_t, secret),
     JIWA_CFG_REQUIRED, 0, 0, "variable holding the token"},
    {JIWA_CFG_INT, "count", NULL, offsetof(ctx_t, i), JIWA_CFG_REQUIRED, 1, 100,
     "a count"},
    {0}};

/* ---- fixtures ------------------------------------------------------------ */

typedef struct {
  char dir[64];
  jiwa_mp_writer_t w;
  ctx_t ctx;
  char err[512];
} fx_t;

static int setup(void **state) {
  fx_t *fx = calloc(1, sizeof *fx);
  assert_non_null(fx);
  snprintf(fx->dir, sizeof fx->dir, "/tmp/jiwa-test-cfgmap-XXXXXX");
  assert_non_null(mkdtemp(fx->dir));
  jiwa_mp_writer_init(&fx->w);
  unsetenv(SECRET_VAR);
  unsetenv(UNSET_VAR);
  *state = fx;
  return 0;
}

static int teardown(void **state) {
  fx_t *fx = *state;
  char path[128];
  jiwa_cfgmap_free(schema, &fx->ctx);
  jiwa_mp_writer_free(&fx->w);
  snprintf(path, sizeof path, "%s/help.txt", fx->dir);
  unlink(path);
  assert_int_equal(rmdir(fx->dir), 0);
  unsetenv(SECRET_VAR);
  free(fx);
  return 0;
}

static msgpack_packer *pk(fx_t *fx) { return &fx->w.pk; }

static int apply(fx_t *fx, const jiwa_cfg_field_t *map) {
  return jiwa_cfgmap_apply(map, fx->w.sbuf.data, fx->w.sbuf.size, &fx->ctx,
                           "test.lua: section", fx->err, sizeof fx->err);
}

/* ---- defaults and types ----------------------------------------------------
 */

static void test_defaults_with_no_settings(void **state) {
  fx_t *fx = *state;
  fx->ctx.nodef = 77; /* no default, not given: left alone */
  assert_int_equal(jiwa_cfgmap_apply(schema, NULL, 0, &fx->ctx, "w", fx->err,
                                     sizeof fx->err),
                   0);
  assert_string_equal(fx->ctx.s, "hello");
  assert_int_equal(fx->ctx.i, 30);
  assert_int_equal(fx->ctx.b, 1);
  assert_true(fabs(fx->ctx.d - 0.7) < 1e-12);
  assert_null(fx->ctx.secret); /* variable unset, field optional */
  assert_null(fx->ctx.raw.data);
  assert_int_equal(fx->ctx.raw.len, 0);
  assert_int_equal(fx->ctx.nodef, 77);
  assert_string_equal(fx->err, "");
}

static void test_defaults_with_empty_map_and_nil(void **state) {
  fx_t *fx = *state;
  msgpack_pack_map(pk(fx), 0);
  assert_int_equal(apply(fx, schema), 0);
  assert_string_equal(fx->ctx.s, "hello");
  assert_int_equal(fx->ctx.i, 30);
  jiwa_cfgmap_free(schema, &fx->ctx);

  const uint8_t nil = 0xc0;
  assert_int_equal(jiwa_cfgmap_apply(schema, &nil, 1, &fx->ctx, "w", fx->err,
                                     sizeof fx->err),
                   0);
  assert_string_equal(fx->ctx.s, "hello");
}

static void test_every_type_given(void **state) {
  fx_t *fx = *state;
  setenv(SECRET_VAR, SECRET_VAL, 1);
  msgpack_pack_map(pk(fx), 7);
  jiwa_mp_put_kv_str(pk(fx), "name", "world");
  jiwa_mp_put_kv_int(pk(fx), "count", 42);
  jiwa_mp_put_kv_bool(pk(fx), "enabled", 0);
  jiwa_mp_put_kv_double(pk(fx), "ratio", 0.25);
  jiwa_mp_put_kv_str(pk(fx), "token_env", SECRET_VAR);
  jiwa_mp_put_str(pk(fx), "extra");
  msgpack_pack_array(pk(fx), 2);
  msgpack_pack_int(pk(fx), 1);
  jiwa_mp_put_str(pk(fx), "two");
  jiwa_mp_put_kv_int(pk(fx), "nodef", -5);

  assert_int_equal(apply(fx, schema), 0);
  assert_string_equal(fx->ctx.s, "world");
  assert_int_equal(fx->ctx.i, 42);
  assert_int_equal(fx->ctx.b, 0);
  assert_true(fabs(fx->ctx.d - 0.25) < 1e-12);
  assert_string_equal(fx->ctx.secret, SECRET_VAL);
  assert_int_equal(fx->ctx.nodef, -5);
  /* raw: exactly the bytes of [1, "two"] */
  const uint8_t want[] = {0x92, 0x01, 0xa3, 't', 'w', 'o'};
  assert_int_equal(fx->ctx.raw.len, sizeof want);
  assert_memory_equal(fx->ctx.raw.data, want, sizeof want);
}

static void test_int_accepts_integral_float_and_negative(void **state) {
  fx_t *fx = *state;
  msgpack_pack_map(pk(fx), 2);
  jiwa_mp_put_kv_double(pk(fx), "count", 12.0);
  jiwa_mp_put_kv_int(pk(fx), "nodef", -9000000000LL);
  assert_int_equal(apply(fx, schema), 0);
  assert_int_equal(fx->ctx.i, 12);
  assert_int_equal(fx->ctx.nodef, -9000000000LL);
}

static void test_int_rejects_fraction_and_huge(void **state) {
  fx_t *fx = *state;
  msgpack_pack_map(pk(fx), 1);
  jiwa_mp_put_kv_double(pk(fx), "count", 1.5);
  assert_int_equal(apply(fx, schema), JIWA_ECONFIG);
  assert_contains(fx->err, "key 'count': expected integer, got fractional");

  msgpack_sbuffer_clear(&fx->w.sbuf);
  msgpack_pack_map(pk(fx), 1);
  jiwa_mp_put_str(pk(fx), "nodef");
  msgpack_pack_uint64(pk(fx), UINT64_MAX);
  assert_int_equal(apply(fx, schema), JIWA_ECONFIG);
  assert_contains(fx->err, "18446744073709551615");
  assert_contains(fx->err, "64-bit");
}

static void test_int_range(void **state) {
  fx_t *fx = *state;
  msgpack_pack_map(pk(fx), 1);
  jiwa_mp_put_kv_int(pk(fx), "count", 101);
  assert_int_equal(apply(fx, schema), JIWA_ECONFIG);
  assert_string_equal(fx->err,
                      "test.lua: section: key 'count': value 101 is out of "
                      "range [1, 100]; use a value between 1 and 100");

  msgpack_sbuffer_clear(&fx->w.sbuf);
  msgpack_pack_map(pk(fx), 1);
  jiwa_mp_put_kv_int(pk(fx), "count", 0);
  assert_int_equal(apply(fx, schema), JIWA_ECONFIG);
  assert_contains(fx->err, "value 0 is out of range [1, 100]");

  /* both ends are inclusive */
  msgpack_sbuffer_clear(&fx->w.sbuf);
  msgpack_pack_map(pk(fx), 1);
  jiwa_mp_put_kv_int(pk(fx), "count", 100);
  assert_int_equal(apply(fx, schema), 0);
  assert_int_equal(fx->ctx.i, 100);
}

static void test_double_accepts_int_and_checks_range(void **state) {
  fx_t *fx = *state;
  msgpack_pack_map(pk(fx), 1);
  jiwa_mp_put_kv_int(pk(fx), "ratio", 1);
  assert_int_equal(apply(fx, schema), 0);
  assert_true(fx->ctx.d == 1.0);
  jiwa_cfgmap_free(schema, &fx->ctx);

  msgpack_sbuffer_clear(&fx->w.sbuf);
  msgpack_pack_map(pk(fx), 1);
  jiwa_mp_put_kv_double(pk(fx), "ratio", 1.5);
  assert_int_equal(apply(fx, schema), JIWA_ECONFIG);
  assert_contains(fx->err, "key 'ratio': value 1.5 is out of range [0, 1]");

  msgpack_sbuffer_clear(&fx->w.sbuf);
  msgpack_pack_map(pk(fx), 1);
  jiwa_mp_put_kv_double(pk(fx), "ratio", NAN);
  assert_int_equal(apply(fx, schema), JIWA_ECONFIG);
  assert_contains(fx->err, "finite");
}

static void test_wrong_types(void **state) {
  fx_t *fx = *state;
  static const struct {
    const char *key;
    int kind; /* 0 str value, 1 int value, 2 array */
    const char *want;
  } cases[] = {
      {"count", 0,
       "key 'count': expected integer, got string; write the "
       "value as an integer"},
      {"name", 1, "key 'name': expected string, got integer"},
      {"enabled", 0,
       "key 'enabled': expected boolean, got string; write "
       "true or false"},
      {"ratio", 2, "key 'ratio': expected number, got list"},
      {"token_env", 1,
       "key 'token_env': expected string (the name of an "
       "environment variable), got integer"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    msgpack_sbuffer_clear(&fx->w.sbuf);
    msgpack_pack_map(pk(fx), 1);
    jiwa_mp_put_str(pk(fx), cases[i].key);
    if (cases[i].kind == 0)
      jiwa_mp_put_str(pk(fx), "x");
    else if (cases[i].kind == 1)
      msgpack_pack_int(pk(fx), 3);
    else
      msgpack_pack_array(pk(fx), 0);
    assert_int_equal(apply(fx, schema), JIWA_ECONFIG);
    assert_contains(fx->err, cases[i].want);
    assert_null(fx->ctx.s); /* nothing left behind */
  }
}

static void test_string_with_nul_rejected(void **state) {
  fx_t *fx = *state;
  msgpack_pack_map(pk(fx), 1);
  jiwa_mp_put_str(pk(fx), "name");
  msgpack_pack_str(pk(fx), 3);
  msgpack_pack_str_body(pk(fx), "a\0b", 3);
  assert_int_equal(apply(fx, schema), JIWA_ECONFIG);
  assert_contains(fx->err, "NUL");
}

/* ---- keys ---------------------------------------------------------------- */

static void test_unknown_key_suggests_closest(void **state) {
  fx_t *fx = *state;
  msgpack_pack_map(pk(fx), 1);
  jiwa_mp_put_kv_int(pk(fx), "cuont", 3);
  assert_int_equal(apply(fx, schema), JIWA_ECONFIG);
  assert_string_equal(fx->err,
                      "test.lua: section: key 'cuont': unknown key; did you "
                      "mean 'count'? (known keys: name, count, enabled, "
                      "ratio, token_env, extra, nodef)");

  msgpack_sbuffer_clear(&fx->w.sbuf);
  msgpack_pack_map(pk(fx), 1);
  jiwa_mp_put_kv_int(pk(fx), "Enabled", 3);
  assert_int_equal(apply(fx, schema), JIWA_ECONFIG);
  assert_contains(fx->err, "did you mean 'enabled'?");
}

static void test_unknown_key_without_suggestion(void **state) {
  fx_t *fx = *state;
  msgpack_pack_map(pk(fx), 2);
  jiwa_mp_put_kv_str(pk(fx), "name", "ok");
  jiwa_mp_put_kv_int(pk(fx), "zzzzzzzzzzzz", 3);
  assert_int_equal(apply(fx, schema), JIWA_ECONFIG);
  assert_contains(fx->err, "key 'zzzzzzzzzzzz': unknown key; use one of the "
                           "known keys: name, count");
  assert_not_contains(fx->err, "did you mean");
  assert_null(fx->ctx.s);
}

static void test_unknown_key_is_escaped_and_cut(void **state) {
  fx_t *fx = *state;
  char key[200];
  memset(key, 'k', sizeof key);
  key[0] = '\n';
  key[1] = '\'';
  msgpack_pack_map(pk(fx), 1);
  msgpack_pack_str(pk(fx), sizeof key);
  msgpack_pack_str_body(pk(fx), key, sizeof key);
  msgpack_pack_int(pk(fx), 1);
  assert_int_equal(apply(fx, schema), JIWA_ECONFIG);
  assert_contains(fx->err, "key '\\x0a\\x27kkk");
  assert_contains(fx->err, "kkk...': unknown key");
  assert_null(strchr(fx->err, '\n'));
}

static void test_required_missing(void **state) {
  fx_t *fx = *state;
  setenv(SECRET_VAR, SECRET_VAL, 1);
  msgpack_pack_map(pk(fx), 1);
  jiwa_mp_put_kv_str(pk(fx), "token_env", SECRET_VAR);
  assert_int_equal(apply(fx, schema_req), JIWA_ECONFIG);
  assert_string_equal(fx->err, "test.lua: section: key 'count': missing "
                               "required key; add count = <integer> (a "
                               "count)");
  /* name (default) and the secret were stored, then released */
  assert_null(fx->ctx.s);
  assert_null(fx->ctx.secret);
  assert_not_contains(fx->err, SECRET_VAL);
}

static void test_duplicate_key(void **state) {
  fx_t *fx = *state;
  msgpack_pack_map(pk(fx), 2);
  jiwa_mp_put_kv_int(pk(fx), "count", 3);
  jiwa_mp_put_kv_int(pk(fx), "count", 4);
  assert_int_equal(apply(fx, schema), JIWA_ECONFIG);
  assert_contains(fx->err, "key 'count': key given twice");
}

static void test_not_a_map_and_malformed(void **state) {
  fx_t *fx = *state;
  msgpack_pack_array(pk(fx), 1);
  msgpack_pack_int(pk(fx), 1);
  assert_int_equal(apply(fx, schema), JIWA_ECONFIG);
  assert_string_equal(fx->err, "test.lua: section: expected a table of "
                               "settings, got list; write { key = value, ... "
                               "}");

  const uint8_t trunc[] = {0x81, 0xa4, 'n', 'a'};
  assert_int_equal(jiwa_cfgmap_apply(schema, trunc, sizeof trunc, &fx->ctx, "w",
                                     fx->err, sizeof fx->err),
                   JIWA_ECONFIG);
  assert_contains(fx->err, "malformed");

  const uint8_t trailing[] = {0x80, 0x01};
  assert_int_equal(jiwa_cfgmap_apply(schema, trailing, sizeof trailing,
                                     &fx->ctx, "w", fx->err, sizeof fx->err),
                   JIWA_ECONFIG);
  assert_contains(fx->err, "trailing bytes");

  const uint8_t intkey[] = {0x81, 0x01, 0x02};
  assert_int_equal(jiwa_cfgmap_apply(schema, intkey, sizeof intkey, &fx->ctx,
                                     "w", fx->err, sizeof fx->err),
                   JIWA_ECONFIG);
  assert_contains(fx->err, "setting names must be strings, got integer");

  uint8_t deep[40];
  memset(deep, 0x91, sizeof deep);
  deep[sizeof deep - 1] = 0x01;
  assert_int_equal(jiwa_cfgmap_apply(schema, deep, sizeof deep, &fx->ctx, "w",
                                     fx->err, sizeof fx->err),
                   JIWA_ECONFIG);
  assert_contains(fx->err, "deeper than 16");
  assert_null(fx->ctx.s);
}

/* ---- secrets ---------------------------------------------------------------
 */

static void test_secret_from_env(void **state) {
  fx_t *fx = *state;
  setenv(SECRET_VAR, SECRET_VAL, 1);
  msgpack_pack_map(pk(fx), 1);
  jiwa_mp_put_kv_str(pk(fx), "token_env", SECRET_VAR);
  assert_int_equal(apply(fx, schema), 0);
  assert_string_equal(fx->ctx.secret, SECRET_VAL);
  jiwa_cfgmap_free(schema, &fx->ctx);
  assert_null(fx->ctx.secret);
}

static void test_secret_required_unset_names_variable(void **state) {
  fx_t *fx = *state;
  msgpack_pack_map(pk(fx), 2);
  jiwa_mp_put_kv_str(pk(fx), "token_env", UNSET_VAR);
  jiwa_mp_put_kv_int(pk(fx), "count", 5);
  assert_int_equal(apply(fx, schema_req), JIWA_ECONFIG);
  assert_string_equal(fx->err,
                      "test.lua: section: key 'token_env': environment "
                      "variable '" UNSET_VAR "' is not set (or is empty); "
                      "export " UNSET_VAR " before starting jiwad, or name "
                      "another variable");
  /* empty counts as unset */
  setenv(UNSET_VAR, "", 1);
  assert_int_equal(apply(fx, schema_req), JIWA_ECONFIG);
  assert_contains(fx->err, "is not set (or is empty)");
  unsetenv(UNSET_VAR);
}

static void test_secret_never_in_errors(void **state) {
  fx_t *fx = *state;
  setenv(SECRET_VAR, SECRET_VAL, 1);

  /* 1: the secret was read, then a later field fails */
  msgpack_pack_map(pk(fx), 2);
  jiwa_mp_put_kv_str(pk(fx), "token_env", SECRET_VAR);
  jiwa_mp_put_kv_int(pk(fx), "count", 1000);
  assert_int_equal(apply(fx, schema_req), JIWA_ECONFIG);
  assert_contains(fx->err, "key 'count'");
  assert_not_contains(fx->err, SECRET_VAL);
  assert_null(fx->ctx.secret);

  /* 2: the user pasted the secret itself where the variable name goes */
  msgpack_sbuffer_clear(&fx->w.sbuf);
  msgpack_pack_map(pk(fx), 2);
  jiwa_mp_put_kv_str(pk(fx), "token_env", SECRET_VAL);
  jiwa_mp_put_kv_int(pk(fx), "count", 5);
  assert_int_equal(apply(fx, schema_req), JIWA_ECONFIG);
  assert_contains(fx->err, "not an environment variable name");
  assert_not_contains(fx->err, SECRET_VAL);
  assert_not_contains(fx->err, "TOPSECRET");

  /* 3: a secret-looking value that happens to be a valid name */
  msgpack_sbuffer_clear(&fx->w.sbuf);
  msgpack_pack_map(pk(fx), 2);
  jiwa_mp_put_kv_str(pk(fx), "token_env", SECRET_VAR);
  jiwa_mp_put_kv_str(pk(fx), "bogus", SECRET_VAL);
  assert_int_equal(apply(fx, schema_req), JIWA_ECONFIG);
  assert_contains(fx->err, "unknown key");
  assert_not_contains(fx->err, SECRET_VAL);

  /* 4: truncated error buffers don't change that */
  char small[16];
  assert_int_equal(jiwa_cfgmap_apply(schema_req, fx->w.sbuf.data,
                                     fx->w.sbuf.size, &fx->ctx, "w", small,
                                     sizeof small),
                   JIWA_ECONFIG);
  assert_int_equal(strlen(small), sizeof small - 1);
  assert_int_equal(jiwa_cfgmap_apply(schema_req, fx->w.sbuf.data,
                                     fx->w.sbuf.size, &fx->ctx, "w", NULL, 0),
                   JIWA_ECONFIG);
}

/* ---- raw, free, map bugs, help ----------------------------------------------
 */

static void test_raw_copies_nested_value(void **state) {
  fx_t *fx = *state;
  jiwa_mp_writer_t v;
  jiwa_mp_writer_init(&v);
  msgpack_pack_map(&v.pk, 2);
  jiwa_mp_put_kv_str(&v.pk, "a", "b");
  jiwa_mp_put_str(&v.pk, "list");
  msgpack_pack_array(&v.pk, 3);
  msgpack_pack_nil(&v.pk);
  msgpack_pack_true(&v.pk);
  msgpack_pack_double(&v.pk, 2.5);

  msgpack_pack_map(pk(fx), 1);
  jiwa_mp_put_str(pk(fx), "extra");
  msgpack_sbuffer_write(&fx->w.sbuf, v.sbuf.data, v.sbuf.size);
  assert_int_equal(apply(fx, schema), 0);
  assert_int_equal(fx->ctx.raw.len, v.sbuf.size);
  assert_memory_equal(fx->ctx.raw.data, v.sbuf.data, v.sbuf.size);
  /* a copy, not a view into the input */
  assert_true((const char *)fx->ctx.raw.data < fx->w.sbuf.data ||
              (const char *)fx->ctx.raw.data >=
                  fx->w.sbuf.data + fx->w.sbuf.size);
  const char *s;
  size_t sl;
  assert_int_equal(
      jiwa_mp_get_str(fx->ctx.raw.data, fx->ctx.raw.len, "a", &s, &sl), 0);
  assert_int_equal(sl, 1);
  jiwa_mp_writer_free(&v);
}

static void test_free_is_idempotent(void **state) {
  fx_t *fx = *state;
  msgpack_pack_map(pk(fx), 1);
  jiwa_mp_put_str(pk(fx), "extra");
  msgpack_pack_array(pk(fx), 0);
  assert_int_equal(apply(fx, schema), 0);
  assert_non_null(fx->ctx.s);
  assert_non_null(fx->ctx.raw.data);
  jiwa_cfgmap_free(schema, &fx->ctx);
  assert_null(fx->ctx.s);
  assert_null(fx->ctx.secret);
  assert_null(fx->ctx.raw.data);
  assert_int_equal(fx->ctx.raw.len, 0);
  jiwa_cfgmap_free(schema, &fx->ctx);
  jiwa_cfgmap_free(NULL, &fx->ctx);
  jiwa_cfgmap_free(schema, NULL);
  assert_null(fx->ctx.s);
}

static void test_bad_defaults_are_map_bugs(void **state) {
  fx_t *fx = *state;
  const jiwa_cfg_field_t bad_int[] = {
      {JIWA_CFG_INT, "n", "30x", offsetof(ctx_t, i), 0, 0, 0, NULL}, {0}};
  const jiwa_cfg_field_t bad_range[] = {
      {JIWA_CFG_INT, "n", "500", offsetof(ctx_t, i), 0, 1, 10, NULL}, {0}};
  const jiwa_cfg_field_t bad_bool[] = {
      {JIWA_CFG_BOOL, "b", "maybe", offsetof(ctx_t, b), 0, 0, 0, NULL}, {0}};
  const jiwa_cfg_field_t raw_def[] = {
      {JIWA_CFG_STR, "s", "x", offsetof(ctx_t, s), 0, 0, 0, NULL},
      {JIWA_CFG_RAW, "r", "{}", offsetof(ctx_t, raw), 0, 0, 0, NULL},
      {0}};
  assert_int_equal(jiwa_cfgmap_apply(bad_int, NULL, 0, &fx->ctx, "w", fx->err,
                                     sizeof fx->err),
                   JIWA_ECONFIG);
  assert_string_equal(fx->err, "w: key 'n': invalid default '30x' for an "
                               "integer field; fix the config map");
  assert_int_equal(jiwa_cfgmap_apply(bad_range, NULL, 0, &fx->ctx, "w", fx->err,
                                     sizeof fx->err),
                   JIWA_ECONFIG);
  assert_contains(fx->err, "default 500 is out of range [1, 10]; fix the "
                           "config map");
  assert_int_equal(jiwa_cfgmap_apply(bad_bool, NULL, 0, &fx->ctx, "w", fx->err,
                                     sizeof fx->err),
                   JIWA_ECONFIG);
  assert_contains(fx->err, "invalid default 'maybe'");
  assert_int_equal(jiwa_cfgmap_apply(raw_def, NULL, 0, &fx->ctx, "w", fx->err,
                                     sizeof fx->err),
                   JIWA_ECONFIG);
  assert_contains(fx->err, "key 'r': a raw field cannot have a text default");
  assert_null(fx->ctx.s); /* "s" was stored, then released */
}

static void test_empty_map_rejects_everything(void **state) {
  fx_t *fx = *state;
  const jiwa_cfg_field_t none[] = {{0}};
  msgpack_pack_map(pk(fx), 1);
  jiwa_mp_put_kv_int(pk(fx), "x", 1);
  assert_int_equal(apply(fx, none), JIWA_ECONFIG);
  assert_contains(fx->err, "key 'x': unknown key; this section takes no "
                           "settings");
  assert_int_equal(
      jiwa_cfgmap_apply(NULL, NULL, 0, &fx->ctx, "w", fx->err, sizeof fx->err),
      JIWA_EINVAL);
}

static void test_help_table(void **state) {
  fx_t *fx = *state;
  char path[128], text[4096];
  snprintf(path, sizeof path, "%s/help.txt", fx->dir);
  FILE *f = fopen(path, "w+");
  assert_non_null(f);
  jiwa_cfgmap_help(schema_req, f);
  rewind(f);
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = '\0';
  assert_string_equal(text,
                      "KEY        TYPE     DEFAULT   RANGE   DESCRIPTION\n"
                      "name       string   hello     -       a name\n"
                      "token_env  env-var  required  -       variable "
                      "holding the token\n"
                      "count      integer  required  1..100  a count\n");

  f = fopen(path, "w+");
  assert_non_null(f);
  jiwa_cfgmap_help(schema, f);
  rewind(f);
  n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = '\0';
  assert_contains(text, "ratio      number   0.7");
  assert_contains(text, "0..1");
  assert_contains(text, "extra      any      -");
}

int main(void) {
  const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
      T(test_defaults_with_no_settings),
      T(test_defaults_with_empty_map_and_nil),
      T(test_every_type_given),
      T(test_int_accepts_integral_float_and_negative),
      T(test_int_rejects_fraction_and_huge),
      T(test_int_range),
      T(test_double_accepts_int_and_checks_range),
      T(test_wrong_types),
      T(test_string_with_nul_rejected),
      T(test_unknown_key_suggests_closest),
      T(test_unknown_key_without_suggestion),
      T(test_unknown_key_is_escaped_and_cut),
      T(test_required_missing),
      T(test_duplicate_key),
      T(test_not_a_map_and_malformed),
      T(test_secret_from_env),
      T(test_secret_required_unset_names_variable),
      T(test_secret_never_in_errors),
      T(test_raw_copies_nested_value),
      T(test_free_is_idempotent),
      T(test_bad_defaults_are_map_bugs),
      T(test_empty_map_rejects_everything),
      T(test_help_table),
#undef T
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
