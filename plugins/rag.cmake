# The cultural RAG and the golden cache (issue 7): both link the text
# library (normaliser, language detection, false-hit guard) and the
# knowledge line parser, statically (PIC).
jiwa_add_plugin(cultural_rag cultural_rag/cultural_rag.c)
target_link_libraries(cultural_rag PRIVATE jiwa_knowledge jiwa_text)
jiwa_add_plugin(golden_cache golden_cache/golden_cache.c)
target_link_libraries(golden_cache PRIVATE jiwa_knowledge jiwa_text)
