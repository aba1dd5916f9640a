// The evaluation engine between the evolutionary loop and whatever trains networks: canonical
// genomes in, objective vectors out. It answers from the ledger when it can (an architecture
// evaluated under the same settings, in this run or an earlier one, is never trained again),
// journals every new result as it completes, and runs the rest on a pool of workers.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "genome/genome.h"
#include "search/config.h"
#include "search/journal.h"

namespace starsynth {

// What an evaluator reports for one network. `metrics` holds "quality" (in its natural sense),
// "quality_higher_is_better" (1 or 0), "params", "cache", "flops", "tokens_per_s", "peak_memory".
struct EvalOutcome {
  std::string status = "ok";  // ok, diverged, out_of_memory, timeout, error
  std::string message;
  std::map<std::string, double> metrics;
  double wall_s = 0;
  std::string worker;
};

// The interface search/ calls; evaluator/ and cluster/ implement it. Must be thread-safe.
using Evaluator = std::function<EvalOutcome(const ModelSpec& spec, const Genome& canonical)>;

// Runs `evaluator`; an exception becomes status "error" with its message, so that one failing
// network never stops a pool, a worker or the driver.
EvalOutcome evaluate_guarded(const Evaluator& evaluator, const ModelSpec& spec, const Genome& canonical);

// A request to stop the search (Ctrl-C, or mpirun passing on SIGTERM): runners hand out no new
// evaluation, wait for those in flight (they are journaled, so nothing finished is lost), and the
// search throws Interrupted at the next boundary. Safe to call from a signal handler.
void request_stop();
bool stop_requested();

class Interrupted : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// What a pool of workers is doing during one run of its runner (a batch, or a steady-state
// stream), as the runner sees it. Worker-seconds not
// spent evaluating (workers x wall - busy) are what the generational barrier costs: workers left
// idle by stragglers at the end of a batch, or by a batch smaller than the pool.
struct PoolState {
  int workers = 0;    // able to take work; lost workers excluded
  int busy = 0;       // evaluating now
  int lost = 0;       // given up on (silent past the deadline)
  double wall_s = 0;  // since the batch began
  double busy_s = 0;  // worker-seconds spent evaluating in this batch so far
  std::string slots;  // one character per worker: B busy, . idle, x lost
  double utilisation() const { return workers > 0 && wall_s > 0 ? busy_s / (double(workers) * wall_s) : 0; }
};

// The bookkeeping behind PoolState, shared by the runners: each worker (a slot 0..workers-1) is busy
// from the moment its evaluation is handed out until its result is back.
class PoolMeter {
 public:
  explicit PoolMeter(int workers);
  void started(int worker);
  void finished(int worker);
  void lost(int worker);
  PoolState state() const;

 private:
  using Clock = std::chrono::steady_clock;
  Clock::time_point begun_ = Clock::now();
  std::map<int, Clock::time_point> running_;
  std::string slots_;
  int workers_, lost_ = 0;
  double busy_s_ = 0;
};

// One evaluation handed to a runner; `id` is the caller's.
struct Job {
  size_t id = 0;
  ModelSpec spec;
  Genome genome;
};

// Where a runner gets its work, asked whenever a worker is idle: `next` returns a job, or nothing
// when none is ready yet (the worker waits for a result to change that); `exhausted` is true once
// no job will ever come again. Runners call it, and `done`, from one thread at a time.
class JobSource {
 public:
  virtual ~JobSource() = default;
  virtual std::optional<Job> next() = 0;
  virtual bool exhausted() const = 0;
};

// Runs jobs from a source on a pool of workers until the source is exhausted and nothing is in
// flight (or a stop is requested and what was in flight is back). `done` is called as each
// evaluation finishes, with the pool's state just after it. The in-process implementation is a
// thread pool; cluster/ provides one over MPI.
using BatchDone = std::function<void(size_t id, EvalOutcome outcome, const PoolState& pool)>;
using Runner = std::function<void(JobSource& source, const BatchDone& done)>;
Runner thread_pool_runner(Evaluator evaluator, int workers);

// A fixed batch (one generation's offspring) through a runner; ids are the jobs' indices.
void run_batch(const Runner& runner, const std::vector<std::pair<ModelSpec, Genome>>& jobs, const BatchDone& done);

struct EngineCounters {
  int64_t evaluated = 0, reused = 0, failed = 0, over_budget = 0;
  // Over every batch: worker-seconds spent evaluating, and worker-seconds the pool offered.
  double pool_busy_s = 0, pool_capacity_s = 0;
};

class Engine {
 public:
  // `journal` may be null (tests that need no run directory).
  Engine(SearchConfig config, Runner runner, std::shared_ptr<Journal> journal);

  // Adds records to the ledger (this run's journal on resume, earlier runs' journals), except
  // those with status "error", which are evaluated again.
  void load(const std::vector<pb::JournalRecord>& records);
  // Objective vectors (minimised) of canonical genomes, evaluating what the ledger lacks.
  std::vector<std::vector<double>> evaluate(const std::vector<Genome>& canonical_genomes);
  // For callers that stream their own jobs through runner(): the ledger's record of a key (null
  // when never evaluated), and journaling a finished evaluation (journal, ledger, counters).
  const pb::JournalRecord* find(const std::string& key) const;
  const pb::JournalRecord& record(const Genome& canonical, const std::string& key, int generation, EvalOutcome outcome);
  const Runner& runner() const { return runner_; }
  void count_reused() { ++counters_.reused; }
  // True when the network fits the configured budgets (checked analytically, before training).
  bool within_budget(const Genome& canonical) const;
  void count_over_budget() { ++counters_.over_budget; }

  const SearchConfig& config() const { return config_; }
  const EngineCounters& counters() const { return counters_; }
  void set_counters(const EngineCounters& c) { counters_ = c; }
  void set_generation(int g) { generation_ = g; }
  // Called after each evaluation that finishes: (finished in this batch, batch size, the pool).
  using Progress = std::function<void(size_t, size_t, const PoolState&)>;
  void on_progress(Progress f) { progress_ = std::move(f); }
  std::string key(const Genome& canonical) const;
  // Every record of this run and the loaded ones, by key.
  const std::map<std::string, pb::JournalRecord>& ledger() const { return ledger_; }
  // The objective vector of a journal record: failed evaluations get the penalty value.
  std::vector<double> objectives(const pb::JournalRecord& r) const;

  static constexpr double kPenalty = 1e30;

 private:
  SearchConfig config_;
  Runner runner_;
  std::shared_ptr<Journal> journal_;
  std::map<std::string, pb::JournalRecord> ledger_;
  EngineCounters counters_;
  int generation_ = 0;
  int64_t sequence_ = 0;
  std::string settings_hash_;
  Progress progress_;
};

// The value the search minimises for `objective` of an evaluation: quality as error (accuracy) or
// loss, tokens/s negated; Engine::kPenalty where a failed training leaves it unknown.
double minimised(const pb::JournalRecord& r, const std::string& objective);

}  // namespace starsynth
