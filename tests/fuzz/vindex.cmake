# Vector index image loader: arbitrary bytes -> jiwa_vindex_view -> searches.
set(JIWA_FUZZ_LIB_fuzz_vindex_load jiwa_vindex)
jiwa_add_fuzz(fuzz_vindex_load fuzz_vindex_load.c)
