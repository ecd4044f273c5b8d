// Writing a plugin: include this header and define the registration entry point with CAULK_PLUGIN.
//
//   CAULK_PLUGIN("myplugin", "1.0.0", "What my nodes do") {
//     registrar.add_node<MyNode>();
//   }
//
// The macro exports three symbols and nothing else (build with hidden visibility; caulk_add_plugin
// does): a plain C descriptor that the engine reads and checks before it touches any C++ type of
// the plugin, how the plugin was compiled (checked next), and the registration entry point.
#pragma once
#include <Eigen/Core>

#include <cstdint>

#include "caulk/registry.hpp"
#include "caulk/version.hpp"

// Bumped whenever a change to the framework's headers breaks plugins built against older ones
// (2: NodeSpec::runs_last; 3: NodeType::run_unit and the UnitContext of run_units replace unit
// functions registered by name; 4: NodeSpec::cacheable; 5: NodeSpec::data_check; 6:
// CheckpointRef::module and feature_method; 7: run observers replace NodeSpec::runs_last; 8:
// ObserverContext::record).
#define CAULK_ABI_VERSION 8u

extern "C" {
struct caulk_plugin_descriptor {
  std::uint32_t abi_version;  // CAULK_ABI_VERSION the plugin was built against
  const char* name;
  const char* version;
  const char* summary;
  const char* framework_version;  // caulk version the plugin was built against
};
}

// How the plugin was compiled, as the engine checks it after the descriptor. Optional (a plugin
// without it loads unchecked) and able to grow: `size` says how much of it the plugin has.
extern "C" {
struct caulk_plugin_build {
  std::uint32_t size;       // sizeof(caulk_plugin_build) in the plugin's headers
  std::uint32_t optimized;  // 1 when compiled with optimisation (__OPTIMIZE__)
  // Eigen's allocation settings: matrices allocated on one side of the plugin boundary are freed on
  // the other, so they must match libcaulk's (AddressSanitizer and -march flags change them).
  std::uint32_t eigen_max_align_bytes;         // EIGEN_MAX_ALIGN_BYTES
  std::uint32_t eigen_malloc_already_aligned;  // EIGEN_MALLOC_ALREADY_ALIGNED
};
}

#ifdef __OPTIMIZE__
#define CAULK_BUILD_OPTIMIZED 1u
#else
#define CAULK_BUILD_OPTIMIZED 0u
#endif
// The values of the translation unit that expands it (a macro, so each side reports its own).
#define CAULK_PLUGIN_BUILD_INFO                                                                                                       \
  {                                                                                                                                   \
    static_cast<std::uint32_t>(sizeof(caulk_plugin_build)), CAULK_BUILD_OPTIMIZED, static_cast<std::uint32_t>(EIGEN_MAX_ALIGN_BYTES), \
        static_cast<std::uint32_t>(EIGEN_MALLOC_ALREADY_ALIGNED)                                                                      \
  }

#define CAULK_PLUGIN_DESCRIPTOR_SYMBOL "caulk_plugin_descriptor_v"
#define CAULK_PLUGIN_BUILD_SYMBOL "caulk_plugin_build_v"
#define CAULK_PLUGIN_ENTRY_SYMBOL "caulk_plugin_register"

#define CAULK_PLUGIN(NAME, VERSION, SUMMARY)                                                                                   \
  extern "C" __attribute__((visibility("default")))                                                                            \
  const caulk_plugin_descriptor caulk_plugin_descriptor_v = {CAULK_ABI_VERSION, NAME, VERSION, SUMMARY, CAULK_VERSION_STRING}; \
  extern "C" __attribute__((visibility("default"))) const caulk_plugin_build caulk_plugin_build_v = CAULK_PLUGIN_BUILD_INFO;   \
  static void caulk_plugin_register_nodes(caulk::PluginRegistrar& registrar);                                                  \
  extern "C" __attribute__((visibility("default"))) void caulk_plugin_register(void* registrar) {                              \
    caulk_plugin_register_nodes(*static_cast<caulk::PluginRegistrar*>(registrar));                                             \
  }                                                                                                                            \
  static void caulk_plugin_register_nodes([[maybe_unused]] caulk::PluginRegistrar& registrar)
