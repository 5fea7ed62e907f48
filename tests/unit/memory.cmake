# JIWA memory building blocks (runtime/memory): profile validator, merge,
# heuristic extractor, shadow comparison.
jiwa_add_unit(test_mem_profile jiwa_memory)
jiwa_add_unit(test_mem_merge jiwa_memory)
jiwa_add_unit(test_mem_heuristic jiwa_memory)
jiwa_add_unit(test_mem_compare jiwa_memory)
