#include "caulk/error.hpp"

namespace caulk {

std::string SourceLocation::str() const {
  if (file.empty()) return {};
  if (line <= 0) return file;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column > 0 ? column : 1);
}

DataError::DataError(const std::string& file, const std::string& problem) : Error(file + ": " + problem), file_(file), problem_(problem) {}

DataError::DataError(const std::string& file, int line, const std::string& problem)
    : Error(file + ":" + std::to_string(line) + ": " + problem), file_(file), problem_(problem), line_(line) {}

std::string Diagnostic::str() const {
  std::string where_text = where.str();
  return (where_text.empty() ? std::string("<pipeline>") : where_text) + ": error: " + message;
}

namespace {
std::string join_diagnostics(const std::vector<Diagnostic>& ds) {
  std::string out;
  for (const auto& d : ds) {
    if (!out.empty()) out += "\n";
    out += d.str();
  }
  return out;
}
}  // namespace

PipelineError::PipelineError(std::vector<Diagnostic> diagnostics)
    : Error(join_diagnostics(diagnostics)), diagnostics_(std::move(diagnostics)) {}

}  // namespace caulk
