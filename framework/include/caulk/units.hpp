// Units of work that any process can run: the engine's opt-in interface for scale-out.
//
// NodeContext::for_each_unit runs C++ closures, which cannot leave the process. A node that can
// distribute its work instead declares, beside spec(), one static function
//
//   static Json run_unit(caulk::UnitContext& ctx, const Json& payload);
//
// (PluginRegistrar::add_node<N> finds it; nothing else is registered) and calls
// ctx.run_units(what, unit_names, payloads): payload i describes unit i (file paths, a model
// name, an index; never a pointer). The engine attaches what every unit of the batch shares: the
// node's type and id, its validated Params and the Dataset on each Dataset input. A unit reads
// them from its UnitContext: in the node's process, the node's own objects; in another rank of an
// mpirun, copies the engine rebuilt once for the batch. The small JSON results come back to the
// node in unit-index order, so the numbers do not depend on where a unit ran. Large results
// (features, checkpoints) are written by the unit itself to their final paths, atomically.
//
// Who runs the units is the run's UnitDispatcher: in one process, the pool of --jobs threads
// (LocalUnitDispatcher, the default); under mpirun, every rank (libcaulk_mpi). See
// docs/writing-plugins.md ("A distributable node") and docs/scaling.md.
#pragma once
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <typeinfo>
#include <utility>
#include <vector>

#include "caulk/artifacts.hpp"
#include "caulk/json.hpp"
#include "caulk/node.hpp"

namespace caulk {

class NodeContext;

// The result of one unit, or its error, and the rank of the process that ran it.
struct UnitOutcome {
  Json result;
  std::string error;  // empty when the unit succeeded
  int rank = 0;
  // The files a unit read and wrote on another rank. A unit run in this process is logged by its
  // node's AccessLog, which the thread pool carries; one run elsewhere is not, so its rank sends
  // them back and the node notes them: the node's provenance and cache entry then list every file
  // whichever rank touched it, and a re-run verifies them all (caulk/node_cache.hpp).
  std::vector<std::pair<std::string, bool>> written;  // path, is a folder
  // Paths only: rank 0 notes what it sees of each file itself, since another host's inode and
  // device numbers of a shared file system differ from its own.
  std::vector<std::string> read;
  bool files_incomplete = false;  // the other rank could not list them all
};

// One node's units, handed to the dispatcher: what they share, and each unit's payload.
struct UnitBatch {
  const NodeType* node_type = nullptr;  // its run_unit runs each unit
  std::string node_id;
  const Params* params = nullptr;
  // The Dataset on each Dataset input of the node, by port.
  std::vector<std::pair<std::string, std::shared_ptr<const Dataset>>> datasets;
  std::size_t memory_limit = 0;  // --memory-limit (0: none)
  const std::vector<Json>* payloads = nullptr;
  std::function<void()> on_unit_done;  // called once per finished unit, from any thread (progress)
  // Set only in the node's own process (never sent to another rank): the node's context, and an
  // object the node lent its units (NodeContext::run_units' `local`), with its type.
  const NodeContext* node = nullptr;
  const void* local = nullptr;
  const std::type_info* local_type = nullptr;
};

// What a unit sees of the node that asked for it.
class UnitContext {
 public:
  UnitContext(const UnitBatch& batch, int rank) : batch_(batch), rank_(rank) {}

  const std::string& node_id() const { return batch_.node_id; }
  const std::string& type() const;
  const NodeType& node_type() const { return *batch_.node_type; }
  // The node's validated parameters: the very object the node had in its process.
  const Params& params() const { return *batch_.params; }
  // The Dataset on the node's input `port` (throws Error naming the port when there is none).
  std::shared_ptr<const Dataset> dataset(const std::string& port) const;
  bool has_dataset(const std::string& port) const;
  template <class T>
  std::shared_ptr<const T> input(const std::string& port) const {
    static_assert(std::is_same_v<T, Dataset>, "units receive the node's Dataset inputs only; put other inputs in the payloads");
    return dataset(port);
  }
  // The rank of the process running this unit (0 in a single process).
  int rank() const { return rank_; }
  // A fresh instance of the node's class (its factory), for units that call the node's virtuals.
  std::unique_ptr<Node> make_node() const;

  // --memory-limit in bytes (0: no limit), and the check NodeContext::check_memory makes.
  std::size_t memory_limit() const { return batch_.memory_limit; }
  void check_memory(std::size_t bytes, const std::string& what, const std::string& advice) const;
  // Throws Interrupted once a stop was requested (caulk/cancel.hpp); call it in long loops.
  void throw_if_cancelled() const;
  // A line on the node's log when the unit runs in the node's process (dropped on other ranks).
  void log(const std::string& message) const;

  // The node's context when the unit runs in the node's own process, else null.
  const NodeContext* node() const { return batch_.node; }
  // The object the node lent to run_units, when the unit runs in the node's process and T is its
  // type; null otherwise (another rank, or nothing lent). For finer progress, never for results.
  template <class T>
  T* local() const {
    if (!batch_.local || !batch_.local_type || *batch_.local_type != typeid(T)) return nullptr;
    return const_cast<T*>(static_cast<const T*>(batch_.local));
  }

 private:
  const UnitBatch& batch_;
  int rank_;
};

class UnitDispatcher {
 public:
  virtual ~UnitDispatcher();
  // Runs every unit of the batch; outcomes in index order. Never throws for a unit's failure.
  virtual std::vector<UnitOutcome> run(const UnitBatch& batch) = 0;
  // run.json's "ranks" (processes and units done by each); null when the run is one process.
  virtual Json ranks() const { return nullptr; }
  // True when units may run in other processes (errors then name the rank).
  virtual bool distributed() const { return false; }
};

// Every unit in this process, concurrently on the current pool (bounded by --jobs).
class LocalUnitDispatcher : public UnitDispatcher {
 public:
  std::vector<UnitOutcome> run(const UnitBatch& batch) override;
};

// Runs unit `index` of the batch, turning any exception into the outcome's error (shared by
// every dispatcher).
UnitOutcome run_unit_caught(const UnitBatch& batch, std::size_t index, int rank);
UnitOutcome run_unit_caught(const UnitBatch& batch, const Json& payload, int rank);

// The rank of this process in a distributed run (0 in a single process).
int current_rank();
void set_current_rank(int rank);

// ------------------------------------------------------------------ batches on other ranks
// The engine's encoding of what a batch's units share (type, node id, params, datasets, memory
// budget), made once per batch, and a batch rebuilt from it on another rank. Nodes never call these.

Json unit_batch_header(const UnitBatch& batch);
// A batch rebuilt from its header: owns its Params and Datasets. `node_type` is the receiving
// process's registration of the header's type (null when that process lacks it).
struct RemoteUnitBatch {
  Params params;
  UnitBatch batch;
};
std::shared_ptr<RemoteUnitBatch> unit_batch_from_header(const Json& header, const NodeType* node_type);
// The node type a header names.
std::string unit_batch_type(const Json& header);

// ------------------------------------------------------------------ descriptions of artifacts
// Conversions for unit descriptions and results. Matrices travel as exact binary (CBOR keeps
// doubles bit for bit, including NaN and infinities); files travel as paths.

Json matrix_to_json(const Matrix& m);
Matrix matrix_from_json(const Json& j);
// A file's path, or (in memory) its contents.
Json array_file_to_json(const ArrayFile& f);
ArrayFile array_file_from_json(const Json& j);
// A model's files for one split (or every split when `split` is empty).
Json model_embedding_to_json(const ModelEmbedding& m, const std::string& split = {});
ModelEmbedding model_embedding_from_json(const Json& j);
// The dataset with only the named split (or every split when `split` is empty).
Json dataset_to_json(const Dataset& d, const std::string& split = {});
std::shared_ptr<Dataset> dataset_from_json(const Json& j);
// Validated parameters, exactly (integers stay integers, tables keep their order): the engine's
// encoding of a batch's Params (unit_batch_header).
Json params_to_json(const Params& p);
Params params_from_json(const std::string& node_id, const Json& j);

}  // namespace caulk
