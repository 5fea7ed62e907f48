/* Fuzz target for cron expressions (runtime/jobs/jiwa_cron.c), read from
 * the config file. Invariants: parse returns 0, EINVAL or ETOOBIG; a
 * failure leaves a non-empty printable-ASCII message and the output
 * untouched; an accepted expression fires, from times derived from the
 * input, at a whole minute strictly after the time that itself matches,
 * with no matching minute in between (checked over the first two hours). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jiwa/errors.h"
#include "jiwa_cron.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  jiwa_cron_t c, before;
  memset(&c, 0x5a, sizeof c);
  before = c;
  char err[JIWA_CRON_ERRLEN];
  int rc = jiwa_cron_parse((const char *)data, size, &c, err, sizeof err);
  if (rc != 0) {
    if ((rc != JIWA_EINVAL && rc != JIWA_ETOOBIG) || !err[0] ||
        memcmp(&c, &before, sizeof c) != 0)
      abort();
    for (const char *p = err; *p; p++)
      if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
        abort();
    return 0;
  }
  if (err[0])
    abort();
  uint64_t h = 1469598103934665603u;
  for (size_t i = 0; i < size; i++)
    h = (h ^ data[i]) * 1099511628211u;
  for (int k = 0; k < 4; k++) {
    h ^= h << 13, h ^= h >> 7, h ^= h << 17;
    int64_t t = (int64_t)(h % (uint64_t)(JIWA_CRON_MAX_TIME - 40 * 366 * 86400));
    int64_t next;
    rc = jiwa_cron_next(&c, t, &next);
    if (rc != 0 || next <= t || next % 60 != 0 || !jiwa_cron_matches(&c, next))
      abort();
    for (int64_t m = t / 60 * 60 + 60; m < next && m < t + 7200; m += 60)
      if (jiwa_cron_matches(&c, m))
        abort();
  }
  return 0;
}
