# The store through the host table (ABI 1.2), tested with the plugin harness.
jiwa_add_test_plugin(tp_store src/tp_store.c)
jiwa_add_plugin_test(test_coll_plugin)
add_dependencies(test_coll_plugin tp_store)
