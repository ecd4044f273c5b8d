// The fault-injection suite's tools: caulk runs as child processes that can be killed or
// signalled at chosen moments, merge inputs big enough for the kill windows to be real, and
// checks of what a fault left on disk (docs/reliability.md, "Durability").
//
// Environment:
//   CAULK_FAULT_ROUNDS  faults per scenario (default 2: the share `make test` runs)
//   CAULK_FAULT_MB      size of each merged model in MB (default 8)
//   CAULK_FAULT_SEED    seed of the kill moments (default 18)
//   CAULK_FAULT_CAULK   the caulk binary under test (default: the build's), e.g. an older build
//                       to see a fixed defect come back
#pragma once
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "caulk/io/durable.hpp"
#include "caulk/io/safetensors.hpp"
#include "cli.hpp"
#include "temp_dir.hpp"

extern char** environ;

namespace caulk::faults {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using caulk::testing::read_file;

inline long env_number(const char* name, long fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtol(v, nullptr, 10) : fallback;
}
inline int rounds() { return static_cast<int>(env_number("CAULK_FAULT_ROUNDS", 2)); }
inline std::size_t model_mb() { return static_cast<std::size_t>(env_number("CAULK_FAULT_MB", 8)); }
inline std::uint64_t seed() { return static_cast<std::uint64_t>(env_number("CAULK_FAULT_SEED", 18)); }
inline fs::path caulk_under_test() {
  const char* v = std::getenv("CAULK_FAULT_CAULK");
  return v && *v ? fs::path(v) : caulk::testing::caulk_binary();
}

// ------------------------------------------------------------------ processes

struct Ended {
  int exit_code = -1;  // when it exited
  int signal = 0;      // when a signal ended it
  bool timed_out = false;
  std::string str() const {
    return timed_out ? "still running" : signal ? fmt::format("killed by signal {}", signal) : fmt::format("exit {}", exit_code);
  }
};

class Child {
 public:
  // Starts `caulk ARGS...` with stdout and stderr in LOG.out and LOG.err (and no
  // CAULK_PLUGIN_PATH from the environment).
  Child(const std::vector<std::string>& args, const fs::path& log) : out_(log.string() + ".out"), err_(log.string() + ".err") {
    std::vector<std::string> argv_s{caulk_under_test().string()};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (char** e = environ; *e; ++e)
      if (std::strncmp(*e, "CAULK_PLUGIN_PATH=", 18) != 0) envp.push_back(*e);
    envp.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int rc = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) throw std::runtime_error(fmt::format("cannot start {}: {}", argv_s[0], std::strerror(rc)));
  }
  ~Child() {
    if (!reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }
  void signal(int s) const { ::kill(pid_, s); }
  Ended wait(std::chrono::seconds timeout = std::chrono::seconds(300)) {
    const auto deadline = Clock::now() + timeout;
    int status = 0;
    for (;;) {
      const pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) break;
      if (Clock::now() > deadline) return Ended{-1, 0, true};
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    reaped_ = true;
    Ended e;
    if (WIFEXITED(status)) e.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) e.signal = WTERMSIG(status);
    return e;
  }
  std::string err() const { return read_file(err_); }

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  std::string out_, err_;
};

inline Ended run_to_end(const std::vector<std::string>& args, const fs::path& log) {
  Child c(args, log);
  return c.wait();
}

// ------------------------------------------------------------------ what is on disk

// A file's bytes or a folder's files (relative name -> bytes); nothing when the path is absent.
using Snapshot = std::map<std::string, std::string>;
inline std::optional<Snapshot> snapshot(const fs::path& p) {
  std::error_code ec;
  const auto st = fs::symlink_status(p, ec);
  if (ec || !fs::exists(st)) return std::nullopt;
  Snapshot s;
  if (fs::is_directory(st)) {
    for (const auto& e : fs::recursive_directory_iterator(p))
      if (e.is_regular_file()) s[fs::relative(e.path(), p).string()] = read_file(e.path());
  } else {
    s[""] = read_file(p);
  }
  return s;
}

// caulk's own state in a run folder (caulk/run_folder.hpp: .caulk/ with its lock, ledger, hashes
// and previous-run/), which every run keeps: not a leftover. Temporaries inside .caulk/ still are.
inline bool caulk_run_state(const fs::path& p) {
  const std::string name = p.filename().string();
  if (name == ".caulk") return true;
  if (p.parent_path().filename() != ".caulk") return p.string().find("/.caulk/previous-run/") != std::string::npos;
  return name == "lock" || name == "outputs.json" || name == "hashes.json" || name == "previous-run";
}

// Hidden entries a run leaves behind (temporaries, caulk's or older versions' ".tmp-" and
// ".old-" names), under `dir`; an output folder's marker is not one.
inline std::vector<std::string> leftovers(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return out;
  for (auto it = fs::recursive_directory_iterator(dir, ec); it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    const std::string name = it->path().filename().string();
    if (caulk_run_state(it->path())) continue;
    if (name.starts_with(".") && name != io::kOutputMarker) out.push_back(it->path().string());
  }
  return out;
}

inline nlohmann::json read_json(const fs::path& p) { return nlohmann::json::parse(read_file(p), nullptr, false); }
// run.json's status, or "" when it is missing or not JSON.
inline std::string status_of(const fs::path& record) {
  const nlohmann::json j = read_json(record);
  return j.is_object() ? j.value("status", "") : "";
}

// A record of an earlier run, planted before a fault: it must not survive a run that started.
inline void plant_record(const fs::path& out) {
  fs::create_directories(out);
  std::ofstream(out / "run.json") << R"({"pipeline": "faults", "status": "ok", "planted": true, "nodes": {}})";
}

// What run.json says after a fault that ended the process at an unknown moment: nothing, the
// planted record (only when no node had started), "running", or a complete record of this run.
// Returns a problem, or "" when the record is honest.
inline std::string record_problem(const fs::path& out, const std::string& err) {
  const fs::path record = out / "run.json";
  if (!fs::exists(record)) return "";
  const nlohmann::json j = read_json(record);
  if (j.is_discarded()) return "run.json is not JSON: " + read_file(record);
  if (j.contains("planted"))
    return err.find("[caulk] start ") == std::string::npos ? "" : "the record of an earlier run passes for this run's (a node had started)";
  const std::string status = j.value("status", "");
  if (status == "running" || status == "ok" || status == "failed" || status == "interrupted") return "";
  return "run.json has status '" + status + "'";
}

// ------------------------------------------------------------------ merge inputs

// Three checkpoints a, b, c of `mb` MB each (float32, 8 tensors), their manifest, and two merge
// pipelines that differ only in a's weight: "old" and "new" write different bytes.
struct MergeInputs {
  fs::path dir, hub, old_pipeline, new_pipeline;
  std::uint64_t output_bytes = 0;

  MergeInputs(const fs::path& d, std::size_t mb) : dir(d) {
    fs::create_directories(dir);
    const std::size_t floats = mb * 1000000 / 4 / 8;
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> u(-1, 1);
    for (const char* model : {"a", "b", "c"}) {
      std::vector<io::Tensor> tensors;
      for (int t = 0; t < 8; ++t) {
        io::Tensor x{fmt::format("layers.{}.weight", t), io::DType::F32, {floats}, std::vector<std::byte>(floats * 4)};
        for (std::size_t i = 0; i < floats; ++i) {
          const float v = u(rng);
          std::memcpy(x.data.data() + i * 4, &v, 4);
        }
        tensors.push_back(std::move(x));
      }
      io::write_safetensors(dir / (std::string(model) + ".safetensors"), tensors);
    }
    output_bytes = 8ull * floats * 4;
    hub = dir / "hub.toml";
    std::ofstream(hub) << "[hub]\nname = \"faults\"\n"
                          "[[model]]\nname = \"a\"\ncheckpoint = \"a.safetensors\"\n"
                          "[[model]]\nname = \"b\"\ncheckpoint = \"b.safetensors\"\n"
                          "[[model]]\nname = \"c\"\ncheckpoint = \"c.safetensors\"\n";
    old_pipeline = write_pipeline("old.toml", 1.0);
    new_pipeline = write_pipeline("new.toml", 2.0);
  }

  fs::path write_pipeline(const std::string& name, double weight_a) const {
    const fs::path p = dir / name;
    std::ofstream(p) << fmt::format(
        "[pipeline]\nname = \"faults\"\n"
        "[[node]]\nid = \"load\"\ntype = \"checkpoint.load\"\nparams = {{ manifest = \"hub.toml\" }}\n"
        "[[node]]\nid = \"m\"\ntype = \"merge.linear\"\ninputs = {{ checkpoints = \"load\" }}\n"
        "params = {{ output = \"merged.safetensors\", weights = {{ a = {}, b = 1.0, c = 1.0 }} }}\n",
        weight_a);
    return p;
  }

  // `caulk run` arguments: the merge of `pipeline` into `target`, its run folder `out`. A folder
  // target is sharded in three.
  std::vector<std::string> args(const fs::path& pipeline, const fs::path& target, bool overwrite, const fs::path& out) const {
    std::vector<std::string> a{"run", pipeline.string(), "--out", out.string(), "--jobs", "2", "--set", "m.output=" + target.string(),
                               "--set", std::string("m.overwrite=") + (overwrite ? "true" : "false"),
                               // Every run writes: these runs test the writer, which a reused result would skip.
                               "--no-cache"};
    if (target.extension() != ".safetensors") {
      a.push_back("--set");
      a.push_back(fmt::format("m.max_shard_size={}B", output_bytes / 3 + 1));
    }
    return a;
  }
};

// ------------------------------------------------------------------ a small full disk

// A tmpfs of `bytes` mounted at `dir` while alive (root only; `ok()` is false where mount(2) is
// not permitted, and the test is skipped with a message).
class SmallDisk {
 public:
  SmallDisk(const fs::path& dir, std::uint64_t bytes) : dir_(dir) {
    fs::create_directories(dir_);
    mounted_ = ::mount("tmpfs", dir_.c_str(), "tmpfs", 0, fmt::format("size={}", bytes).c_str()) == 0;
    if (!mounted_) error_ = std::strerror(errno);
  }
  ~SmallDisk() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  bool ok() const { return mounted_; }
  const std::string& error() const { return error_; }

 private:
  fs::path dir_;
  bool mounted_ = false;
  std::string error_;
};

// Kill moments: seeded fractions of how long an uninterrupted run takes, measured again on every
// uninterrupted run (a shared machine's load changes it), so most faults land while the run works.
class Moments {
 public:
  Moments(std::uint64_t seed, double first_seconds) : rng_(seed), recent_{first_seconds} {}
  double next() { return std::uniform_real_distribution<double>(0, 1.1)(rng_) * typical(); }
  void measured(double seconds) {
    recent_.push_back(seconds);
    if (recent_.size() > 5) recent_.erase(recent_.begin());
  }
  double typical() const {
    std::vector<double> v = recent_;
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  }

 private:
  std::mt19937_64 rng_;
  std::vector<double> recent_;
};

// Runs to the end and says how long it took.
inline Ended run_timed(const std::vector<std::string>& args, const fs::path& log, double& seconds) {
  const auto t0 = Clock::now();
  const Ended e = run_to_end(args, log);
  seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return e;
}

// Counts for the report `make faults` prints (docs/reliability.md).
struct Tally {
  int faults = 0, landed = 0, kept_old = 0, complete_new = 0, absent = 0, lost = 0, leftovers_after_fault = 0, leftovers_after_next_run = 0,
      stale_records = 0;
  void print(const std::string& scenario) const {
    std::printf(
        "[faults] %s: %d faults (%d landed before the run ended): old output kept %d, new output complete %d, no output (none "
        "before) %d, outputs lost %d; temporaries right after the fault %d, after the next run %d; stale run.json %d\n",
        scenario.c_str(), faults, landed, kept_old, complete_new, absent, lost, leftovers_after_fault, leftovers_after_next_run,
        stale_records);
    std::fflush(stdout);
  }
};

}  // namespace caulk::faults
