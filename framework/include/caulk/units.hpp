// Units of work that any process can run: the engine's opt-in interface for scale-out.
//
// NodeContext::for_each_unit runs C++ closures, which cannot leave the process. A node that can
// distribute its work instead describes each unit (one model, one fold...) as self-contained JSON
// (file paths, parameters, a model name; never a pointer) and names a unit function that its
// plugin registered (PluginRegistrar::add_unit_function). Any process that loaded the same plugins
// can then run the unit from its description alone; the small JSON results come back to the node,
// in unit-index order, so the numbers do not depend on where a unit ran. Large results
// (features, checkpoints) are written by the unit itself to their final paths, atomically.
//
// Who runs the units is the run's UnitDispatcher: in one process, the pool of --jobs threads
// (LocalUnitDispatcher, the default); under mpirun, every rank (libcaulk_mpi).
#pragma once
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "caulk/artifacts.hpp"
#include "caulk/node.hpp"

namespace caulk {

using Json = nlohmann::ordered_json;

// Runs one unit from its description; returns its small result. Throws to fail the unit.
using UnitFunctionPtr = Json (*)(const Json& description);

// A unit function and the name it is registered under: a node passes this to run_units, and the
// plugin registers the same pair, so the name cannot drift from the function.
struct UnitKind {
  const char* name;
  UnitFunctionPtr run;
};

// The result of one unit, or its error, and the rank of the process that ran it.
struct UnitOutcome {
  Json result;
  std::string error;  // empty when the unit succeeded
  int rank = 0;
};

// One node's units, handed to the dispatcher.
struct UnitBatch {
  std::string node_id;
  UnitKind kind{};
  const std::vector<Json>* descriptions = nullptr;
  std::function<void()> on_unit_done;  // called once per finished unit, from any thread (progress)
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

// Runs one unit, turning any exception into the outcome's error (shared by every dispatcher).
UnitOutcome run_unit_caught(UnitFunctionPtr fn, const Json& description, int rank);

// The rank of this process in a distributed run (0 in a single process).
int current_rank();
void set_current_rank(int rank);

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
// Validated parameters, exactly (integers stay integers, tables keep their order).
Json params_to_json(const Params& p);
Params params_from_json(const std::string& node_id, const Json& j);

}  // namespace caulk
