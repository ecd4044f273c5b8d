# Warnings for the project's own targets (not for third-party consumers of the package).
function(caulk_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wno-unused-parameter)
endfunction()
