# JIWA memory building blocks (runtime/memory): the model-output validator,
# the memory decoder/merge, the shadow comparison.
set(JIWA_FUZZ_LIB_fuzz_mem_profile jiwa_memory)
jiwa_add_fuzz(fuzz_mem_profile fuzz_mem_profile.c)
set(JIWA_FUZZ_LIB_fuzz_mem_merge jiwa_memory)
jiwa_add_fuzz(fuzz_mem_merge fuzz_mem_merge.c)
set(JIWA_FUZZ_LIB_fuzz_mem_compare jiwa_memory)
jiwa_add_fuzz(fuzz_mem_compare fuzz_mem_compare.c)
