#include "rankers/src/shared_stats_cache.hpp"

#include <list>
#include <map>
#include <mutex>

namespace caulk::rankers {

namespace {

struct Entry {
  std::shared_ptr<rank::SharedDecompositions> stats;
  std::size_t bytes = 0;
  std::list<std::string>::iterator position;  // in the recency list
};

struct Cache {
  std::mutex mutex;
  std::map<std::string, Entry> entries;
  std::list<std::string> recency;  // most recent first
  std::size_t bytes = 0;
};

Cache& cache() {
  static Cache c;
  return c;
}

}  // namespace

std::shared_ptr<rank::SharedDecompositions> shared_decompositions(const ArrayFile& file, const MatrixView& view) {
  const std::string key = file.in_memory() ? std::string() : file_identity(file.path);
  if (key.empty()) return std::make_shared<rank::SharedDecompositions>();
  Cache& c = cache();
  std::lock_guard lock(c.mutex);
  auto it = c.entries.find(key);
  if (it != c.entries.end()) {
    c.recency.splice(c.recency.begin(), c.recency, it->second.position);
    return it->second.stats;
  }
  Entry e;
  e.stats = std::make_shared<rank::SharedDecompositions>();
  e.bytes = rank::SharedDecompositions::max_bytes(view.cols());
  // Decompositions larger than the whole budget are not kept after their users end.
  if (e.bytes > kSharedStatsBudgetBytes) return e.stats;
  c.recency.push_front(key);
  e.position = c.recency.begin();
  c.bytes += e.bytes;
  auto stats = e.stats;
  c.entries.emplace(key, std::move(e));
  // Drop the least recently used beyond the budget (users still holding one keep it alive).
  while (c.bytes > kSharedStatsBudgetBytes && c.recency.size() > 1) {
    auto victim = c.entries.find(c.recency.back());
    c.bytes -= victim->second.bytes;
    c.entries.erase(victim);
    c.recency.pop_back();
  }
  return stats;
}

}  // namespace caulk::rankers
