// The run's observers (caulk/run_observer.hpp) as the executor drives them: each hook of each
// observer in file order, never two at once, an observer's failure kept (its first) instead of
// thrown. Internal to the engine.
#pragma once
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "caulk/io/access_log.hpp"
#include "caulk/pipeline.hpp"
#include "caulk/run_observer.hpp"
#include "run_environment.hpp"

namespace caulk {

class ObserverSet {
 public:
  ObserverSet(const Pipeline& pipeline, const RunEnvironment& env);
  bool empty() const { return entries_.empty(); }

  void run_started(const RunReport& report);
  void node_started(const RunReport& report, std::size_t node);
  void node_finished(const RunReport& report, std::size_t node);
  // Each observer's run_finished; `written` receives the files they wrote into the folder. `record`
  // is what run.json holds (ObserverContext::record).
  void run_finished(const RunReport& report, io::AccessLog& written, const Json* record = nullptr);

  // (observer id, why) for each observer that failed, in file order.
  std::vector<std::pair<std::string, std::string>> errors() const;

 private:
  struct Entry {
    const PipelineNode* config = nullptr;
    std::unique_ptr<RunObserver> observer;
    std::unique_ptr<ObserverContext> ctx;
    std::string error;  // its first failure; a failed observer is not called again
  };
  template <class Hook>
  void each(const char* hook, Hook&& call);

  std::vector<Entry> entries_;
  mutable std::mutex mutex_;
};

}  // namespace caulk
