#include "caulk/run_observer.hpp"

#include <iostream>

namespace caulk {

ObserverContext::ObserverContext(std::string type, const Params& params, std::filesystem::path out_dir,
                                 std::function<void(const std::string&)> log_line)
    : type_(std::move(type)), params_(params), out_dir_(std::move(out_dir)), log_line_(std::move(log_line)) {}

void ObserverContext::log(std::string_view line) const {
  const std::string text = "[" + type_ + "] " + std::string(line);
  if (log_line_)
    log_line_(text);
  else
    std::cerr << text << "\n" << std::flush;
}

RunObserver::~RunObserver() = default;
void RunObserver::run_started(const RunReport&, ObserverContext&) {}
void RunObserver::node_started(const RunReport&, std::size_t, ObserverContext&) {}
void RunObserver::node_finished(const RunReport&, std::size_t, ObserverContext&) {}

}  // namespace caulk
