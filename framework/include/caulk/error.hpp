// Error types and the exit codes they map to.
#pragma once
#include <stdexcept>
#include <string>
#include <vector>

namespace caulk {

// Exit codes of the command line tool (a user-facing promise; see docs/pipeline-format.md).
enum ExitCode : int { kExitOk = 0, kExitNodeFailed = 1, kExitUsage = 2, kExitPlugin = 3 };

// Where something was written: a file and a 1-based line and column (0 when unknown).
struct SourceLocation {
  std::string file;
  int line = 0;
  int column = 0;
  // "file:line:col" (or just "file", or "" when nothing is known).
  std::string str() const;
};

// Base of every error caulk reports to a user.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A malformed or inconsistent data file: the message always begins with the file's path.
class DataError : public Error {
 public:
  // "FILE: problem"
  DataError(const std::string& file, const std::string& problem);
  // "FILE:LINE: problem", for text files where the line helps (line is 1-based).
  DataError(const std::string& file, int line, const std::string& problem);
  const std::string& file() const { return file_; }
  int line() const { return line_; }  // 0 when unknown
  const std::string& problem() const { return problem_; }

 private:
  std::string file_, problem_;
  int line_ = 0;
};

// Bad command line use (exit code 2).
class UsageError : public Error {
 public:
  using Error::Error;
};

// A plugin could not be loaded (exit code 3).
class PluginError : public Error {
 public:
  using Error::Error;
};

// One problem found in a pipeline, located in its file.
struct Diagnostic {
  SourceLocation where;
  std::string message;  // names the node id when the problem belongs to a node
  // "FILE:LINE:COL: error: MESSAGE"
  std::string str() const;
};

// A pipeline that cannot run (exit code 2); carries every problem found, not just the first.
class PipelineError : public Error {
 public:
  explicit PipelineError(std::vector<Diagnostic> diagnostics);
  const std::vector<Diagnostic>& diagnostics() const { return diagnostics_; }

 private:
  std::vector<Diagnostic> diagnostics_;
};

}  // namespace caulk
