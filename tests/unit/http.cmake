jiwa_add_unit(test_http jiwa_http)
