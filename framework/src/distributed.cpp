#include "caulk/distributed.hpp"

#include <dlfcn.h>

#include <boost/dll/runtime_symbol_info.hpp>
#include <cstdlib>

#include "caulk/error.hpp"

namespace caulk {

DistributedSession::~DistributedSession() = default;

bool started_by_mpirun() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"})
    if (std::getenv(v)) return true;
  return false;
}

std::unique_ptr<DistributedSession> open_distributed_session(int& argc, char**& argv) {
  // libcaulk_mpi lives beside libcaulk (build tree and install tree alike).
  std::error_code ec;
  const std::filesystem::path here = boost::dll::this_line_location(ec).parent_path();
  const std::filesystem::path lib = (ec ? std::filesystem::path() : here) / "libcaulk_mpi.so";
  // RTLD_GLOBAL: Open MPI's own components resolve libmpi's symbols through the global scope.
  void* handle = ::dlopen(lib.c_str(), RTLD_NOW | RTLD_GLOBAL);
  if (!handle)
    throw Error("started by mpirun, but the MPI support library cannot be loaded (" + std::string(::dlerror()) +
                "); build caulk with Open MPI and Boost.MPI installed (scripts/install-deps.sh mpi)");
  // Never unloaded: MPI keeps state until the process ends.
  using Entry = DistributedSession* (*)(int*, char***, std::string*);
  auto entry = reinterpret_cast<Entry>(::dlsym(handle, CAULK_MPI_ENTRY_SYMBOL));
  if (!entry) throw Error(lib.string() + " exports no " CAULK_MPI_ENTRY_SYMBOL);
  std::string error;
  DistributedSession* session = entry(&argc, &argv, &error);
  if (!session) throw Error("cannot start MPI: " + error);
  return std::unique_ptr<DistributedSession>(session);
}

}  // namespace caulk
