# A shared library beside libcaulk that caulk opens with dlopen only when it is needed (a model
# family, the image decoder: docs/architecture.md), built the one way: the project's warnings,
# every symbol resolved at link time (the loader would otherwise say so only when a user's run
# opens it), found beside libcaulk through $ORIGIN, installed with it.
#   caulk_add_loadable_library(NAME [HIDDEN] SOURCES file...)
# HIDDEN exports only what the sources mark visible (the extern "C" entry points dlsym looks up).
function(caulk_add_loadable_library name)
  cmake_parse_arguments(ARG "HIDDEN" "" "SOURCES" ${ARGN})
  add_library(${name} SHARED ${ARG_SOURCES})
  if(ARG_HIDDEN)
    set_target_properties(${name} PROPERTIES CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
  endif()
  set_target_properties(${name} PROPERTIES INSTALL_RPATH "$ORIGIN")
  caulk_warnings(${name})
  # Under the sanitizers the runtime's symbols are resolved at load time.
  if(NOT CAULK_SANITIZE)
    target_link_options(${name} PRIVATE "LINKER:--no-undefined")
  endif()
  install(TARGETS ${name} LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
endfunction()
