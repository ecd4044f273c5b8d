// The repository stands alone: code comments and documents cite docs/ (docs/references.md for the
// papers), never documents outside it, and every document of docs/ they cite exists.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "cli.hpp"

namespace fs = std::filesystem;

namespace {

bool is_text_source(const fs::path& p) {
  static const std::set<std::string> kExtensions{".cpp", ".hpp", ".h", ".md", ".txt", ".cmake", ".toml", ".py", ".sh", ".in"};
  return kExtensions.count(p.extension().string()) != 0 || p.filename() == "Makefile";
}

template <class Visit>
void for_each_line(const Visit& visit) {
  const fs::path root = caulk::testing::source_dir();
  std::vector<fs::path> files{root / "README.md", root / "Makefile", root / "CMakeLists.txt"};
  for (const char* top : {"framework", "plugins", "libs", "tests", "docs", "tools", "plugin-template", "benchmarks", "pipelines", "scripts",
                          "cmake", "fuzz"}) {
    if (!fs::exists(root / top)) continue;
    for (const auto& e : fs::recursive_directory_iterator(root / top))
      if (e.is_regular_file() && is_text_source(e.path())) files.push_back(e.path());
  }
  for (const auto& file : files) {
    std::ifstream in(file);
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) visit(fs::relative(file, root).generic_string(), n, line);
  }
}

TEST(Citations, NothingCitesADocumentOutsideTheRepository) {
  // The workplace's reference notes, spelled in pieces so this file does not cite them itself.
  const std::string notes = "(methods|seeds|design-lessons|style)";
  const std::string folder = std::string("shared") + "/" + "reference";
  const std::regex outside("(^|[^A-Za-z0-9_/-])" + notes + "\\.md|" + folder);
  std::vector<std::string> offenders;
  for_each_line([&](const std::string& file, int n, const std::string& line) {
    if (std::regex_search(line, outside)) offenders.push_back(file + ":" + std::to_string(n) + ": " + line);
  });
  EXPECT_TRUE(offenders.empty()) << "cite docs/ (docs/references.md for the papers) instead, at:\n" << ::testing::PrintToString(offenders);
}

TEST(Citations, EveryCitedDocumentExists) {
  const fs::path root = caulk::testing::source_dir();
  const std::regex cited(R"(docs/([A-Za-z0-9_-]+\.md))");
  std::vector<std::string> missing;
  for_each_line([&](const std::string& file, int n, const std::string& line) {
    for (std::sregex_iterator it(line.begin(), line.end(), cited), end; it != end; ++it)
      if (!fs::exists(root / "docs" / (*it)[1].str())) missing.push_back(file + ":" + std::to_string(n) + ": docs/" + (*it)[1].str());
  });
  EXPECT_TRUE(missing.empty()) << ::testing::PrintToString(missing);
}

}  // namespace
