#include "search/engine.h"

#include <condition_variable>
#include <cstdio>
#include <thread>

#include "genome/metrics.h"

namespace starsynth {

namespace {

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free, "request_stop() runs in signal handlers");

}  // namespace

void request_stop() { g_stop.store(true); }
bool stop_requested() { return g_stop.load(); }

EvalOutcome evaluate_guarded(const Evaluator& evaluator, const ModelSpec& spec, const Genome& canonical) {
  try {
    return evaluator(spec, canonical);
  } catch (const std::exception& e) {
    EvalOutcome o;
    o.status = "error";
    o.message = e.what();
    return o;
  }
}

PoolMeter::PoolMeter(int workers) : slots_(size_t(std::max(workers, 0)), '.'), workers_(workers) {}

void PoolMeter::started(int worker) {
  running_[worker] = Clock::now();
  if (size_t(worker) < slots_.size()) slots_[size_t(worker)] = 'B';
}

void PoolMeter::finished(int worker) {
  auto it = running_.find(worker);
  if (it == running_.end()) return;
  busy_s_ += std::chrono::duration<double>(Clock::now() - it->second).count();
  running_.erase(it);
  if (size_t(worker) < slots_.size()) slots_[size_t(worker)] = '.';
}

void PoolMeter::lost(int worker) {
  finished(worker);  // the time it spent counts as busy: the pool offered it and it was used
  ++lost_;
  --workers_;
  if (size_t(worker) < slots_.size()) slots_[size_t(worker)] = 'x';
}

PoolState PoolMeter::state() const {
  const auto now = Clock::now();
  PoolState s;
  s.workers = workers_;
  s.busy = int(running_.size());
  s.lost = lost_;
  s.wall_s = std::chrono::duration<double>(now - begun_).count();
  s.busy_s = busy_s_;
  s.slots = slots_;
  for (const auto& [w, since] : running_) s.busy_s += std::chrono::duration<double>(now - since).count();
  return s;
}

Runner thread_pool_runner(Evaluator evaluator, int workers) {
  return [evaluator, workers](JobSource& source, const BatchDone& done) {
    std::mutex lock_source;
    std::condition_variable changed;
    const int n = std::max(1, workers);
    PoolMeter meter(n);
    int running = 0;
    auto work = [&](int id) {
      std::unique_lock<std::mutex> lock(lock_source);
      while (!stop_requested()) {
        std::optional<Job> job = source.next();
        if (!job) {
          if (source.exhausted()) return;
          if (running == 0) throw std::logic_error("job source stalled: no job ready and none in flight");
          // Polled as well as notified: a stop request comes from a signal handler.
          changed.wait_for(lock, std::chrono::milliseconds(50));
          continue;
        }
        ++running;
        meter.started(id);
        lock.unlock();
        EvalOutcome o = evaluate_guarded(evaluator, job->spec, job->genome);
        if (o.worker.empty()) o.worker = "thread-" + std::to_string(id);
        lock.lock();
        --running;
        meter.finished(id);
        done(job->id, std::move(o), meter.state());
        changed.notify_all();
      }
    };
    std::vector<std::thread> pool;
    for (int t = 1; t < n; ++t) pool.emplace_back(work, t);
    work(0);
    for (auto& t : pool) t.join();
  };
}

namespace {

class ListSource : public JobSource {
 public:
  explicit ListSource(const std::vector<std::pair<ModelSpec, Genome>>& jobs) : jobs_(jobs) {}
  std::optional<Job> next() override {
    if (next_ >= jobs_.size()) return std::nullopt;
    const size_t i = next_++;
    return Job{i, jobs_[i].first, jobs_[i].second};
  }
  bool exhausted() const override { return next_ >= jobs_.size(); }

 private:
  const std::vector<std::pair<ModelSpec, Genome>>& jobs_;
  size_t next_ = 0;
};

}  // namespace

void run_batch(const Runner& runner, const std::vector<std::pair<ModelSpec, Genome>>& jobs, const BatchDone& done) {
  ListSource source(jobs);
  runner(source, done);
}

Engine::Engine(SearchConfig config, Runner runner, std::shared_ptr<Journal> journal)
    : config_(std::move(config)), runner_(std::move(runner)), journal_(std::move(journal)) {
  settings_hash_ = hex64(fnv1a(config_.settings_key));
}

std::string Engine::key(const Genome& canonical) const {
  return hex64(genome_hash(config_.space, canonical)) + "-" + settings_hash_;
}

void Engine::load(const std::vector<pb::JournalRecord>& records) {
  for (const auto& r : records) {
    sequence_ = std::max<int64_t>(sequence_, r.sequence() + 1);
    // "error" is an exception, most often the setup failing (a missing file, no GPU) rather than
    // the network, so a resumed or later run tries it again (one that fails again is journaled
    // again). Diverged, out-of-memory and timed-out networks are the networks' own: they stay.
    if (r.status() != "error") ledger_[r.key()] = r;
  }
}

bool Engine::within_budget(const Genome& canonical) const {
  const auto& b = config_.message.budgets();
  if (!b.max_params() && !b.max_cache_bytes() && b.max_flops_per_token() == 0) return true;
  const SearchConfig& c = config_;
  const AnalyticMetrics m = analyze(compile(c.space, canonical), c.message.training().context(),
                                    c.message.training().element_bytes());
  if (b.max_params() && m.params.total > b.max_params()) return false;
  if (b.max_cache_bytes() && m.cache_bytes > b.max_cache_bytes()) return false;
  if (b.max_flops_per_token() > 0 && m.flops_per_token > b.max_flops_per_token()) return false;
  return true;
}

double minimised(const pb::JournalRecord& r, const std::string& objective) {
  const bool ok = r.status() == "ok";
  auto it = r.metrics().find(objective);
  const double v = it == r.metrics().end() ? Engine::kPenalty : it->second;
  if (objective == "quality") {
    if (!ok) return Engine::kPenalty;
    auto higher = r.metrics().find("quality_higher_is_better");
    return higher != r.metrics().end() && higher->second > 0 ? 1.0 - v : v;
  }
  if (objective == "tokens_per_s") return ok ? -v : Engine::kPenalty;  // maximised
  if (objective == "peak_memory" && !ok) return Engine::kPenalty;
  return v;  // analytic: known even when training failed
}

std::vector<double> Engine::objectives(const pb::JournalRecord& r) const {
  std::vector<double> f;
  for (const std::string& o : config_.objectives) f.push_back(minimised(r, o));
  return f;
}

const pb::JournalRecord* Engine::find(const std::string& key) const {
  auto it = ledger_.find(key);
  return it == ledger_.end() ? nullptr : &it->second;
}

const pb::JournalRecord& Engine::record(const Genome& canonical, const std::string& key, int generation, EvalOutcome o) {
  pb::JournalRecord r;
  r.set_sequence(sequence_++);
  r.set_generation(generation);
  for (int64_t v : encode(canonical)) r.add_genes(int32_t(v));
  r.set_key(key);
  r.set_status(o.status);
  r.set_message(o.message);
  for (const auto& [name, value] : o.metrics) (*r.mutable_metrics())[name] = value;
  r.set_wall_s(o.wall_s);
  r.set_worker(o.worker);
  for (double v : objectives(r)) r.add_objectives(v);
  if (journal_) journal_->append(r);
  ++counters_.evaluated;
  counters_.failed += o.status != "ok";
  return ledger_[key] = std::move(r);
}

std::vector<std::vector<double>> Engine::evaluate(const std::vector<Genome>& genomes) {
  std::vector<std::string> keys;
  std::vector<std::pair<ModelSpec, Genome>> jobs;
  std::map<std::string, size_t> scheduled;
  for (const Genome& g : genomes) {
    keys.push_back(key(g));
    if (ledger_.count(keys.back())) {
      ++counters_.reused;
    } else if (!scheduled.count(keys.back())) {
      scheduled[keys.back()] = jobs.size();
      jobs.emplace_back(compile(config_.space, g), g);
    }
  }
  if (!jobs.empty()) {
    std::vector<std::string> job_keys(jobs.size());
    for (const auto& [k, i] : scheduled) job_keys[i] = k;
    size_t finished = 0;
    run_batch(runner_, jobs, [&](size_t i, EvalOutcome o, const PoolState& pool) {
      record(jobs[i].second, job_keys[i], generation_, std::move(o));
      if (++finished == jobs.size()) {
        counters_.pool_busy_s += pool.busy_s;
        counters_.pool_capacity_s += double(pool.workers + pool.lost) * pool.wall_s;
      }
      if (progress_) progress_(finished, jobs.size(), pool);
    });
  }
  std::vector<std::vector<double>> out;
  for (const std::string& k : keys) {
    if (!ledger_.count(k)) throw Interrupted("stopped on request with the generation unfinished");
    out.push_back(objectives(ledger_.at(k)));
  }
  return out;
}

}  // namespace starsynth
