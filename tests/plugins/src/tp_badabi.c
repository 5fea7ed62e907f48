/* Claims ABI major 99: the loader must refuse it before calling anything. */
#include <jiwa/plugin.h>
#include <stdlib.h>

JIWA_PLUGIN_EXPORT extern const uint32_t jiwa_plugin_abi_v1[3];
JIWA_PLUGIN_EXPORT const uint32_t jiwa_plugin_abi_v1[3] = {
    99, 0, (uint32_t)sizeof(jiwa_plugin_desc_t)};

JIWA_PLUGIN_EXPORT const jiwa_plugin_desc_t *
jiwa_plugin_entry_v1(const jiwa_host_t *host);
JIWA_PLUGIN_EXPORT const jiwa_plugin_desc_t *
jiwa_plugin_entry_v1(const jiwa_host_t *host) {
  abort(); /* must never be called */
}
