// The charting JavaScript the report inlines: Vega, Vega-Lite and vega-embed, installed from the
// npm registry at build time (see plugins/reports/js and docs/report.md).
#pragma once
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "caulk/io/mapped_file.hpp"

namespace caulk::report {

// One script, ready to inline in a <script> element: the pieces of its text to write in order.
// A file's script is mapped, not read, and never copied whole: a megabyte copied is hundreds of
// fresh memory pages, which is most of a report's time on machines where a page fault is slow.
class InlineScript {
 public:
  InlineScript() = default;
  InlineScript(std::string text);                                      // NOLINT: text already ready to inline (tests, small scripts)
  InlineScript(const char* text) : InlineScript(std::string(text)) {}  // NOLINT
  // The file's script: "</script" escaped as "<\/script" and source-map comments left out.
  // Throws DataError naming the file when it cannot be opened or mapped.
  static InlineScript from_file(const std::filesystem::path& path);

  const std::vector<std::string_view>& pieces() const { return pieces_; }
  std::size_t size() const;
  bool empty() const { return size() == 0; }
  // Throws DataError when the file shrank while its pieces were read (caulk/io/mapped_file.hpp).
  void check_intact() const;

 private:
  std::shared_ptr<const std::string> text_;
  std::shared_ptr<const io::MappedFile> file_;
  std::vector<std::string_view> pieces_;  // into text_, file_ or static text
};

struct ChartLibrary {
  std::filesystem::path folder;
  InlineScript vega, vega_lite, vega_embed;  // the minified builds
  std::string versions;                      // "vega 6.4.0, vega-lite 6.5.0, vega-embed 7.3.0"
  std::string licenses;                      // their licence texts, reproduced in the report
  std::string problem;                       // why it is not available
  bool available() const { return problem.empty(); }
};

// Maps vega.min.js, vega-lite.min.js and vega-embed.min.js and reads versions.txt and LICENSES.txt
// from the folder. Never throws: a missing or empty file makes `problem` say which.
ChartLibrary load_chart_library(const std::filesystem::path& folder);

// $CAULK_REPORT_JS when set, else share/caulk/report-js beside the lib/ folder that holds the
// reports plugin (the build tree and the install tree alike).
std::filesystem::path default_chart_library_folder();

}  // namespace caulk::report
