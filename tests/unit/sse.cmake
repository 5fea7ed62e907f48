jiwa_add_unit(test_sse jiwa_sdk)
