/**
 * @file jiwa_facts.h
 * @brief The fact check of the tone adapter: does a rewrite keep the facts?
 *
 * A secondary model may rewrite the main model's answer to sound warmer.
 * It must not change what the answer says. This check extracts the facts
 * a business answer lives on from both texts and compares them:
 *  - numbers, with the thousands separators of en/id/it ("5.000.000",
 *    "5,000,000") and decimal points or commas ("1,5 juta"), scaled by
 *    multiplier words (ribu/rb/k/thousand/mila, juta/jt/million/milioni,
 *    miliar/billion/miliardi), so "Rp 5 juta" = "IDR 5,000,000";
 *  - what a number measures, when a word says so within the next three
 *    words: a currency (Rp/IDR/rupiah, $/USD/dollar, €/EUR/euro), a
 *    percentage (%, percent, persen, per cento), a duration unit (hours,
 *    days, weeks, months, years in the three languages), so "30 days" ≠
 *    "30 months" and "10%" ≠ "10";
 *  - document names: a fixed list (KITAS, KITAP, VOA, NPWP, NIB, PT PMA,
 *    RPTKA, IMTA, SKCK, BPJS, passport/paspor/passaporto, ...) plus any
 *    word mixing letters and digits ("B211A", "E33G", "C312") as a set:
 *    one dropped or added is a change;
 *  - negations (not, no, never, without, n't; tidak, tak, bukan, jangan,
 *    belum, nggak, tanpa; non, mai, nessuno, senza, ...) as a count,
 *    after removing reassurance idioms that carry no fact ("no worries",
 *    "tidak apa-apa", "jangan khawatir", "non preoccuparti", ...).
 * Numbers and measured values are compared as multisets; order and
 * repetition of document names do not matter. Matching is on lower-cased
 * words; non-ASCII bytes are kept as word characters. The check is lexical
 * and deliberately strict: spelling a number out ("thirty days") counts as
 * a change, and the caller then keeps the original answer.
 */
#ifndef JIWA_FACTS_H
#define JIWA_FACTS_H

#include <stddef.h>

/** Longest text compared (bytes); longer input is an error. */
#define JIWA_FACTS_MAX_TEXT (256u * 1024u)

/**
 * @brief Compare the facts of @p orig and @p rewrite.
 * @param why,whylen  out: on 1, the first difference found, for a log line
 *        ("number 30 (days) is missing from the rewrite", "negations: 1 in
 *        the original, 0 in the rewrite"); "" otherwise. May be NULL/0.
 * @return 0 (every fact kept), 1 (a fact changed), JIWA_EINVAL (NULL
 *         text or longer than JIWA_FACTS_MAX_TEXT), JIWA_ENOMEM.
 */
int jiwa_facts_compare(const char *orig, size_t olen, const char *rewrite,
                       size_t rlen, char *why, size_t whylen);

#endif
