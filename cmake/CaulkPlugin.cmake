# caulk_add_plugin(NAME SOURCES src... [LIBRARIES lib...] [INSTALL])
#
# Builds a caulk plugin: a MODULE library with hidden visibility (only the C descriptors and the
# registration entry point are exported, through CAULK_PLUGIN) linked against the engine, with
# caulk's build settings: C++20, and caulk::caulk's usage requirements (its sanitizer flags when
# caulk was built with them: Eigen must be configured alike on both sides, docs/writing-plugins.md).
# Inside the caulk tree the plugin lands in the folder the CLI searches; out of tree it lands in
# CMAKE_LIBRARY_OUTPUT_DIRECTORY or the project's build folder (pass that folder to
# `caulk --plugin-path`, CAULK_PLUGIN_PATH or a pipeline's `plugins`), and `INSTALL` installs it
# into the plugin folder of the caulk it was built against (CAULK_PLUGIN_INSTALL_DIR).
#
# Out of tree, including this file (find_package(caulk) does) makes Release the build type when the
# project chose none: a node built without optimisation ran 16 times slower.
if(NOT CMAKE_BUILD_TYPE AND NOT CMAKE_CONFIGURATION_TYPES)
  set(CMAKE_BUILD_TYPE Release CACHE STRING "Build type (caulk plugins default to Release)" FORCE)
endif()

function(caulk_add_plugin name)
  cmake_parse_arguments(ARG "INSTALL" "" "SOURCES;LIBRARIES" ${ARGN})
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "caulk_add_plugin(${name}) needs SOURCES")
  endif()
  add_library(${name} MODULE ${ARG_SOURCES})
  if(TARGET caulk)
    target_link_libraries(${name} PRIVATE caulk ${ARG_LIBRARIES})
  else()
    target_link_libraries(${name} PRIVATE caulk::caulk ${ARG_LIBRARIES})
    # The plugin tells the engine how it was built (caulk/plugin.hpp); say it here as well.
    if(CMAKE_BUILD_TYPE MATCHES "^(Debug|None)$")
      message(STATUS "caulk: plugin '${name}' is built as ${CMAKE_BUILD_TYPE}, without optimisation: its nodes may "
                     "run many times slower (configure with -DCMAKE_BUILD_TYPE=Release)")
    endif()
  endif()
  set_target_properties(${name} PROPERTIES
    PREFIX ""
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    CXX_STANDARD 20
    CXX_STANDARD_REQUIRED ON
    # Installed beside caulk's own plugins (<prefix>/lib/caulk/plugins), it finds libcaulk two up.
    INSTALL_RPATH "$ORIGIN/../..")
  # Undefined symbols are an error at link time, not a surprise at load time (except in sanitized
  # builds: clang links the sanitizer runtime into the executable, not into libraries).
  if(NOT CAULK_SANITIZE)
    target_link_options(${name} PRIVATE "LINKER:--no-undefined")
  endif()
  if(DEFINED CAULK_PLUGIN_OUTPUT_DIR)
    set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY "${CAULK_PLUGIN_OUTPUT_DIR}")
  endif()
  if(ARG_INSTALL)
    if(DEFINED CAULK_PLUGIN_INSTALL_DIR)
      install(TARGETS ${name} LIBRARY DESTINATION "${CAULK_PLUGIN_INSTALL_DIR}")
    else()
      install(TARGETS ${name} LIBRARY DESTINATION "${CAULK_PLUGIN_SUBDIR}")
    endif()
  endif()
endfunction()
