// The charting JavaScript the report inlines: Vega, Vega-Lite and vega-embed, installed from the
// npm registry at build time (see plugins/reports/js and docs/report.md).
#pragma once
#include <filesystem>
#include <string>

namespace caulk::report {

struct ChartLibrary {
  std::filesystem::path folder;
  std::string vega, vega_lite, vega_embed;  // the minified builds, ready to inline
  std::string versions;                     // "vega 6.4.0, vega-lite 6.5.0, vega-embed 7.3.0"
  std::string licenses;                     // their licence texts, reproduced in the report
  std::string problem;                      // why it is not available
  bool available() const { return problem.empty(); }
};

// Reads vega.min.js, vega-lite.min.js, vega-embed.min.js, versions.txt and LICENSES.txt from the
// folder. Never throws: a missing or empty file makes `problem` say which.
ChartLibrary load_chart_library(const std::filesystem::path& folder);

// $CAULK_REPORT_JS when set, else share/caulk/report-js beside the lib/ folder that holds the
// reports plugin (the build tree and the install tree alike).
std::filesystem::path default_chart_library_folder();

}  // namespace caulk::report
