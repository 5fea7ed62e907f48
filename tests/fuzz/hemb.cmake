# The http embedder's response parser (runtime/text/jiwa_embed_http.c).
set(JIWA_FUZZ_LIB_fuzz_embed_http jiwa_text)
jiwa_add_fuzz(fuzz_embed_http fuzz_embed_http.c)
