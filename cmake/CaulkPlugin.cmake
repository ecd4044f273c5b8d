# caulk_add_plugin(NAME SOURCES src...)
#
# Builds a caulk plugin: a MODULE library with hidden visibility (only the C descriptor and the
# registration entry point are exported, through CAULK_PLUGIN) linked against the engine.
# Inside the caulk tree the plugin lands in the folder the CLI searches; out of tree it lands in
# CMAKE_LIBRARY_OUTPUT_DIRECTORY (pass that folder to `caulk --plugin-path` or CAULK_PLUGIN_PATH),
# and `INSTALL` installs it into the installed caulk's plugin folder.
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
  endif()
  set_target_properties(${name} PROPERTIES
    PREFIX ""
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    CXX_STANDARD 20
    CXX_STANDARD_REQUIRED ON
    # Installed beside caulk's own plugins (<prefix>/lib/caulk/plugins), it finds libcaulk two up.
    INSTALL_RPATH "$ORIGIN/../..")
  # Undefined symbols are an error at link time, not a surprise at load time (except in caulk's
  # own sanitized builds, whose runtime lives in the executable).
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
