set(JIWA_FUZZ_LIB_fuzz_sse jiwa_sdk)
jiwa_add_fuzz(fuzz_sse fuzz_sse.c)
