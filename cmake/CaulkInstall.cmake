# Installs the engine, its headers, the CLI, the plugins and a CMake package for third-party plugins.
include(CMakePackageConfigHelpers)
install(TARGETS caulk EXPORT caulkTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY framework/include/caulk DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} FILES_MATCHING PATTERN "*.hpp")
install(FILES "${PROJECT_BINARY_DIR}/generated/include/caulk/version.hpp" DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/caulk)
if(TARGET caulk_cli)
  install(TARGETS caulk_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
install(EXPORT caulkTargets NAMESPACE caulk:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/caulk)
configure_package_config_file(cmake/caulkConfig.cmake.in
  "${PROJECT_BINARY_DIR}/caulkConfig.cmake"
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/caulk
  PATH_VARS CAULK_PLUGIN_SUBDIR)
write_basic_package_version_file("${PROJECT_BINARY_DIR}/caulkConfigVersion.cmake"
  COMPATIBILITY SameMinorVersion)
install(FILES "${PROJECT_BINARY_DIR}/caulkConfig.cmake" "${PROJECT_BINARY_DIR}/caulkConfigVersion.cmake"
  cmake/CaulkPlugin.cmake DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/caulk)
