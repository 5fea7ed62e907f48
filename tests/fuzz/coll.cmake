# Collection record and image decoders (runtime/store/jiwa_coll.c).
set(JIWA_FUZZ_LIB_fuzz_coll jiwa_coll)
jiwa_add_fuzz(fuzz_coll fuzz_coll.c)
