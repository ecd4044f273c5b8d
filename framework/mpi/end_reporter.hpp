// Rank 0's last word when the job is torn down under it.
//
// Open MPI's mpirun ends the whole job when any rank dies: SIGTERM to the others and SIGKILL a
// second later, while it stops forwarding their output. Nothing inside rank 0 can then be relied on
// to print (measured: under load the message from a SIGTERM handler was lost in 2 of 8 runs). So
// rank 0 forks, before MPI starts, a small reporter outside mpirun's process group that holds a
// pipe from rank 0 and mpirun's own stderr. If rank 0 ends without saying it finished, the reporter
// writes the message there (naming the ranks that held unfinished units, from a shared page) and
// exits. Outputs are written through AtomicFile (temporary name, then rename), so the message can
// say truthfully that nothing is left half-written under a final name.
#pragma once
#include <cstdint>

namespace caulk::mpi_end {

// Forks the reporter when this process is rank 0 of an mpirun (known from Open MPI's or PMIx's
// environment before MPI starts). Call before MPI_Init; does nothing elsewhere.
void start_reporter_if_rank0();
// The ranks a job may have (the shared page holds one bit per rank).
constexpr int kMaxRanks = 65536;
// Whether `rank` holds dealt, unfinished units, for the message.
void set_rank_has_units(int rank, bool has_units);
// Rank 0 ends normally (whatever the pipeline's outcome): the reporter exits silently.
void finished();

}  // namespace caulk::mpi_end
