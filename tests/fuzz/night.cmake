# The classifier's reading of untrusted model output.
set(JIWA_FUZZ_LIB_fuzz_classify jiwa_classify)
jiwa_add_fuzz(fuzz_classify fuzz_classify.c)
