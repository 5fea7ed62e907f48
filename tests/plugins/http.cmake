# HTTP through the host table, tested with the plugin harness.
jiwa_add_test_plugin(tp_http src/tp_http.c)
jiwa_add_plugin_test(test_http_plugin)
add_dependencies(test_http_plugin tp_http)
