# The caulk CMake package, for third-party plugins (cmake/caulkConfig.cmake.in says what it gives):
#   - in the build tree: build/caulkConfig.cmake, its version file and build/caulkTargets.cmake,
#     so a plugin configures against a checkout with -Dcaulk_DIR=<checkout>/build, no install;
#   - in the install tree: <prefix>/lib/cmake/caulk/, with the headers, libcaulk, the CLI and plugins.
# Both export the same targets (the export set caulkTargets, namespace caulk::): libcaulk, the CLI,
# caulk_blas, and every library of libs/ (the global property CAULK_LIBRARIES, which libs/ appends
# its targets to; each sets EXPORT_NAME, and its headers are installed from <its folder>/include).
# Included last, after every target is defined.
include(CMakePackageConfigHelpers)

install(TARGETS caulk EXPORT caulkTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY framework/include/caulk DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} FILES_MATCHING PATTERN "*.hpp")
install(FILES "${PROJECT_BINARY_DIR}/generated/include/caulk/version.hpp" DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/caulk)
if(TARGET caulk_cli)
  set_target_properties(caulk_cli PROPERTIES EXPORT_NAME cli)
  install(TARGETS caulk_cli EXPORT caulkTargets RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
# OpenBLAS and LAPACKE as one target, which libraries of libs/ link.
set_target_properties(caulk_blas PROPERTIES EXPORT_NAME blas)
install(TARGETS caulk_blas EXPORT caulkTargets)

get_property(caulk_exported_libraries GLOBAL PROPERTY CAULK_LIBRARIES)
foreach(library IN LISTS caulk_exported_libraries)
  install(TARGETS ${library} EXPORT caulkTargets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
    INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  get_target_property(library_dir ${library} SOURCE_DIR)
  if(IS_DIRECTORY "${library_dir}/include")
    install(DIRECTORY "${library_dir}/include/" DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} FILES_MATCHING PATTERN "*.hpp")
  endif()
endforeach()

install(EXPORT caulkTargets NAMESPACE caulk:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/caulk)
export(EXPORT caulkTargets NAMESPACE caulk:: FILE "${PROJECT_BINARY_DIR}/caulkTargets.cmake")

write_basic_package_version_file("${PROJECT_BINARY_DIR}/caulkConfigVersion.cmake" COMPATIBILITY SameMinorVersion)

# The build tree's config: paths relative to the build folder, caulk_add_plugin from the sources.
set(CAULK_CONFIG_PLUGIN_MODULE "${PROJECT_SOURCE_DIR}/cmake/CaulkPlugin.cmake")
configure_package_config_file(cmake/caulkConfig.cmake.in "${PROJECT_BINARY_DIR}/caulkConfig.cmake"
  INSTALL_DESTINATION "."
  INSTALL_PREFIX "${PROJECT_BINARY_DIR}"
  PATH_VARS CAULK_PLUGIN_SUBDIR)

# The install tree's config: paths relative to <prefix>/lib/cmake/caulk, caulk_add_plugin beside it.
set(CAULK_CONFIG_PLUGIN_MODULE "\${CMAKE_CURRENT_LIST_DIR}/CaulkPlugin.cmake")
configure_package_config_file(cmake/caulkConfig.cmake.in "${PROJECT_BINARY_DIR}/package/install/caulkConfig.cmake"
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/caulk
  PATH_VARS CAULK_PLUGIN_SUBDIR)
install(FILES "${PROJECT_BINARY_DIR}/package/install/caulkConfig.cmake" "${PROJECT_BINARY_DIR}/caulkConfigVersion.cmake"
  cmake/CaulkPlugin.cmake DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/caulk)
