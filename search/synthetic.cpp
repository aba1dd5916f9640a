#include "search/synthetic.h"

#include <atomic>
#include <chrono>
#include <csignal>
#include <memory>
#include <thread>

#include "genome/metrics.h"

namespace starsynth {

// Token mixers earn by kind (attention most, then recurrences and long convolutions, then short
// ones), a backbone needs memoryless channel mixing beside them (best at half), and each shared
// featurizer or feature group costs a little quality: a landscape with the size/quality and
// cache/quality trade-offs the real objectives have, cheap and deterministic.
double surrogate_quality(const ModelSpec& spec) {
  double mixing = 0;
  int memoryless = 0, shared = 0;
  for (const LayerSpec& l : spec.layers) {
    const LivClass& c = class_by_name(l.cls);
    double w = 0;
    switch (c.family) {
      case Family::Attention: w = 1.0 - 0.04 * double(l.hyper.kv_repeat > 1) + 0.02 * double(l.hyper.short_conv > 0); break;
      case Family::Recurrence: w = l.hyper.state_expansion >= 16 ? 0.85 : 0.7; break;
      case Family::LongConv: w = 0.75; break;
      case Family::HyenaLI: w = 0.8; break;
      case Family::HyenaMR: w = 0.72; break;
      case Family::HyenaSE: w = 0.66; break;
      case Family::ShortConv: w = 0.6; break;
      case Family::SwiGLU:
      case Family::Mlp: ++memoryless; break;
    }
    if (c.differential) w += 0.05;
    mixing += w;
    shared += (l.tie_featurizer_to >= 0) + (l.reuse_from >= 0);
  }
  const double n = double(spec.layers.size());
  const double balance = 1.0 - std::abs(double(memoryless) / n - 0.5);
  const double q = (mixing / std::max(1.0, n - memoryless)) * balance - 0.01 * shared;
  return std::clamp(q, 0.0, 1.0);
}

Evaluator synthetic_evaluator(const SearchConfig& config, int rank) {
  const std::string kind = config.message.task().kind();
  if (kind != "synthetic:surrogate")
    throw std::invalid_argument("unknown synthetic task \"" + kind + "\" (known: synthetic:surrogate)");
  const double delay = config.message.task().synthetic_delay_s();
  const int64_t context = config.message.training().context(), bytes = config.message.training().element_bytes();
  std::vector<pb::FaultInjection> faults;
  for (const auto& f : config.message.faults())
    if (f.rank() == rank) faults.push_back(f);
  const double timeout = config.message.training().timeout_s();
  auto count = std::make_shared<std::atomic<int>>(0);
  return [delay, context, bytes, faults, timeout, count](const ModelSpec& spec, const Genome&) {
    const int n = ++*count;
    EvalOutcome failed;
    for (const auto& f : faults) {
      if (f.on_evaluation() != n) continue;
      const std::string what = "injected fault on evaluation " + std::to_string(n);
      if (f.kind() == "throw") throw std::runtime_error(what + ": the evaluator threw");
      if (f.kind() == "nan") {
        failed.status = "diverged";
        failed.message = "loss is nan at step 0 (" + what + ")";
        return failed;
      }
      if (f.kind() == "timeout") {
        std::this_thread::sleep_for(std::chrono::duration<double>(timeout));
        failed.status = "timeout";
        failed.message = "time limit of " + std::to_string(timeout) + " s reached (" + what + ")";
        return failed;
      }
      if (f.kind() == "hang")
        for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
      if (f.kind() == "kill") ::raise(SIGKILL);
    }
    if (delay > 0) std::this_thread::sleep_for(std::chrono::duration<double>(delay));
    const AnalyticMetrics a = analyze(spec, context, bytes);
    EvalOutcome o;
    o.metrics = {{"quality", surrogate_quality(spec)},
                 {"quality_higher_is_better", 1.0},
                 {"params", double(a.params.total)},
                 {"cache", double(a.cache_bytes)},
                 {"flops", a.flops_per_token},
                 {"tokens_per_s", 0.0},
                 {"peak_memory", 0.0}};
    o.worker = "synthetic";
    return o;
  };
}

}  // namespace starsynth
