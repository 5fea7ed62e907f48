# mockllm: fuzz its request-head and fault-spec parsers.
set(JIWA_FUZZ_LIB_fuzz_mock_http mockllm_core)
jiwa_add_fuzz(fuzz_mock_http fuzz_mock_http.c)
