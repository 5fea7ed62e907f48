/* The provider protocols mockllm speaks: routes, request bodies, default
 * replies, JSON bodies, SSE events, provider-shaped errors and the RunPod
 * job table. Every JSON byte written here comes from jiwa_mp_to_json (one
 * escaping function for the whole program); requests are read with the
 * bounded msgpack reader after jiwa_json_to_mp. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jiwa/json.h"
#include "mockllm.h"

#define DEFAULT_DIMS 384
#define USER_ECHO_CHARS 500
#define SYSTEM_ECHO_CHARS 120
#define CREATED 1700000000 /* fixed "created": replies are deterministic */
#define MAX_JOBS 10000

/* ---- small helpers
 * ------------------------------------------------------------ */
void mock_json_render(jiwa_mp_writer_t *w, mock_buf_t *out) {
  char *js = NULL;
  size_t n = 0;
  if (jiwa_mp_to_json(w->sbuf.data, w->sbuf.size, &js, &n) != 0) {
    out->oom = 1; /* our own msgpack: only ENOMEM can get here */
    return;
  }
  mock_buf_put(out, js, n);
  free(js);
}

static void put_strn(msgpack_packer *pk, const char *s, size_t n) {
  msgpack_pack_str(pk, n);
  msgpack_pack_str_body(pk, s, n);
}
#define KEY(pk, k) jiwa_mp_put_str(pk, k)
#define KV_STR(pk, k, v) jiwa_mp_put_kv_str(pk, k, v)
#define KV_INT(pk, k, v) jiwa_mp_put_kv_int(pk, k, (int64_t)(v))

static char *dupn(const char *s, size_t n) {
  char *p = malloc(n + 1);
  if (p) {
    memcpy(p, s, n);
    p[n] = '\0';
  }
  return p;
}

static size_t count_words(const char *s) {
  size_t n = 0;
  int in = 0;
  for (; *s; s++) {
    int sp = *s == ' ' || *s == '\t' || *s == '\n' || *s == '\r';
    if (!sp && !in)
      n++;
    in = !sp;
  }
  return n;
}

/* Bytes of the first @p chars UTF-8 characters of @p s. */
static size_t utf8_prefix(const char *s, size_t chars) {
  size_t i = 0, c = 0;
  while (s[i]) {
    if (((unsigned char)s[i] & 0xc0) != 0x80) {
      if (c == chars)
        break;
      c++;
    }
    i++;
  }
  return i;
}

/* ---- routes
 * -------------------------------------------------------------------- */
static int seg(const char *p, size_t n, size_t *len) {
  size_t i = 0;
  while (i < n && p[i] != '/')
    i++;
  *len = i;
  return i > 0;
}

static int streq(const char *p, size_t n, const char *lit) {
  return strlen(lit) == n && memcmp(p, lit, n) == 0;
}

static int is_post(const char *m, size_t n) {
  return streq(m, n, "POST");
}

int mock_proto_route(const char *method, size_t mlen, const char *path,
                     size_t plen, mock_proto_t *proto, int *route,
                     const char **allow) {
  int post = is_post(method, mlen);
  *allow = "POST";
  if (streq(path, plen, "/v1/messages")) {
    *proto = MOCK_P_ANTHROPIC;
    *route = MOCK_ROUTE_ANTHROPIC;
  } else if (streq(path, plen, "/v1/chat/completions")) {
    *proto = MOCK_P_OPENAI;
    *route = MOCK_ROUTE_OPENAI;
  } else if (streq(path, plen, "/v1/embeddings")) {
    *proto = MOCK_P_EMBEDDINGS;
    *route = MOCK_ROUTE_EMBEDDINGS;
  } else if (streq(path, plen, "/generate")) {
    *proto = MOCK_P_TGI_GENERATE;
    *route = MOCK_ROUTE_HF;
  } else if (streq(path, plen, "/generate_stream")) {
    *proto = MOCK_P_TGI_STREAM;
    *route = MOCK_ROUTE_HF;
  } else if ((plen > 8 && memcmp(path, "/models/", 8) == 0) ||
             (plen > 21 && memcmp(path, "/hf-inference/models/", 21) == 0)) {
    *proto = MOCK_P_HF_MODELS;
    *route = MOCK_ROUTE_HF;
  } else if (plen > 4 && memcmp(path, "/v2/", 4) == 0) {
    const char *p = path + 4;
    size_t n = plen - 4, l;
    if (!seg(p, n, &l) || l == n)
      return JIWA_ENOENT;
    p += l + 1;
    n -= l + 1;
    *route = MOCK_ROUTE_RUNPOD;
    if (streq(p, n, "runsync"))
      *proto = MOCK_P_RUNPOD_SYNC;
    else if (streq(p, n, "run"))
      *proto = MOCK_P_RUNPOD_RUN;
    else if (streq(p, n, "openai/v1/chat/completions"))
      *proto = MOCK_P_OPENAI;
    else if (streq(p, n, "openai/v1/embeddings"))
      *proto = MOCK_P_EMBEDDINGS;
    else if (n > 7 && memcmp(p, "status/", 7) == 0 && seg(p + 7, n - 7, &l) &&
             l == n - 7) {
      *proto = MOCK_P_RUNPOD_STATUS;
      *allow = "GET, POST";
      return post || streq(method, mlen, "GET") ? 0 : JIWA_EPERM;
    } else
      return JIWA_ENOENT;
  } else {
    return JIWA_ENOENT;
  }
  return post ? 0 : JIWA_EPERM;
}

/* ---- reading requests
 * ------------------------------------------------------------ */
/* The byte range of the value of @p key in map @p b. */
static int sub(const void *b, size_t n, const char *key, const void **sb,
               size_t *sn) {
  jiwa_mp_reader_t r;
  int rc = jiwa_mp_map_find(b, n, key, &r);
  if (rc)
    return rc;
  const uint8_t *st = r.p;
  rc = jiwa_mp_skip(&r);
  if (rc)
    return rc;
  *sb = st;
  *sn = (size_t)(r.p - st);
  return 0;
}

static jiwa_mp_type_t type_of(const void *b, size_t n) {
  jiwa_mp_reader_t r;
  jiwa_mp_item_t it;
  jiwa_mp_reader_init(&r, b, n);
  if (jiwa_mp_next(&r, &it))
    return JIWA_MP_EXT; /* never seen in JSON: means "unusable" */
  return it.type;
}

/* Text of a content value: a string, or an array of parts whose "text"
 * strings are joined with '\n' (Anthropic blocks, OpenAI parts). */
static int content_text(const void *b, size_t n, char **out) {
  jiwa_mp_reader_t r;
  jiwa_mp_item_t it;
  jiwa_mp_reader_init(&r, b, n);
  if (jiwa_mp_next(&r, &it))
    return JIWA_EINVAL;
  if (it.type == JIWA_MP_STR) {
    *out = dupn(it.v.s.ptr, it.v.s.len);
    return *out ? 0 : JIWA_ENOMEM;
  }
  if (it.type == JIWA_MP_NIL) {
    *out = dupn("", 0);
    return *out ? 0 : JIWA_ENOMEM;
  }
  if (it.type != JIWA_MP_ARRAY)
    return JIWA_EINVAL;
  mock_buf_t acc = {0};
  for (uint32_t i = 0; i < it.v.count; i++) {
    const uint8_t *st = r.p;
    if (jiwa_mp_skip(&r)) {
      mock_buf_free(&acc);
      return JIWA_EINVAL;
    }
    const char *s;
    size_t sl;
    if (jiwa_mp_get_str(st, (size_t)(r.p - st), "text", &s, &sl) == 0) {
      if (acc.len)
        mock_buf_put(&acc, "\n", 1);
      mock_buf_put(&acc, s, sl);
    }
  }
  if (acc.oom) {
    mock_buf_free(&acc);
    return JIWA_ENOMEM;
  }
  *out = acc.p ? mock_buf_take(&acc, NULL) : dupn("", 0);
  return *out ? 0 : JIWA_ENOMEM;
}

static int field_text(const void *b, size_t n, const char *key, char **out) {
  const void *sb;
  size_t sn;
  int rc = sub(b, n, key, &sb, &sn);
  if (rc)
    return rc;
  return content_text(sb, sn, out);
}

/* messages: system (first system/developer), user (last user), words. */
static int read_messages(mock_call_t *c, const void *b, size_t n, int openai,
                         char *msg, size_t msglen) {
  const void *mb;
  size_t mn;
  if (sub(b, n, "messages", &mb, &mn)) {
    snprintf(msg, msglen, "messages: Field required");
    return JIWA_EINVAL;
  }
  jiwa_mp_reader_t r;
  jiwa_mp_item_t it;
  jiwa_mp_reader_init(&r, mb, mn);
  if (jiwa_mp_next(&r, &it) || it.type != JIWA_MP_ARRAY) {
    snprintf(msg, msglen, "messages: Input should be a valid list");
    return JIWA_EINVAL;
  }
  if (it.v.count == 0) {
    snprintf(msg, msglen, "messages: at least one message is required");
    return JIWA_EINVAL;
  }
  for (uint32_t i = 0; i < it.v.count; i++) {
    const uint8_t *st = r.p;
    if (jiwa_mp_skip(&r))
      return JIWA_EINVAL;
    size_t en = (size_t)(r.p - st);
    char role[32];
    if (jiwa_mp_get_strcpy(st, en, "role", role, sizeof role)) {
      snprintf(msg, msglen, "messages.%u.role: Field required", i);
      return JIWA_EINVAL;
    }
    int is_sys = !strcmp(role, "system") || !strcmp(role, "developer");
    if (!openai && strcmp(role, "user") && strcmp(role, "assistant")) {
      snprintf(msg, msglen,
               "messages.%u.role: Input should be 'user' or 'assistant'", i);
      return JIWA_EINVAL;
    }
    if (openai && !is_sys && strcmp(role, "user") &&
        strcmp(role, "assistant") && strcmp(role, "tool")) {
      snprintf(msg, msglen, "messages[%u].role: unknown role", i);
      return JIWA_EINVAL;
    }
    char *text = NULL;
    int rc = field_text(st, en, "content", &text);
    if (rc == JIWA_ENOMEM)
      return rc;
    if (rc) {
      snprintf(msg, msglen,
               "messages.%u.content: Field required (a string "
               "or a list of text parts)",
               i);
      return JIWA_EINVAL;
    }
    c->input_words += count_words(text);
    if (is_sys && !c->system[0]) {
      free(c->system);
      c->system = text;
    } else if (!strcmp(role, "user")) {
      free(c->user);
      c->user = text;
    } else {
      free(text);
    }
  }
  return 0;
}

static int get_bool(const void *b, size_t n, const char *key, int *out) {
  int rc = jiwa_mp_get_bool(b, n, key, out);
  return rc == JIWA_ENOENT ? 0 : rc;
}

static int get_num(const void *b, size_t n, const char *key, double lo,
                   double hi, const char *what, char *msg, size_t msglen) {
  double d;
  int rc = jiwa_mp_get_double(b, n, key, &d);
  if (rc == JIWA_ENOENT)
    return 0;
  if (rc || !(d >= lo && d <= hi)) {
    snprintf(msg, msglen, "%s: must be a number between %g and %g", what, lo,
             hi);
    return JIWA_EINVAL;
  }
  return 0;
}

static int get_max(const void *b, size_t n, const char *key, int64_t *out,
                   char *msg, size_t msglen) {
  int64_t v;
  int rc = jiwa_mp_get_int(b, n, key, &v);
  if (rc == JIWA_ENOENT)
    return 0;
  if (rc || v < 1) {
    snprintf(msg, msglen, "%s: must be an integer >= 1", key);
    return JIWA_EINVAL;
  }
  *out = v;
  return 0;
}

static int set_str(char **dst, const char *s, size_t n) {
  free(*dst);
  *dst = dupn(s, n);
  return *dst ? 0 : JIWA_ENOMEM;
}

static int parse_anthropic(mock_call_t *c, const void *b, size_t n, char *msg,
                           size_t msglen) {
  const char *s;
  size_t sl;
  if (jiwa_mp_get_str(b, n, "model", &s, &sl) || sl == 0) {
    snprintf(msg, msglen, "model: Field required");
    return JIWA_EINVAL;
  }
  if (set_str(&c->model, s, sl))
    return JIWA_ENOMEM;
  int64_t mt = 0;
  if (jiwa_mp_get_int(b, n, "max_tokens", &mt) || mt < 1) {
    snprintf(msg, msglen, "max_tokens: Field required (an integer >= 1)");
    return JIWA_EINVAL;
  }
  c->max_tokens = mt;
  int rc = read_messages(c, b, n, 0, msg, msglen);
  if (rc)
    return rc;
  char *sys = NULL;
  rc = field_text(b, n, "system", &sys);
  if (rc == 0) {
    free(c->system);
    c->system = sys;
    c->input_words += count_words(sys);
  } else if (rc != JIWA_ENOENT) {
    snprintf(msg, msglen,
             "system: Input should be a string or a list of "
             "text blocks");
    return JIWA_EINVAL;
  }
  if (get_bool(b, n, "stream", &c->stream)) {
    snprintf(msg, msglen, "stream: Input should be a valid boolean");
    return JIWA_EINVAL;
  }
  return get_num(b, n, "temperature", 0, 1, "temperature", msg, msglen);
}

static int parse_openai(mock_call_t *c, const void *b, size_t n, char *msg,
                        size_t msglen, const char *fallback_model) {
  const char *s;
  size_t sl;
  if (jiwa_mp_get_str(b, n, "model", &s, &sl) == 0 && sl > 0) {
    if (set_str(&c->model, s, sl))
      return JIWA_ENOMEM;
  } else if (set_str(&c->model, fallback_model, strlen(fallback_model))) {
    return JIWA_ENOMEM;
  }
  int rc = read_messages(c, b, n, 1, msg, msglen);
  if (rc)
    return rc;
  if (get_max(b, n, "max_tokens", &c->max_tokens, msg, msglen) ||
      get_max(b, n, "max_completion_tokens", &c->max_tokens, msg, msglen))
    return JIWA_EINVAL;
  if (get_bool(b, n, "stream", &c->stream)) {
    snprintf(msg, msglen, "stream: expected a boolean");
    return JIWA_EINVAL;
  }
  const void *ob;
  size_t on;
  if (sub(b, n, "stream_options", &ob, &on) == 0 &&
      type_of(ob, on) == JIWA_MP_MAP)
    get_bool(ob, on, "include_usage", &c->include_usage);
  return get_num(b, n, "temperature", 0, 2, "temperature", msg, msglen);
}

static int parse_runpod(mock_call_t *c, const void *b, size_t n, char *msg,
                        size_t msglen) {
  const void *ib;
  size_t in;
  if (sub(b, n, "input", &ib, &in) || type_of(ib, in) != JIWA_MP_MAP) {
    snprintf(msg, msglen, "input: an object is required");
    return JIWA_EINVAL;
  }
  const void *x;
  size_t xn;
  if (sub(ib, in, "messages", &x, &xn) == 0) {
    int rc = read_messages(c, ib, in, 1, msg, msglen);
    if (rc)
      return rc;
  } else {
    char *p = NULL;
    int rc = field_text(ib, in, "prompt", &p);
    if (rc == JIWA_ENOMEM)
      return rc;
    if (rc) {
      snprintf(msg, msglen,
               "input: 'prompt' (a string) or 'messages' is "
               "required");
      return JIWA_EINVAL;
    }
    free(c->user);
    c->user = p;
    c->input_words = count_words(p);
  }
  if (sub(ib, in, "sampling_params", &x, &xn) == 0 &&
      type_of(x, xn) == JIWA_MP_MAP) {
    if (get_max(x, xn, "max_tokens", &c->max_tokens, msg, msglen))
      return JIWA_EINVAL;
    if (get_num(x, xn, "temperature", 0, 2, "temperature", msg, msglen))
      return JIWA_EINVAL;
  }
  return 0;
}

static int parse_hf(mock_call_t *c, const void *b, size_t n, char *msg,
                    size_t msglen) {
  char *p = NULL;
  const char *s;
  size_t sl;
  if (jiwa_mp_get_str(b, n, "inputs", &s, &sl)) {
    snprintf(msg, msglen, "inputs: a string is required");
    return JIWA_EINVAL;
  }
  if (!(p = dupn(s, sl)))
    return JIWA_ENOMEM;
  free(c->user);
  c->user = p;
  c->input_words = count_words(p);
  const void *x;
  size_t xn;
  if (sub(b, n, "parameters", &x, &xn) == 0 && type_of(x, xn) == JIWA_MP_MAP) {
    if (get_max(x, xn, "max_new_tokens", &c->max_tokens, msg, msglen))
      return JIWA_EINVAL;
    if (get_num(x, xn, "temperature", 0, 100, "temperature", msg, msglen))
      return JIWA_EINVAL;
    get_bool(x, xn, "return_full_text", &c->full_text);
  }
  if (get_bool(b, n, "stream", &c->stream)) {
    snprintf(msg, msglen, "stream: expected a boolean");
    return JIWA_EINVAL;
  }
  return 0;
}

static int add_input(mock_call_t *c, const char *s, size_t n) {
  char *p = dupn(s, n);
  if (!p)
    return JIWA_ENOMEM;
  c->inputs[c->ninputs++] = p;
  c->input_words += count_words(p);
  return 0;
}

static int parse_embeddings(mock_call_t *c, const void *b, size_t n, char *msg,
                            size_t msglen) {
  const char *s;
  size_t sl;
  if (jiwa_mp_get_str(b, n, "model", &s, &sl) == 0 && sl > 0) {
    if (set_str(&c->model, s, sl))
      return JIWA_ENOMEM;
  } else if (set_str(&c->model, "mock-embed", 10)) {
    return JIWA_ENOMEM;
  }
  c->dims = DEFAULT_DIMS;
  int64_t d;
  int rc = jiwa_mp_get_int(b, n, "dimensions", &d);
  if (rc != JIWA_ENOENT) {
    if (rc || d < 1 || d > MOCK_MAX_DIMS) {
      snprintf(msg, msglen, "dimensions: must be an integer from 1 to %d",
               MOCK_MAX_DIMS);
      return JIWA_EINVAL;
    }
    c->dims = (unsigned)d;
  }
  char fmt[16];
  rc = jiwa_mp_get_strcpy(b, n, "encoding_format", fmt, sizeof fmt);
  if (rc == 0 && !strcmp(fmt, "base64"))
    c->base64 = 1;
  else if (rc != JIWA_ENOENT && !(rc == 0 && !strcmp(fmt, "float"))) {
    snprintf(msg, msglen, "encoding_format: must be 'float' or 'base64'");
    return JIWA_EINVAL;
  }
  const void *ib;
  size_t in;
  if (sub(b, n, "input", &ib, &in)) {
    snprintf(msg, msglen, "input: Field required");
    return JIWA_EINVAL;
  }
  jiwa_mp_reader_t r;
  jiwa_mp_item_t it;
  jiwa_mp_reader_init(&r, ib, in);
  if (jiwa_mp_next(&r, &it))
    return JIWA_EINVAL;
  if (it.type == JIWA_MP_STR) {
    if (!(c->inputs = calloc(1, sizeof *c->inputs)))
      return JIWA_ENOMEM;
    if (set_str(&c->user, it.v.s.ptr, it.v.s.len))
      return JIWA_ENOMEM;
    return add_input(c, it.v.s.ptr, it.v.s.len);
  }
  if (it.type != JIWA_MP_ARRAY || it.v.count == 0 || it.v.count > 2048) {
    snprintf(msg, msglen,
             "input: must be a string or an array of 1 to 2048 "
             "strings");
    return JIWA_EINVAL;
  }
  if (!(c->inputs = calloc(it.v.count, sizeof *c->inputs)))
    return JIWA_ENOMEM;
  for (uint32_t i = 0; i < it.v.count; i++) {
    jiwa_mp_item_t e;
    if (jiwa_mp_next(&r, &e) || e.type != JIWA_MP_STR) {
      snprintf(msg, msglen, "input[%u]: must be a string", i);
      return JIWA_EINVAL;
    }
    if ((rc = add_input(c, e.v.s.ptr, e.v.s.len)))
      return rc;
    if (i == 0 && set_str(&c->user, e.v.s.ptr, e.v.s.len))
      return JIWA_ENOMEM;
  }
  return 0;
}

/* Segment @p idx (0-based, after the leading '/') of @p path. */
static int path_seg(const char *path, size_t plen, int idx, const char **s,
                    size_t *n) {
  size_t i = 1;
  for (int k = 0; k <= idx; k++) {
    size_t st = i;
    while (i < plen && path[i] != '/')
      i++;
    if (k == idx) {
      *s = path + st;
      *n = i - st;
      return i > st;
    }
    if (i >= plen)
      return 0;
    i++;
  }
  return 0;
}

int mock_call_parse(mock_call_t *c, const char *path, size_t plen,
                    const void *mp, size_t mplen, char *msg, size_t msglen) {
  if (!c->user && !(c->user = dupn("", 0)))
    return JIWA_ENOMEM;
  if (!c->system && !(c->system = dupn("", 0)))
    return JIWA_ENOMEM;
  const char *s = "";
  size_t sl = 0;
  if (c->proto == MOCK_P_RUNPOD_STATUS) {
    path_seg(path, plen, 3, &s, &sl);
    return set_str(&c->job, s, sl);
  }
  if (!mp || type_of(mp, mplen) != JIWA_MP_MAP) {
    snprintf(msg, msglen, "the request body must be a JSON object");
    return JIWA_EINVAL;
  }
  switch (c->proto) {
  case MOCK_P_ANTHROPIC:
    return parse_anthropic(c, mp, mplen, msg, msglen);
  case MOCK_P_OPENAI:
    if (c->route == MOCK_ROUTE_RUNPOD) {
      path_seg(path, plen, 1, &s, &sl);
      char ep[160];
      snprintf(ep, sizeof ep, "%.*s", (int)(sl < 150 ? sl : 150), s);
      return parse_openai(c, mp, mplen, msg, msglen, ep);
    }
    return parse_openai(c, mp, mplen, msg, msglen, "mock-model");
  case MOCK_P_RUNPOD_SYNC:
  case MOCK_P_RUNPOD_RUN:
    path_seg(path, plen, 1, &s, &sl);
    if (set_str(&c->model, s, sl))
      return JIWA_ENOMEM;
    return parse_runpod(c, mp, mplen, msg, msglen);
  case MOCK_P_HF_MODELS:
  case MOCK_P_TGI_GENERATE:
  case MOCK_P_TGI_STREAM: {
    c->full_text = c->proto == MOCK_P_HF_MODELS; /* the API's default */
    int rc;
    if (c->proto == MOCK_P_HF_MODELS) {
      size_t off = plen > 21 && !memcmp(path, "/hf-inference/", 14) ? 21 : 8;
      rc = set_str(&c->model, path + off, plen - off);
    } else {
      rc = set_str(&c->model, "tgi", 3);
    }
    if (rc)
      return rc;
    rc = parse_hf(c, mp, mplen, msg, msglen);
    if (c->proto == MOCK_P_TGI_STREAM)
      c->stream = 1;
    if (c->proto == MOCK_P_TGI_GENERATE)
      c->stream = 0;
    return rc;
  }
  case MOCK_P_EMBEDDINGS:
    return parse_embeddings(c, mp, mplen, msg, msglen);
  default:
    return JIWA_EINVAL;
  }
}

int mock_call_reply(mock_call_t *c, const char *scripted) {
  mock_buf_t b = {0};
  if (scripted) {
    mock_buf_puts(&b, scripted);
  } else {
    const char *model = c->model ? c->model : "mock-model";
    const char *u = c->user ? c->user : "";
    const char *s = c->system ? c->system : "";
    mock_buf_printf(&b, "[mock %s] You asked: \"", model);
    mock_buf_put(&b, u, utf8_prefix(u, USER_ECHO_CHARS));
    mock_buf_puts(&b, "\". Context seen: \"");
    mock_buf_put(&b, s, utf8_prefix(s, SYSTEM_ECHO_CHARS));
    mock_buf_puts(&b, "\"");
  }
  if (b.oom) {
    mock_buf_free(&b);
    return JIWA_ENOMEM;
  }
  free(c->reply);
  c->reply = b.p ? mock_buf_take(&b, NULL) : dupn("", 0);
  if (!c->reply)
    return JIWA_ENOMEM;
  c->output_words = count_words(c->reply);
  if (c->max_tokens > 0 && c->output_words > (size_t)c->max_tokens) {
    /* cut after word number max_tokens */
    size_t w = 0, i = 0;
    int in = 0;
    for (; c->reply[i]; i++) {
      char ch = c->reply[i];
      int sp = ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
      if (sp && in && ++w == (size_t)c->max_tokens)
        break;
      in = !sp;
    }
    c->reply[i] = '\0';
    c->output_words = (size_t)c->max_tokens;
    c->truncated = 1;
  }
  return 0;
}

void mock_call_free(mock_call_t *c) {
  free(c->model);
  free(c->user);
  free(c->system);
  free(c->job);
  free(c->reply);
  for (size_t i = 0; i < c->ninputs; i++)
    free(c->inputs[i]);
  free(c->inputs);
  memset(c, 0, sizeof *c);
}

/* ---- errors
 * -------------------------------------------------------------------------- */
static const char *anthropic_type(int st) {
  switch (st) {
  case 400:
    return "invalid_request_error";
  case 401:
    return "authentication_error";
  case 402:
    return "billing_error";
  case 403:
    return "permission_error";
  case 404:
    return "not_found_error";
  case 408:
    return "timeout_error";
  case 413:
    return "request_too_large";
  case 429:
    return "rate_limit_error";
  case 504:
    return "timeout_error";
  case 529:
    return "overloaded_error";
  default:
    return st >= 500 ? "api_error" : "invalid_request_error";
  }
}

static const char *default_msg(int st) {
  switch (st) {
  case 401:
    return "invalid x-api-key (mockllm fault)";
  case 408:
    return "request timed out (mockllm fault)";
  case 429:
    return "rate limit exceeded (mockllm fault)";
  case 500:
    return "internal server error (mockllm fault)";
  case 502:
    return "bad gateway (mockllm fault)";
  case 503:
    return "service unavailable (mockllm fault)";
  case 504:
    return "gateway timeout (mockllm fault)";
  case 529:
    return "Overloaded";
  default:
    return "error (mockllm fault)";
  }
}

void mock_proto_error(const mock_call_t *c, int route, int st, const char *msg,
                      mock_buf_t *body) {
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_packer *pk = &w.pk;
  if (!msg)
    msg = default_msg(st);
  if (route == MOCK_ROUTE_ANTHROPIC) {
    msgpack_pack_map(pk, 2);
    KV_STR(pk, "type", "error");
    KEY(pk, "error");
    msgpack_pack_map(pk, 2);
    KV_STR(pk, "type", anthropic_type(st));
    KV_STR(pk, "message", msg);
  } else if (route == MOCK_ROUTE_RUNPOD &&
             (!c ||
              (c->proto != MOCK_P_OPENAI && c->proto != MOCK_P_EMBEDDINGS))) {
    msgpack_pack_map(pk, 1);
    KV_STR(pk, "error", msg);
  } else if (route == MOCK_ROUTE_HF) {
    int loading = st == 503;
    msgpack_pack_map(pk, 2);
    if (loading) {
      char m[320];
      snprintf(m, sizeof m, "Model %s is currently loading",
               c && c->model ? c->model : "mock");
      KV_STR(pk, "error", m);
      jiwa_mp_put_kv_double(pk, "estimated_time", 20.0);
    } else {
      KV_STR(pk, "error", msg);
      KV_STR(pk, "error_type",
             st == 429  ? "overloaded"
             : st < 500 ? "validation"
                        : "generation");
    }
  } else {
    const char *type = st == 429   ? "requests"
                       : st >= 500 ? "server_error"
                                   : "invalid_request_error";
    const char *code = st == 429   ? "rate_limit_exceeded"
                       : st == 401 ? "invalid_api_key"
                       : st == 404 ? "not_found"
                                   : NULL;
    msgpack_pack_map(pk, 1);
    KEY(pk, "error");
    msgpack_pack_map(pk, 4);
    KV_STR(pk, "message", msg);
    KV_STR(pk, "type", type);
    KEY(pk, "param");
    msgpack_pack_nil(pk);
    KV_STR(pk, "code", code);
  }
  mock_json_render(&w, body);
  jiwa_mp_writer_free(&w);
}

void mock_proto_headers(int route, uint64_t seq, mock_buf_t *out) {
  if (route == MOCK_ROUTE_ANTHROPIC)
    mock_buf_printf(out, "request-id: req_mock_%06llu\r\n",
                    (unsigned long long)seq);
  else if (route == MOCK_ROUTE_OPENAI || route == MOCK_ROUTE_EMBEDDINGS)
    mock_buf_printf(out, "x-request-id: req_mock_%06llu\r\n",
                    (unsigned long long)seq);
}

/* ---- embeddings
 * ------------------------------------------------------------------------- */
static uint64_t splitmix(uint64_t *x) {
  uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));
  z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
  return z ^ (z >> 31);
}

static void embed(const char *text, unsigned dims, double *v) {
  uint64_t h = UINT64_C(0xcbf29ce484222325);
  for (const unsigned char *p = (const unsigned char *)text; *p; p++)
    h = (h ^ *p) * UINT64_C(0x100000001b3);
  double ss = 0;
  for (unsigned i = 0; i < dims; i++) {
    v[i] = (double)(splitmix(&h) >> 11) * (1.0 / 9007199254740992.0) * 2 - 1;
    ss += v[i] * v[i];
  }
  double norm = sqrt(ss);
  for (unsigned i = 0; i < dims; i++)
    v[i] = norm > 0 ? v[i] / norm : (i == 0);
}

static void base64(const uint8_t *in, size_t n, mock_buf_t *out) {
  static const char tab[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (size_t i = 0; i < n; i += 3) {
    uint32_t x = (uint32_t)in[i] << 16;
    if (i + 1 < n)
      x |= (uint32_t)in[i + 1] << 8;
    if (i + 2 < n)
      x |= in[i + 2];
    char q[4] = {tab[(x >> 18) & 63], tab[(x >> 12) & 63],
                 i + 1 < n ? tab[(x >> 6) & 63] : '=',
                 i + 2 < n ? tab[x & 63] : '='};
    mock_buf_put(out, q, 4);
  }
}

static void embeddings_body(const mock_call_t *c, msgpack_packer *pk) {
  double *v = malloc(sizeof *v * c->dims);
  uint8_t *raw = malloc((size_t)c->dims * 4);
  msgpack_pack_map(pk, 4);
  KV_STR(pk, "object", "list");
  KEY(pk, "data");
  msgpack_pack_array(pk, v && raw ? c->ninputs : 0);
  for (size_t i = 0; v && raw && i < c->ninputs; i++) {
    embed(c->inputs[i], c->dims, v);
    msgpack_pack_map(pk, 3);
    KV_STR(pk, "object", "embedding");
    KV_INT(pk, "index", i);
    KEY(pk, "embedding");
    if (c->base64) { /* little-endian float32 */
      for (unsigned k = 0; k < c->dims; k++) {
        float f = (float)v[k];
        uint32_t u;
        memcpy(&u, &f, 4);
        for (int b = 0; b < 4; b++)
          raw[k * 4 + (unsigned)b] = (uint8_t)(u >> (8 * b));
      }
      mock_buf_t s = {0};
      base64(raw, (size_t)c->dims * 4, &s);
      put_strn(pk, s.p ? s.p : "", s.len);
      mock_buf_free(&s);
    } else {
      msgpack_pack_array(pk, c->dims);
      for (unsigned k = 0; k < c->dims; k++)
        msgpack_pack_double(pk, v[k]);
    }
  }
  KV_STR(pk, "model", c->model);
  KEY(pk, "usage");
  msgpack_pack_map(pk, 2);
  KV_INT(pk, "prompt_tokens", c->input_words);
  KV_INT(pk, "total_tokens", c->input_words);
  free(v);
  free(raw);
}

/* ---- success bodies
 * --------------------------------------------------------------------- */
static void runpod_output(const mock_call_t *c, msgpack_packer *pk) {
  /* the vLLM worker's shape: [{"choices":[{"tokens":[text]}],"usage":...}] */
  msgpack_pack_array(pk, 1);
  msgpack_pack_map(pk, 2);
  KEY(pk, "choices");
  msgpack_pack_array(pk, 1);
  msgpack_pack_map(pk, 1);
  KEY(pk, "tokens");
  msgpack_pack_array(pk, 1);
  jiwa_mp_put_str(pk, c->reply);
  KEY(pk, "usage");
  msgpack_pack_map(pk, 2);
  KV_INT(pk, "input", c->input_words);
  KV_INT(pk, "output", c->output_words);
}

static void tgi_details(const mock_call_t *c, msgpack_packer *pk) {
  msgpack_pack_map(pk, 3);
  KV_STR(pk, "finish_reason", c->truncated ? "length" : "eos_token");
  KV_INT(pk, "generated_tokens", c->output_words);
  KEY(pk, "seed");
  msgpack_pack_nil(pk);
}

static void put_generated(const mock_call_t *c, msgpack_packer *pk) {
  if (!c->full_text) {
    jiwa_mp_put_str(pk, c->reply);
    return;
  }
  size_t a = strlen(c->user), b = strlen(c->reply);
  msgpack_pack_str(pk, a + b);
  msgpack_pack_str_body(pk, c->user, a);
  msgpack_pack_str_body(pk, c->reply, b);
}

static void usage_openai(const mock_call_t *c, msgpack_packer *pk) {
  msgpack_pack_map(pk, 3);
  KV_INT(pk, "prompt_tokens", c->input_words);
  KV_INT(pk, "completion_tokens", c->output_words);
  KV_INT(pk, "total_tokens", c->input_words + c->output_words);
}

void mock_proto_body(mock_call_t *c, mock_buf_t *body) {
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_packer *pk = &w.pk;
  char id[64];
  switch (c->proto) {
  case MOCK_P_ANTHROPIC:
    snprintf(id, sizeof id, "msg_mock_%06llu", (unsigned long long)c->seq);
    msgpack_pack_map(pk, 8);
    KV_STR(pk, "id", id);
    KV_STR(pk, "type", "message");
    KV_STR(pk, "role", "assistant");
    KV_STR(pk, "model", c->model);
    KEY(pk, "content");
    msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 2);
    KV_STR(pk, "type", "text");
    KV_STR(pk, "text", c->reply);
    KV_STR(pk, "stop_reason", c->truncated ? "max_tokens" : "end_turn");
    KEY(pk, "stop_sequence");
    msgpack_pack_nil(pk);
    KEY(pk, "usage");
    msgpack_pack_map(pk, 2);
    KV_INT(pk, "input_tokens", c->input_words);
    KV_INT(pk, "output_tokens", c->output_words);
    break;
  case MOCK_P_OPENAI:
    snprintf(id, sizeof id, "chatcmpl-mock-%llu", (unsigned long long)c->seq);
    msgpack_pack_map(pk, 6);
    KV_STR(pk, "id", id);
    KV_STR(pk, "object", "chat.completion");
    KV_INT(pk, "created", CREATED);
    KV_STR(pk, "model", c->model);
    KEY(pk, "choices");
    msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 4);
    KV_INT(pk, "index", 0);
    KEY(pk, "message");
    msgpack_pack_map(pk, 2);
    KV_STR(pk, "role", "assistant");
    KV_STR(pk, "content", c->reply);
    KEY(pk, "logprobs");
    msgpack_pack_nil(pk);
    KV_STR(pk, "finish_reason", c->truncated ? "length" : "stop");
    KEY(pk, "usage");
    usage_openai(c, pk);
    break;
  case MOCK_P_RUNPOD_SYNC:
    snprintf(id, sizeof id, "sync-mock-%llu", (unsigned long long)c->seq);
    msgpack_pack_map(pk, 5);
    KV_INT(pk, "delayTime", 1);
    KV_INT(pk, "executionTime", 1);
    KV_STR(pk, "id", id);
    KEY(pk, "output");
    runpod_output(c, pk);
    KV_STR(pk, "status", "COMPLETED");
    break;
  case MOCK_P_HF_MODELS:
    msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 1);
    KEY(pk, "generated_text");
    put_generated(c, pk);
    break;
  case MOCK_P_TGI_GENERATE:
    msgpack_pack_map(pk, 2);
    KEY(pk, "generated_text");
    put_generated(c, pk);
    KEY(pk, "details");
    tgi_details(c, pk);
    break;
  case MOCK_P_EMBEDDINGS:
    embeddings_body(c, pk);
    break;
  default:
    msgpack_pack_map(pk, 0);
    break;
  }
  mock_json_render(&w, body);
  jiwa_mp_writer_free(&w);
}

/* ---- SSE events
 * ------------------------------------------------------------------------ */
static int is_anthropic(const mock_call_t *c) {
  return c->proto == MOCK_P_ANTHROPIC;
}
static int is_tgi(const mock_call_t *c) {
  return c->proto == MOCK_P_TGI_STREAM || c->proto == MOCK_P_HF_MODELS;
}

const char *mock_proto_stream_ctype(const mock_call_t *c) {
  return is_anthropic(c) ? "text/event-stream; charset=utf-8"
                         : "text/event-stream";
}

/* "event: NAME\ndata: " (Anthropic) / "data: " (OpenAI) / "data:" (TGI) */
static void open_event(const mock_call_t *c, const char *name,
                       mock_buf_t *out) {
  if (is_anthropic(c))
    mock_buf_printf(out, "event: %s\ndata: ", name);
  else if (is_tgi(c))
    mock_buf_puts(out, "data:");
  else
    mock_buf_puts(out, "data: ");
}

static void emit(const mock_call_t *c, const char *name, jiwa_mp_writer_t *w,
                 mock_buf_t *out) {
  open_event(c, name, out);
  mock_json_render(w, out);
  mock_buf_puts(out, "\n\n");
  jiwa_mp_writer_free(w);
  jiwa_mp_writer_init(w);
}

static void chunk_head(const mock_call_t *c, msgpack_packer *pk, int extra) {
  char id[64];
  snprintf(id, sizeof id, "chatcmpl-mock-%llu", (unsigned long long)c->seq);
  msgpack_pack_map(pk, 5 + (uint32_t)extra);
  KV_STR(pk, "id", id);
  KV_STR(pk, "object", "chat.completion.chunk");
  KV_INT(pk, "created", CREATED);
  KV_STR(pk, "model", c->model);
  KEY(pk, "choices");
}

/* One OpenAI chunk with a single choice: delta content (or role) and
 * finish_reason. */
static void openai_chunk(const mock_call_t *c, msgpack_packer *pk,
                         const char *role, const char *text, const char *finish,
                         int extra) {
  chunk_head(c, pk, extra);
  msgpack_pack_array(pk, 1);
  msgpack_pack_map(pk, 4);
  KV_INT(pk, "index", 0);
  KEY(pk, "delta");
  msgpack_pack_map(pk, (role ? 1u : 0u) + (text ? 1u : 0u));
  if (role)
    KV_STR(pk, "role", role);
  if (text)
    KV_STR(pk, "content", text);
  KEY(pk, "logprobs");
  msgpack_pack_nil(pk);
  KV_STR(pk, "finish_reason", finish);
}

static void tgi_token(const mock_call_t *c, msgpack_packer *pk, size_t idx,
                      const char *text, int last, int special, int extra) {
  msgpack_pack_map(pk, 4 + (uint32_t)extra);
  KV_INT(pk, "index", idx);
  KEY(pk, "token");
  msgpack_pack_map(pk, 4);
  KV_INT(pk, "id", idx);
  KV_STR(pk, "text", text);
  jiwa_mp_put_kv_double(pk, "logprob", -0.5);
  jiwa_mp_put_kv_bool(pk, "special", special);
  KEY(pk, "generated_text");
  if (last) {
    jiwa_mp_put_str(pk, c->reply);
    KEY(pk, "details");
    tgi_details(c, pk);
  } else {
    msgpack_pack_nil(pk);
    KEY(pk, "details");
    msgpack_pack_nil(pk);
  }
}

void mock_proto_event(const mock_call_t *c, mock_ev_t ev, const char *text,
                      size_t idx, int last, size_t size, mock_buf_t *out) {
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_packer *pk = &w.pk;
  char id[64];
  switch (ev) {
  case MOCK_EV_START:
    if (is_anthropic(c)) {
      snprintf(id, sizeof id, "msg_mock_%06llu", (unsigned long long)c->seq);
      msgpack_pack_map(pk, 2);
      KV_STR(pk, "type", "message_start");
      KEY(pk, "message");
      msgpack_pack_map(pk, 8);
      KV_STR(pk, "id", id);
      KV_STR(pk, "type", "message");
      KV_STR(pk, "role", "assistant");
      KV_STR(pk, "model", c->model);
      KEY(pk, "content");
      msgpack_pack_array(pk, 0);
      KEY(pk, "stop_reason");
      msgpack_pack_nil(pk);
      KEY(pk, "stop_sequence");
      msgpack_pack_nil(pk);
      KEY(pk, "usage");
      msgpack_pack_map(pk, 2);
      KV_INT(pk, "input_tokens", c->input_words);
      KV_INT(pk, "output_tokens", 1);
      emit(c, "message_start", &w, out);
      msgpack_pack_map(pk, 3);
      KV_STR(pk, "type", "content_block_start");
      KV_INT(pk, "index", 0);
      KEY(pk, "content_block");
      msgpack_pack_map(pk, 2);
      KV_STR(pk, "type", "text");
      KV_STR(pk, "text", "");
      emit(c, "content_block_start", &w, out);
      msgpack_pack_map(pk, 1);
      KV_STR(pk, "type", "ping");
      emit(c, "ping", &w, out);
    } else if (!is_tgi(c)) {
      openai_chunk(c, pk, "assistant", "", NULL, 0);
      emit(c, NULL, &w, out);
    }
    break;
  case MOCK_EV_DELTA:
    if (is_anthropic(c)) {
      msgpack_pack_map(pk, 3);
      KV_STR(pk, "type", "content_block_delta");
      KV_INT(pk, "index", 0);
      KEY(pk, "delta");
      msgpack_pack_map(pk, 2);
      KV_STR(pk, "type", "text_delta");
      KV_STR(pk, "text", text);
      emit(c, "content_block_delta", &w, out);
    } else if (is_tgi(c)) {
      tgi_token(c, pk, idx, text, last, 0, 0);
      emit(c, NULL, &w, out);
    } else {
      openai_chunk(c, pk, NULL, text, NULL, 0);
      emit(c, NULL, &w, out);
    }
    break;
  case MOCK_EV_COMMENT:
    mock_buf_puts(out, ": keep-alive\n\n");
    break;
  case MOCK_EV_PING:
    if (is_anthropic(c)) {
      msgpack_pack_map(pk, 1);
      KV_STR(pk, "type", "ping");
      emit(c, "ping", &w, out);
    }
    break;
  case MOCK_EV_MALFORMED:
    /* a data line cut in the middle of its JSON */
    if (is_anthropic(c))
      mock_buf_puts(out, "event: content_block_delta\ndata: {\"type\":"
                         "\"content_block_delta\",\"index\":0,\"delta\":{\"ty"
                         "\n\n");
    else if (is_tgi(c))
      mock_buf_puts(out, "data:{\"index\":0,\"token\":{\"text\":\"\n\n");
    else
      mock_buf_puts(out, "data: {\"id\":\"chatcmpl-mock\",\"choices\":[{\"del"
                         "\n\n");
    break;
  case MOCK_EV_BIG: {
    /* a valid event that clients must ignore, padded to @p size bytes of
     * data line: the text is unchanged */
    if (is_anthropic(c)) {
      msgpack_pack_map(pk, 2);
      KV_STR(pk, "type", "ping");
    } else if (is_tgi(c)) {
      tgi_token(c, pk, idx, "", 0, 1, 1);
    } else {
      openai_chunk(c, pk, NULL, NULL, NULL, 1);
    }
    KV_STR(pk, "mock_padding", "");
    mock_buf_t js = {0};
    mock_json_render(&w, &js);
    const char *prefix = is_anthropic(c) ? "data: "
                         : is_tgi(c)     ? "data:"
                                         : "data: ";
    size_t have = strlen(prefix) + js.len;
    if (is_anthropic(c))
      mock_buf_puts(out, "event: ping\n");
    mock_buf_puts(out, prefix);
    if (js.len >= 2) {
      mock_buf_put(out, js.p, js.len - 2); /* up to the closing '"}' */
      static const char xs[] =
          "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
          "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
      for (size_t k = have; k < size;) {
        size_t m = size - k < sizeof xs - 1 ? size - k : sizeof xs - 1;
        mock_buf_put(out, xs, m);
        k += m;
      }
      mock_buf_put(out, js.p + js.len - 2, 2);
    }
    mock_buf_puts(out, "\n\n");
    mock_buf_free(&js);
    break;
  }
  case MOCK_EV_ERROR:
    if (is_anthropic(c)) {
      msgpack_pack_map(pk, 2);
      KV_STR(pk, "type", "error");
      KEY(pk, "error");
      msgpack_pack_map(pk, 2);
      KV_STR(pk, "type", "overloaded_error");
      KV_STR(pk, "message", "Overloaded");
      emit(c, "error", &w, out);
    } else if (is_tgi(c)) {
      msgpack_pack_map(pk, 2);
      KV_STR(pk, "error", "mockllm: generation aborted (error_after)");
      KV_STR(pk, "error_type", "generation");
      emit(c, NULL, &w, out);
    } else {
      msgpack_pack_map(pk, 1);
      KEY(pk, "error");
      msgpack_pack_map(pk, 4);
      KV_STR(pk, "message", "mockllm: stream aborted (error_after)");
      KV_STR(pk, "type", "server_error");
      KEY(pk, "param");
      msgpack_pack_nil(pk);
      KEY(pk, "code");
      msgpack_pack_nil(pk);
      emit(c, NULL, &w, out);
    }
    break;
  case MOCK_EV_END:
    if (is_anthropic(c)) {
      msgpack_pack_map(pk, 2);
      KV_STR(pk, "type", "content_block_stop");
      KV_INT(pk, "index", 0);
      emit(c, "content_block_stop", &w, out);
      msgpack_pack_map(pk, 3);
      KV_STR(pk, "type", "message_delta");
      KEY(pk, "delta");
      msgpack_pack_map(pk, 2);
      KV_STR(pk, "stop_reason", c->truncated ? "max_tokens" : "end_turn");
      KEY(pk, "stop_sequence");
      msgpack_pack_nil(pk);
      KEY(pk, "usage");
      msgpack_pack_map(pk, 1);
      KV_INT(pk, "output_tokens", c->output_words);
      emit(c, "message_delta", &w, out);
      msgpack_pack_map(pk, 1);
      KV_STR(pk, "type", "message_stop");
      emit(c, "message_stop", &w, out);
    } else if (!is_tgi(c)) {
      openai_chunk(c, pk, NULL, NULL, c->truncated ? "length" : "stop", 0);
      emit(c, NULL, &w, out);
      if (c->include_usage) {
        chunk_head(c, pk, 1);
        msgpack_pack_array(pk, 0);
        KEY(pk, "usage");
        usage_openai(c, pk);
        emit(c, NULL, &w, out);
      }
      mock_buf_puts(out, "data: [DONE]\n\n");
    }
    break;
  }
  jiwa_mp_writer_free(&w);
}

/* ---- RunPod jobs
 * ---------------------------------------------------------------------- */
typedef struct job {
  struct job *next;
  char id[48];
  unsigned polls, polled;
  mock_call_t call; /* model, reply and counts */
} job_t;

static job_t *jobs, **jobs_tail = &jobs;
static size_t njobs;
static uint64_t job_seq;

const char *mock_runpod_submit(const mock_call_t *c, unsigned polls) {
  job_t *j = calloc(1, sizeof *j);
  if (!j)
    return NULL;
  snprintf(j->id, sizeof j->id, "mock-job-%llu", (unsigned long long)++job_seq);
  j->polls = polls;
  j->call.proto = MOCK_P_RUNPOD_RUN;
  j->call.model = dupn(c->model, strlen(c->model));
  j->call.reply = dupn(c->reply, strlen(c->reply));
  j->call.input_words = c->input_words;
  j->call.output_words = c->output_words;
  if (!j->call.model || !j->call.reply) {
    mock_call_free(&j->call);
    free(j);
    return NULL;
  }
  *jobs_tail = j;
  jobs_tail = &j->next;
  if (++njobs > MAX_JOBS) { /* forget the oldest */
    job_t *old = jobs;
    jobs = old->next;
    if (!jobs)
      jobs_tail = &jobs;
    mock_call_free(&old->call);
    free(old);
    njobs--;
  }
  return j->id;
}

int mock_runpod_status(mock_call_t *c, mock_buf_t *body) {
  job_t *j = jobs;
  while (j && strcmp(j->id, c->job))
    j = j->next;
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_packer *pk = &w.pk;
  int st = 200;
  if (!j) {
    msgpack_pack_map(pk, 1);
    KV_STR(pk, "error", "request does not exist");
    st = 404;
  } else if (j->polled < j->polls) {
    j->polled++;
    msgpack_pack_map(pk, 3);
    KV_INT(pk, "delayTime", j->polled);
    KV_STR(pk, "id", j->id);
    KV_STR(pk, "status", j->polled == 1 ? "IN_QUEUE" : "IN_PROGRESS");
  } else {
    msgpack_pack_map(pk, 5);
    KV_INT(pk, "delayTime", j->polls);
    KV_INT(pk, "executionTime", 1);
    KV_STR(pk, "id", j->id);
    KEY(pk, "output");
    runpod_output(&j->call, pk);
    KV_STR(pk, "status", "COMPLETED");
  }
  mock_json_render(&w, body);
  jiwa_mp_writer_free(&w);
  return st;
}

void mock_runpod_clear(void) {
  while (jobs) {
    job_t *j = jobs;
    jobs = j->next;
    mock_call_free(&j->call);
    free(j);
  }
  jobs_tail = &jobs;
  njobs = 0;
}
