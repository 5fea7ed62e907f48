# The knowledge JSONL line parser (runtime/store/jiwa_knowledge.c): seed
# files, rag.import, golden.import/add, knowledge.import.
set(JIWA_FUZZ_LIB_fuzz_knowledge jiwa_knowledge)
jiwa_add_fuzz(fuzz_knowledge fuzz_knowledge.c)
