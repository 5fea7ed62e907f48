# The store's value envelope decoder and the write path's validation.
set(JIWA_FUZZ_LIB_fuzz_store_value jiwa_store)
jiwa_add_fuzz(fuzz_store_value fuzz_store_value.c)
