/**
 * @file jiwa_listparse.h
 * @brief Turn a model's "list of things" answer into items, whatever shape
 *        the model chose (DESIGN.md §10: cultural insights, golden answer
 *        candidates).
 *
 * Shapes understood:
 *  - JSON: an array of strings; an array of objects with a title-like
 *    member (title, name, term, concept, heading, question, topic) and/or a
 *    text-like one (text, insight, description, content, answer, body,
 *    explanation, detail, summary, value); an object holding such an array
 *    (`{"insights": [...]}`); an object mapping titles to texts. The JSON
 *    may sit inside a ``` fence (```json or bare) or be surrounded by
 *    chatter.
 *  - numbered lines: "1. ", "1) ", "(1) ", "1: ", "1 - ";
 *  - bullets: "- ", "* ", "+ ", "• ", "– ", "— ", "· ", "▪ ", "◦ ";
 *  - markdown headings ("## 1. Malu") each followed by its paragraph;
 *  - paragraphs led by bold ("**Malu** — ..."), or plain paragraphs / lines
 *    when nothing else is there.
 * Items may wrap across lines (continuation lines are joined with one
 * space); nested sub-bullets are folded into their parent item. Lines end
 * with LF, CRLF or CR.
 *
 * Each item is cleaned: markdown emphasis markers (** and __) and a
 * trailing lone colon go, blanks are collapsed and trimmed. A leading bold
 * phrase ("**Malu** — text", "**Malu:** text") or a short "Term: text" /
 * "Term — text" prefix (at most 6 words) becomes the title. Preamble and
 * epilogue chatter ("Sure! Here are...", "Berikut adalah...", "Ecco
 * alcuni...", "Let me know...", "Semoga membantu", "Spero ti sia utile")
 * is dropped. Items are deduplicated on their normalised title + text
 * (jiwa_textnorm.h: case, accents, punctuation and spacing do not count);
 * the first occurrence is kept.
 *
 * Caveats:
 *  - Bounded: at most max_input bytes are read (the rest is ignored), at
 *    most max_items items are returned, an item's text is cut (at a UTF-8
 *    boundary) to max_item_len bytes and its title to 256.
 *  - Linear time in the input: one line pass, a constant number of JSON
 *    attempts (jiwa_json_to_mp, bounded), a hash set for dedup.
 *  - Never fails on content: any bytes give a (possibly empty) list.
 *    Invalid UTF-8 is passed through as it is (cut only at sequence
 *    boundaries).
 *  - Thread-safe; no global state.
 */
#ifndef JIWA_LISTPARSE_H
#define JIWA_LISTPARSE_H

#include <stddef.h>

/** Defaults of jiwa_listparse_limits_t. */
#define JIWA_LIST_DEFAULT_MAX_INPUT (256u * 1024u)
#define JIWA_LIST_DEFAULT_MAX_ITEMS 256u
#define JIWA_LIST_DEFAULT_MAX_ITEM_LEN 4096u
/** Longest title kept, in bytes. */
#define JIWA_LIST_MAX_TITLE 256u

/** Bounds; zero fields take the defaults above. */
typedef struct {
  size_t max_input;    /**< bytes read from the input */
  size_t max_items;    /**< items returned */
  size_t max_item_len; /**< bytes of one item's text (>= 16 when set) */
} jiwa_listparse_limits_t;

/** Which shape the items came from. */
typedef enum {
  JIWA_LIST_NONE = 0,   /**< no item found */
  JIWA_LIST_JSON,       /**< a JSON value */
  JIWA_LIST_NUMBERED,   /**< numbered lines */
  JIWA_LIST_BULLETS,    /**< bulleted lines */
  JIWA_LIST_HEADINGS,   /**< markdown headings with their paragraphs */
  JIWA_LIST_BOLD,       /**< paragraphs led by a bold phrase */
  JIWA_LIST_PARAGRAPHS, /**< plain paragraphs or lines */
} jiwa_list_format_t;

/** One item. Strings are NUL-terminated, owned by the list. */
typedef struct {
  char *title;      /**< NULL when the item has none */
  size_t title_len; /**< 0 when @c title is NULL */
  char *text;       /**< never NULL, never empty */
  size_t text_len;
} jiwa_list_item_t;

/** A parsed list (free with jiwa_list_free()). */
typedef struct {
  jiwa_list_item_t *items;   /**< @c n items in input order */
  size_t n;
  jiwa_list_format_t format; /**< the shape that produced them */
  size_t duplicates;         /**< items dropped as duplicates */
  int truncated;             /**< 1 when a limit cut the input or items */
} jiwa_list_t;

/**
 * @brief Parse a model's list answer.
 * @param text the model output (untrusted bytes, need not be
 *             NUL-terminated; borrowed for the call). May be NULL when
 *             @p len is 0.
 * @param lim  bounds (NULL = defaults).
 * @param out  out: the new list (owned by the caller, jiwa_list_free());
 *             NULL on error. An input without items gives a list with
 *             n == 0 and format JIWA_LIST_NONE, not an error.
 * @return 0, JIWA_EINVAL (NULL @p out, NULL @p text with a non-zero @p len,
 *         a max_item_len below 16) or JIWA_ENOMEM.
 */
int jiwa_listparse(const char *text, size_t len,
                   const jiwa_listparse_limits_t *lim, jiwa_list_t **out);

/** @brief Free a list and its strings; NULL is a no-op. */
void jiwa_list_free(jiwa_list_t *list);

/** @brief "json", "numbered", ... for a format (static string). */
const char *jiwa_list_format_name(jiwa_list_format_t f);

#endif /* JIWA_LISTPARSE_H */
