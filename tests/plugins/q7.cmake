# Retrieval quality of cultural_rag and the golden cache's false-hit guard
# on the labelled sets of tests/data/rag (issue 7), through the harness.
jiwa_add_plugin_test(test_rag_quality)
add_dependencies(test_rag_quality cultural_rag golden_cache)
