// Training and scoring: AdamW with warm-up and cosine decay, gradient clipping, bf16 autocast on
// CUDA (each step captured as a CUDA graph: train_step.h), seeded data order; failures become
// statuses.
#include <sys/resource.h>

#include <chrono>
#include <cmath>

#include "evaluator/evaluate.h"
#include "evaluator/model.h"
#include "evaluator/train_step.h"
#include "genome/metrics.h"
#include "genome/rng.h"

#ifdef STARSYNTH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace starsynth {

std::string status_name(EvalStatus s) {
  switch (s) {
    case EvalStatus::Ok: return "ok";
    case EvalStatus::Diverged: return "diverged";
    case EvalStatus::OutOfMemory: return "out_of_memory";
    case EvalStatus::Timeout: return "timeout";
    case EvalStatus::Error: return "error";
  }
  return "?";
}

namespace {

struct Failure : std::runtime_error {
  Failure(EvalStatus s, const std::string& what) : std::runtime_error(what), status(s) {}
  EvalStatus status;
};

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// MAD's compression task decodes every input token from the encoder's last hidden state: the
// state plus a sinusoidal code of the output position, through a fixed 2-layer GELU MLP.
struct AutoEncoderHeadImpl : torch::nn::Module {
  explicit AutoEncoderHeadImpl(int64_t d) {
    fc1 = register_module("fc1", torch::nn::Linear(d, d));
    fc2 = register_module("fc2", torch::nn::Linear(d, d));
  }
  at::Tensor forward(const at::Tensor& hidden) {
    const int64_t L = hidden.size(1), d = hidden.size(2);
    auto opts = hidden.options().dtype(at::kFloat);
    const at::Tensor pos = at::arange(L, opts).unsqueeze(1);
    const at::Tensor div = at::exp(at::arange(0, d, 2, opts) * (-std::log(10000.0) / double(d)));
    at::Tensor pe = at::zeros({L, d}, opts);
    pe.slice(1, 0, d, 2).copy_(at::sin(pos * div));
    pe.slice(1, 1, d, 2).copy_(at::cos(pos * div).slice(1, 0, d / 2));
    const at::Tensor x = hidden.select(1, L - 1).unsqueeze(1) + pe.to(hidden.dtype()).unsqueeze(0);
    return fc2(at::gelu(fc1(x)));
  }
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(AutoEncoderHead);

struct Batch {  // training batches live on the host (TrainStep moves them); scoring ones on the device
  at::Tensor inputs, targets;
};

constexpr int64_t kLossCheckEvery = 25;  // steps

struct Trainer {
  LivModel model;
  AutoEncoderHead head{nullptr};
  torch::Device device;
  const TrainSettings& s;
  int64_t vocab;

  at::Tensor logits(const at::Tensor& x) {
    if (!head) return model->forward(x);
    return model->logits(head->forward(model->hidden(x)));
  }

  // Returns tokens trained on.
  int64_t train(const std::function<Batch(int64_t)>& next, int64_t steps, Clock::time_point started) {
    std::vector<at::Tensor> decay, no_decay;
    auto sort = [&](const at::Tensor& p, const std::string& name) {
      // Weight decay on matrices only: not on norms, biases, decays, filter parameters or λ.
      const bool matrix = p.dim() >= 2 && name.find("A_log") == std::string::npos &&
                          name.find("filter") == std::string::npos && name.find("conv") == std::string::npos &&
                          name.find("kernel") == std::string::npos;
      (matrix ? decay : no_decay).push_back(p);
    };
    for (const auto& p : model->named_parameters()) sort(p.value(), p.key());
    if (head)
      for (const auto& p : head->named_parameters()) sort(p.value(), p.key());
    AdamWSettings adamw;
    adamw.weight_decay = s.weight_decay;
    adamw.clip = s.clip;
    FlatAdamW optimizer(decay, no_decay, adamw);
    TrainStep runner(
        [&](const at::Tensor& inputs, const at::Tensor& targets) {
          Bf16Autocast autocast(device.is_cuda() && s.bf16);
          return cross_entropy(logits(inputs).reshape({-1, vocab}), targets.reshape({-1}), kIgnore);
        },
        optimizer, device, steps, TrainStep::graphs_enabled());
    const int64_t warmup = std::max<int64_t>(1, int64_t(s.warmup * double(steps)));
    int64_t tokens = 0, checked = 0;
    // Losses are read back every few steps, not every step: reading one waits for the device.
    auto check = [&](int64_t upto) {
      const std::vector<double> losses = runner.losses(checked, upto);
      for (size_t i = 0; i < losses.size(); ++i)
        if (!std::isfinite(losses[i]))
          throw Failure(EvalStatus::Diverged, "loss is " + std::to_string(losses[i]) + " at step " +
                                                  std::to_string(checked + int64_t(i)));
      checked = upto;
    };
    model->train();
    for (int64_t step = 0; step < steps; ++step) {
      double lr = s.lr;
      if (step < warmup) lr = s.lr * double(step + 1) / double(warmup);
      else {
        const double progress = double(step - warmup) / double(std::max<int64_t>(1, steps - warmup));
        lr = s.lr * (s.min_lr_ratio + (1 - s.min_lr_ratio) * 0.5 * (1 + std::cos(M_PI * progress)));
      }
      const Batch b = next(step);
      runner.run(b.inputs, b.targets, step, lr);
      tokens += b.inputs.numel();
      if ((step + 1) % kLossCheckEvery == 0 || step + 1 == steps) check(step + 1);
      if (s.timeout_s > 0 && since(started) > s.timeout_s) {
        check(step + 1);  // a network that diverged on the way says so, not that it was slow
        throw Failure(EvalStatus::Timeout, "time limit of " + std::to_string(s.timeout_s) + " s reached at step " +
                                               std::to_string(step + 1) + " of " + std::to_string(steps));
      }
    }
    return tokens;
  }

  // Fraction of scored targets predicted exactly, and the mean loss over them.
  TaskQuality score(const Sequences& test) {
    torch::NoGradGuard no_grad;
    model->eval();
    int64_t correct = 0, scored = 0;
    double loss_sum = 0;
    for (int64_t start = 0; start < test.count; start += s.eval_batch) {
      const int64_t n = std::min(s.eval_batch, test.count - start);
      const Batch b = slice(test, start, n);
      Bf16Autocast autocast(device.is_cuda() && s.bf16);
      const at::Tensor out = logits(b.inputs).to(at::kFloat).reshape({-1, vocab});
      const at::Tensor t = b.targets.reshape({-1});
      const at::Tensor mask = t.ne(kIgnore);
      correct += (out.argmax(-1).eq(t) & mask).sum().item<int64_t>();
      scored += mask.sum().item<int64_t>();
      loss_sum += at::cross_entropy_loss(out, t, {}, at::Reduction::Sum, kIgnore).item<double>();
    }
    TaskQuality q;
    q.accuracy = scored ? double(correct) / double(scored) : 0;
    q.loss = scored ? loss_sum / double(scored) : 0;
    return q;
  }

  Batch slice(const Sequences& seq, int64_t start, int64_t n) const {
    const int64_t L = seq.length;
    auto take = [&](const std::vector<int32_t>& v) {
      return at::from_blob(const_cast<int32_t*>(v.data()) + start * L, {n, L}, at::kInt).to(device, at::kLong);
    };
    return {take(seq.inputs), take(seq.targets)};
  }

  Batch sample(const Sequences& seq, Rng& rng) const {
    std::vector<int32_t> in, tg;
    for (int64_t k = 0; k < s.batch; ++k) {
      const int64_t i = uniform_int(rng, 0, seq.count - 1);
      in.insert(in.end(), seq.inputs.begin() + i * seq.length, seq.inputs.begin() + (i + 1) * seq.length);
      tg.insert(tg.end(), seq.targets.begin() + i * seq.length, seq.targets.begin() + (i + 1) * seq.length);
    }
    return {at::tensor(in, at::kInt).view({s.batch, seq.length}).to(at::kLong),
            at::tensor(tg, at::kInt).view({s.batch, seq.length}).to(at::kLong)};
  }
};

torch::Device device_for(const TrainSettings& s) {
  torch::Device d(s.device);
  if (d.is_cuda() && !torch::cuda::is_available()) throw Failure(EvalStatus::Error, "CUDA is not available here");
  return d;
}

int64_t steps_for(const TrainSettings& s, int64_t tokens_per_step) {
  if (s.tokens > 0) return std::max<int64_t>(1, (s.tokens + tokens_per_step - 1) / tokens_per_step);
  return s.steps;
}

void reset_peak(const torch::Device& d) {
#ifdef STARSYNTH_CUDA
  if (d.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(d.index() < 0 ? 0 : d.index());
#else
  (void)d;
#endif
}

int64_t peak_memory(const torch::Device& d) {
#ifdef STARSYNTH_CUDA
  if (d.is_cuda()) {
    try {
      const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(d.index() < 0 ? 0 : d.index());
      return stats.allocated_bytes[0].peak;
    } catch (const c10::Error&) {
      return 0;  // the allocator never started: nothing was allocated
    }
  }
#endif
  (void)d;
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return int64_t(u.ru_maxrss) * 1024;
}

void release_memory(const torch::Device& d) {
#ifdef STARSYNTH_CUDA
  if (d.is_cuda()) c10::cuda::CUDACachingAllocator::emptyCache();
#else
  (void)d;
#endif
}

// Decode state measured at two lengths and extrapolated to the context: every state grows at most
// linearly with the number of decoded tokens.
int64_t measured_cache_bytes(LivModel& model, const TrainSettings& s, const torch::Device& device) {
  torch::NoGradGuard no_grad;
  model->eval();
  const int64_t t1 = 8, t2 = 16;
  DecodeState state = model->start_decode(1);
  int64_t at_t1 = 0;
  const at::Tensor token = at::zeros({1}, at::TensorOptions().dtype(at::kLong).device(device));
  for (int64_t t = 0; t < t2; ++t) {
    model->step(token, state);
    if (t + 1 == t1) at_t1 = state.elements();
  }
  const int64_t at_t2 = state.elements();
  return (at_t2 + (at_t2 - at_t1) / (t2 - t1) * (s.context - t2)) * s.element_bytes;
}

template <typename Fn>
Metrics guarded(const ModelSpec& spec, const TrainSettings& s, Fn&& body) {
  Metrics m;
  m.seed = s.seed;
  m.device = s.device;
  const AnalyticMetrics analytic = analyze(spec, s.context, s.element_bytes);
  m.cache_bytes = analytic.cache_bytes;
  m.flops_per_token = analytic.flops_per_token;
  const auto started = Clock::now();
  torch::Device device(torch::kCPU);
  try {
    device = device_for(s);
    // The first allocation starts CUDA's caching allocator, whose statistics are reset next.
    if (device.is_cuda()) at::empty({1}, at::TensorOptions().device(device));
    reset_peak(device);
    body(m, device, started);
  } catch (const Failure& f) {
    m.status = f.status;
    m.message = f.what();
  } catch (const c10::Error& e) {
    const std::string what = e.what_without_backtrace();
    m.status = what.find("out of memory") != std::string::npos ? EvalStatus::OutOfMemory : EvalStatus::Error;
    m.message = what.substr(0, what.find('\n'));
  } catch (const std::exception& e) {
    m.status = EvalStatus::Error;
    m.message = e.what();
  }
  m.peak_memory_bytes = peak_memory(device);
  release_memory(device);
  m.wall_s = since(started);
  return m;
}

Trainer make_trainer(const ModelSpec& spec, const TrainSettings& s, const torch::Device& device, bool autoencoder,
                     uint64_t seed) {
  torch::manual_seed(seed);
  Trainer t{LivModel(spec), nullptr, device, s, spec.vocab_size};
  if (autoencoder) t.head = AutoEncoderHead(spec.width);
  t.model->to(device);
  if (t.head) t.head->to(device);
  return t;
}

void record_size(Metrics& m, const ModelSpec& spec, LivModel& model, const TrainSettings& s, const torch::Device& device) {
  m.params_total = model->parameter_count();
  m.params_non_embedding = m.params_total - count_parameters(spec).embedding;
  m.cache_bytes_measured = measured_cache_bytes(model, s, device);
}

void train_on(Trainer& t, const SyntheticTask& task, Metrics& m, Clock::time_point started) {
  Rng rng(t.s.seed ^ 0x5eedULL);
  const int64_t steps = steps_for(t.s, t.s.batch * task.train.length);
  const auto train_start = Clock::now();
  const int64_t tokens = t.train([&](int64_t) { return t.sample(task.train, rng); }, steps, started);
  const double seconds = since(train_start);
  m.train_tokens += tokens;
  m.steps += steps;
  m.train_tokens_per_s += double(tokens) / std::max(seconds, 1e-9);
  TaskQuality q = t.score(task.test);
  q.task = task.name;
  m.tasks.push_back(q);
}

}  // namespace

int cuda_device_count() { return torch::cuda::is_available() ? int(torch::cuda::device_count()) : 0; }

Metrics evaluate_synthetic(const ModelSpec& spec, const SyntheticTask& task, const TrainSettings& s) {
  return guarded(spec, s, [&](Metrics& m, const torch::Device& device, Clock::time_point started) {
    if (task.vocab_size > spec.vocab_size)
      throw Failure(EvalStatus::Error, "task " + task.name + " needs a vocabulary of " + std::to_string(task.vocab_size) +
                                           ", the model has " + std::to_string(spec.vocab_size));
    Trainer t = make_trainer(spec, s, device, task.autoencoder, s.seed);
    train_on(t, task, m, started);
    record_size(m, spec, t.model, s, device);
    m.quality_name = "accuracy";
    m.quality = m.tasks[0].accuracy;
  });
}

Metrics evaluate(const ModelSpec& spec, const TaskSpec& task, const TrainSettings& s) {
  return guarded(spec, s, [&](Metrics& m, const torch::Device& device, Clock::time_point started) {
    if (task.kind.rfind("lm:", 0) == 0) {
      const std::vector<uint8_t> bytes = load_corpus(task.kind.substr(3));
      if (spec.vocab_size < 256)
        throw Failure(EvalStatus::Error, "byte-level modelling needs a vocabulary of 256, the model has " +
                                             std::to_string(spec.vocab_size));
      const int64_t L = task.lm_seq_len, split = int64_t(double(bytes.size()) * (1.0 - task.lm_holdout));
      if (split < L + 1 || int64_t(bytes.size()) - split < L + 1)
        throw Failure(EvalStatus::Error, "corpus too short for windows of " + std::to_string(L) + " tokens");
      Trainer t = make_trainer(spec, s, device, false, s.seed);
      Rng rng(s.seed ^ 0x1aULL);
      auto window = [&](int64_t start, int64_t n, std::vector<int32_t>& in, std::vector<int32_t>& tg) {
        for (int64_t k = 0; k < n; ++k) in.push_back(bytes[size_t(start + k)]), tg.push_back(bytes[size_t(start + k + 1)]);
      };
      auto next = [&](int64_t) {
        std::vector<int32_t> in, tg;
        for (int64_t b = 0; b < s.batch; ++b) window(uniform_int(rng, 0, split - L - 1), L, in, tg);
        return Batch{at::tensor(in, at::kInt).view({s.batch, L}).to(at::kLong),
                     at::tensor(tg, at::kInt).view({s.batch, L}).to(at::kLong)};
      };
      const int64_t steps = steps_for(s, s.batch * L);
      const auto train_start = Clock::now();
      m.train_tokens = t.train(next, steps, started);
      m.steps = steps;
      m.train_tokens_per_s = double(m.train_tokens) / std::max(since(train_start), 1e-9);
      // Held-out score: consecutive windows from the start of the held-out stretch.
      Sequences held;
      for (int64_t start = split; start + L + 1 <= int64_t(bytes.size()) && held.count * L < task.lm_eval_tokens;
           start += L) {
        std::vector<int32_t> in, tg;
        window(start, L, in, tg);
        held.length = L;
        held.inputs.insert(held.inputs.end(), in.begin(), in.end());
        held.targets.insert(held.targets.end(), tg.begin(), tg.end());
        ++held.count;
      }
      TaskQuality q = t.score(held);
      q.task = "lm";
      m.tasks.push_back(q);
      m.quality_name = "loss_nats_per_byte";
      m.quality = q.loss;
      m.perplexity = std::exp(q.loss);
      record_size(m, spec, t.model, s, device);
      return;
    }
    std::vector<std::string> names;
    if (task.kind == "mad") names.assign(mad_task_names().begin(), mad_task_names().end() - 1);  // all but MQAR
    else if (task.kind == "mqar") names = {"mqar"};
    else if (task.kind.rfind("mad:", 0) == 0) names = {task.kind.substr(4)};
    else throw Failure(EvalStatus::Error, "unknown task \"" + task.kind + "\" (expected mad, mad:<task>, mqar or lm:<file>)");
    double sum = 0;
    for (size_t k = 0; k < names.size(); ++k) {
      const SyntheticTask data = make_task(names[k], task.mad, s.seed + k);
      if (data.vocab_size > spec.vocab_size)
        throw Failure(EvalStatus::Error, "task " + data.name + " needs a vocabulary of " +
                                             std::to_string(data.vocab_size) + ", the model has " +
                                             std::to_string(spec.vocab_size));
      // A fresh model per task, as MAD trains each task separately.
      Trainer t = make_trainer(spec, s, device, data.autoencoder, s.seed + k);
      train_on(t, data, m, started);
      sum += m.tasks.back().accuracy;
      if (k == 0) record_size(m, spec, t.model, s, device);
    }
    m.train_tokens_per_s /= double(names.size());
    m.quality_name = "accuracy";
    m.quality = sum / double(names.size());
  });
}

}  // namespace starsynth
