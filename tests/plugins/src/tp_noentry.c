/* Has the ABI stamp but no entry point. */
#include <jiwa/plugin.h>

JIWA_PLUGIN_EXPORT extern const uint32_t jiwa_plugin_abi_v1[3];
JIWA_PLUGIN_EXPORT const uint32_t jiwa_plugin_abi_v1[3] = {
    JIWA_ABI_MAJOR, JIWA_ABI_MINOR, (uint32_t)sizeof(jiwa_plugin_desc_t)};
