# Installs the report's charting JavaScript (the versions package-lock.json pins) with `npm ci`
# into WORK, then copies the minified builds, their versions and licences into OUT.
# Never fails the build: without npm or the registry, report.html is written without charts
# and says so (docs/report.md).
# Usage: cmake -DNPM=... -DSOURCE=... -DWORK=... -DOUT=... -P install_js.cmake
file(MAKE_DIRECTORY "${WORK}")
file(COPY "${SOURCE}/package.json" "${SOURCE}/package-lock.json" DESTINATION "${WORK}")
execute_process(
  COMMAND "${NPM}" ci --ignore-scripts --no-audit --no-fund --loglevel=error --fetch-retries=1 --fetch-timeout=60000
  WORKING_DIRECTORY "${WORK}"
  RESULT_VARIABLE npm_result
  OUTPUT_VARIABLE npm_output
  ERROR_VARIABLE npm_output
  TIMEOUT 600)
set(modules "${WORK}/node_modules")
set(files vega/build/vega.min.js vega-lite/build/vega-lite.min.js vega-embed/build/vega-embed.min.js)
if(NOT npm_result EQUAL 0)
  message(WARNING "npm ci failed (${npm_result}); report.html will have no charts until the next build succeeds:\n${npm_output}")
  return()
endif()
foreach(f ${files})
  if(NOT EXISTS "${modules}/${f}")
    message(WARNING "npm ci did not install ${f}; report.html will have no charts")
    return()
  endif()
endforeach()

file(MAKE_DIRECTORY "${OUT}")
set(versions "")
foreach(package vega vega-lite vega-embed)
  file(READ "${modules}/${package}/package.json" manifest)
  string(JSON version GET "${manifest}" version)
  list(APPEND versions "${package} ${version}")
endforeach()
list(JOIN versions ", " versions)

# The licences of every package npm installed: the minified builds bundle their dependencies.
file(GLOB package_dirs LIST_DIRECTORIES true "${modules}/*" "${modules}/@*/*")
list(SORT package_dirs)
set(licences "")
foreach(dir ${package_dirs})
  if(NOT EXISTS "${dir}/package.json")
    continue()
  endif()
  file(GLOB licence_files "${dir}/LICENSE*" "${dir}/LICENCE*" "${dir}/license*")
  file(RELATIVE_PATH name "${modules}" "${dir}")
  foreach(lf ${licence_files})
    file(READ "${lf}" text)
    string(APPEND licences "==== ${name} ====\n${text}\n")
  endforeach()
endforeach()

# Each file written beside its final name and renamed, so a reader never sees half a file.
foreach(f ${files})
  get_filename_component(name "${f}" NAME)
  file(COPY_FILE "${modules}/${f}" "${OUT}/${name}.tmp")
  file(RENAME "${OUT}/${name}.tmp" "${OUT}/${name}")
endforeach()
file(WRITE "${OUT}/versions.txt.tmp" "${versions}\n")
file(RENAME "${OUT}/versions.txt.tmp" "${OUT}/versions.txt")
file(WRITE "${OUT}/LICENSES.txt.tmp" "${licences}")
file(RENAME "${OUT}/LICENSES.txt.tmp" "${OUT}/LICENSES.txt")
file(WRITE "${OUT}/.stamp" "${versions}\n")
message(STATUS "report charts: ${versions} in ${OUT}")
