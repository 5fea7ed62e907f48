/**
 * @file jiwa_heuristic.h
 * @brief The enricher's fallback when the secondary model is down: what can
 *        be read from the conversation without a model, in EN/ID/IT.
 *
 * Only the user's turns are read (the assistant repeats the user's topics:
 * "your KITAS" says nothing about the user). Word patterns, lower-cased
 * ASCII matching, no model:
 *  - name: "my name is / call me", "nama saya / namaku / saya bernama /
 *    panggil saya", "mi chiamo / il mio nome è" + one or two words that are
 *    not function or emotion words (capitalised in the output);
 *  - emotion: the last emotion word of the user (worried, confused,
 *    malu, takut, khawatir, bingung, senang, preoccupato, ... — the
 *    synonyms of jiwa_emotion_from_word) not negated by one of the two
 *    words before it ("not", "tidak", "jangan", "non"...); intensity 0.5,
 *    0.8 with an intensifier ("very", "banget", "sangat", "molto"), 0.3
 *    with a softener ("a bit", "agak", "un po'"); thanks alone give
 *    grateful at 0.3;
 *  - business: PT PMA, villa, warung, restaurant/restoran/ristorante, cafe,
 *    homestay, guesthouse, hotel, surf school (scuola di surf), dive
 *    centre, yoga studio,
 *    coworking, shop/toko/negozio (key "business", mentions joined);
 *  - visa: KITAS, KITAP, VOA / visa on arrival, codes like B211A, C312,
 *    E33G, and golden / retirement / investor / second home / digital
 *    nomad / social / tourist visa (key "visa_status");
 *  - family: wife/istri/moglie, husband/suami/marito, partner, children
 *    (kids, anak, figli, bambini...) with a count when a number or number
 *    word comes before ("2 kids", "dua anak", "due figli") (key "family");
 *  - location: "I live in / tinggal di / abito a / vivo a" + a known place
 *    (Bali, Canggu, Ubud, Jakarta...) (key "location");
 *  - goals: "I want to / I plan to / my dream is / saya ingin / mau /
 *    vorrei / il mio sogno è" + an action verb (open, start, buy, move,
 *    retire, buka, beli, pindah, aprire, comprare, trasferirmi...) and the
 *    words after it up to the end of the clause (at most 12 words);
 *  - cultural signals: malu, sungkan, insya Allah (religious_observance),
 *    pak/bu (honorifics), jam karet, gotong royong, puasa/lebaran
 *    (ramadan), nyepi/galungan (balinese_ceremony), halal, adat;
 *  - language: jiwa_lang_detect over the user's text (kept when its
 *    confidence is >= 0.6); register: casual markers (gue, nggak, banget,
 *    dong, hey, lol, wanna, ciao...) against formal ones (saya, Anda,
 *    mohon, Bapak, dear, kindly, regards, Lei, gentile, potrebbe...).
 * The result is a jiwa_profile_t with source = heuristic and confidence
 * JIWA_PROFILE_HEURISTIC_CONF (0.4), merged like a model profile (the
 * memory's replace rule keeps a weak guess from overwriting a model fact).
 *
 * Caveats: lexical and deliberately narrow — it misses much and can be
 * wrong ("villa" may be where the user stays, not a business); it never
 * sets trust. Thread-safe; allocates one scratch buffer per call.
 */
#ifndef JIWA_HEURISTIC_H
#define JIWA_HEURISTIC_H

#include <stddef.h>

#include "jiwa_profile.h"

/** Bytes of each turn looked at (more is ignored). */
#define JIWA_HEURISTIC_MAX_TURN (16u * 1024u)

/**
 * @brief Extract a profile from a conversation without a model.
 * @param roles  role of each turn ("user", "assistant"...; NULL = all
 *               "user"); only turns whose role is "user" (case-insensitive)
 *               or NULL are read.
 * @param texts,lens the turns (lens NULL = NUL-terminated; texts[i] NULL
 *               only with length 0); borrowed for the call.
 * @param out    filled in (zeroed first); out->present is 0 when nothing
 *               was found.
 * @return 0, JIWA_EINVAL (NULL @p out, @p n > 0 with NULL @p texts, NULL
 *         text with a non-zero length), JIWA_ENOMEM.
 */
int jiwa_heuristic_extract(const char *const *roles, const char *const *texts,
                           const size_t *lens, size_t n, jiwa_profile_t *out);

#endif /* JIWA_HEURISTIC_H */
