# cultural_rag and golden_cache through the plugin harness (private store,
# "cultural" / "golden" collections with the hash embedder, dim 512).
jiwa_add_plugin_test(test_cultural_rag)
add_dependencies(test_cultural_rag cultural_rag)
jiwa_add_plugin_test(test_golden_cache)
add_dependencies(test_golden_cache golden_cache)
# the knowledge line parser is checked in test_cultural_rag too
target_link_libraries(test_cultural_rag PRIVATE jiwa_knowledge)
