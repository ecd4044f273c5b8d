// Running caulk under mpirun from tests: loopback only, oversubscribed (more ranks than cores),
// allowed as root. Tests skip (with the reason) when caulk was built without MPI support.
#pragma once
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "cli.hpp"

#ifndef CAULK_MPIEXEC
#define CAULK_MPIEXEC ""
#endif

namespace caulk::testing {

inline std::string mpiexec() { return CAULK_MPIEXEC; }

// Under `make sanitize` the ranks keep AddressSanitizer and UndefinedBehaviorSanitizer but not
// LeakSanitizer: Open MPI leaves process-lifetime allocations in components it dlopens and
// dlcloses again at MPI_Finalize, which LeakSanitizer then reports as "<unknown module>" (measured:
// 54 reports, 117 KB, for quickstart on 2 ranks), so no suppression file can name them without
// suppressing everything. The single-process runs of these tests still check leaks. (Without
// sanitizers the variable is ignored.)
inline std::string sanitizer_env() { return "ASAN_OPTIONS=detect_leaks=0:abort_on_error=1"; }

#define CAULK_REQUIRE_MPI()                                                                                    \
  do {                                                                                                         \
    if (::caulk::testing::mpiexec().empty()) GTEST_SKIP() << "caulk was built without Open MPI and Boost.MPI"; \
  } while (0)

// The shell command that runs `caulk ARGS...` on `ranks` processes of this machine.
inline std::string mpirun_command(int ranks, const std::vector<std::string>& args, const std::string& env = "") {
  std::string cmd = "env -u CAULK_PLUGIN_PATH " + sanitizer_env() + " " + env + " " + shell_quote(mpiexec());
  if (::geteuid() == 0) cmd += " --allow-run-as-root";
  // Loopback only, TCP between ranks (no shared-memory or fabric transports), no core binding so
  // --jobs threads may use every core.
  cmd +=
      " --oversubscribe --bind-to none --mca btl self,tcp --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo"
      " --mca pml ob1 -np " +
      std::to_string(ranks) + " " + shell_quote(caulk_binary().string());
  for (const auto& a : args) cmd.append(" ").append(shell_quote(a));
  return cmd;
}

// `run PIPELINE --out OUT --jobs JOBS`: the arguments of most runs in these tests.
inline std::vector<std::string> mpi_run_args(const std::filesystem::path& pipeline, const std::filesystem::path& out, unsigned jobs = 1) {
  return {"run", pipeline.string(), "--out", out.string(), "--jobs", std::to_string(jobs)};
}

// The units every rank ran, from run.json's `ranks`.
inline std::size_t units_counted(const nlohmann::json& ranks) {
  std::size_t n = 0;
  for (const auto& u : ranks.at("units")) n += u.get<std::size_t>();
  return n;
}

// Runs `caulk ARGS...` under mpirun and waits for it.
inline CliResult run_mpi(int ranks, const std::vector<std::string>& args) { return run_captured(mpirun_command(ranks, args)); }

// mpirun started in the background (its own process group), for tests that act while it runs.
class BackgroundMpi {
 public:
  BackgroundMpi(int ranks, const std::vector<std::string>& args, const std::filesystem::path& err_file, const std::string& env = "") {
    // Appending, as a terminal or a pipe would take it: rank 0's last message goes straight to
    // mpirun's stderr when mpirun stops forwarding (see framework/mpi/mpi_session.cpp).
    const std::string cmd = mpirun_command(ranks, args, env) + " >/dev/null 2>>" + shell_quote(err_file.string());
    pid_ = ::fork();
    if (pid_ == 0) {
      ::setpgid(0, 0);
      ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
  }
  ~BackgroundMpi() {
    if (pid_ > 0 && !finished_) {
      ::kill(-pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  // The exit code once it ended within `limit`, or -1 if it still runs.
  int wait_for(std::chrono::seconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        finished_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return -1;
  }

 private:
  pid_t pid_ = -1;
  bool finished_ = false;
};

}  // namespace caulk::testing
