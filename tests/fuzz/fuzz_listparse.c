/* Fuzz target for the list-output parser (runtime/jobs/jiwa_listparse.c),
 * which reads model output. Invariants, with default and with tiny limits:
 * the call succeeds; every item has a non-empty NUL-terminated text of the
 * stated length within max_item_len, a title that is NULL exactly when its
 * length is 0 and within JIWA_LIST_MAX_TITLE; at most max_items items; no
 * two items are byte-identical (dedup); the format is NONE exactly when
 * there is no item; and a second parse gives the very same list. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jiwa/errors.h"
#include "jiwa_listparse.h"

static void check(const jiwa_list_t *l, size_t max_items, size_t max_len) {
  if (!l || l->n > max_items || (l->n == 0) != (l->format == JIWA_LIST_NONE))
    abort();
  for (size_t i = 0; i < l->n; i++) {
    const jiwa_list_item_t *it = &l->items[i];
    if (!it->text || !it->text_len || strlen(it->text) != it->text_len ||
        it->text_len > max_len)
      abort();
    if ((it->title == NULL) != (it->title_len == 0))
      abort();
    if (it->title && (strlen(it->title) != it->title_len ||
                      it->title_len > JIWA_LIST_MAX_TITLE))
      abort();
  }
  /* small lists: pairwise; large: neighbours only (keeps it linear-ish) */
  for (size_t i = 0; i < l->n; i++)
    for (size_t j = i + 1; j < l->n && (l->n <= 64 || j < i + 4); j++)
      if (!strcmp(l->items[i].text, l->items[j].text) &&
          ((!l->items[i].title && !l->items[j].title) ||
           (l->items[i].title && l->items[j].title &&
            !strcmp(l->items[i].title, l->items[j].title))))
        abort();
}

static int same(const jiwa_list_t *a, const jiwa_list_t *b) {
  if (a->n != b->n || a->format != b->format ||
      a->duplicates != b->duplicates || a->truncated != b->truncated)
    return 0;
  for (size_t i = 0; i < a->n; i++) {
    if (strcmp(a->items[i].text, b->items[i].text))
      return 0;
    if ((a->items[i].title == NULL) != (b->items[i].title == NULL) ||
        (a->items[i].title && strcmp(a->items[i].title, b->items[i].title)))
      return 0;
  }
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *s = (const char *)data;
  jiwa_list_t *a = NULL, *b = NULL;
  if (jiwa_listparse(s, size, NULL, &a) != 0)
    abort();
  check(a, JIWA_LIST_DEFAULT_MAX_ITEMS, JIWA_LIST_DEFAULT_MAX_ITEM_LEN);
  if (jiwa_listparse(s, size, NULL, &b) != 0 || !same(a, b))
    abort();
  jiwa_list_free(a);
  jiwa_list_free(b);
  jiwa_listparse_limits_t lim = {.max_input = size / 2 + 1,
                                 .max_items = 3,
                                 .max_item_len = 16};
  if (jiwa_listparse(s, size, &lim, &a) != 0)
    abort();
  check(a, 3, 16);
  jiwa_list_free(a);
  return 0;
}
