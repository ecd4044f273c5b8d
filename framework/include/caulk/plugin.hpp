// Writing a plugin: include this header and define the registration entry point with CAULK_PLUGIN.
//
//   CAULK_PLUGIN("myplugin", "1.0.0", "What my nodes do") {
//     registrar.add_node<MyNode>();
//   }
//
// The macro exports two symbols and nothing else (build with hidden visibility; caulk_add_plugin
// does): a plain C descriptor that the engine reads and checks before it touches any C++ type of
// the plugin, and the registration entry point.
#pragma once
#include <cstdint>

#include "caulk/registry.hpp"
#include "caulk/version.hpp"

// Bumped whenever a change to the framework's headers breaks plugins built against older ones
// (2: NodeSpec::runs_last).
#define CAULK_ABI_VERSION 2u

extern "C" {
struct caulk_plugin_descriptor {
  std::uint32_t abi_version;  // CAULK_ABI_VERSION the plugin was built against
  const char* name;
  const char* version;
  const char* summary;
  const char* framework_version;  // caulk version the plugin was built against
};
}

#define CAULK_PLUGIN_DESCRIPTOR_SYMBOL "caulk_plugin_descriptor_v"
#define CAULK_PLUGIN_ENTRY_SYMBOL "caulk_plugin_register"

#define CAULK_PLUGIN(NAME, VERSION, SUMMARY)                                                  \
  extern "C" __attribute__((visibility("default"))) const caulk_plugin_descriptor           \
      caulk_plugin_descriptor_v = {CAULK_ABI_VERSION, NAME, VERSION, SUMMARY,                 \
                                   CAULK_VERSION_STRING};                                     \
  static void caulk_plugin_register_nodes(caulk::PluginRegistrar& registrar);                \
  extern "C" __attribute__((visibility("default"))) void caulk_plugin_register(void* registrar) { \
    caulk_plugin_register_nodes(*static_cast<caulk::PluginRegistrar*>(registrar));            \
  }                                                                                           \
  static void caulk_plugin_register_nodes([[maybe_unused]] caulk::PluginRegistrar& registrar)
