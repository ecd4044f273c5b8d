#include "end_reporter.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace caulk::mpi_end {
namespace {

struct Shared {
  std::atomic<std::uint64_t> ranks_with_units[kMaxRanks / 64];  // bit r % 64 of word r / 64
  std::atomic<int> finished{0};
};
Shared* g_shared = nullptr;
int g_pipe_write = -1;

bool is_rank0() {
  for (const char* v : {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"})
    if (const char* r = std::getenv(v)) return std::string(r) == "0";
  return false;
}

// mpirun's stderr (rank 0's parent's), and whether mpirun writes it at its own offset (a regular
// file not opened for appending: then we write only once mpirun is gone, or we would overwrite).
int open_parent_stderr(pid_t parent, bool& wait_for_parent) {
  wait_for_parent = false;
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/fd/2", static_cast<int>(parent));
  int fd = ::open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return ::dup(STDERR_FILENO);
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
    std::snprintf(path, sizeof path, "/proc/%d/fdinfo/2", static_cast<int>(parent));
    std::ifstream info(path);
    std::string key;
    unsigned long flags = 0;
    while (info >> key)
      if (key == "flags:") info >> std::oct >> flags;
    wait_for_parent = !(flags & O_APPEND);
  }
  return fd;
}

void write_all(int fd, const std::string& text) {
  const char* p = text.data();
  std::size_t n = text.size();
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

std::string message() {
  std::string m =
      "caulk: error: the MPI job was stopped while rank 0 was running the pipeline: a rank died (mpirun's message "
      "above names it) or the job was cancelled";
  std::vector<int> ranks;
  for (int r = 0; r < kMaxRanks; ++r)
    if (g_shared->ranks_with_units[r / 64].load() & (std::uint64_t{1} << (r % 64))) ranks.push_back(r);
  if (!ranks.empty()) {
    m += ranks.size() > 1 ? "; units were unfinished on ranks" : "; units were unfinished on rank";
    constexpr std::size_t kListed = 32;  // then a count, so the message stays a line or two
    for (std::size_t i = 0; i < ranks.size() && i < kListed; ++i) m += (i ? ", " : " ") + std::to_string(ranks[i]);
    if (ranks.size() > kListed) m += " and " + std::to_string(ranks.size() - kListed) + " more";
  }
  return m +
         ". The run did not finish: run.json says \"running\" (or was not written), and no output is left half-written under its final "
         "name.\n";
}

[[noreturn]] void reporter(int pipe_read, int out, bool wait_for_parent, pid_t mpirun) {
  ::setsid();  // out of mpirun's process group: its kill of the job does not reach us
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGPIPE}) ::signal(s, SIG_IGN);
  char byte;
  while (::read(pipe_read, &byte, 1) < 0 && errno == EINTR) {
  }
  // EOF: rank 0 is gone. Quiet if it said it finished.
  if (g_shared->finished.load()) ::_exit(0);
  if (wait_for_parent)
    for (int i = 0; i < 100 && ::kill(mpirun, 0) == 0; ++i) ::usleep(50000);
  write_all(out, message());
  ::_exit(0);
}

}  // namespace

void start_reporter_if_rank0() {
  if (!is_rank0() || g_shared) return;
  void* page = ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) return;
  g_shared = new (page) Shared();
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return;
  const pid_t mpirun = ::getppid();
  bool wait_for_parent = false;
  const int out = open_parent_stderr(mpirun, wait_for_parent);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[1]);
    reporter(fds[0], out, wait_for_parent, mpirun);
  }
  ::close(fds[0]);
  if (out >= 0) ::close(out);
  if (pid < 0) {
    ::close(fds[1]);
    return;
  }
  g_pipe_write = fds[1];  // closed by the kernel when rank 0 ends, however it ends
}

void set_rank_has_units(int rank, bool has_units) {
  if (!g_shared || rank < 0 || rank >= kMaxRanks) return;
  const std::uint64_t bit = std::uint64_t{1} << (rank % 64);
  if (has_units)
    g_shared->ranks_with_units[rank / 64].fetch_or(bit);
  else
    g_shared->ranks_with_units[rank / 64].fetch_and(~bit);
}

void finished() {
  if (!g_shared) return;
  g_shared->finished.store(1);
  if (g_pipe_write >= 0) ::close(g_pipe_write);
  g_pipe_write = -1;
}

}  // namespace caulk::mpi_end
