#include "reports/algorithms/chart_library.hpp"

#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "reports/algorithms/html_text.hpp"

namespace fs = std::filesystem;

namespace caulk::report {

InlineScript::InlineScript(std::string text) : text_(std::make_shared<const std::string>(std::move(text))) {
  if (!text_->empty()) pieces_.push_back(*text_);
}

InlineScript InlineScript::from_file(const fs::path& path) {
  // An inline script must not close its element, and a source-map comment would make a browser's
  // developer tools look for a file that is not there.
  static constexpr std::string_view kClose = "</script", kEscapedStart = "<\\/", kSourceMap = "//# sourceMappingURL=";
  InlineScript s;
  s.file_ = io::MappedFile::open(path);
  const std::string_view all(reinterpret_cast<const char*>(s.file_->data()), s.file_->size());
  std::size_t from = 0, close = all.find(kClose), map = all.find(kSourceMap);
  for (;;) {
    // Each searched for again only once passed: the text is scanned once, not once per tag.
    if (close < from) close = all.find(kClose, from);
    if (map < from) map = all.find(kSourceMap, from);
    const std::size_t at = std::min(close, map);
    if (at == std::string_view::npos) break;
    if (at > from) s.pieces_.push_back(all.substr(from, at - from));
    if (at == close) {
      s.pieces_.push_back(kEscapedStart);  // "</" becomes "<\/"
      from = at + 2;
    } else {
      const std::size_t end = all.find('\n', at);
      from = end == std::string_view::npos ? all.size() : end;  // the comment, up to its line's end
    }
  }
  if (from < all.size()) s.pieces_.push_back(all.substr(from));
  s.file_->check_intact();
  return s;
}

std::size_t InlineScript::size() const {
  std::size_t n = 0;
  for (const auto& p : pieces_) n += p.size();
  return n;
}

void InlineScript::check_intact() const {
  if (file_) file_->check_intact();
}

ChartLibrary load_chart_library(const fs::path& folder) {
  ChartLibrary lib;
  lib.folder = folder;
  struct File {
    const char* name;
    InlineScript* into;
  } files[] = {{"vega.min.js", &lib.vega}, {"vega-lite.min.js", &lib.vega_lite}, {"vega-embed.min.js", &lib.vega_embed}};
  for (const auto& f : files) {
    try {
      *f.into = InlineScript::from_file(folder / f.name);
    } catch (const std::exception&) {
      *f.into = InlineScript();
    }
    if (f.into->empty()) {
      lib.problem = "the charting JavaScript is missing (" + (folder / f.name).string() +
                    "): this caulk was built without npm, so charts cannot be drawn";
      lib.vega = lib.vega_lite = lib.vega_embed = InlineScript();
      return lib;
    }
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
