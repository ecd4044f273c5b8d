// Running the caulk binary from tests: exit code, stdout and stderr.
#pragma once
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "temp_dir.hpp"

namespace caulk::testing {

struct CliResult {
  int exit_code = -1;
  std::string out, err;
};

inline std::filesystem::path caulk_binary() { return std::filesystem::path(CAULK_BINARY_DIR) / "bin" / "caulk"; }
inline std::filesystem::path source_dir() { return CAULK_SOURCE_DIR; }
// The names of the demo pipelines (pipelines/*.toml), sorted.
inline std::vector<std::string> demo_pipelines() {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(source_dir() / "pipelines"))
    if (e.path().extension() == ".toml") out.push_back(e.path().stem().string());
  std::sort(out.begin(), out.end());
  return out;
}
inline std::filesystem::path test_plugin(const std::string& name) {
  return std::filesystem::path(CAULK_BINARY_DIR) / "test-plugins" / name / (name + ".so");
}

inline std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs a shell command and waits for it, capturing both streams.
inline CliResult run_captured(std::string cmd) {
  TempDir capture;
  cmd.append(" >").append(shell_quote((capture / "out").string())).append(" 2>").append(shell_quote((capture / "err").string()));
  int status = std::system(cmd.c_str());
  CliResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_file(capture / "out");
  r.err = read_file(capture / "err");
  return r;
}

// Runs `caulk ARGS...` with `env` prefixed (e.g. "CAULK_PLUGIN_PATH=/x"), capturing both streams.
inline CliResult run_caulk(const std::vector<std::string>& args, const std::string& env = "", const std::filesystem::path& cwd = {}) {
  std::string cmd;
  // Built with append: GCC 12 warns falsely (-Wrestrict) on "literal" + std::string chains.
  if (!cwd.empty()) cmd.append("cd ").append(shell_quote(cwd.string())).append(" && ");
  cmd.append("env -u CAULK_PLUGIN_PATH ").append(env).append(" ").append(shell_quote(caulk_binary().string()));
  for (const auto& a : args) cmd.append(" ").append(shell_quote(a));
  return run_captured(std::move(cmd));
}

}  // namespace caulk::testing
