# Text area: detection + hash embedding of arbitrary bytes.
set(JIWA_FUZZ_LIB_fuzz_text jiwa_text)
jiwa_add_fuzz(fuzz_text fuzz_text.c)
