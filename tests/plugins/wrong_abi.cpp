// A plugin built for another ABI version: the engine must refuse it before touching C++ types.
#include "caulk/plugin.hpp"

extern "C" __attribute__((visibility("default")))
const caulk_plugin_descriptor caulk_plugin_descriptor_v = {999u, "wrong_abi", "1.0", "built against a future caulk", "9.9.9"};
extern "C" __attribute__((visibility("default"))) void caulk_plugin_register(void*) {
  // Never called: the ABI check comes first.
  __builtin_trap();
}
