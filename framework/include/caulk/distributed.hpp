// Running one pipeline on the K processes of an mpirun (libcaulk_mpi, loaded only then).
//
// libcaulk itself never links MPI: a single process needs no MPI at run time and the executor
// never depends on MPI being initialised. When the CLI finds it was started by mpirun, it loads
// libcaulk_mpi (beside libcaulk) and opens a session: rank 0 validates and runs the pipeline with
// the session's UnitDispatcher, which deals the nodes' distributable units (caulk/units.hpp) to
// every rank from a dynamic queue (rank 0 computes too); the other ranks load the same plugins
// and serve units until rank 0 ends the session.
#pragma once
#include <memory>
#include <string>

#include "caulk/units.hpp"

namespace caulk {

class Registry;

class DistributedSession {
 public:
  virtual ~DistributedSession();  // rank 0: stops every worker; then MPI is finalised
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Rank 0: the dispatcher to give run_pipeline (RunOptions::units).
  virtual UnitDispatcher& dispatcher() = 0;
  // Ranks > 0: serve units with the run_unit of `registry`'s node types, up to `jobs` at once,
  // until rank 0 ends the session. Returns the process's exit code.
  virtual int serve(const Registry& registry, unsigned jobs) = 0;
};

// True when this process was started by mpirun (Open MPI's or PMIx's environment variables).
bool started_by_mpirun();
// Loads libcaulk_mpi and initialises MPI. Throws Error with the reason when it cannot.
std::unique_ptr<DistributedSession> open_distributed_session(int& argc, char**& argv);

}  // namespace caulk

// The entry point libcaulk_mpi exports (a C name, looked up after dlopen).
#define CAULK_MPI_ENTRY_SYMBOL "caulk_mpi_open_session"
extern "C" caulk::DistributedSession* caulk_mpi_open_session(int* argc, char*** argv, std::string* error);
