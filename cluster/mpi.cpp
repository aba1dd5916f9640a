#include "cluster/mpi.h"

#include <chrono>
#include <cstdlib>
#include <deque>
#include <iostream>
#include <map>
#include <set>
#include <stdexcept>
#include <thread>

#include <unistd.h>

#include "genome/genome.h"
#include "proto/formats.h"
#include "proto/search.pb.h"

namespace starsynth::cluster {

namespace {

enum Tag : int { kWork = 1, kResult = 2, kStop = 3 };

using Clock = std::chrono::steady_clock;

void send(MPI_Comm comm, int rank, Tag tag, const google::protobuf::Message& m) {
  std::string bytes;
  m.SerializeToString(&bytes);
  MPI_Send(bytes.data(), int(bytes.size()), MPI_BYTE, rank, tag, comm);
}

// Receives a message already probed.
std::string receive(MPI_Comm comm, const MPI_Status& probed) {
  int size = 0;
  MPI_Get_count(&probed, MPI_BYTE, &size);
  std::string bytes(size_t(size), '\0');
  MPI_Recv(bytes.data(), size, MPI_BYTE, probed.MPI_SOURCE, probed.MPI_TAG, comm, MPI_STATUS_IGNORE);
  return bytes;
}

EvalOutcome from_result(const pb::WorkResult& r) {
  EvalOutcome o;
  o.status = r.status();
  o.message = r.message();
  o.metrics.insert(r.metrics().begin(), r.metrics().end());
  o.wall_s = r.wall_s();
  o.worker = r.worker();
  return o;
}

// Ranks whose workers were lost stay lost for the whole job: their evaluations may still be
// running (or hung), and they are never sent anything again.
std::set<int>& lost_ranks() {
  static std::set<int> lost;
  return lost;
}

// Said once per job: the driver evaluating alone is worth one line, not one per batch.
bool told_every_worker_lost = false;

}  // namespace

bool under_mpirun() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"})
    if (const char* v = std::getenv(var); v && std::atoi(v) > 1) return true;
  return false;
}

Runner mpi_runner(MPI_Comm comm, const SearchConfig& config, Evaluator local) {
  const bool driver_evaluates = config.message.cluster().driver_evaluates();
  const double deadline = config.message.cluster().deadline_s();
  return [comm, driver_evaluates, deadline, local](JobSource& source, const BatchDone& done) {
    int size = 1;
    MPI_Comm_size(comm, &size);
    // Jobs taken back from lost workers go out again before anything new.
    std::deque<Job> retry;
    auto next_job = [&]() -> std::optional<Job> {
      if (stop_requested()) return std::nullopt;
      if (!retry.empty()) {
        Job j = std::move(retry.front());
        retry.pop_front();
        return j;
      }
      return source.next();
    };
    // Worker rank r is slot r - 1 of the pool; rank 0, when it evaluates, the last slot.
    auto slot = [size](int rank) { return rank == 0 ? size - 1 : rank - 1; };
    PoolMeter meter(size - 1 + (driver_evaluates ? 1 : 0));
    std::vector<int> idle;
    for (int r = size - 1; r >= 1; --r)
      if (!lost_ranks().count(r)) idle.push_back(r);
      else meter.lost(slot(r));
    struct Flight {
      Job job;
      Clock::time_point since;
    };
    std::map<int, Flight> flying;
    auto evaluate_here = [&](Job job) {
      meter.started(slot(0));
      EvalOutcome o = evaluate_guarded(local, job.spec, job.genome);
      if (o.worker.empty()) o.worker = "rank 0";
      meter.finished(slot(0));
      done(job.id, std::move(o), meter.state());
    };
    for (;;) {
      // On a stop request nothing new goes out; the runner returns once what was in flight is back.
      if (flying.empty() && retry.empty() && (stop_requested() || source.exhausted())) return;
      bool progressed = false;
      while (!idle.empty()) {
        std::optional<Job> job = next_job();
        if (!job) break;
        const int rank = idle.back();
        idle.pop_back();
        pb::WorkItem item;
        item.set_job(int64_t(job->id));
        for (int64_t g : encode(job->genome)) item.add_genes(int32_t(g));
        send(comm, rank, kWork, item);
        flying[rank] = {std::move(*job), Clock::now()};
        meter.started(slot(rank));
        progressed = true;
      }
      int flag = 0;
      MPI_Status status;
      MPI_Iprobe(MPI_ANY_SOURCE, kResult, comm, &flag, &status);
      if (flag) {
        pb::WorkResult result;
        result.ParseFromString(receive(comm, status));
        const int rank = status.MPI_SOURCE;
        auto it = flying.find(rank);
        // A result from a rank given up on, or for a job already redone elsewhere, is dropped.
        if (it != flying.end() && int64_t(it->second.job.id) == result.job() && !lost_ranks().count(rank)) {
          flying.erase(it);
          meter.finished(slot(rank));
          done(size_t(result.job()), from_result(result), meter.state());
          idle.push_back(rank);
        }
        progressed = true;
      }
      if (deadline > 0) {
        for (auto it = flying.begin(); it != flying.end();) {
          if (std::chrono::duration<double>(Clock::now() - it->second.since).count() <= deadline) {
            ++it;
            continue;
          }
          std::cerr << "worker rank " << it->first << " silent for more than " << deadline
                    << " s: marked lost, its evaluation goes to another worker\n";
          lost_ranks().insert(it->first);
          meter.lost(slot(it->first));
          retry.push_front(std::move(it->second.job));
          it = flying.erase(it);
          progressed = true;
        }
      }
      // Rank 0 takes work itself when asked to, or when no worker is left to take it.
      const bool no_workers = idle.empty() && flying.empty();
      if (driver_evaluates || no_workers) {
        if (std::optional<Job> job = next_job()) {
          if (no_workers && !driver_evaluates && size > 1 && !told_every_worker_lost) {
            std::cerr << "every worker is lost: rank 0 evaluates the rest\n";
            told_every_worker_lost = true;
          }
          evaluate_here(std::move(*job));
          progressed = true;
        } else if (no_workers && !source.exhausted() && !stop_requested()) {
          throw std::logic_error("job source stalled: no job ready and none in flight");
        }
      }
      if (!progressed) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  };
}

void serve(MPI_Comm comm, const SearchConfig& config, Evaluator evaluate, const std::string& device) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  for (;;) {
    // Poll rather than block in MPI_Probe, which spins a core in Open MPI: workers sharing a node
    // (k per GPU) or an oversubscribed machine would starve each other and the driver.
    MPI_Status status;
    for (int flag = 0; !flag;) {
      MPI_Iprobe(0, MPI_ANY_TAG, comm, &flag, &status);
      if (!flag) std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
    const std::string bytes = receive(comm, status);
    if (status.MPI_TAG == kStop) return;
    pb::WorkItem item;
    item.ParseFromString(bytes);
    const Genome g = decode(config.space, std::vector<int64_t>(item.genes().begin(), item.genes().end()));
    pb::WorkResult result;
    result.set_job(item.job());
    const auto started = Clock::now();
    // A throwing evaluation is reported with its cause; the worker keeps serving.
    const EvalOutcome o = evaluate_guarded(evaluate, compile(config.space, g), g);
    result.set_status(o.status);
    result.set_message(o.message);
    for (const auto& [k, v] : o.metrics) (*result.mutable_metrics())[k] = v;
    result.set_wall_s(o.wall_s > 0 ? o.wall_s : std::chrono::duration<double>(Clock::now() - started).count());
    result.set_worker("rank " + std::to_string(rank) + " " + device);
    send(comm, 0, kResult, result);
  }
}

bool stop_workers(MPI_Comm comm) {
  int size = 1;
  MPI_Comm_size(comm, &size);
  for (int r = 1; r < size; ++r)
    if (!lost_ranks().count(r)) send(comm, r, kStop, pb::WorkItem());
  return lost_ranks().empty();
}

std::string bind_device(MPI_Comm comm, int gpus, int workers_per_gpu, bool driver_evaluates) {
  MPI_Comm node;
  MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
  int local = 0, world = 0;
  MPI_Comm_rank(node, &local);
  MPI_Comm_rank(comm, &world);
  // Whether this node holds the driver: its local rank 0 is then the driver, not a worker.
  int has_driver = world == 0, node_has_driver = 0;
  MPI_Allreduce(&has_driver, &node_has_driver, 1, MPI_INT, MPI_MAX, node);
  MPI_Comm_free(&node);
  if (gpus <= 0) return "cpu";
  const int index = node_has_driver && !driver_evaluates ? local - 1 : local;
  return "cuda:" + std::to_string((std::max(index, 0) / std::max(workers_per_gpu, 1)) % gpus);
}

int search(const std::string& source, const RunOptions& options, const EvaluatorFactory& make, int (*count_gpus)(),
           const std::function<void(const SearchConfig&, const RunSummary&)>& report) {
  MPI_Comm comm = MPI_COMM_WORLD;
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  // Rank 0 reads the configuration and shares its text; an unreadable one stops every rank.
  std::string text, error;
  if (rank == 0) {
    try {
      const std::string path = options.resume ? source + "/config.textproto" : source;
      text = read_file(path);
      parse_search_config(text, path);
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  int length = rank == 0 ? int(error.empty() ? text.size() : 0) : 0, ok = rank == 0 ? int(error.empty()) : 0;
  MPI_Bcast(&ok, 1, MPI_INT, 0, comm);
  if (!ok) {
    if (rank == 0) std::cerr << "error: " << error << "\n";
    return 2;
  }
  MPI_Bcast(&length, 1, MPI_INT, 0, comm);
  text.resize(size_t(length));
  MPI_Bcast(text.data(), length, MPI_CHAR, 0, comm);
  const SearchConfig config = parse_search_config(text, "config");
  const bool cuda = config.message.training().device().rfind("cuda", 0) == 0;
  const std::string device = bind_device(comm, cuda ? count_gpus() : 0,
                                         std::max(1, config.message.cluster().workers_per_gpu()),
                                         config.message.cluster().driver_evaluates());
  if (rank != 0) {
    serve(comm, config, make(config, device, rank), device);
    return 0;
  }
  int size = 1;
  MPI_Comm_size(comm, &size);
  // Ctrl-C on mpirun reaches every rank and Open MPI kills them moments later: the evaluations in
  // flight are lost (the rest is journaled). Signalling the driver alone stops without losing them.
  std::cerr << "rank 0 (pid " << ::getpid() << ") drives " << size - 1 << " workers; `kill -INT " << ::getpid()
            << "` stops the search after the evaluations in flight\n";
  int status = 0;
  try {
    const Evaluator local = make(config, device, 0);
    const RunSummary run = run_search(source, options, [&](const SearchConfig& c) { return mpi_runner(comm, c, local); });
    report(config, run);
  } catch (const Interrupted& e) {
    std::cerr << "stopped: " << e.what() << "\n";
    status = 130;
  } catch (const LoadError& e) {
    std::cerr << "error: " << e.what() << "\n";
    status = 2;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    status = 1;
  }
  if (!stop_workers(comm)) {
    std::cerr << "some workers were lost and cannot be stopped: ending the MPI job\n";
    std::cout.flush();
    MPI_Abort(comm, status);
  }
  return status;
}

}  // namespace starsynth::cluster
