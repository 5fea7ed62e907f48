#include "jiwa/frame.h"

#include <stdio.h>
#include <string.h>

static const uint8_t empty_map = 0x80;

int jiwa_frame_parse(const void *buf, size_t len, jiwa_frame_t *f, char *err,
                     size_t errlen) {
  memset(f, 0, sizeof *f);
  size_t used = 0;
  int rc = jiwa_mp_scan(buf, len, JIWA_MP_MAX_DEPTH, &used);
  if (rc) {
    snprintf(err, errlen, "frame: %s",
             rc == JIWA_ETOOBIG ? "nested deeper than 16 levels"
                                : "not well-formed msgpack");
    return rc;
  }
  if (used != len) {
    snprintf(err, errlen,
             "frame: %zu byte(s) after the map; a frame holds exactly one map",
             len - used);
    return JIWA_EPROTO;
  }
  jiwa_mp_reader_t r;
  jiwa_mp_reader_init(&r, buf, len);
  jiwa_mp_item_t it;
  if (jiwa_mp_next(&r, &it) || it.type != JIWA_MP_MAP) {
    snprintf(err, errlen, "frame: expected a map {id, op, body}");
    return JIWA_EPROTO;
  }
  int have_id = 0, have_op = 0;
  for (uint32_t i = 0; i < it.v.count; i++) {
    jiwa_mp_item_t key, val;
    if (jiwa_mp_next(&r, &key) || key.type != JIWA_MP_STR) {
      snprintf(err, errlen, "frame: keys must be strings (id, op, body)");
      return JIWA_EPROTO;
    }
    const char *k = key.v.s.ptr;
    uint32_t kl = key.v.s.len;
#define KEY_IS(s) (kl == sizeof(s) - 1 && memcmp(k, s, kl) == 0)
    if (KEY_IS("body")) {
      const uint8_t *start = r.p;
      jiwa_mp_reader_t peek = r;
      if (jiwa_mp_next(&peek, &val) || jiwa_mp_skip(&r))
        goto malformed;
      if (val.type == JIWA_MP_NIL) {
        f->body = NULL;
        continue;
      }
      if (val.type != JIWA_MP_MAP) {
        snprintf(err, errlen, "frame: 'body' must be a map");
        return JIWA_EPROTO;
      }
      f->body = start;
      f->body_len = (size_t)(r.p - start);
      continue;
    }
    if (jiwa_mp_next(&r, &val))
      goto malformed;
    if (KEY_IS("id")) {
      if (val.type != JIWA_MP_UINT) {
        snprintf(err, errlen, "frame: 'id' must be an unsigned integer");
        return JIWA_EPROTO;
      }
      f->id = val.v.u;
      have_id = 1;
    } else if (KEY_IS("op")) {
      if (val.type != JIWA_MP_STR || val.v.s.len == 0 ||
          val.v.s.len > JIWA_FRAME_OP_MAX) {
        snprintf(err, errlen, "frame: 'op' must be a string of 1 to %d bytes",
                 JIWA_FRAME_OP_MAX);
        return JIWA_EPROTO;
      }
      f->op = val.v.s.ptr;
      f->op_len = val.v.s.len;
      have_op = 1;
    } else {
      char name[33];
      size_t n = kl > 32 ? 32 : kl;
      for (size_t j = 0; j < n; j++) /* never echo control bytes back */
        name[j] = k[j] >= 0x20 && k[j] < 0x7f ? k[j] : '?';
      name[n] = '\0';
      snprintf(err, errlen,
               "frame: unknown field '%s'; a frame has id, op and body", name);
      return JIWA_EPROTO;
    }
#undef KEY_IS
  }
  if (!have_id || !have_op) {
    snprintf(err, errlen, "frame: field '%s' missing", have_id ? "op" : "id");
    return JIWA_EPROTO;
  }
  if (!f->body) {
    f->body = &empty_map;
    f->body_len = 1;
  }
  return 0;
malformed:
  snprintf(err, errlen, "frame: not well-formed msgpack");
  return JIWA_EPROTO;
}

int jiwa_frame_write(jiwa_mp_writer_t *w, uint64_t id, const char *op,
                     const void *body, size_t len) {
  if (!op || strlen(op) == 0 || strlen(op) > JIWA_FRAME_OP_MAX)
    return JIWA_EINVAL;
  if (!body || len == 0) {
    body = &empty_map;
    len = 1;
  }
  const uint8_t b0 = *(const uint8_t *)body;
  if (!((b0 >= 0x80 && b0 <= 0x8f) || b0 == 0xde || b0 == 0xdf))
    return JIWA_EINVAL;
  size_t start = w->sbuf.size;
  static const char zero[JIWA_FRAME_HDR] = {0};
  int rc = msgpack_sbuffer_write(&w->sbuf, zero, sizeof zero);
  rc |= msgpack_pack_map(&w->pk, 3);
  rc |= jiwa_mp_put_str(&w->pk, "id") | msgpack_pack_uint64(&w->pk, id);
  rc |= jiwa_mp_put_kv_str(&w->pk, "op", op);
  rc |= jiwa_mp_put_str(&w->pk, "body");
  rc |= msgpack_sbuffer_write(&w->sbuf, body, len);
  if (rc)
    return JIWA_ENOMEM;
  size_t n = w->sbuf.size - start - JIWA_FRAME_HDR;
  if (n > UINT32_MAX)
    return JIWA_ETOOBIG;
  uint8_t *h = (uint8_t *)w->sbuf.data + start;
  h[0] = (uint8_t)(n >> 24);
  h[1] = (uint8_t)(n >> 16);
  h[2] = (uint8_t)(n >> 8);
  h[3] = (uint8_t)n;
  return 0;
}

int jiwa_frame_write_error(jiwa_mp_writer_t *w, uint64_t id, int code,
                           const char *message) {
  jiwa_mp_writer_t b;
  jiwa_mp_writer_init(&b);
  int rc = msgpack_pack_map(&b.pk, 3);
  rc |= jiwa_mp_put_kv_int(&b.pk, "code", code);
  rc |= jiwa_mp_put_kv_str(&b.pk, "name", jiwa_err_name(code));
  rc |= jiwa_mp_put_kv_str(&b.pk, "message",
                           message ? message : jiwa_strerror(code));
  if (rc == 0)
    rc = jiwa_frame_write(w, id, "error", b.sbuf.data, b.sbuf.size);
  else
    rc = JIWA_ENOMEM;
  jiwa_mp_writer_free(&b);
  return rc;
}
