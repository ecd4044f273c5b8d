#include "mapping_guard.hpp"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <mutex>

namespace caulk::io::detail {

namespace {

// More than any run maps at once (features, labels and checkpoint shards of a large hub).
constexpr int kSlots = 16384;

enum SlotState : int { kFree = 0, kClaimed = 1, kActive = 2 };

struct Slot {
  std::atomic<int> state{kFree};
  std::atomic<std::uintptr_t> begin{0};
  std::atomic<std::size_t> length{0};
  std::atomic<bool> shrunk{false};
};

Slot g_slots[kSlots];
std::atomic<int> g_high_water{0};  // slots at or above it have never been used
std::uintptr_t g_page_size = 4096;
struct sigaction g_previous {};
std::once_flag g_installed;

static_assert(std::atomic<std::uintptr_t>::is_always_lock_free && std::atomic<std::size_t>::is_always_lock_free &&
                  std::atomic<int>::is_always_lock_free && std::atomic<bool>::is_always_lock_free,
              "the SIGBUS handler may only touch lock-free atomics");

// Zero pages over the faulting page and the rest of its mapping; false when the address is not
// in a registered mapping (or the remap fails).
bool rescue(std::uintptr_t address) {
  const int used = g_high_water.load(std::memory_order_acquire);
  for (int i = 0; i < used; ++i) {
    Slot& s = g_slots[i];
    if (s.state.load(std::memory_order_acquire) != kActive) continue;
    const std::uintptr_t begin = s.begin.load(std::memory_order_relaxed);
    const std::uintptr_t end = begin + s.length.load(std::memory_order_relaxed);
    if (address < begin || address >= end) continue;
    const std::uintptr_t page = address & ~(g_page_size - 1);
    const std::uintptr_t stop = (end + g_page_size - 1) & ~(g_page_size - 1);
    void* zeros = ::mmap(reinterpret_cast<void*>(page), stop - page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (zeros == MAP_FAILED) return false;
    s.shrunk.store(true, std::memory_order_release);
    return true;
  }
  return false;
}

void on_sigbus(int signal, siginfo_t* info, void* context) {
  const int saved_errno = errno;
  const bool fault = info && info->si_code > 0;  // raised by the hardware, not sent by kill()
  if (fault && rescue(reinterpret_cast<std::uintptr_t>(info->si_addr))) {
    errno = saved_errno;
    return;  // the read resumes on the zero pages
  }
  // Not ours: whoever handled SIGBUS before (a sanitizer), else the default action.
  if ((g_previous.sa_flags & SA_SIGINFO) && g_previous.sa_sigaction) {
    g_previous.sa_sigaction(signal, info, context);
    return;
  }
  if (!(g_previous.sa_flags & SA_SIGINFO) && g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN) {
    g_previous.sa_handler(signal);
    return;
  }
  struct sigaction fallback {};
  fallback.sa_handler = SIG_DFL;
  sigemptyset(&fallback.sa_mask);
  ::sigaction(SIGBUS, &fallback, nullptr);
  // A fault repeats when the instruction resumes and now kills; a sent signal must be sent again.
  if (!fault) ::raise(SIGBUS);
}

void install() {
  const long page = ::sysconf(_SC_PAGESIZE);
  if (page > 0) g_page_size = static_cast<std::uintptr_t>(page);
  struct sigaction action {};
  action.sa_sigaction = on_sigbus;
  action.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGBUS, &action, &g_previous);
}

}  // namespace

int register_mapping(const void* begin, std::size_t length) {
  std::call_once(g_installed, install);
  for (int i = 0; i < kSlots; ++i) {
    int expected = kFree;
    if (!g_slots[i].state.compare_exchange_strong(expected, kClaimed, std::memory_order_acq_rel)) continue;
    Slot& s = g_slots[i];
    s.begin.store(reinterpret_cast<std::uintptr_t>(begin), std::memory_order_relaxed);
    s.length.store(length, std::memory_order_relaxed);
    s.shrunk.store(false, std::memory_order_relaxed);
    int high = g_high_water.load(std::memory_order_relaxed);
    while (high < i + 1 && !g_high_water.compare_exchange_weak(high, i + 1, std::memory_order_acq_rel)) {
    }
    s.state.store(kActive, std::memory_order_release);
    return i;
  }
  return -1;
}

void unregister_mapping(int slot) {
  if (slot >= 0 && slot < kSlots) g_slots[slot].state.store(kFree, std::memory_order_release);
}

bool mapping_shrunk(int slot) { return slot >= 0 && slot < kSlots && g_slots[slot].shrunk.load(std::memory_order_acquire); }

}  // namespace caulk::io::detail
