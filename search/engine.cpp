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

}  // namespace

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

BatchRunner thread_pool_runner(Evaluator evaluator, int workers) {
  return [evaluator, workers](const std::vector<std::pair<ModelSpec, Genome>>& jobs,
                              const std::function<void(size_t, EvalOutcome)>& done) {
    std::atomic<size_t> next{0};
    std::mutex report;
    auto work = [&](int id) {
      for (size_t i; (i = next++) < jobs.size();) {
        EvalOutcome o = evaluate_guarded(evaluator, jobs[i].first, jobs[i].second);
        if (o.worker.empty()) o.worker = "thread-" + std::to_string(id);
        std::lock_guard<std::mutex> lock(report);
        done(i, std::move(o));
      }
    };
    std::vector<std::thread> pool;
    const int n = std::max(1, std::min<int>(workers, int(jobs.size())));
    for (int t = 1; t < n; ++t) pool.emplace_back(work, t);
    work(0);
    for (auto& t : pool) t.join();
  };
}

Engine::Engine(SearchConfig config, BatchRunner runner, std::shared_ptr<Journal> journal)
    : config_(std::move(config)), runner_(std::move(runner)), journal_(std::move(journal)) {
  settings_hash_ = hex64(fnv1a(config_.settings_key));
}

std::string Engine::key(const Genome& canonical) const {
  return hex64(genome_hash(config_.space, canonical)) + "-" + settings_hash_;
}

void Engine::load(const std::vector<pb::JournalRecord>& records) {
  for (const auto& r : records) {
    ledger_[r.key()] = r;
    sequence_ = std::max<int64_t>(sequence_, r.sequence() + 1);
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

std::vector<double> Engine::objectives(const pb::JournalRecord& r) const {
  std::vector<double> f;
  const bool ok = r.status() == "ok";
  for (const std::string& o : config_.objectives) {
    auto it = r.metrics().find(o);
    double v = it == r.metrics().end() ? kPenalty : it->second;
    if (o == "quality") {
      if (!ok) v = kPenalty;
      else if (r.metrics().count("quality_higher_is_better") && r.metrics().at("quality_higher_is_better") > 0) v = 1.0 - v;
    }
    if (o == "tokens_per_s") v = ok ? -v : kPenalty;  // maximised
    if (o == "peak_memory" && !ok) v = kPenalty;
    f.push_back(v);
  }
  return f;
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
    runner_(jobs, [&](size_t i, EvalOutcome o) {
      pb::JournalRecord r;
      r.set_sequence(sequence_++);
      r.set_generation(generation_);
      for (int64_t v : encode(jobs[i].second)) r.add_genes(int32_t(v));
      r.set_key(job_keys[i]);
      r.set_status(o.status);
      r.set_message(o.message);
      for (const auto& [name, value] : o.metrics) (*r.mutable_metrics())[name] = value;
      r.set_wall_s(o.wall_s);
      r.set_worker(o.worker);
      for (double v : objectives(r)) r.add_objectives(v);
      if (journal_) journal_->append(r);
      ledger_[r.key()] = r;
      ++counters_.evaluated;
      counters_.failed += o.status != "ok";
      if (progress_) progress_(++finished, jobs.size());
    });
  }
  std::vector<std::vector<double>> out;
  for (const std::string& k : keys) out.push_back(objectives(ledger_.at(k)));
  return out;
}

}  // namespace starsynth
