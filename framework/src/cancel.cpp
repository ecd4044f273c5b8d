#include "caulk/cancel.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <iostream>
#include <thread>

#include "caulk/io/durable.hpp"

namespace caulk {

namespace {

std::atomic<int> g_cancel_signal{0};
// The write end of the pipe that wakes InterruptHandling's thread (-1 when none is installed).
std::atomic<int> g_wake_fd{-1};
static_assert(std::atomic<int>::is_always_lock_free, "the signal handler needs lock-free atomics");

extern "C" void on_stop_signal(int signal) {
  const int saved_errno = errno;
  request_cancel(signal);
  const int fd = g_wake_fd.load();
  if (fd >= 0) {
    const char byte = static_cast<char>(signal);
    [[maybe_unused]] const ssize_t n = ::write(fd, &byte, 1);
  }
  errno = saved_errno;
}

}  // namespace

Interrupted::Interrupted(int signal) : Error("interrupted by " + signal_name(signal)), signal_(signal) {}

void request_cancel(int signal) noexcept {
  int none = 0;
  g_cancel_signal.compare_exchange_strong(none, signal);  // the first request names the run's end
}

bool cancel_requested() noexcept { return g_cancel_signal.load(std::memory_order_relaxed) != 0; }

int cancel_signal() noexcept { return g_cancel_signal.load(); }

void throw_if_cancelled() {
  if (const int s = cancel_signal()) throw Interrupted(s);
}

void clear_cancel() noexcept { g_cancel_signal.store(0); }

std::string signal_name(int signal) {
  if (signal == SIGINT) return "SIGINT";
  if (signal == SIGTERM) return "SIGTERM";
  return "signal " + std::to_string(signal);
}

int exit_code_for_signal(int signal) { return 128 + signal; }

struct InterruptHandling::Impl {
  int pipe_read = -1, pipe_write = -1;
  struct sigaction previous_int {
  }, previous_term{};
  std::thread watcher;

  // Runs on its own thread, so it may take locks and write to streams, which a handler may not.
  void watch() {
    int signals = 0;
    for (;;) {
      char byte = 0;
      const ssize_t n = ::read(pipe_read, &byte, 1);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0 || byte == 0) return;  // closed, or the destructor's stop byte
      const int signal = static_cast<unsigned char>(byte);
      if (++signals == 1) {
        std::cerr << "\ncaulk: " << signal_name(signal)
                  << " received: stopping (no new node starts; running nodes stop at their next step and remove their temporary "
                     "files); send it again to stop at once\n"
                  << std::flush;
        continue;
      }
      io::remove_open_temporaries();
      std::cerr << "\ncaulk: " << signal_name(signal) << " received again: stopped at once; run.json was not updated\n" << std::flush;
      ::_exit(exit_code_for_signal(cancel_signal() ? cancel_signal() : signal));
    }
  }
};

InterruptHandling::InterruptHandling() : impl_(new Impl) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    delete impl_;
    throw Error(std::string("cannot set up the handling of interruptions: ") + std::strerror(errno));
  }
  impl_->pipe_read = fds[0];
  impl_->pipe_write = fds[1];
  ::fcntl(fds[1], F_SETFL, O_NONBLOCK);  // a handler must never block on a full pipe
  g_wake_fd.store(fds[1]);
  impl_->watcher = std::thread([impl = impl_] { impl->watch(); });
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  ::sigaction(SIGINT, &action, &impl_->previous_int);
  ::sigaction(SIGTERM, &action, &impl_->previous_term);
}

InterruptHandling::~InterruptHandling() {
  ::sigaction(SIGINT, &impl_->previous_int, nullptr);
  ::sigaction(SIGTERM, &impl_->previous_term, nullptr);
  g_wake_fd.store(-1);
  const char stop = 0;
  while (::write(impl_->pipe_write, &stop, 1) < 0 && errno == EINTR) {
  }
  impl_->watcher.join();
  ::close(impl_->pipe_read);
  ::close(impl_->pipe_write);
  delete impl_;
}

}  // namespace caulk
