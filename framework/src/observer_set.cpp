#include "observer_set.hpp"

#include <fmt/format.h>

namespace caulk {

ObserverSet::ObserverSet(const Pipeline& pipeline, const RunEnvironment& env) {
  for (const auto& o : pipeline.observers) {
    Entry e;
    e.config = &o;
    e.ctx =
        std::make_unique<ObserverContext>(o.config.type, o.params, env.out_dir, [&env](const std::string& line) { env.log_line(line); });
    try {
      e.observer = o.type->make_observer();
      if (!e.observer) e.error = "its plugin made no observer";
    } catch (const std::exception& ex) {
      e.error = fmt::format("it could not be created: {}", ex.what());
    }
    entries_.push_back(std::move(e));
  }
}

template <class Hook>
void ObserverSet::each(const char* hook, Hook&& call) {
  std::lock_guard lock(mutex_);
  for (auto& e : entries_) {
    if (!e.error.empty()) continue;
    try {
      call(*e.observer, *e.ctx);
    } catch (const std::exception& ex) {
      e.error = fmt::format("{} failed: {}", hook, ex.what());
    } catch (...) {
      e.error = fmt::format("{} failed with an exception that is not a std::exception", hook);
    }
    if (!e.error.empty()) e.ctx->log("FAILED: " + e.error);
  }
}

void ObserverSet::run_started(const RunReport& report) {
  each("run_started", [&](RunObserver& o, ObserverContext& ctx) { o.run_started(report, ctx); });
}

void ObserverSet::node_started(const RunReport& report, std::size_t node) {
  each("node_started", [&](RunObserver& o, ObserverContext& ctx) { o.node_started(report, node, ctx); });
}

void ObserverSet::node_finished(const RunReport& report, std::size_t node) {
  each("node_finished", [&](RunObserver& o, ObserverContext& ctx) { o.node_finished(report, node, ctx); });
}

void ObserverSet::run_finished(const RunReport& report, io::AccessLog& written, const Json* record) {
  io::ScopedAccessLog scope(&written);
  each("run_finished", [&](RunObserver& o, ObserverContext& ctx) {
    ctx.set_record(record);
    o.run_finished(report, ctx);
    ctx.set_record(nullptr);
  });
}

std::vector<std::pair<std::string, std::string>> ObserverSet::errors() const {
  std::lock_guard lock(mutex_);
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& e : entries_)
    if (!e.error.empty()) out.emplace_back(e.config->config.id, e.error);
  return out;
}

}  // namespace caulk
