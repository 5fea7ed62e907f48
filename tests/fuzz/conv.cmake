# The conversation log's record parser/packer and time parsing
# (plugins/convlog/conv_record.h, conv_util.h), header-only in the plugin.
set(JIWA_FUZZ_LIB_fuzz_conv jiwa_sdk)
jiwa_add_fuzz(fuzz_conv fuzz_conv.c)
target_include_directories(fuzz_conv PRIVATE ${CMAKE_SOURCE_DIR}/plugins/convlog)
