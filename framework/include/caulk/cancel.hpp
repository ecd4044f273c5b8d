// Stopping a run cooperatively on SIGINT or SIGTERM (docs/reliability.md, "Interrupted runs").
//
// The signal only sets a flag. The engine checks it where it is safe to stop: before starting a
// node, before each unit of for_each_unit and run_units, and in every Progress::advance, which
// throws Interrupted so the node unwinds through its destructors (temporaries are removed, nothing
// is committed). A node that never reports progress ends when it ends. A second signal ends the
// process at once, after removing the temporaries still open (io::remove_open_temporaries).
#pragma once
#include <string>

#include "caulk/error.hpp"

namespace caulk {

// Thrown where a running node notices the request; the node's status becomes "interrupted".
class Interrupted : public Error {
 public:
  explicit Interrupted(int signal);
  int signal() const { return signal_; }

 private:
  int signal_;
};

// Asks the run to stop (async-signal-safe: an atomic store).
void request_cancel(int signal) noexcept;
bool cancel_requested() noexcept;
// The signal that asked to stop (SIGINT, SIGTERM), 0 when none did.
int cancel_signal() noexcept;
// Throws Interrupted when a stop was requested.
void throw_if_cancelled();
// Forgets a request (tests that run several pipelines in one process).
void clear_cancel() noexcept;

// "SIGINT", "SIGTERM", or "signal N".
std::string signal_name(int signal);
// The exit code of a run stopped by `signal`: 128 + the signal (130 for SIGINT, 143 for SIGTERM),
// as shells report a process the signal ended.
int exit_code_for_signal(int signal);

// While alive, SIGINT and SIGTERM request cancellation (one line on stderr says so) and a second
// one removes the open temporaries and exits with exit_code_for_signal at once. Restores the
// previous handlers when destroyed. One at a time per process.
class InterruptHandling {
 public:
  InterruptHandling();
  ~InterruptHandling();
  InterruptHandling(const InterruptHandling&) = delete;
  InterruptHandling& operator=(const InterruptHandling&) = delete;

 private:
  struct Impl;
  Impl* impl_;
};

}  // namespace caulk
