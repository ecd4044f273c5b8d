#include "reports/algorithms/chart_library.hpp"

#include <dlfcn.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "reports/algorithms/html_text.hpp"

namespace fs = std::filesystem;

namespace caulk::report {

namespace {

// Inline scripts must not close their element, and a source-map comment would make a browser's
// developer tools look for a file that is not there.
std::string ready_to_inline(std::string js) {
  for (std::size_t at = js.find("</script"); at != std::string::npos; at = js.find("</script", at + 2)) js.replace(at, 2, "<\\/");
  for (std::size_t at = js.find("//# sourceMappingURL="); at != std::string::npos; at = js.find("//# sourceMappingURL=", at)) {
    std::size_t end = js.find('\n', at);
    js.erase(at, end == std::string::npos ? std::string::npos : end - at);
  }
  return js;
}

}  // namespace

ChartLibrary load_chart_library(const fs::path& folder) {
  ChartLibrary lib;
  lib.folder = folder;
  struct File {
    const char* name;
    std::string* into;
  } files[] = {{"vega.min.js", &lib.vega}, {"vega-lite.min.js", &lib.vega_lite}, {"vega-embed.min.js", &lib.vega_embed}};
  for (const auto& f : files) {
    if (!read_file_bytes(folder / f.name, *f.into) || f.into->empty()) {
      lib.problem = "the charting JavaScript is missing (" + (folder / f.name).string() +
                    "): this caulk was built without npm, so charts cannot be drawn";
      lib.vega.clear();
      lib.vega_lite.clear();
      lib.vega_embed.clear();
      return lib;
    }
    *f.into = ready_to_inline(std::move(*f.into));
  }
  if (read_file_bytes(folder / "versions.txt", lib.versions))
    while (!lib.versions.empty() && (lib.versions.back() == '\n' || lib.versions.back() == '\r')) lib.versions.pop_back();
  if (lib.versions.empty()) lib.versions = "vega, vega-lite, vega-embed";
  read_file_bytes(folder / "LICENSES.txt", lib.licenses);
  return lib;
}

fs::path default_chart_library_folder() {
  if (const char* env = std::getenv("CAULK_REPORT_JS"); env && *env) return env;
  Dl_info info{};
  if (::dladdr(reinterpret_cast<void*>(&default_chart_library_folder), &info) && info.dli_fname) {
    // <prefix>/lib/caulk/plugins/reports.so -> <prefix>/share/caulk/report-js
    const fs::path library = fs::absolute(info.dli_fname);
    return (library.parent_path() / CAULK_REPORT_JS_FROM_PLUGINS).lexically_normal();
  }
  return CAULK_REPORT_JS_FROM_PLUGINS;
}

}  // namespace caulk::report
