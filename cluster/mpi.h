// Searches across MPI ranks: `mpirun -np N starsynth search CONFIG`. Rank 0 drives the search;
// ranks 1..N-1 are workers (rank 0 evaluates too when the config says so). A static pool, no
// spawning. Each genome of a batch goes to the next idle worker as protobuf bytes (dynamic
// dispatch: evaluation times differ several-fold between architectures) and its metrics come back
// the same way. Never a blocking wait on one rank: results are polled, and a worker silent past the
// deadline is marked lost and its evaluation given to another.
//
// Open MPI ends the whole job when a rank process dies: the run then resumes from its directory
// (`mpirun ... starsynth search --resume RUN`), losing only the evaluations in flight.
#pragma once

#include <mpi.h>

#include <functional>
#include <string>

#include "search/engine.h"
#include "search/run.h"

namespace starsynth::cluster {

// True when this process was started by mpirun with more than one rank.
bool under_mpirun();

// The driver's batch runner over the workers of `comm`. `local` evaluates on rank 0 when the
// config asks for it, or when every worker is lost.
Runner mpi_runner(MPI_Comm comm, const SearchConfig& config, Evaluator local);

// A worker's loop: evaluate what rank 0 sends until it says stop.
void serve(MPI_Comm comm, const SearchConfig& config, Evaluator evaluate, const std::string& device);

// Tells every worker still answering to stop; true when none was lost (a lost worker never
// returns, so the caller must end the job with MPI_Abort rather than MPI_Finalize).
bool stop_workers(MPI_Comm comm);

// Makes the evaluator of a rank bound to `device` ("cpu" or "cuda:K").
using EvaluatorFactory = std::function<Evaluator(const SearchConfig&, const std::string& device, int rank)>;

// The whole of `mpirun -np N starsynth search ...` for every rank: rank 0 reads the config (or the
// run directory's) and shares it, every rank binds its device, rank 0 drives `run_search` while the
// others serve, and rank 0 reports. Returns the exit status; ends the job with MPI_Abort when a
// worker was lost (it can never be told to stop).
int search(const std::string& source, const RunOptions& options, const EvaluatorFactory& make,
           int (*count_gpus)(), const std::function<void(const SearchConfig&, const RunSummary&)>& report);

// GPU binding: the device of this rank from its node-local rank. Local rank 0 of the node that
// holds the driver drives; every other local rank r gets GPU (r' / k) % gpus, r' its index among
// the node's evaluating ranks, k the workers per GPU. "cpu" when the node has no GPU.
std::string bind_device(MPI_Comm comm, int gpus, int workers_per_gpu, bool driver_evaluates);

}  // namespace starsynth::cluster
