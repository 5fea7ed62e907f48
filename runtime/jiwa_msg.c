#include "jiwa_msg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jiwa_rt_int.h"

static const uint8_t empty_map[1] = {0x80};

/* Builds a message; for errors the text is kept NUL-terminated beside the
 * body so msg_error can hand out a C string. */
static jiwa_msg_t *build(jiwa_msg_kind_t kind, const char *type,
                         const char *sender, uint64_t id, uint64_t deadline,
                         const void *body, size_t len, const char *et,
                         size_t el) {
  if (!type)
    type = "";
  if (!sender)
    sender = "";
  size_t tl = strlen(type), sl = strlen(sender);
  if (tl > JIWA_MSG_TYPE_MAX || sl > JIWA_MSG_SENDER_MAX ||
      kind < JIWA_MSG_TELL || kind > JIWA_MSG_ERROR)
    return NULL;
  if (!body || len == 0) {
    body = empty_map;
    len = sizeof empty_map;
  }
  struct jiwa_msg *m = malloc(sizeof *m + tl + 1 + sl + 1 + el + 1 + len);
  if (!m)
    return NULL;
  atomic_init(&m->refs, 1);
  m->kind = (uint8_t)kind;
  m->err = 0;
  m->id = id;
  m->deadline = deadline;
  m->slot = NULL;
  char *p = m->data;
  memcpy(p, type, tl + 1);
  m->type = p;
  p += tl + 1;
  memcpy(p, sender, sl + 1);
  m->sender = p;
  p += sl + 1;
  if (el)
    memcpy(p, et, el);
  p[el] = '\0';
  m->errtext = p;
  p += el + 1;
  memcpy(p, body, len);
  m->body = (const uint8_t *)p;
  m->body_len = len;
  return m;
}

jiwa_msg_t *jiwa_msg_new(jiwa_msg_kind_t kind, const char *type,
                         const char *sender, uint64_t id, uint64_t deadline,
                         const void *body, size_t len) {
  return build(kind, type, sender, id, deadline, body, len, NULL, 0);
}

jiwa_msg_t *jiwa_msg_new_error(int code, const char *text, const char *sender,
                               uint64_t id) {
  jiwa_mp_writer_t w;
  jiwa_mp_writer_init(&w);
  msgpack_pack_map(&w.pk, 3);
  jiwa_mp_put_kv_int(&w.pk, "code", code);
  jiwa_mp_put_kv_str(&w.pk, "name", jiwa_err_name(code));
  if (!text)
    text = jiwa_strerror(code);
  jiwa_mp_put_kv_str(&w.pk, "error", text);
  jiwa_msg_t *m = build(JIWA_MSG_ERROR, "error", sender, id, 0, w.sbuf.data,
                        w.sbuf.size, text, strlen(text));
  jiwa_mp_writer_free(&w);
  if (m)
    m->err = code;
  return m;
}

jiwa_msg_t *jiwa__msg_retain(const jiwa_msg_t *cm) {
  jiwa_msg_t *m = (jiwa_msg_t *)cm;
  atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
  return m;
}

void jiwa__msg_release(jiwa_msg_t *m) {
  if (!m)
    return;
  if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1)
    return;
  if (m->slot)
    jiwa__slot_release(m->slot);
  free(m);
}

int jiwa_msg_encode(const jiwa_msg_t *m, msgpack_packer *pk) {
  int rc = msgpack_pack_map(pk, m->kind == JIWA_MSG_ERROR ? 7 : 6);
  rc |= jiwa_mp_put_kv_str(pk, "t", m->type);
  rc |= jiwa_mp_put_kv_int(pk, "k", m->kind);
  rc |= jiwa_mp_put_str(pk, "id") | msgpack_pack_uint64(pk, m->id);
  rc |= jiwa_mp_put_kv_str(pk, "from", m->sender);
  rc |= jiwa_mp_put_str(pk, "dl") | msgpack_pack_uint64(pk, m->deadline);
  if (m->kind == JIWA_MSG_ERROR)
    rc |= jiwa_mp_put_kv_int(pk, "err", m->err);
  rc |= jiwa_mp_put_str(pk, "b");
  /* the body already is one msgpack object: embed it as is */
  rc |= pk->callback(pk->data, (const char *)m->body, m->body_len);
  return rc ? JIWA_ENOMEM : 0;
}

/* Copies a str item into dst (NUL-terminated) or fails. */
static int item_str(const jiwa_mp_item_t *it, char *dst, size_t cap) {
  if (it->type != JIWA_MP_STR || it->v.s.len >= cap)
    return -1;
  memcpy(dst, it->v.s.ptr, it->v.s.len);
  dst[it->v.s.len] = '\0';
  return 0;
}

int jiwa_msg_decode(const void *buf, size_t len, jiwa_msg_t **out, char *err,
                    size_t errlen) {
  *out = NULL;
  size_t used = 0;
  int rc = jiwa_mp_scan(buf, len, JIWA_MP_MAX_DEPTH, &used);
  if (rc) {
    snprintf(err, errlen, "envelope: %s",
             rc == JIWA_ETOOBIG ? "nested deeper than 16 levels"
                                : "not well-formed msgpack");
    return rc;
  }
  if (used != len) {
    snprintf(err, errlen, "envelope: %zu trailing byte(s) after the first "
             "object", len - used);
    return JIWA_EPROTO;
  }
  jiwa_mp_reader_t r;
  jiwa_mp_reader_init(&r, buf, len);
  jiwa_mp_item_t it;
  if (jiwa_mp_next(&r, &it) || it.type != JIWA_MP_MAP) {
    snprintf(err, errlen, "envelope: expected a map");
    return JIWA_EPROTO;
  }
  char type[JIWA_MSG_TYPE_MAX + 1] = "", from[JIWA_MSG_SENDER_MAX + 1] = "";
  int have_t = 0, have_k = 0;
  uint64_t kind = 0, id = 0, dl = 0;
  int64_t code = 0;
  const uint8_t *body = NULL;
  size_t blen = 0;
  for (uint32_t i = 0; i < it.v.count; i++) {
    jiwa_mp_item_t key, val;
    jiwa_mp_reader_t at_key = r;
    if (jiwa_mp_next(&r, &key))
      goto malformed;
    if (key.type != JIWA_MP_STR) {
      /* skip the whole key (it may be a container), then its value */
      r = at_key;
      if (jiwa_mp_skip(&r) || jiwa_mp_skip(&r))
        goto malformed;
      continue;
    }
    const char *k = key.v.s.ptr;
    uint32_t kl = key.v.s.len;
#define KEY_IS(s) (kl == sizeof(s) - 1 && memcmp(k, s, kl) == 0)
    if (KEY_IS("b")) {
      const uint8_t *start = r.p;
      if (jiwa_mp_skip(&r))
        goto malformed;
      body = start;
      blen = (size_t)(r.p - start);
      continue;
    }
    if (jiwa_mp_next(&r, &val))
      goto malformed;
    if (KEY_IS("t")) {
      if (item_str(&val, type, sizeof type)) {
        snprintf(err, errlen, "envelope: 't' must be a string of at most %d "
                 "bytes", JIWA_MSG_TYPE_MAX);
        return JIWA_EPROTO;
      }
      have_t = 1;
    } else if (KEY_IS("from")) {
      if (item_str(&val, from, sizeof from)) {
        snprintf(err, errlen, "envelope: 'from' must be a string of at most "
                 "%d bytes", JIWA_MSG_SENDER_MAX);
        return JIWA_EPROTO;
      }
    } else if (KEY_IS("k") || KEY_IS("id") || KEY_IS("dl")) {
      if (val.type != JIWA_MP_UINT) {
        snprintf(err, errlen, "envelope: '%.*s' must be a non-negative "
                 "integer", (int)kl, k);
        return JIWA_EPROTO;
      }
      if (KEY_IS("k")) {
        kind = val.v.u;
        have_k = 1;
      } else if (KEY_IS("id")) {
        id = val.v.u;
      } else {
        dl = val.v.u;
      }
    } else if (KEY_IS("err")) {
      if (val.type != JIWA_MP_INT && val.type != JIWA_MP_UINT) {
        snprintf(err, errlen, "envelope: 'err' must be an integer");
        return JIWA_EPROTO;
      }
      code = val.type == JIWA_MP_INT ? val.v.i : (int64_t)(val.v.u & 0xffff);
    } else if (val.type == JIWA_MP_ARRAY || val.type == JIWA_MP_MAP) {
      /* unknown keys are skipped for forward compatibility */
      uint64_t n = val.type == JIWA_MP_MAP ? 2ull * val.v.count : val.v.count;
      for (uint64_t j = 0; j < n; j++)
        if (jiwa_mp_skip(&r))
          goto malformed;
    }
#undef KEY_IS
  }
  if (!have_t || !have_k || !body) {
    snprintf(err, errlen, "envelope: key '%s' missing",
             !have_t ? "t" : !have_k ? "k" : "b");
    return JIWA_EPROTO;
  }
  if (kind < JIWA_MSG_TELL || kind > JIWA_MSG_ERROR) {
    snprintf(err, errlen, "envelope: 'k' must be 1..5 (tell, ask, delta, "
             "reply, error), got %llu", (unsigned long long)kind);
    return JIWA_EPROTO;
  }
  const char *et = NULL;
  size_t el = 0;
  if (kind == JIWA_MSG_ERROR &&
      jiwa_mp_get_str(body, blen, "error", &et, &el) != 0) {
    et = NULL;
    el = 0;
  }
  jiwa_msg_t *m =
      build((jiwa_msg_kind_t)kind, type, from, id, dl, body, blen, et, el);
  if (!m)
    return JIWA_ENOMEM;
  if (kind == JIWA_MSG_ERROR)
    m->err = code < 0 && code > -10000 ? (int32_t)code : JIWA_EUPSTREAM;
  *out = m;
  return 0;
malformed:
  snprintf(err, errlen, "envelope: not well-formed msgpack");
  return JIWA_EPROTO;
}
