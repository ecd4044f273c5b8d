// Shared state of one run, seen by every node's context (internal to the engine).
#pragma once
#include <filesystem>
#include <iostream>
#include <mutex>
#include <string>

#include "caulk/units.hpp"

namespace caulk {

class RunEnvironment {
 public:
  std::filesystem::path out_dir;
  unsigned jobs = 1;
  std::ostream* out = &std::cout;
  std::ostream* err = &std::cerr;
  bool progress_bars = false;
  UnitDispatcher* units = nullptr;  // who runs distributable units (never null during a run)
  std::size_t memory_limit = 0;     // bytes a node may plan to hold at once (0: no limit)

  // One line on stderr; clears a progress bar being drawn first.
  void log_line(const std::string& line) const;
  // Draws (or replaces) the progress bar line on a terminal.
  void draw_bar(const std::string& line) const;
  void write_out(const std::string& text) const;

 private:
  mutable std::mutex mutex_;
  mutable bool bar_drawn_ = false;
};

}  // namespace caulk
